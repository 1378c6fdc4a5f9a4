"""Several liquids at several temperatures in one labelled dataset, for one model trained on all.

Each part (one liquid at one temperature) is a :func:`~.liquid_dataset.make_liquid_dataset` of its
own in ``OUT/parts/<part>/``, resumable as that is; the combined files only concatenate them.

Layout of ``OUT/``::

    train.extxyz, valid.extxyz, test_scan.extxyz   every part's labelled structures, in part order, with
                                                   info 'system', 'part' and 'temperature_K' added
    train.e0s.json (and one beside each file)      isolated-atom energies, one set for every part
    dataset.json                                   parts (composition, temperature, sizes, timings,
                                                   files), totals
    density_coverage.png                           GAFF NPT density of each part against temperature
    parts/<part>/                                  one liquid dataset each (module .liquid_dataset)

The combined ``test_scan.extxyz`` mixes boxes of different topologies; the Fig. 5 check
(``physembed volume-scan --dataset``) reads one part's directory, whose ``topology.pdb`` belongs to
its ``test_scan.extxyz``. ``dataset.json`` names both for every part.

Rerunning the same call recomputes nothing: every part resumes (NPT from its checkpoint, labels
from its cache) and the combined files are rewritten from the parts' files.
"""

from __future__ import annotations

import math
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import LabellingError
from ..io import read_extxyz, read_json, write_extxyz, write_json
from ..sampling.liquid_frames import LiquidFramesProtocol, gaff_cutoff_nm
from .liquid_dataset import LiquidDataset, SubsetPaths, make_liquid_dataset

SUBSETS = ("train", "valid", "test_scan")

# The Table 1 systems, each at the table's temperatures ('SYSTEM@K', as `physembed
# transfer` names them); every one is a row of data/experimental_liquids.csv.
TABLE1_DATASET_PARTS = ("EC@313.15", "EMC@298.15", "EC:EMC 5:5@298.15",
                        "EC:EMC 3:7@293.15", "EC:EMC 3:7@298.15", "EC:EMC 3:7@313.15")

# E0s are free-atom energies at the same settings, so parts agree to the last printed digit; a
# larger difference means the parts were labelled with different settings or code.
_E0_TOLERANCE_EV = 1e-6


@dataclass(frozen=True)
class LiquidDatasetPart:
    """One liquid at one temperature.

    ``spec`` is a :class:`~openmm_physembed.properties.liquid.LiquidSpec` (its components, counts
    or mass fractions with ``n_molecules``, packing density and seed). ``experimental_density_g_cm3``
    is only drawn in the coverage plot.
    """

    system: str
    temperature_K: float
    spec: Any
    experimental_density_g_cm3: float | None = None

    @property
    def name(self) -> str:
        """File-name-safe ``<system>_<T>K``, e.g. ``EC-EMC_3-7_298.15K``."""
        safe = self.system.strip().replace(" ", "_").replace(":", "-").replace("/", "-")
        return f"{safe}_{self.temperature_K:g}K"


@dataclass(frozen=True)
class CombinedLiquidDataset(SubsetPaths):
    out_dir: Path
    paths: dict  # subset -> combined labelled extxyz
    sizes: dict  # subset -> labelled structures, all parts
    parts: dict  # part name -> its LiquidDataset
    e0s_ev: dict  # atomic number -> eV, shared by every part
    n_computed: int  # single points run in this call, all parts
    label_seconds: float
    manifest_path: Path
    plot_path: Path


def check_dataset_parts(parts: Sequence[LiquidDatasetPart],
                        protocol: LiquidFramesProtocol = LiquidFramesProtocol()) -> dict[str, dict]:
    """Refuse parts that cannot run, before anything runs or is written.

    Returns, by part name, the counts and box edge each part will be packed with.
    """
    from ..chem.box import box_edge_for_density, counts_from_mass_fractions
    from ..chem.molecule import Molecule

    if not parts:
        raise LabellingError("no dataset parts given")
    seen, boxes = set(), {}
    for part in parts:
        what = f"dataset part {part.system!r} at {part.temperature_K} K"
        if not (isinstance(part.temperature_K, (int, float)) and math.isfinite(part.temperature_K)
                and part.temperature_K > 0):
            raise LabellingError(f"{what}: the temperature must be a positive number of K")
        if part.name in seen:
            raise LabellingError(f"{what} is given twice (part {part.name})")
        seen.add(part.name)
        spec = part.spec
        molecules = [Molecule.from_any(c) for c in spec.components]
        if spec.counts is not None:
            counts = tuple(spec.counts)
        elif spec.mass_fractions is not None and spec.n_molecules:
            counts = counts_from_mass_fractions(molecules, spec.mass_fractions, spec.n_molecules)
        else:
            raise LabellingError(f"{what}: give molecule counts, or mass fractions with a number of molecules")
        edge = box_edge_for_density(molecules, counts, spec.packing_density_g_cm3)
        try:
            cutoff = gaff_cutoff_nm(edge, protocol)
        except ValueError as exc:
            raise type(exc)(f"{what} ({sum(counts)} molecules): {exc}") from None
        boxes[part.name] = {"counts": counts, "box_edge_nm": edge, "gaff_cutoff_nm": cutoff}
    return boxes


