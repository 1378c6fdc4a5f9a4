"""Training and test structures for a liquid MLFF: GAFF NPT frames of a small periodic box plus
rigid-volume scans.

A rigid-volume scan scales the box by a factor ``s`` and moves every molecule rigidly with its
centre of mass (``r -> r + (s - 1) R_com``): intramolecular geometry is untouched, so the energy
change is intermolecular alone. That is the paper's Fig. 5 test set, and, applied to a few
training frames, what gives a small dataset densities away from the GAFF equilibrium one.

Frames come from one NPT run; they are split into training, validation and test frames before
any scan, so a test scan never shares a configuration with the training data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import BoxError, SamplingError
from ..simulation.dynamics import Dynamics
from ..units import ANGSTROM_PER_NM

# Positions from an OpenMM State (enforcePeriodicBox off) keep molecules whole; a bond longer than
# this means a wrapped molecule, whose centre of mass would be wrong.
_MAX_BOND_NM = 0.3
# The LJ long-range correction assumes g(r) = 1 beyond the cutoff; a shorter cutoff cuts through the
# first solvation shell, and the NPT density would no longer be GAFF's.
_MIN_CUTOFF_NM = 0.45


@dataclass(frozen=True)
class LiquidFramesProtocol:
    """How many molecules, how long the GAFF NPT, how the frames are split and scanned."""

    dynamics: Dynamics = Dynamics(temperature_K=298.15, pressure_bar=1.0)
    npt_ps: float = 200.0
    equilibration_ps: float = 20.0
    n_train: int = 60
    n_validation: int = 10
    n_test: int = 3
    n_train_scanned: int = 4
    # Linear factors of the box edge: 0.96 -> 0.88 V, 1.06 -> 1.19 V (the GAFF density +-10-15 %).
    scan_factors: tuple[float, ...] = (0.96, 0.98, 1.0, 1.02, 1.04, 1.06)
    # A short cutoff is legal in a ~1.2 nm box; PME and the LJ long-range correction keep GAFF's
    # density, which is all the sampling needs.
    cutoff_fraction_of_edge: float = 0.45

    def __post_init__(self) -> None:
        if min(self.n_train, self.n_validation, self.n_test) < 1:
            raise SamplingError("n_train, n_validation and n_test must each be at least 1")
        if not 0 <= self.n_train_scanned <= self.n_train:
            raise SamplingError(f"n_train_scanned must lie in 0..n_train ({self.n_train})")
        if not self.scan_factors or min(self.scan_factors) <= 0.8 or max(self.scan_factors) >= 1.3:
            raise SamplingError(f"scan factors {self.scan_factors} must lie in (0.8, 1.3): they scale the box edge")
        if self.equilibration_ps >= self.npt_ps:
            raise SamplingError("equilibration_ps must be shorter than npt_ps")
        if self.frame_interval < 1:
            raise SamplingError(f"{self.npt_ps} ps is too short for {self.n_frames} frames")

    @property
    def n_steps(self) -> int:
        return int(round(self.npt_ps * 1000.0 / self.dynamics.timestep_fs))

    @property
    def first_step(self) -> int:
        """The last step of the equilibration: frames are kept after it."""
        return int(round(self.equilibration_ps * 1000.0 / self.dynamics.timestep_fs))

    @property
    def frame_interval(self) -> int:
        return (self.n_steps - self.first_step) // self.n_frames

    @property
    def n_frames(self) -> int:
        return self.n_train + self.n_validation + self.n_test


def gaff_cutoff_nm(box_edge_nm: float, protocol: LiquidFramesProtocol = LiquidFramesProtocol()) -> float:
    """The GAFF NPT cutoff (nm) a box of edge ``box_edge_nm`` gets; raises when the box is too small.

    >>> gaff_cutoff_nm(1.22)
    0.549
    """
    cutoff_nm = min(1.0, round(protocol.cutoff_fraction_of_edge * box_edge_nm, 3))
    if cutoff_nm < _MIN_CUTOFF_NM:
        raise BoxError(f"a {box_edge_nm:.2f} nm box allows a GAFF cutoff of only {cutoff_nm} nm; "
                       f"use more molecules (at least ~{_MIN_CUTOFF_NM / protocol.cutoff_fraction_of_edge:.1f} nm "
                       "edge)")
    return cutoff_nm


def rigid_volume_scan(positions_nm: np.ndarray, box_nm: np.ndarray, molecule_index: np.ndarray,
                      masses_amu: np.ndarray, factors: Sequence[float]) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(positions_nm, box_nm), ...]``: the box scaled by each factor, molecules moved rigidly.

    Every molecule must be whole in ``positions_nm`` (as OpenMM State positions are).

    >>> import numpy as np
    >>> pos = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [1.0, 1.0, 1.0]])
    >>> [(p, b)] = rigid_volume_scan(pos, np.eye(3) * 2.0, np.array([0, 0, 1]), np.ones(3), [1.1])
    >>> np.round(p, 3).tolist(), float(b[0, 0])
    ([[0.005, 0.0, 0.0], [0.105, 0.0, 0.0], [1.1, 1.1, 1.1]], 2.2)
    """
    positions = np.asarray(positions_nm, dtype=float)
    molecule_index = np.asarray(molecule_index, dtype=int)
    masses = np.asarray(masses_amu, dtype=float)
    n_molecules = int(molecule_index.max()) + 1
    total = np.bincount(molecule_index, weights=masses, minlength=n_molecules)
    centres = np.stack([np.bincount(molecule_index, weights=masses * positions[:, k], minlength=n_molecules)
                        for k in range(3)], axis=1) / total[:, None]
    per_atom_centre = centres[molecule_index]
    return [(positions + (factor - 1.0) * per_atom_centre, np.asarray(box_nm, dtype=float) * factor)
            for factor in factors]


