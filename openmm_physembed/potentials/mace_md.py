"""MACE MD of a molecule, N non-interacting copies of it, or a liquid box (``physembed md``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SimulationError
from ..simulation.dynamics import Dynamics
from ..simulation.engine import run_md
from ..simulation.runner import state_recorder

# 0.5 fs: a MACE model that has not been tested for stability at 1 fs should not be trusted with it.
DEFAULT_DYNAMICS = Dynamics(temperature_K=300.0, timestep_fs=0.5)


def run_mace_md(model_path, molecule, out_dir, dynamics: Dynamics = DEFAULT_DYNAMICS, *, replicas: int = 1,
                box_molecules: int | None = None, density_g_cm3: float = 1.0, n_steps: int = 10_000,
                interval: int = 100, dtype: str | None = None, cache_dir=None,
                progress: bool = True) -> dict[str, np.ndarray]:
    """MD of ``molecule`` (gas phase, ``replicas`` copies, or a box, NVT) with a MACE model.

    Returns the recorded arrays (``step``, ``positions_nm``, ``potential_energy_kj_mol``,
    ``kinetic_energy_kj_mol``); ``out_dir`` also gets ``start.pdb`` (topology and first frame).
    """
    import openmm
    from openmm import app, unit

    from .mace_force import add_mace_force

    if replicas < 1 or (box_molecules is not None and replicas != 1):
        raise SimulationError("give either --replicas N (gas phase) or --box N (liquid), with N >= 1")
    out_dir = Path(out_dir)
    box_edge = None
    if box_molecules:
        from ..chem.box import build_box

        box = build_box([molecule], counts=[box_molecules], density_g_cm3=density_g_cm3,
                        charge_method="gasteiger", cache_dir=cache_dir, seed=dynamics.seed)
        topology, positions, box_edge = box.topology, box.positions_nm, box.box_edge_nm
    else:
        topology = copies_topology(molecule.symbols, molecule.bonds, replicas, molecule.name[:3].upper() or "MOL")
        # Copies start on top of each other: one residue each (copies_topology), so with
        # replicas="residue" they never interact, as in the stability test's replica MD.
        positions = np.vstack([molecule.positions_nm] * replicas)
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    box_vectors = None if box_edge is None else np.eye(3) * box_edge
    if box_vectors is not None:
        system.setDefaultPeriodicBoxVectors(*box_vectors)
    add_mace_force(system, topology, model_path, dtype=dtype, replicas="residue" if replicas > 1 else "none")
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "start.pdb", "w") as handle:
        app.PDBFile.writeFile(topology, positions * 10.0 * unit.angstrom, handle)
    settings = {"model": str(Path(model_path).resolve()), "molecule": molecule.identity_hash(), "replicas": replicas,
                "box": box_molecules, "density": density_g_cm3, "interval": interval, "dtype": dtype}
    recorder = state_recorder("frames", interval, ("positions", "potential_energy", "kinetic_energy"))
    records = run_md(system, topology, positions, dynamics, n_steps, out_dir, [recorder], settings,
                     box_vectors_nm=box_vectors, block_steps=max(interval, 1000),
                     progress=f"MACE MD {molecule.name}" if progress else None)
    return records["frames"]


def copies_topology(symbols, bonds, n_copies: int, residue_name: str = "MOL"):
    """An OpenMM Topology of ``n_copies`` of one molecule, one residue each (MACE ``replicas="residue"``)."""
    from openmm import app

    topology = app.Topology()
    chain = topology.addChain()
    for _ in range(n_copies):
        residue = topology.addResidue(residue_name, chain)
        atoms = [topology.addAtom(symbol, app.Element.getBySymbol(symbol), residue) for symbol in symbols]
        for i, j in bonds:
            topology.addBond(atoms[int(i)], atoms[int(j)])
    return topology
