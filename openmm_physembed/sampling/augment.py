"""File-level bond-length sampling: reference frames (extxyz) in, training/validation sets out.

:func:`run_augmentation` writes into ``out_dir``:

- ``train.extxyz``: the modified structures (Angstrom), ``config_type="bond_sampling"``;
- ``valid.extxyz``: the ``n_validation`` untouched frames, ``config_type="reference"``;
- ``records.json`` (nested, with rejected attempts) and ``records.csv`` (one row per modified bond);
- ``ranges.json``: per bond type k, k_eff, r_min/r_mean/r_max and both segments, plus the
  equilibrium lengths the geometry check used for each atom-type pair (and, with angle
  sampling, per angle type k, thermal width and both segments);
- ``bond_length_distributions.png``: per bond type, lengths over the reference frames vs over
  the written set (train + valid);
- ``augmentation.json``: the job manifest (:mod:`openmm_physembed.jobs`): settings, and once
  finished the file list and counts. Rerunning with identical settings returns the existing
  files; different settings are refused unless ``overwrite=True``.

Each Atoms carries ``molecule``, ``smiles``, ``total_charge``, ``multiplicity``, ``config_type``,
``reference_frame`` and, for modified structures, ``bond_atoms`` (``"i-j"``), ``bond_type``,
``segment``, ``old_length_angstrom``, ``new_length_angstrom``, ``rotation_degrees`` (NaN when
no rotation) and ``rejected_attempts``; with several bonds per structure the string fields are
joined by ``;`` and the numbers become arrays. Other info/array keys of the reference frames are
kept, except labels of the old geometry (names containing energy, forces, stress or virial),
which are dropped from modified structures.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..chem.bond_typing import get_bond_typing
from ..errors import SamplingError
from ..io import atomic_path, read_extxyz, write_extxyz, write_json
from ..jobs import JobDirectory
from ..units import ANGSTROM_PER_NM, NM_PER_ANGSTROM
from . import geometry
from .angle_sampling import AngleSamplingParameters, gaff_angle_constants
from .bond_parameters import BondSamplingParameters
from .bond_records import AugmentationResult
from .bond_sampling import augment_frames

MANIFEST = "augmentation.json"
FILES = {
    "train": "train.extxyz",
    "valid": "valid.extxyz",
    "records_json": "records.json",
    "records_csv": "records.csv",
    "ranges": "ranges.json",
    "plot": "bond_length_distributions.png",
}
_LABEL_WORDS = ("energy", "forces", "stress", "virial")
CSV_COLUMNS = (
    "structure", "reference_frame", "rejected_attempts", "modification", "atom1", "atom2", "bond_type", "segment",
    "old_length_nm", "new_length_nm", "old_length_angstrom", "new_length_angstrom", "change_angstrom",
    "rotation_degrees", "rotated_atoms", "moved_atoms",
)


@dataclass(frozen=True)
class AugmentationOutputs:
    """Paths written by :func:`run_augmentation`; ``reused`` when an identical finished run was found."""

    out_dir: Path
    train_path: Path
    valid_path: Path
    records_json_path: Path
    records_csv_path: Path
    ranges_path: Path
    plot_path: Path
    manifest_path: Path
    n_train: int
    n_valid: int
    rejected_attempts: int
    reused: bool = False
    coverage: dict | None = None  # AugmentationResult.coverage(): the types the set left out

    def coverage_note(self) -> str:
        """One line for the console: every type covered, or which were left out."""
        c = self.coverage or {}
        left = c.get("unstretched_bond_types", []) + c.get("unbent_angle_types", [])
        if not c:
            return "coverage not recorded (a run made before coverage by design)"
        if not left:
            bends = f" and all {c['n_bendable_angle_types']} bendable angle types bent" \
                if c.get("n_bendable_angle_types") and c.get("bends_per_structure") else ""
            return f"all {c['n_bond_types']} bond types stretched{bends}"
        return ("left out (never stretched/bent): " + ", ".join(left)
                + ("" if c.get("cover_every_type") else "; the random draw of the paper, coverage off"))


def run_augmentation(
    molecule,
    reference_frames_path: str | Path,
    out_dir: str | Path,
    parameters: BondSamplingParameters = BondSamplingParameters(),
    seed: int = 0,
    typing_source="gaff",
    charge_method: str = "bcc",
    cache_dir: str | Path | None = None,
    overwrite: bool = False,
    angle_parameters: AngleSamplingParameters = AngleSamplingParameters(),
) -> AugmentationOutputs:
    """Augment the reference frames of ``molecule`` and write the training/validation sets.

    Parameters
    ----------
    molecule
        The :class:`~openmm_physembed.chem.molecule.Molecule` the frames belong to (same atom order).
    reference_frames_path
        Extended XYZ of the reference frames (Angstrom), e.g. ``ReferenceFrames.frames_path``.
    typing_source
        Name of a registered bond-typing source (``gaff``, ``gaff2``) or a source object.
        Atom types do not depend on charges; ``charge_method`` and ``cache_dir`` only select
        which cached parameterisation is reused (``bcc`` is what the reference MD used).
    overwrite
        Replace a finished run made with different settings (otherwise refused).
    angle_parameters
        Bond-angle bending after each bond modification (:mod:`.angle_sampling`); off by default.
    """
    out_dir = Path(out_dir)
    frames_path = Path(reference_frames_path)
    if not frames_path.is_file():
        raise SamplingError(f"reference frames {str(frames_path)!r} do not exist; run `physembed reference-md` first")
    if isinstance(typing_source, str):
        source = get_bond_typing(typing_source, charge_method=charge_method, cache_dir=cache_dir)
    else:
        source = typing_source
    settings = {
        "molecule": molecule.name, "identity": molecule.identity_hash(), "smiles": molecule.smiles,
        "reference_frames": str(frames_path.resolve()), "reference_frames_sha256": _sha256(frames_path),
        "typing_source": getattr(source, "name", type(source).__name__), "seed": int(seed),
        "parameters": parameters.to_dict(),
        # Only when on, so that runs made before angle sampling existed stay reusable.
        **({"angle_parameters": angle_parameters.to_dict()} if angle_parameters.enabled else {}),
    }
    paths = {key: out_dir / name for key, name in FILES.items()}
    # The frames may have moved; their content hash is what matters.
    job = JobDirectory(out_dir, "bond sampling run", settings, manifest=MANIFEST, ignore=("reference_frames",),
                       error=SamplingError, fix="choose another output directory or pass overwrite=True (--overwrite)")
    if job.finished and not job.differences() and all(p.is_file() for p in paths.values()):
        return _outputs(out_dir, paths, job.summary, reused=True)
    job.open(overwrite=overwrite)

    reference_atoms = read_extxyz(frames_path)
    frames_nm = _frames_nm(reference_atoms, molecule, frames_path)
    typing = source.type_molecule(molecule)
    _check_atom_order(frames_nm, typing, frames_path, molecule.name)
    angle_constants = gaff_angle_constants(molecule, charge_method, cache_dir) if angle_parameters.enabled else None
    result = augment_frames(molecule, frames_nm, typing, parameters, seed, source=source,
                            angle_parameters=angle_parameters, angle_constants=angle_constants)

    train_atoms = [_modified_atoms(reference_atoms[rec.reference_frame], result.positions_nm[n], rec, molecule)
                   for n, rec in enumerate(result.records)]
    valid_atoms = [_reference_atoms(reference_atoms[f], f, molecule) for f in result.validation_frames]
    write_extxyz(paths["train"], train_atoms)
    write_extxyz(paths["valid"], valid_atoms)
    write_json(paths["records_json"], {
        "molecule": molecule.name, "seed": seed, "parameters": parameters.to_dict(),
        "angle_parameters": angle_parameters.to_dict(),
        "train_frames": result.train_frames, "validation_frames": result.validation_frames,
        "units": {"*_nm": "nm", "*_angstrom": "Angstrom", "rotation_degrees": "degrees (null: no rotation)"},
        "structures": [rec.to_dict() for rec in result.records],
    })
    _write_csv(paths["records_csv"], result)
    write_json(paths["ranges"], {
        "molecule": molecule.name, "typing_source": typing.source, "atom_types": typing.atom_types,
        "units": {"k": "kJ/mol/nm^2 (E = k/2 (r-r0)^2)", "lengths": "nm unless *_angstrom"},
        "ranges": {name: r.to_dict() for name, r in result.ranges.items()},
        "geometry_check": {"margin_angstrom": parameters.clash_margin_angstrom,
                           "min_bond_separation": parameters.min_bond_separation,
                           "pair_equilibrium_lengths": result.pair_thresholds},
        "bonds": [{"atom1": p.atom1, "atom2": p.atom2, "bond_type": p.bond_type, "k_eff": p.k_eff,
                   "terminal": p.terminal, "in_ring": p.in_ring, "can_rotate": p.can_rotate} for p in result.plans],
        "angle_ranges": {name: r.to_dict() for name, r in result.angle_ranges.items()},
        "angle_units": {"k": "kJ/mol/rad^2 (E = k/2 (theta-theta0)^2)", "angles": "degrees"},
        "coverage": result.coverage(),
    })
    _plot(paths["plot"], result, frames_nm, molecule)
    files = {k: p.name for k, p in paths.items()}
    if result.angle_ranges:
        files["angle_plot"] = _plot_angles(out_dir / "angle_distributions.png", result, frames_nm, molecule).name
    summary = {
        "files": files,
        "n_train": len(train_atoms), "n_valid": len(valid_atoms), "rejected_attempts": result.rejected_attempts,
        "modified_bond_types": _count([m.bond_type for rec in result.records for m in rec.modifications]),
        "segments": _count([m.segment for rec in result.records for m in rec.modifications]),
        "bent_angle_types": _count([b.angle_type for rec in result.records for b in rec.bends]),
        "coverage": result.coverage(),
    }
    job.finish(**summary)
    return _outputs(out_dir, paths, job.summary, reused=False)


# -- helpers --------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _outputs(out_dir: Path, paths: dict, manifest: dict, reused: bool) -> AugmentationOutputs:
    return AugmentationOutputs(
        out_dir, paths["train"], paths["valid"], paths["records_json"], paths["records_csv"], paths["ranges"],
        paths["plot"], out_dir / MANIFEST, int(manifest["n_train"]), int(manifest["n_valid"]),
        int(manifest["rejected_attempts"]), reused, manifest.get("coverage"),
    )


def _count(items: list[str]) -> dict[str, int]:
    return {key: items.count(key) for key in sorted(set(items))}


def _frames_nm(atoms_list: list, molecule, path: Path) -> np.ndarray:
    if not atoms_list:
        raise SamplingError(f"{path} holds no frames")
    for n, atoms in enumerate(atoms_list):
        if atoms.get_chemical_symbols() != molecule.symbols:
            raise SamplingError(
                f"{path} frame {n} has atoms {atoms.get_chemical_formula()} in another order or composition than "
                f"molecule {molecule.name!r} ({molecule.formula}); give the frames of this molecule"
            )
    return np.array([atoms.positions for atoms in atoms_list], dtype=float) * NM_PER_ANGSTROM


def _check_atom_order(frames_nm: np.ndarray, typing, path: Path, name: str) -> None:
    """Same elements can still be permuted: every bond must be near its force-field length."""
    bonds = [(b.atom1, b.atom2) for b in typing.bonds]
    lengths = geometry.bond_lengths(frames_nm, bonds)
    r0 = np.array([b.r0 for b in typing.bonds])
    bad = np.argwhere(lengths > 1.5 * r0)
    if len(bad):
        frame, bond = bad[0]
        i, j = bonds[bond]
        raise SamplingError(
            f"{path} frame {frame}: bond {i}-{j} of {name!r} is {lengths[frame, bond] * ANGSTROM_PER_NM:.2f} A long "
            f"(force-field r0 {r0[bond] * ANGSTROM_PER_NM:.2f} A); the frames' atom order does not match the molecule"
        )


def _base_atoms(reference, positions_angstrom, molecule, keep_labels: bool):
    import ase

    atoms = ase.Atoms(symbols=molecule.symbols, positions=positions_angstrom)
    for key, value in reference.info.items():
        if keep_labels or not any(word in key.lower() for word in _LABEL_WORDS):
            atoms.info[key] = value
    for key, value in reference.arrays.items():
        if key in ("numbers", "positions"):
            continue
        if keep_labels or not any(word in key.lower() for word in _LABEL_WORDS):
            atoms.arrays[key] = np.array(value)
    atoms.info.update({"molecule": molecule.name, "smiles": molecule.smiles, "total_charge": int(molecule.charge),
                       "multiplicity": int(molecule.multiplicity)})
    return atoms


def _reference_atoms(reference, frame: int, molecule):
    atoms = _base_atoms(reference, reference.positions, molecule, keep_labels=True)
    atoms.info.update({"config_type": "reference", "reference_frame": int(frame)})
    return atoms


def _modified_atoms(reference, positions_nm: np.ndarray, record, molecule):
    atoms = _base_atoms(reference, positions_nm * ANGSTROM_PER_NM, molecule, keep_labels=False)
    mods = record.modifications
    rotation = [np.nan if m.rotation_degrees is None else m.rotation_degrees for m in mods]
    numbers = {
        "old_length_angstrom": [m.old_length_angstrom for m in mods],
        "new_length_angstrom": [m.new_length_angstrom for m in mods],
        "rotation_degrees": rotation,
    }
    atoms.info.update({
        "config_type": "bond_sampling", "reference_frame": int(record.reference_frame),
        "structure": int(record.structure), "rejected_attempts": int(record.rejected_attempts),
        "bond_atoms": ";".join(f"{m.atom1}-{m.atom2}" for m in mods),
        "bond_type": ";".join(m.bond_type for m in mods),
        "segment": ";".join(m.segment for m in mods),
    })
    for key, values in numbers.items():
        atoms.info[key] = float(values[0]) if len(values) == 1 else np.array(values, dtype=float)
    if record.bends:
        atoms.info["bent_angles"] = ";".join("-".join(map(str, b.atoms)) for b in record.bends)
        atoms.info["bent_angle_types"] = ";".join(b.angle_type for b in record.bends)
        atoms.info["new_angles_degrees"] = np.array([b.new_degrees for b in record.bends], dtype=float)
    return atoms


def _write_csv(path: Path, result: AugmentationResult) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
            writer.writeheader()
            for rec in result.records:
                for n, m in enumerate(rec.modifications):
                    writer.writerow({
                        "structure": rec.structure, "reference_frame": rec.reference_frame,
                        "rejected_attempts": rec.rejected_attempts, "modification": n,
                        "atom1": m.atom1, "atom2": m.atom2, "bond_type": m.bond_type, "segment": m.segment,
                        "old_length_nm": f"{m.old_length:.8f}", "new_length_nm": f"{m.new_length:.8f}",
                        "old_length_angstrom": f"{m.old_length_angstrom:.6f}",
                        "new_length_angstrom": f"{m.new_length_angstrom:.6f}",
                        "change_angstrom": f"{m.new_length_angstrom - m.old_length_angstrom:.6f}",
                        "rotation_degrees": "" if m.rotation_degrees is None else f"{m.rotation_degrees:.4f}",
                        "rotated_atoms": " ".join(map(str, m.rotated_atoms)),
                        "moved_atoms": " ".join(map(str, m.moved_atoms)),
                    })


def bond_lengths_by_type(positions_nm: np.ndarray, typing) -> dict[str, np.ndarray]:
    """Every bond length (Angstrom) of each type over all frames, for the distribution plot."""
    bonds = [(b.atom1, b.atom2) for b in typing.bonds]
    lengths = geometry.bond_lengths(np.asarray(positions_nm), bonds) * ANGSTROM_PER_NM
    return {t: lengths[:, [n for n, b in enumerate(typing.bonds) if b.bond_type == t]].ravel()
            for t in typing.bond_types()}


def _plot(path: Path, result: AugmentationResult, frames_nm: np.ndarray, molecule) -> None:
    from .plots import plot_bond_length_distributions

    after = np.concatenate([result.positions_nm, frames_nm[list(result.validation_frames)]])
    segments = {name: {"compression": r.compression_angstrom, "stretch": r.stretch_angstrom}
                for name, r in result.ranges.items()}
    plot_bond_length_distributions(
        bond_lengths_by_type(frames_nm, result.typing), bond_lengths_by_type(after, result.typing), path,
        segments, title=f"{molecule.name}: {len(frames_nm)} reference frames -> {len(result.records)} modified "
                        f"+ {len(result.validation_frames)} validation (seed {result.seed})",
    )


def _plot_angles(path: Path, result: AugmentationResult, frames_nm: np.ndarray, molecule) -> Path:
    from .angle_sampling import angle_type_name
    from .plots import plot_bond_length_distributions

    angles = geometry.bond_angles(np.array([(b.atom1, b.atom2) for b in result.typing.bonds]))
    names = [angle_type_name(result.typing.atom_types, *atoms) for atoms in angles]
    after = np.concatenate([result.positions_nm, frames_nm[list(result.validation_frames)]])

    def by_type(positions):
        values = geometry.angle_values_deg(positions, angles)
        return {t: values[:, [n for n, name in enumerate(names) if name == t]].ravel() for t in set(names)}

    segments = {name: {"closing": r.closing, "opening": r.opening} for name, r in result.angle_ranges.items()}
    return plot_bond_length_distributions(
        by_type(frames_nm), by_type(after), path, segments, xlabel="angle / degrees",
        title=f"{molecule.name}: bond angles, {len(frames_nm)} reference frames -> {len(result.records)} modified "
              f"(up to {result.angle_parameters.angles_per_structure} bends each) + {len(result.validation_frames)} "
              f"validation",
    )


__all__ = ["AugmentationOutputs", "run_augmentation", "bond_lengths_by_type"]