def check_molecules_whole(positions_nm: np.ndarray, bonds: np.ndarray, what: str) -> None:
    """Raise if a bonded pair is further apart than any bond can be (a molecule split by the box)."""
    if len(bonds) == 0:
        return
    lengths = np.linalg.norm(positions_nm[bonds[:, 0]] - positions_nm[bonds[:, 1]], axis=1)
    if lengths.max() > _MAX_BOND_NM:
        raise SamplingError(f"{what}: a bond is {lengths.max():.2f} nm long, so a molecule is wrapped across the "
                            "box; rigid-volume scans need whole molecules (unwrapped OpenMM positions)")


@dataclass
class LiquidFrames:
    """Unlabelled periodic structures (ASE Atoms, Angstrom) by subset, and what made them."""

    train: list
    valid: list
    test_scan: list
    npt_density_g_cm3: np.ndarray
    npt_time_ps: np.ndarray
    settings: dict = field(default_factory=dict)


def make_liquid_frames(box, out_dir: str | Path, protocol: LiquidFramesProtocol = LiquidFramesProtocol(),
                       progress: bool = True) -> LiquidFrames:
    """GAFF NPT of ``box`` (a :class:`~openmm_physembed.chem.box.LiquidBox`), frames split and scanned.

    Training: ``n_train`` NPT frames plus scans of ``n_train_scanned`` of them (factors other than
    1). Validation: ``n_validation`` NPT frames. Test: full scans (every factor, 1 included) of
    ``n_test`` further frames. Frames are evenly spaced after the equilibration and assigned to
    the subsets at random (``seed``). Resumes the NPT run from its checkpoint.
    """
    from .reference_md import LiquidNPTProtocol, run_liquid_npt

    cutoff_nm = gaff_cutoff_nm(box.box_edge_nm, protocol)
    n_steps, first_step, frame_interval = protocol.n_steps, protocol.first_step, protocol.frame_interval
    npt = LiquidNPTProtocol(protocol.dynamics, n_steps=n_steps, frame_interval=frame_interval,
                            nonbonded_cutoff_nm=cutoff_nm)
    records = run_liquid_npt(box, out_dir, npt, progress=progress)
    steps = np.asarray(records["step"])
    kept = np.flatnonzero(steps > first_step)[-protocol.n_frames:]
    if len(kept) < protocol.n_frames:
        raise SamplingError(f"the NPT run stored {len(kept)} frames after equilibration, "
                            f"{protocol.n_frames} needed")
    rng = np.random.default_rng(protocol.dynamics.seed)
    order = rng.permutation(kept)
    train_idx = np.sort(order[:protocol.n_train])
    valid_idx = np.sort(order[protocol.n_train:protocol.n_train + protocol.n_validation])
    test_idx = np.sort(order[protocol.n_train + protocol.n_validation:])
    scanned_idx = np.sort(rng.choice(train_idx, size=protocol.n_train_scanned, replace=False))

    molecule_index = box.molecule_index()
    masses = np.array([atom.mass for atom in box.structure.atoms], dtype=float)
    bonds = np.array([(b.atom1.idx, b.atom2.idx) for b in box.structure.bonds], dtype=int).reshape(-1, 2)
    symbols = [atom.element.symbol for atom in box.topology.atoms()]
    common = {"molecules": "+".join(m.name for m in box.molecules),
              "counts": ",".join(str(c) for c in box.counts), "temperature_K": protocol.dynamics.temperature_K,
              "pressure_bar": protocol.dynamics.pressure_bar, "total_charge": int(sum(m.charge * n for m, n in
                                                                                 zip(box.molecules, box.counts))),
              "multiplicity": 1}

    def atoms_for(frame: int, positions_nm, box_nm, config_type: str, subset: str, factor: float = 1.0):
        import ase

        atoms = ase.Atoms(symbols=symbols, positions=positions_nm * ANGSTROM_PER_NM, cell=box_nm * ANGSTROM_PER_NM,
                          pbc=True)
        atoms.info.update({**common, "config_type": config_type, "subset": subset, "scale_factor": float(factor),
                           "source_step": int(steps[frame]),
                           "time_ps": float(protocol.dynamics.ps(steps[frame])),
                           "gaff_density_g_cm3": float(records["density_g_cm3"][frame])})
        atoms.arrays["mol_id"] = molecule_index.copy()
        return atoms

    def frame_atoms(frame: int, subset: str) -> list:
        positions = np.asarray(records["positions_nm"][frame], dtype=float)
        check_molecules_whole(positions, bonds, f"NPT frame at step {steps[frame]}")
        return [atoms_for(frame, positions, records["box_nm"][frame], "gaff_npt", subset)]

    def scan_atoms(frame: int, subset: str, factors) -> list:
        positions = np.asarray(records["positions_nm"][frame], dtype=float)
        check_molecules_whole(positions, bonds, f"NPT frame at step {steps[frame]}")
        scans = rigid_volume_scan(positions, records["box_nm"][frame], molecule_index, masses, factors)
        return [atoms_for(frame, p, b, "rigid_volume_scan", subset, f) for f, (p, b) in zip(factors, scans)]

    off_unity = [f for f in protocol.scan_factors if not np.isclose(f, 1.0)]
    train = [a for i in train_idx for a in frame_atoms(i, "train")]
    train += [a for i in scanned_idx for a in scan_atoms(i, "train", off_unity)]
    valid = [a for i in valid_idx for a in frame_atoms(i, "valid")]
    test_scan = [a for i in test_idx for a in scan_atoms(i, "test", sorted(set(protocol.scan_factors) | {1.0}))]
    settings = {"protocol": asdict(protocol), "gaff_cutoff_nm": cutoff_nm, "frame_interval": frame_interval,
                "frames": {"train": train_idx, "train_scanned": scanned_idx, "valid": valid_idx, "test": test_idx}}
    time_ps = protocol.dynamics.ps(steps)
    return LiquidFrames(train, valid, test_scan, np.asarray(records["density_g_cm3"]), time_ps, settings)
