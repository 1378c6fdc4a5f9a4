"""GAFF reference MD in OpenMM: the source of starting structures and training frames.

Gas phase: one molecule, Langevin at 300 K, 1 fs, 1 ns, a frame every 100 steps, 50 random
frames kept (the published protocol). Liquid: a packed box under NPT (PME, Monte Carlo
barostat). Both checkpoint and resume through :func:`run_checkpointed`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..chem.box import LiquidBox
from ..chem.gaff import parameterize
from ..chem.molecule import Molecule
from ..errors import SimulationError
from ..io import read_extxyz, write_extxyz, write_json
from ..simulation.dynamics import Dynamics
from ..simulation.engine import run_md
from ..simulation.liquid_setup import LiquidSetup
from ..simulation.npt import run_npt_md
from ..simulation.runner import state_recorder
from ..units import ANGSTROM_PER_NM, density_g_cm3


@dataclass(frozen=True)
class GasPhaseMDProtocol:
    """Published protocol for single-molecule reference data."""

    dynamics: Dynamics = Dynamics(temperature_K=300.0)
    n_steps: int = 1_000_000
    frame_interval: int = 100
    n_frames: int = 50
    force_field: str = "gaff"
    charge_method: str = "bcc"


@dataclass(frozen=True)
class ReferenceFrames:
    """Result of a reference run: the full trajectory and the randomly kept frames."""

    molecule_name: str
    trajectory_path: Path  # npz: positions_nm (n_frames_total, n_atoms, 3), step
    frames_path: Path  # extxyz of the kept frames (Angstrom), ASE-readable
    selected: tuple[int, ...]  # indices into the full trajectory
    positions_nm: np.ndarray  # kept frames

    def all_positions_nm(self) -> np.ndarray:
        return np.load(self.trajectory_path)["positions_nm"]

    def atoms(self) -> list:
        return read_extxyz(self.frames_path)


def run_gas_phase_md(
    molecule: Molecule,
    out_dir: str | Path,
    protocol: GasPhaseMDProtocol = GasPhaseMDProtocol(),
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> ReferenceFrames:
    """Run (or resume, or reuse) the gas-phase GAFF reference MD of ``molecule``."""
    out_dir = Path(out_dir)
    if protocol.n_steps // protocol.frame_interval < protocol.n_frames:
        raise SimulationError(
            f"{protocol.n_steps} steps with a frame every {protocol.frame_interval} give fewer than "
            f"the {protocol.n_frames} frames requested"
        )
    params = parameterize(molecule, protocol.force_field, protocol.charge_method, cache_dir)
    recorder = state_recorder("frames", protocol.frame_interval, ("positions", "potential_energy"))
    settings = {"molecule": molecule.name, "identity": molecule.identity_hash(), "protocol": asdict(protocol)}
    records = run_md(params.create_system(), params.topology, molecule.positions_nm, protocol.dynamics,
                     protocol.n_steps, out_dir / "md", [recorder], settings, minimize_iterations=500,
                     block_steps=10_000, progress=f"GAFF MD {molecule.name}" if progress else None)["frames"]
    if not np.all(np.isfinite(records["potential_energy_kj_mol"])):
        raise SimulationError(f"GAFF MD of {molecule.name} produced non-finite energies")

    trajectory_path = out_dir / "trajectory.npz"
    from ..io import save_npz

    save_npz(trajectory_path, **records)
    rng = np.random.default_rng(protocol.dynamics.seed)
    selected = np.sort(rng.choice(len(records["step"]), size=protocol.n_frames, replace=False))
    frames_path = out_dir / "frames.extxyz"
    write_extxyz(frames_path, frames_to_atoms(molecule, records, selected, params.atom_types, protocol))
    write_json(out_dir / "reference_md.json", {
        "molecule": molecule.name, "smiles": molecule.smiles, "protocol": asdict(protocol),
        "n_trajectory_frames": int(len(records["step"])), "selected": selected,
        "units": {"positions": "nm in trajectory.npz, Angstrom in frames.extxyz"},
    })
    return ReferenceFrames(molecule.name, trajectory_path, frames_path, tuple(int(i) for i in selected),
                           records["positions_nm"][selected].astype(float))


def frames_to_atoms(molecule: Molecule, records: dict, selected, atom_types, protocol) -> list:
    """ASE Atoms (Angstrom) carrying what later stages need: charge, spin, origin, GAFF types."""
    import ase

    atoms_list = []
    for index in selected:
        atoms = ase.Atoms(symbols=molecule.symbols, positions=records["positions_nm"][index] * ANGSTROM_PER_NM)
        atoms.info.update({
            "molecule": molecule.name,
            "smiles": molecule.smiles,
            "total_charge": molecule.charge,
            "multiplicity": molecule.multiplicity,
            "config_type": "gaff_md",
            "source_step": int(records["step"][index]),
            "time_ps": float(protocol.dynamics.ps(records["step"][index])),
            "temperature_K": protocol.dynamics.temperature_K,
            "frame_index": int(index),
            "gaff_energy_kj_mol": float(records["potential_energy_kj_mol"][index]),
        })
        atoms.arrays["gaff_type"] = np.array(atom_types)
        atoms_list.append(atoms)
    return atoms_list


@dataclass(frozen=True)
class LiquidNPTProtocol:
    dynamics: Dynamics = Dynamics(temperature_K=298.15, pressure_bar=1.0)
    n_steps: int = 100_000
    frame_interval: int = 1000
    nonbonded_cutoff_nm: float = 1.0


def run_liquid_npt(liquid: LiquidBox | LiquidSetup, out_dir: str | Path,
                   protocol: LiquidNPTProtocol = LiquidNPTProtocol(), progress: bool = True) -> dict[str, np.ndarray]:
    """NPT of a liquid (a :class:`LiquidSetup`, or a packed :class:`LiquidBox` whose GAFF System gets
    ``protocol.nonbonded_cutoff_nm``); returns per-frame positions, box, energy, volume and density."""
    recorder = state_recorder("frames", protocol.frame_interval, ("positions", "box", "potential_energy", "volume"))
    if isinstance(liquid, LiquidSetup):
        settings = {"label": liquid.label, "protocol": asdict(protocol)}
    else:
        box = liquid
        settings = {"counts": box.counts, "molecules": [m.name for m in box.molecules], "edge": box.box_edge_nm,
                    "protocol": asdict(protocol)}
        liquid = LiquidSetup.from_box(box, nonbonded_cutoff_nm=protocol.nonbonded_cutoff_nm)
    records = run_npt_md(liquid, protocol.dynamics, protocol.n_steps, Path(out_dir) / "npt", [recorder], settings,
                         minimize_iterations=1000, progress="GAFF NPT" if progress else None)["frames"]
    records["density_g_cm3"] = np.array([density_g_cm3(liquid.total_mass_amu, v) for v in records["volume_nm3"]])
    return records