def make_combined_liquid_dataset(parts: Sequence[LiquidDatasetPart], out_dir: str | Path,
                                 protocol: LiquidFramesProtocol = LiquidFramesProtocol(),
                                 executor: Executor | None = None, progress: bool = True,
                                 charge_method: str = "bcc", cache_dir: str | Path | None = None,
                                 electronic_temperature_K: float = 300.0) -> CombinedLiquidDataset:
    """One labelled dataset of every part; see the module docstring for what is written where.

    Every part runs ``protocol`` at its own temperature (``protocol.dynamics.temperature_K`` is
    replaced), so parts differ only in liquid and temperature. Every part is checked and packed
    before the first NPT starts: a bad part fails the call in seconds, not hours in.
    """
    parts = list(parts)
    check_dataset_parts(parts, protocol)
    boxes = [part.spec.pack(charge_method, cache_dir) for part in parts]

    out_dir = Path(out_dir)
    results: dict[str, LiquidDataset] = {}
    for part, box in zip(parts, boxes):
        part_protocol = replace(protocol, dynamics=replace(protocol.dynamics, temperature_K=part.temperature_K))
        results[part.name] = make_liquid_dataset(box, out_dir / "parts" / part.name, part_protocol,
                                                 executor=executor, progress=progress,
                                                 electronic_temperature_K=electronic_temperature_K)

    e0s_record = merge_e0s({name: read_json(Path(f"{r.train_path.with_suffix('')}.e0s.json"))
                            for name, r in results.items()})
    paths, sizes, structures = {}, {}, {name: {} for name in results}
    for subset in SUBSETS:
        combined = []
        for part in parts:
            atoms_list = read_extxyz(results[part.name].paths[subset])
            for atoms in atoms_list:
                atoms.info.update({"system": part.system, "part": part.name,
                                   "temperature_K": float(part.temperature_K)})
            structures[part.name][subset] = atoms_list
            combined += atoms_list
        paths[subset] = write_extxyz(out_dir / f"{subset}.extxyz", combined)
        write_json(out_dir / f"{subset}.e0s.json", e0s_record)
        sizes[subset] = len(combined)

    manifest_path = out_dir / "dataset.json"
    summaries = [_part_summary(part, results[part.name], structures[part.name], out_dir) for part in parts]
    plot_path = _plot_density_coverage(summaries, out_dir / "density_coverage.png")
    write_json(manifest_path, {
        "parts": summaries, "sizes": sizes, "files": {k: p.name for k, p in paths.items()},
        "e0s": {"file": "train.e0s.json", "e0s_ev": e0s_record["e0s_ev"],
                "note": "identical in every part (checked); the labels' settings are in each part's files"},
        "protocol": _protocol_record(protocol),
        "labels": "GFN2-xTB (tblite), periodic, REF_energy eV, REF_forces eV/A, REF_stress eV/A^3",
        "info_keys": {"system": "the experimental table's name of the liquid", "part": "parts[].name",
                      "temperature_K": "the part's GAFF NPT temperature",
                      "config_type": "gaff_npt or rigid_volume_scan, as in every liquid dataset"},
        "volume_scan": "the Fig. 5 check needs one topology per scan set: run `physembed volume-scan "
                       "--dataset OUT/parts/<part>` (parts[].directory) for each part",
        "npt_seconds": sum(s["npt_seconds"] or 0.0 for s in summaries),
        "label_seconds": sum(s["label_seconds"] or 0.0 for s in summaries),
    })
    n_computed = sum(r.n_computed for r in results.values())
    label_seconds = sum(r.label_seconds for r in results.values())
    return CombinedLiquidDataset(out_dir, paths, sizes, results, {int(z): e for z, e in e0s_record["e0s_ev"].items()},
                                 n_computed, label_seconds, manifest_path, plot_path)


