"""Subcommand ``md``: MLFF molecular dynamics with a MACE model file (TorchForce), resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..cli_common import add_cache_option, add_molecule_argument, molecule_from_args


def register(subparsers) -> None:
    md = subparsers.add_parser(
        "md", help="MACE MD of a molecule, N independent copies of it, or a liquid box (resumable)",
        description="Langevin MD (LangevinMiddle) with a mace-torch model as an OpenMM TorchForce. Gas phase by "
                    "default; --replicas N runs N non-interacting copies in one Context; --box N packs N "
                    "molecules at --density in a periodic box (NVT). Energies and frames go to OUT/records; "
                    "rerun the same command to resume.")
    md.add_argument("model", help="mace-torch model file (NAME.model from mace_run_train)")
    add_molecule_argument(md)
    md.add_argument("-o", "--out", default=None, help="output directory (default runs/<molecule>/mace_md)")
    md.add_argument("--replicas", type=int, default=1, help="independent gas-phase copies in one Context")
    md.add_argument("--box", type=int, default=None, metavar="N", help="periodic liquid of N molecules")
    md.add_argument("--density", type=float, default=1.0, help="packing density of --box in g/cm3")
    md.add_argument("--steps", type=int, default=10_000)
    md.add_argument("--timestep", type=float, default=0.5, help="fs")
    md.add_argument("--temperature", type=float, default=300.0, help="K")
    md.add_argument("--friction", type=float, default=1.0, help="1/ps")
    md.add_argument("--interval", type=int, default=100, help="steps between recorded frames")
    md.add_argument("--dtype", "--precision", dest="dtype", choices=["float32", "float64", "single", "double"],
                    default="float32", help="MACE precision (single = float32, double = float64)")
    md.add_argument("--seed", type=int, default=2024)
    md.add_argument("--platform", default=None, help="OpenMM platform (default: CUDA if present, else CPU)")
    add_cache_option(md)
    md.set_defaults(handler=_md)


def _frame_sampler(simulation, state):
    return {
        "positions_nm": state.getPositions(asNumpy=True)._value.astype(np.float32),
        "potential_kj_mol": np.float64(state.getPotentialEnergy()._value),
        "kinetic_kj_mol": np.float64(state.getKineticEnergy()._value),
    }


def run_mace_md(model_path, molecule, out_dir, *, replicas: int = 1, box_molecules: int | None = None,
                density_g_cm3: float = 1.0, n_steps: int = 10_000, timestep_fs: float = 0.5,
                temperature_K: float = 300.0, friction_per_ps: float = 1.0, interval: int = 100,
                dtype: str = "float32", seed: int = 2024, platform: str | None = None, cache_dir=None,
                progress: bool = True) -> dict[str, np.ndarray]:
    """Langevin MD of ``molecule`` (gas phase, ``replicas`` copies, or a box) with a MACE model.

    Returns the recorded arrays (``step``, ``positions_nm``, ``potential_kj_mol``,
    ``kinetic_kj_mol``); ``out_dir`` also gets ``start.pdb`` (topology and first frame).
    """
    import openmm
    from openmm import app, unit

    from ..errors import PotentialError
    from ..simulation.runner import ArrayRecorder, run_checkpointed
    from ..simulation.setup import langevin_integrator, make_simulation
    from .mace_force import add_mace_force

    if replicas < 1 or (box_molecules is not None and replicas != 1):
        raise PotentialError("give either --replicas N (gas phase) or --box N (liquid), with N >= 1")
    out_dir = Path(out_dir)
    box_edge = None
    if box_molecules:
        from ..chem.box import build_box

        box = build_box([molecule], counts=[box_molecules], density_g_cm3=density_g_cm3,
                        charge_method="gasteiger", cache_dir=cache_dir, seed=seed)
        topology, positions, box_edge = box.topology, box.positions_nm, box.box_edge_nm
    else:
        topology = app.Topology()
        chain = topology.addChain()
        for _ in range(replicas):
            residue = topology.addResidue(molecule.name[:3].upper() or "MOL", chain)
            atoms = [topology.addAtom(s, app.Element.getBySymbol(s), residue) for s in molecule.symbols]
            for i, j in molecule.bonds:
                topology.addBond(atoms[i], atoms[j])
        # Copies start on top of each other: with replicas="molecule" they never interact.
        positions = np.vstack([molecule.positions_nm] * replicas)
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    if box_edge is not None:
        system.setDefaultPeriodicBoxVectors(*(np.eye(3) * box_edge))
    add_mace_force(system, topology, model_path, dtype=dtype, replicas="molecule" if replicas > 1 else "none")
    integrator = langevin_integrator(temperature_K, friction_per_ps, timestep_fs, seed)
    simulation = make_simulation(system, topology, positions, integrator, platform=platform,
                                 box_vectors_nm=None if box_edge is None else np.eye(3) * box_edge)
    simulation.context.setVelocitiesToTemperature(temperature_K * unit.kelvin, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "start.pdb", "w") as handle:
        app.PDBFile.writeFile(topology, positions * 10.0 * unit.angstrom, handle)
    settings = {"model": str(Path(model_path).resolve()), "molecule": molecule.identity_hash(), "replicas": replicas,
                "box": box_molecules, "density": density_g_cm3, "timestep_fs": timestep_fs, "T": temperature_K,
                "friction": friction_per_ps, "interval": interval, "dtype": dtype, "seed": seed}
    recorder = ArrayRecorder("frames", interval, _frame_sampler, ("positions", "energy"))
    records = run_checkpointed(simulation, n_steps, out_dir, [recorder], settings=settings,
                               block_steps=max(interval, min(1000, n_steps)),
                               progress=f"MACE MD {molecule.name}" if progress else None)
    return records["frames"]


def _md(args: argparse.Namespace) -> int:
    molecule = molecule_from_args(args)
    out = Path(args.out or f"runs/{molecule.name}/mace_md")
    frames = run_mace_md(args.model, molecule, out, replicas=args.replicas, box_molecules=args.box,
                         density_g_cm3=args.density, n_steps=args.steps, timestep_fs=args.timestep,
                         temperature_K=args.temperature, friction_per_ps=args.friction, interval=args.interval,
                         dtype=args.dtype, seed=args.seed, platform=args.platform, cache_dir=args.cache_dir)
    n = len(frames.get("step", []))
    if n:
        print(f"{n} frames -> {out}/records/frames; last potential energy {frames['potential_kj_mol'][-1]:.2f} kJ/mol")
    return 0
