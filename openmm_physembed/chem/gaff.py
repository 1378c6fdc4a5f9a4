"""GAFF parameters through AmberTools: antechamber typing + charges, parmchk2, tleap.

The result, :class:`GAFFParameters`, holds the per-atom GAFF types, the charges, per-bond
type pair / force constant / equilibrium length, and the prmtop/inpcrd files that OpenMM loads.
Results are cached on disk by (atoms, bonds, charge, force field, charge method): AM1-BCC
takes seconds to minutes, and every later stage needs the same parameters again.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import GAFFError
from ..units import gaff_bond_k_to_openmm, openmm_bond_k_to_gaff
from .amber_tools import amber_parm_dir, run_amber
from .molecule import Molecule

FORCE_FIELDS = {"gaff": ("gaff", "gaff.dat", "leaprc.gaff"), "gaff2": ("gaff2", "gaff2.dat", "leaprc.gaff2")}
# Bumped whenever the pipeline's output changes, so stale cache entries are not reused.
PIPELINE_VERSION = 2
CHARGE_METHODS = {"bcc": "bcc", "am1bcc": "bcc", "am1-bcc": "bcc", "gasteiger": "gas", "gas": "gas"}


@dataclass(frozen=True)
class BondParameter:
    """One bond of a molecule with its force-field parameters, in OpenMM units.

    ``k`` follows OpenMM's HarmonicBondForce convention E = k/2 (r - r0)^2 (kJ/mol/nm^2);
    ``k_amber`` is the value as written in gaff.dat (E = k (r - r0)^2, kcal/mol/A^2).
    """

    atom1: int
    atom2: int
    type1: str
    type2: str
    k: float
    r0: float

    @property
    def bond_type(self) -> str:
        return bond_type_name(self.type1, self.type2)

    @property
    def k_amber(self) -> float:
        return openmm_bond_k_to_gaff(self.k)


def bond_type_name(type1: str, type2: str) -> str:
    """The sorted type pair, e.g. ``c3-hc``: the key of a bond class."""
    return "-".join(sorted((type1.strip(), type2.strip())))


@dataclass(frozen=True)
class GAFFParameters:
    """GAFF parameterisation of one molecule (files live in ``directory``)."""

    molecule_name: str
    force_field: str
    charge_method: str
    directory: Path
    atom_types: tuple[str, ...]
    charges: tuple[float, ...]
    bonds: tuple[BondParameter, ...]

    @property
    def prmtop_path(self) -> Path:
        return self.directory / "molecule.prmtop"

    @property
    def inpcrd_path(self) -> Path:
        return self.directory / "molecule.inpcrd"

    @property
    def mol2_path(self) -> Path:
        return self.directory / "molecule.mol2"

    @property
    def frcmod_path(self) -> Path:
        return self.directory / "molecule.frcmod"

    def prmtop(self):
        from openmm import app

        return app.AmberPrmtopFile(str(self.prmtop_path))

    @property
    def topology(self):
        return self.prmtop().topology

    def create_system(self, constraints=None, remove_cm_motion: bool = True):
        """Gas-phase OpenMM System: no cutoff, flexible bonds (bond lengths are what we sample)."""
        from openmm import app

        return self.prmtop().createSystem(
            nonbondedMethod=app.NoCutoff, constraints=constraints, removeCMMotion=remove_cm_motion
        )

    def parmed_structure(self):
        import parmed

        return parmed.load_file(str(self.prmtop_path), xyz=str(self.inpcrd_path))


def default_cache_dir() -> Path:
    return Path(os.environ.get("PHYSEMBED_CACHE", Path.home() / ".cache" / "openmm_physembed"))


def parameterize(
    molecule: Molecule,
    force_field: str = "gaff",
    charge_method: str = "bcc",
    cache_dir: str | Path | None = None,
    timeout_s: float = 3600.0,
) -> GAFFParameters:
    """GAFF types, charges and parameters of ``molecule`` (cached on disk).

    Parameters
    ----------
    force_field
        ``gaff`` (GAFF 1.81, the types the published method uses) or ``gaff2``.
    charge_method
        ``bcc`` (AM1-BCC through sqm, seconds to minutes) or ``gasteiger`` (instant).
    """
    if force_field not in FORCE_FIELDS:
        raise GAFFError(f"unknown force field {force_field!r}; choose gaff or gaff2")
    method = CHARGE_METHODS.get(charge_method.lower())
    if method is None:
        raise GAFFError(f"unknown charge method {charge_method!r}; choose bcc or gasteiger")
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = f"{molecule.name}-{molecule.identity_hash()}-{force_field}-{method}-v{PIPELINE_VERSION}"
    target = cache_root / "gaff" / key
    if not (target / "parameters.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=target.parent))
        try:
            _run_antechamber_pipeline(molecule, force_field, method, scratch, timeout_s)
            _write_summary(molecule, force_field, method, scratch)
            try:
                scratch.rename(target)
            except OSError:
                # Another process finished the same molecule first; its result is identical.
                if not (target / "parameters.json").is_file():
                    raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return _load_summary(target)


def _run_antechamber_pipeline(molecule: Molecule, ff: str, method: str, work: Path, timeout_s: float) -> None:
    atom_type_flag, _, leaprc = FORCE_FIELDS[ff]
    what = f"{molecule.name!r} ({molecule.smiles})"
    molecule.write_sdf(work / "input.sdf")
    run_amber(
        "antechamber",
        ["-i", "input.sdf", "-fi", "mdl", "-o", "molecule.mol2", "-fo", "mol2", "-c", method,
         "-nc", str(molecule.charge), "-m", str(molecule.multiplicity), "-at", atom_type_flag,
         "-rn", "MOL", "-pf", "y", "-dr", "no"],
        work, what, log_files=("sqm.out",), timeout_s=timeout_s,
    )
    if not (work / "molecule.mol2").is_file():
        raise GAFFError(f"antechamber wrote no mol2 for {what}")
    _neutralize_rounding(work / "molecule.mol2", molecule.charge)
    run_amber(
        "parmchk2", ["-i", "molecule.mol2", "-f", "mol2", "-o", "molecule.frcmod", "-s", ff],
        work, what, timeout_s=timeout_s,
    )
    (work / "leap.in").write_text(
        f"source {leaprc}\nloadamberparams molecule.frcmod\nMOL = loadmol2 molecule.mol2\n"
        "saveamberparm MOL molecule.prmtop molecule.inpcrd\nquit\n"
    )
    output = run_amber("tleap", ["-f", "leap.in"], work, what, timeout_s=timeout_s)
    if not (work / "molecule.prmtop").is_file() or "Errors = 0" not in output:
        raise GAFFError(f"tleap failed for {what} (log tail:\n{output[-1500:]})")
    for scratch_name in ("sqm.in", "sqm.pdb", "ATOMTYPE.INF", "leap.log"):
        (work / scratch_name).unlink(missing_ok=True)
    for extra in work.glob("ANTECHAMBER*"):
        extra.unlink()


def _neutralize_rounding(mol2: Path, net_charge: int) -> None:
    """Spread antechamber's rounding residual (up to ~1e-3 e) evenly so charges sum to the net charge.

    A non-integer total charge would otherwise become a neutralising background under PME.
    """
    lines = mol2.read_text().splitlines()
    start = lines.index("@<TRIPOS>ATOM") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("@<TRIPOS>"))
    charges = np.array([float(line.split()[8]) for line in lines[start:end]])
    shifted = charges - (charges.sum() - net_charge) / len(charges)
    for index, charge in zip(range(start, end), shifted):
        fields = lines[index].rsplit(None, 1)
        lines[index] = f"{fields[0]} {charge:10.6f}"
    mol2.write_text("\n".join(lines) + "\n")


def _write_summary(molecule: Molecule, ff: str, method: str, work: Path) -> None:
    from openmm import app, unit

    prmtop = app.AmberPrmtopFile(str(work / "molecule.prmtop"))
    raw = prmtop._prmtop._raw_data  # the parsed %FLAG sections; OpenMM exposes no getter for types
    atom_types = [t.strip() for t in raw["AMBER_ATOM_TYPE"]]
    elements = [a.element.symbol for a in prmtop.topology.atoms()]
    if elements != molecule.symbols:
        raise GAFFError(
            f"antechamber reordered the atoms of {molecule.name!r}; cannot map GAFF types back"
        )
    system = prmtop.createSystem(constraints=None)
    bonds, charges = [], []
    for force in system.getForces():
        if force.__class__.__name__ == "HarmonicBondForce":
            for index in range(force.getNumBonds()):
                i, j, r0, k = force.getBondParameters(index)
                i, j = min(i, j), max(i, j)
                k = k.value_in_unit(unit.kilojoule_per_mole / unit.nanometer**2)
                bonds.append([i, j, atom_types[i], atom_types[j], k, r0.value_in_unit(unit.nanometer)])
        elif force.__class__.__name__ == "NonbondedForce":
            charges = [force.getParticleParameters(i)[0].value_in_unit(unit.elementary_charge)
                       for i in range(force.getNumParticles())]
    bonds.sort()
    if sorted((b[0], b[1]) for b in bonds) != molecule.bonds:
        raise GAFFError(f"GAFF bonds of {molecule.name!r} differ from the molecule's bonds")
    summary = {
        "molecule_name": molecule.name,
        "smiles": molecule.smiles,
        "force_field": ff,
        "charge_method": method,
        "atom_types": atom_types,
        "charges": charges,
        "bonds": bonds,
        "units": {"k": "kJ/mol/nm^2 (E = k/2 (r-r0)^2)", "r0": "nm", "charges": "e"},
    }
    (work / "parameters.json").write_text(json.dumps(summary, indent=1))


def _load_summary(directory: Path) -> GAFFParameters:
    data = json.loads((directory / "parameters.json").read_text())
    return GAFFParameters(
        molecule_name=data["molecule_name"],
        force_field=data["force_field"],
        charge_method=data["charge_method"],
        directory=directory,
        atom_types=tuple(data["atom_types"]),
        charges=tuple(data["charges"]),
        bonds=tuple(BondParameter(*row) for row in data["bonds"]),
    )


@lru_cache(maxsize=4)
def read_bond_table(force_field: str = "gaff") -> dict[str, tuple[float, float]]:
    """The BOND section of gaff.dat / gaff2.dat: ``{'c3-hc': (k, r0)}`` in OpenMM units.

    k is converted to OpenMM's convention (kJ/mol/nm^2, E = k/2 (r-r0)^2), r0 to nm.
    """
    if force_field not in FORCE_FIELDS:
        raise GAFFError(f"unknown force field {force_field!r}")
    lines = (amber_parm_dir() / FORCE_FIELDS[force_field][1]).read_text().splitlines()
    # Layout of an AMBER parm .dat: title, MASS block, blank, hydrophilic types, BOND block, blank.
    start = lines.index("", 1) + 2
    table: dict[str, tuple[float, float]] = {}
    for line in lines[start:]:
        if not line.strip():
            break
        type1, type2 = line[0:2].strip(), line[3:5].strip()
        k_amber, r0_angstrom = (float(x) for x in line[5:].split()[:2])
        table[bond_type_name(type1, type2)] = (gaff_bond_k_to_openmm(k_amber), r0_angstrom / 10.0)
    return table


__all__ = [
    "BondParameter",
    "GAFFParameters",
    "bond_type_name",
    "parameterize",
    "read_bond_table",
]
