"""Liquid boxes: pure liquids and mixtures packed with packmol, parameterised with GAFF.

One residue per molecule, molecules of one component contiguous, components in the order
given. Compositions by molecule counts or by mass fractions (e.g. EC:EMC 3:7 by mass);
size by target density or by box edge.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BoxError, tail
from ..io import atomic_path
from ..units import AMU_PER_NM3_IN_G_PER_CM3, density_g_cm3
from . import library
from .gaff import GAFFParameters, parameterize
from .molecule import Molecule
from .residues import is_openmm_residue_name

MAX_PACKING_DENSITY_G_CM3 = 3.0  # no organic liquid comes close; above this packmol cannot succeed


@dataclass
class LiquidBox:
    """A packed periodic box with GAFF parameters for every molecule."""

    molecules: tuple[Molecule, ...]
    counts: tuple[int, ...]
    parameters: tuple[GAFFParameters, ...]
    positions_nm: np.ndarray
    box_edge_nm: float
    structure: object  # parmed Structure of the whole box

    @property
    def n_atoms(self) -> int:
        return len(self.positions_nm)

    @property
    def n_molecules(self) -> int:
        return int(sum(self.counts))

    @property
    def topology(self):
        """OpenMM Topology: one residue per molecule, box vectors set."""
        return self.structure.topology

    @property
    def box_vectors_nm(self) -> np.ndarray:
        return np.eye(3) * self.box_edge_nm

    @property
    def total_mass_amu(self) -> float:
        return float(sum(m.mass_amu * n for m, n in zip(self.molecules, self.counts)))

    @property
    def density_g_cm3(self) -> float:
        return density_g_cm3(self.total_mass_amu, self.box_edge_nm**3)

    @property
    def mass_fractions(self) -> tuple[float, ...]:
        masses = [m.mass_amu * n for m, n in zip(self.molecules, self.counts)]
        return tuple(float(x / sum(masses)) for x in masses)

    def molecule_index(self) -> np.ndarray:
        """For every atom, the index of the molecule (residue) it belongs to."""
        return np.array([atom.residue.idx for atom in self.structure.atoms], dtype=int)

    def create_system(self, nonbonded_cutoff_nm: float = 1.0, dispersion_correction: bool = True,
                      ewald_error_tolerance: float = 5e-4):
        """Periodic GAFF System: PME electrostatics, LJ cutoff with long-range correction, flexible bonds."""
        from openmm import app, unit

        if 2 * nonbonded_cutoff_nm > self.box_edge_nm:
            raise BoxError(
                f"box edge {self.box_edge_nm:.3f} nm is smaller than twice the cutoff "
                f"({nonbonded_cutoff_nm} nm); use more molecules or a shorter cutoff"
            )
        system = self.structure.createSystem(
            nonbondedMethod=app.PME,
            nonbondedCutoff=nonbonded_cutoff_nm * unit.nanometer,
            constraints=None,
            ewaldErrorTolerance=ewald_error_tolerance,
        )
        for force in system.getForces():
            if force.__class__.__name__ == "NonbondedForce":
                force.setUseDispersionCorrection(dispersion_correction)
        system.setDefaultPeriodicBoxVectors(*(np.eye(3) * self.box_edge_nm))
        return system

    def write_pdb(self, path: str | Path) -> Path:
        """The box as a PDB file (bonds as CONECT records), refused unless OpenMM reads the same bonds back."""
        from openmm import app

        with atomic_path(path) as partial:
            with open(partial, "w") as handle:
                app.PDBFile.writeFile(self.topology, self.positions_nm * 10.0 * _angstrom(), handle)
            # What reads this file later (the CSO term, volume-scan) trusts its bonds; OpenMM replaces
            # those of residues it has templates for, so check the round trip here.
            again = app.PDBFile(str(partial)).topology
            if _bond_pairs(again) != _bond_pairs(self.topology):
                names = sorted({r.name for r in self.topology.residues()})
                raise BoxError(
                    f"{path}: OpenMM reads {again.getNumBonds()} bonds back from the PDB file of this box, not its "
                    f"{self.topology.getNumBonds()}; rename its residues {names} (residue_names() picks names "
                    "OpenMM's PDB reader has no templates for)"
                )
        return Path(path)


def _bond_pairs(topology) -> set[tuple[int, int]]:
    return {(min(a.index, b.index), max(a.index, b.index)) for a, b in topology.bonds()}


def _angstrom():
    from openmm import unit

    return unit.angstrom


def counts_from_mass_fractions(molecules: Sequence[Molecule], mass_fractions: Sequence[float],
                               n_molecules: int) -> tuple[int, ...]:
    """Integer molecule counts summing to ``n_molecules`` whose mass ratio is closest to the target."""
    fractions = np.asarray(mass_fractions, dtype=float)
    if len(fractions) != len(molecules) or np.any(fractions < 0) or fractions.sum() <= 0:
        raise BoxError(f"mass fractions {list(mass_fractions)} do not match {len(molecules)} components")
    fractions = fractions / fractions.sum()
    masses = np.array([m.mass_amu for m in molecules])
    best, best_err = None, np.inf
    # Enumerate the count of every component but the last: small boxes make this cheap, and the
    # nearest-rounding shortcut can miss the best composition by one molecule.
    ideal = fractions / masses / (fractions / masses).sum() * n_molecules
    ranges = [range(max(0, int(x) - 2), int(x) + 3) for x in ideal[:-1]]
    for combo in np.array(np.meshgrid(*ranges)).T.reshape(-1, len(ranges)) if ranges else [np.zeros(0, int)]:
        last = n_molecules - int(combo.sum())
        if last < 0:
            continue
        counts = np.append(combo, last)
        if np.any(counts[fractions > 0] == 0):
            continue
        got = counts * masses / (counts * masses).sum()
        err = np.abs(got - fractions).max()
        if err < best_err:
            best, best_err = counts, err
    if best is None:
        raise BoxError(f"cannot represent mass fractions {list(mass_fractions)} with {n_molecules} molecules")
    return tuple(int(c) for c in best)


def box_edge_for_density(molecules: Sequence[Molecule], counts: Sequence[int], density_g_cm3: float) -> float:
    """Edge (nm) of the cubic box that holds ``counts`` of ``molecules`` at ``density_g_cm3``."""
    if not density_g_cm3 > 0:
        raise BoxError(f"density must be positive, got {density_g_cm3} g/cm3")
    total_mass = sum(m.mass_amu * n for m, n in zip(molecules, counts))
    return (total_mass * AMU_PER_NM3_IN_G_PER_CM3 / density_g_cm3) ** (1.0 / 3.0)


def build_box(
    molecules: Sequence[Molecule],
    counts: Sequence[int] | None = None,
    mass_fractions: Sequence[float] | None = None,
    n_molecules: int | None = None,
    density_g_cm3: float | None = None,
    box_edge_nm: float | None = None,
    seed: int = 1,
    tolerance_angstrom: float = 2.0,
    force_field: str = "gaff",
    charge_method: str = "bcc",
    cache_dir: str | Path | None = None,
    packmol_loops: int | None = None,
) -> LiquidBox:
    """Pack a cubic liquid box.

    Give either ``counts`` or (``mass_fractions`` and ``n_molecules``), and either
    ``density_g_cm3`` or ``box_edge_nm``. ``packmol_loops`` caps packmol's optimisation loops
    (its ``nloop``; default packmol's own), which bounds how long a hopeless packing takes to fail.
    """
    molecules = tuple(molecules)
    if counts is None:
        if mass_fractions is None or n_molecules is None:
            raise BoxError("give molecule counts, or mass fractions together with the total number of molecules")
        counts = counts_from_mass_fractions(molecules, mass_fractions, n_molecules)
    counts = tuple(int(c) for c in counts)
    if len(counts) != len(molecules) or any(c < 0 for c in counts) or sum(counts) == 0:
        raise BoxError(f"molecule counts {list(counts)} do not fit {len(molecules)} components")
    total_mass = sum(m.mass_amu * n for m, n in zip(molecules, counts))
    if (density_g_cm3 is None) == (box_edge_nm is None):
        raise BoxError("give exactly one of a target density (g/cm3) or a box edge (nm)")
    if box_edge_nm is None:
        box_edge_nm = box_edge_for_density(molecules, counts, density_g_cm3)
    implied = total_mass * AMU_PER_NM3_IN_G_PER_CM3 / box_edge_nm**3
    if implied > MAX_PACKING_DENSITY_G_CM3:
        raise BoxError(
            f"{sum(counts)} molecules in a {box_edge_nm:.3f} nm box means {implied:.2f} g/cm3; "
            f"impossible to pack (limit {MAX_PACKING_DENSITY_G_CM3} g/cm3): use a larger box or fewer molecules"
        )
    for molecule in molecules:
        extent = np.ptp(molecule.positions_nm, axis=0).max()
        if extent + 0.2 > box_edge_nm:
            raise BoxError(f"{molecule.name} ({extent:.2f} nm long) does not fit in a {box_edge_nm:.3f} nm box")

    parameters = tuple(parameterize(m, force_field, charge_method, cache_dir) for m in molecules)
    positions = _packmol(molecules, counts, box_edge_nm, seed, tolerance_angstrom, packmol_loops)
    structure = _combine(molecules, counts, parameters, positions, box_edge_nm)
    return LiquidBox(molecules, counts, parameters, positions, float(box_edge_nm), structure)


def residue_names(molecules: Sequence[Molecule]) -> list[str]:
    """Short unique residue names that OpenMM's PDB writer and reader keep as they are.

    A library molecule takes its short alias (dimethyl_carbonate -> DMC), any other its initials or
    first three letters (paracetamol -> PAR). A name that is taken, or that OpenMM knows (a standard
    residue, a bond template or an alias of one: DC, ALA, HOH, WAT, ACE, UNK, ...), ends in a digit
    instead: such a residue would come back from a PDB file with OpenMM's bonds, not its own.
    """
    names: list[str] = []
    for molecule in molecules:
        base = _short_name(molecule)
        name, k = base, 1
        while name in names or is_openmm_residue_name(name):
            suffix = str(k)
            name, k = base[:3 - len(suffix)] + suffix, k + 1
        names.append(name)
    return names


def _short_name(molecule: Molecule) -> str:
    key = library.canonical_name(molecule.name)
    aliases = [alias for alias, target in library.ALIASES.items()
               if target == key and len(alias) <= 3 and alias.isalnum()]
    if aliases:
        return aliases[0].upper()
    words = [w for w in molecule.name.replace("-", "_").split("_") if w]
    base = "".join(w[0] for w in words) if len(words) > 1 else molecule.name[:3]
    base = "".join(c for c in base.upper() if c.isalnum())[:3]
    return base or "MOL"


def _packmol(molecules, counts, edge_nm: float, seed: int, tolerance: float, loops: int | None) -> np.ndarray:
    edge = edge_nm * 10.0
    # Keep atoms half a tolerance from the faces so periodic images are not packed too close.
    lo, hi = tolerance / 2.0, edge - tolerance / 2.0
    work = Path(tempfile.mkdtemp(prefix="physembed_packmol_"))
    try:
        lines = [f"tolerance {tolerance}", "filetype xyz", "output box.xyz", f"seed {seed}", "movebadrandom"]
        if loops:
            lines.append(f"nloop {int(loops)}")
        for index, (molecule, count) in enumerate(zip(molecules, counts)):
            if count == 0:
                continue
            xyz = molecule.positions_nm * 10.0
            body = "\n".join(f"{s} {x:.6f} {y:.6f} {z:.6f}" for s, (x, y, z) in zip(molecule.symbols, xyz))
            (work / f"c{index}.xyz").write_text(f"{molecule.n_atoms}\n{molecule.name}\n{body}\n")
            lines += [f"structure c{index}.xyz", f"  number {count}",
                      f"  inside box {lo:.4f} {lo:.4f} {lo:.4f} {hi:.4f} {hi:.4f} {hi:.4f}", "end structure"]
        (work / "packmol.inp").write_text("\n".join(lines) + "\n")
        exe = Path(sys.prefix) / "bin" / "packmol"
        exe = str(exe) if exe.is_file() else (shutil.which("packmol") or "packmol")
        try:
            with open(work / "packmol.inp") as stdin:
                proc = subprocess.run([exe], stdin=stdin, cwd=work, capture_output=True, text=True, timeout=3600)
        except FileNotFoundError as exc:
            raise BoxError("packmol not found; pip install packmol") from exc
        out = proc.stdout + proc.stderr
        if proc.returncode != 0 or "Success!" not in out or not (work / "box.xyz").is_file():
            raise BoxError(
                f"packmol could not pack {list(counts)} x {[m.name for m in molecules]} in a "
                f"{edge_nm:.3f} nm box (log tail:\n{tail(out, 8)})"
            )
        rows = (work / "box.xyz").read_text().splitlines()[2:]
        return np.array([[float(v) for v in row.split()[1:4]] for row in rows if row.strip()]) / 10.0
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _combine(molecules, counts, parameters, positions_nm, edge_nm):
    combined, names = None, []
    for count, params, resname in zip(counts, parameters, residue_names(molecules)):
        if count == 0:
            continue
        block = params.parmed_structure() * count
        combined = block if combined is None else combined + block
        names += [resname] * count
    # Names are set on the combined structure: parmed's replication does not keep them reliably.
    for residue, name in zip(combined.residues, names):
        residue.name = name
    combined.coordinates = positions_nm * 10.0
    combined.box = [edge_nm * 10.0] * 3 + [90.0, 90.0, 90.0]
    return combined
