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
from ..simulation.runner import ArrayRecorder, run_checkpointed
from ..simulation.setup import langevin_integrator, make_simulation
from ..units import ANGSTROM_PER_NM


@dataclass(frozen=True)
class GasPhaseMDProtocol:
    """Published protocol for single-molecule reference data."""

    temperature_K: float = 300.0
    timestep_fs: float = 1.0
    n_steps: int = 1_000_000
    frame_interval: int = 100
    n_frames: int = 50
    friction_per_ps: float = 1.0
    seed: int = 2024
    platform: str | None = None
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


def _positions_and_energy(simulation, state):
    return {
        "positions_nm": state.getPositions(asNumpy=True)._value.astype(np.float32),
        "potential_energy_kj_mol": np.float64(state.getPotentialEnergy()._value),
    }


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
    system = params.create_system()
    integrator = langevin_integrator(protocol.temperature_K, protocol.friction_per_ps, protocol.timestep_fs,
                                     protocol.seed)
    simulation = make_simulation(system, params.topology, molecule.positions_nm, integrator, protocol.platform)
    run_dir = out_dir / "md"
    if not (run_dir / "checkpoint.npz").is_file():
        simulation.minimizeEnergy(maxIterations=500)
        simulation.context.setVelocitiesToTemperature(protocol.temperature_K, protocol.seed)
    recorder = ArrayRecorder("frames", protocol.frame_interval, _positions_and_energy, ("positions", "energy"))
    settings = {"molecule": molecule.name, "identity": molecule.identity_hash(), **asdict(protocol)}
    records = run_checkpointed(
        simulation, protocol.n_steps, run_dir, [recorder], settings=settings,
        block_steps=min(10_000, protocol.n_steps),
        progress=f"GAFF MD {molecule.name}" if progress else None,
    )["frames"]
    if not np.all(np.isfinite(records["potential_energy_kj_mol"])):
        raise SimulationError(f"GAFF MD of {molecule.name} produced non-finite energies")

    trajectory_path = out_dir / "trajectory.npz"
    from ..io import save_npz

    save_npz(trajectory_path, **records)
    rng = np.random.default_rng(protocol.seed)
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
            "time_ps": float(records["step"][index] * protocol.timestep_fs * 1e-3),
            "temperature_K": protocol.temperature_K,
            "frame_index": int(index),
            "gaff_energy_kj_mol": float(records["potential_energy_kj_mol"][index]),
        })
        atoms.arrays["gaff_type"] = np.array(atom_types)
        atoms_list.append(atoms)
    return atoms_list


@dataclass(frozen=True)
class LiquidNPTProtocol:
    temperature_K: float = 298.15
    pressure_bar: float = 1.0
    timestep_fs: float = 1.0
    n_steps: int = 100_000
    frame_interval: int = 1000
    friction_per_ps: float = 1.0
    barostat_interval: int = 25
    nonbonded_cutoff_nm: float = 1.0
    seed: int = 2024
    platform: str | None = None


def _box_sampler(simulation, state):
    return {
        "positions_nm": state.getPositions(asNumpy=True)._value.astype(np.float32),
        "box_nm": np.asarray(state.getPeriodicBoxVectors(asNumpy=True)._value, dtype=np.float64),
        "potential_energy_kj_mol": np.float64(state.getPotentialEnergy()._value),
        "volume_nm3": np.float64(state.getPeriodicBoxVolume()._value),
    }


def run_liquid_npt(box: LiquidBox, out_dir: str | Path, protocol: LiquidNPTProtocol = LiquidNPTProtocol(),
                   progress: bool = True) -> dict[str, np.ndarray]:
    """GAFF NPT of a packed box; returns per-frame positions, box, energy, volume and density."""
    import openmm

    system = box.create_system(nonbonded_cutoff_nm=protocol.nonbonded_cutoff_nm)
    system.addForce(openmm.MonteCarloBarostat(protocol.pressure_bar, protocol.temperature_K,
                                              protocol.barostat_interval))
    integrator = langevin_integrator(protocol.temperature_K, protocol.friction_per_ps, protocol.timestep_fs,
                                     protocol.seed)
    simulation = make_simulation(system, box.topology, box.positions_nm, integrator, protocol.platform,
                                 box_vectors_nm=box.box_vectors_nm)
    run_dir = Path(out_dir) / "npt"
    if not (run_dir / "checkpoint.npz").is_file():
        simulation.minimizeEnergy(maxIterations=1000)
        simulation.context.setVelocitiesToTemperature(protocol.temperature_K, protocol.seed)
    recorder = ArrayRecorder("frames", protocol.frame_interval, _box_sampler, ("positions", "energy"))
    settings = {"counts": box.counts, "molecules": [m.name for m in box.molecules],
                "edge": box.box_edge_nm, **asdict(protocol)}
    records = run_checkpointed(simulation, protocol.n_steps, run_dir, [recorder], settings=settings,
                               block_steps=min(1000, protocol.n_steps),
                               progress="GAFF NPT" if progress else None)["frames"]
    from ..units import density_g_cm3

    records["density_g_cm3"] = np.array([density_g_cm3(box.total_mass_amu, v) for v in records["volume_nm3"]])
    return records