def merge_e0s(records: dict[str, dict]) -> dict:
    """One E0s record (the ``NAME.e0s.json`` format) from each part's; refuses parts that disagree.

    ``records`` maps part names to what their ``train.e0s.json`` holds. Elements present in some
    parts only are kept; the method and settings must be the same everywhere.
    """
    if not records:
        raise LabellingError("no E0s to merge")
    (first_name, first), *others = records.items()
    e0s = {str(z): float(e) for z, e in first["e0s_ev"].items()}
    source = dict.fromkeys(e0s, first_name)
    for name, record in others:
        for key in ("method", "settings"):
            if record.get(key) != first.get(key):
                raise LabellingError(f"parts {first_name} and {name} were labelled with different {key} "
                                     f"({first.get(key)} vs {record.get(key)}); relabel one of them with the "
                                     "other's settings")
        for z, energy in record["e0s_ev"].items():
            z, energy = str(z), float(energy)
            if z in e0s and abs(e0s[z] - energy) > _E0_TOLERANCE_EV:
                raise LabellingError(f"E0 of Z={z} differs between parts {source[z]} ({e0s[z]:.8f} eV) and "
                                     f"{name} ({energy:.8f} eV); one model needs one set of isolated-atom "
                                     "energies: relabel the parts with the same code and settings")
            e0s.setdefault(z, energy)
            source.setdefault(z, name)
    ordered = {z: e0s[z] for z in sorted(e0s, key=int)}
    return {**{k: v for k, v in first.items() if k != "e0s_ev"}, "e0s_ev": ordered, "parts": list(records)}


def _protocol_record(protocol: LiquidFramesProtocol) -> dict:
    record = asdict(protocol)
    record["dynamics"]["temperature_K"] = "per part (parts[].temperature_K)"
    return record


def _part_summary(part: LiquidDatasetPart, result: LiquidDataset, structures: dict, out_dir: Path) -> dict:
    manifest = read_json(result.manifest_path)
    directory = result.out_dir.relative_to(out_dir)
    labelled = [a for subset in ("train", "test_scan") for a in structures[subset]]
    densities = [a.info["gaff_density_g_cm3"] / a.info["scale_factor"] ** 3 for a in labelled]
    return {
        "name": part.name, "system": part.system, "temperature_K": float(part.temperature_K),
        "directory": str(directory), "topology": str(directory / "topology.pdb"),
        "test_scan": str(directory / result.test_scan_path.name),
        "components": manifest["components"], "smiles": manifest["smiles"], "counts": manifest["counts"],
        "mass_fractions": manifest["mass_fractions"], "n_atoms": manifest["n_atoms"],
        "gaff_cutoff_nm": manifest["gaff_cutoff_nm"], "sizes": result.sizes,
        "npt_density_g_cm3": manifest["npt_density_g_cm3"],
        "labelled_density_range_g_cm3": [float(min(densities)), float(max(densities))],
        "experimental_density_g_cm3": part.experimental_density_g_cm3,
        "npt_seconds": manifest.get("npt_seconds"), "label_seconds": manifest.get("label_seconds"),
        "label_seconds_per_structure_wall": manifest.get("label_seconds_per_structure_wall"),
    }


def _plot_density_coverage(summaries: list[dict], path: Path) -> Path:
    from ..plotting import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    systems = list(dict.fromkeys(s["system"] for s in summaries))
    # Systems sharing a temperature would hide each other: spread them a little along T.
    offsets = np.linspace(-0.6, 0.6, len(systems)) if len(systems) > 1 else [0.0]
    for system, offset in zip(systems, offsets):
        rows = sorted((s for s in summaries if s["system"] == system), key=lambda s: s["temperature_K"])
        t = np.array([s["temperature_K"] for s in rows]) + offset
        mean = [s["npt_density_g_cm3"]["mean"] for s in rows]
        line = ax.errorbar(t, mean, yerr=[s["npt_density_g_cm3"]["std"] for s in rows], marker="o", capsize=3,
                           label=f"{system} (GAFF NPT)")
        color = line[0].get_color()
        for x, s in zip(t, rows):
            ax.vlines(x, *s["labelled_density_range_g_cm3"], color=color, alpha=0.3, lw=6)
            if s["experimental_density_g_cm3"] is not None:
                ax.plot(x, s["experimental_density_g_cm3"], marker="x", color=color, ms=8, ls="none")
    ax.plot([], [], marker="x", color="0.3", ls="none", label="experiment")
    ax.plot([], [], color="0.3", alpha=0.3, lw=6, label="labelled densities (frames + scans)")
    ax.set_xlabel("temperature (K)")
    ax.set_ylabel("density (g/cm$^3$)")
    ax.set_title("GAFF NPT density of each dataset part")
    ax.legend(fontsize=8)
    return save_figure(fig, path)
