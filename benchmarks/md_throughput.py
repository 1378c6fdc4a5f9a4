"""MD throughput of one MACE model: our TorchForce vs openmm-ml's PythonForce vs ASE + MACECalculator.

Same model file, same structures, same dtype, Langevin dynamics at 300 K with a 0.5 fs step
(OpenMM: ``LangevinMiddleIntegrator`` on the CPU platform; ASE: ``ase.md.langevin.Langevin``).
Systems:

- ``molecule``: one gas-phase molecule (paracetamol, 20 atoms);
- ``replicas``: ``--replicas`` copies of it. Ours: one Context, copies overlapping in space,
  edges restricted to each copy (``replicas="molecule"``). The peers have no replica option; their
  natural equivalent (used here) is one gas-phase system with the copies placed on a grid far
  enough apart (molecule extent + r_max) that they do not interact: the same physics and the
  same number of edges. (Stepping 100 separate simulations one after the other is much slower
  for every engine: ~100 x the single-molecule step.)
- ``box<N>``: periodic ethylene carbonate liquid boxes of about ``--box-atoms`` atoms.

Also timed: the ``floor``, the bare MACE model's forward + backward on a precomputed graph (no
neighbour list, no MD engine), which no engine can beat. Steps/s are medians over
``--rounds`` interleaved rounds (the machine's cores are shared: read ratios, not absolutes).
The default model is a random ``ScaleShiftMACE`` (cost depends on architecture, not weights);
``--model`` times a real file. Nothing is downloaded.

Usage::

    python benchmarks/md_throughput.py --box-atoms 500 3000 --steps 20 --box-steps 3
    python benchmarks/md_throughput.py --quick          # reduced sizes for a shared CPU
"""

from __future__ import annotations

import argparse
import os
import platform as host_platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ENGINES = ("ours", "openmm-ml", "ase")


# ---------------------------------------------------------------- structures
def molecule_topology(molecules):
    from openmm import app

    top = app.Topology()
    chain = top.addChain()
    for k, mol in enumerate(molecules):
        res = top.addResidue("MOL", chain)
        atoms = [top.addAtom(s, app.Element.getBySymbol(s), res) for s in mol.symbols]
        for i, j in mol.bonds:
            top.addBond(atoms[i], atoms[j])
    return top


def replica_positions(mol, n: int, spread_nm: float | None, seed: int = 0) -> np.ndarray:
    """``n`` randomly rotated copies: overlapping (spread None) or on a grid ``spread_nm`` apart."""
    from openmm_physembed.potentials.mace_module import replica_grid

    rng = np.random.default_rng(seed)
    centred = mol.positions_nm - mol.positions_nm.mean(0)
    cells = replica_grid(n)
    out = []
    for k in range(n):
        rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        shift = cells[k] * spread_nm if spread_nm else rng.normal(scale=0.05, size=3)
        out.append(centred @ rotation.T + shift)
    return np.vstack(out)


def build_systems(args):
    from openmm_physembed.chem.box import build_box
    from openmm_physembed.chem.molecule import Molecule

    mol = Molecule.from_name(args.molecule)
    extent = float(np.ptp(mol.positions_nm, axis=0).max())
    systems = {"molecule": dict(top=molecule_topology([mol]), pos=mol.positions_nm, box=None, replicas="none",
                                steps=args.steps, n_atoms=mol.n_atoms)}
    if args.replicas > 1:
        top = molecule_topology([mol] * args.replicas)
        systems[f"replicas{args.replicas}"] = dict(
            top=top, pos=replica_positions(mol, args.replicas, None), box=None, replicas="molecule",
            peer_pos=replica_positions(mol, args.replicas, extent + args.r_max_nm + 0.3),
            steps=args.replica_steps, n_atoms=mol.n_atoms * args.replicas)
    solvent = Molecule.from_name(args.box_molecule)
    for n_atoms in args.box_atoms:
        n_mol = max(2, round(n_atoms / solvent.n_atoms))
        box = build_box([solvent], counts=[n_mol], density_g_cm3=args.box_density, charge_method="gasteiger")
        systems[f"box{box.n_atoms}"] = dict(top=box.topology, pos=box.positions_nm, box=box.box_edge_nm,
                                            replicas="none", steps=args.box_steps, n_atoms=box.n_atoms)
    return systems


# ---------------------------------------------------------------- engines
def openmm_context(system, spec, positions, seed=1, platform="CPU", properties=None):
    """A Langevin (300 K, 0.5 fs) Context on ``platform`` with positions and velocities set."""
    import openmm

    integrator = openmm.LangevinMiddleIntegrator(300.0, 1.0, 0.0005)
    integrator.setRandomNumberSeed(seed)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName(platform), properties or {})
    if spec["box"] is not None:
        context.setPeriodicBoxVectors(*(np.eye(3) * spec["box"]))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(300.0, seed)
    return context


def openmm_simulation(system, spec, positions, seed=1, platform="CPU", properties=None):
    context = openmm_context(system, spec, positions, seed, platform, properties)
    integrator = context.getIntegrator()

    def step(n, _context=context):  # the closure keeps the Context alive
        integrator.step(n)
        if platform != "CPU":  # GPU steps are queued: wait for them (copying positions back does)
            _context.getState(getPositions=True)
    return step


def ours_system(spec, model_path, dtype):
    """A System holding only our MACE TorchForce (module built on the CPU, any platform runs it)."""
    import openmm

    from openmm_physembed.potentials.mace_force import add_mace_force

    system = openmm.System()
    for atom in spec["top"].atoms():
        system.addParticle(atom.element.mass)
    if spec["box"] is not None:
        system.setDefaultPeriodicBoxVectors(*(np.eye(3) * spec["box"]))
    add_mace_force(system, spec["top"], model_path, dtype=dtype, replicas=spec["replicas"])
    return system


def make_ours(spec, model_path, dtype, platform="CPU", properties=None):
    return openmm_simulation(ours_system(spec, model_path, dtype), spec, spec["pos"], platform=platform,
                             properties=properties)


def make_openmm_ml(spec, model_path, dtype, platform="CPU", properties=None):
    from openmmml import MLPotential

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # openmm-ml puts the model on CUDA whenever torch sees a GPU: match the platform instead.
        system = MLPotential("mace", modelPath=str(model_path)).createSystem(
            spec["top"], precision="double" if dtype == "float64" else "single",
            device="cuda" if platform == "CUDA" else "cpu")
    return openmm_simulation(system, spec, spec.get("peer_pos", spec["pos"]), platform=platform,
                             properties=properties)


def make_ase(spec, model_path, dtype):
    import ase
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from mace.calculators import MACECalculator

    numbers = [a.element.atomic_number for a in spec["top"].atoms()]
    atoms = ase.Atoms(numbers=numbers, positions=np.asarray(spec.get("peer_pos", spec["pos"])) * 10.0)
    if spec["box"] is not None:
        atoms.cell = np.eye(3) * spec["box"] * 10.0
        atoms.pbc = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atoms.calc = MACECalculator(model_paths=str(model_path), device="cpu", default_dtype=dtype)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300.0, rng=np.random.default_rng(1))
    dyn = Langevin(atoms, timestep=0.5 * units.fs, temperature_K=300.0, friction=0.001 / units.fs,
                   rng=np.random.default_rng(2))
    return lambda n: dyn.run(n)


def make_floor(spec, model_path, dtype):
    """The model's own forward + backward on a fixed graph (mace-torch's data pipeline, once)."""
    import torch

    from openmm_physembed.potentials.mace_model import load_mace_model

    model = load_mace_model(model_path).to(torch.float64 if dtype == "float64" else torch.float32)
    batch = mace_batch(spec, model)

    def step(n):
        for _ in range(n):
            model(dict(batch), compute_force=True)
    return step


def mace_batch(spec, model, device="cpu"):
    """mace-torch's own input dict for the spec's structure (its host neighbour list), in the model dtype."""
    import ase
    import torch
    from mace import data as mace_data
    from mace.tools import torch_geometric, utils

    numbers = np.array([a.element.atomic_number for a in spec["top"].atoms()])

    atoms = ase.Atoms(numbers=numbers, positions=np.asarray(spec.get("peer_pos", spec["pos"])) * 10.0)
    if spec["box"] is not None:
        atoms.cell = np.eye(3) * spec["box"] * 10.0
        atoms.pbc = True
    table = utils.AtomicNumberTable([int(z) for z in model.atomic_numbers])
    config = mace_data.config_from_atoms(atoms)
    graph = mace_data.AtomicData.from_config(config, z_table=table, cutoff=float(model.r_max), heads=model.heads)
    batch = next(iter(torch_geometric.dataloader.DataLoader(dataset=[graph], batch_size=1))).to_dict()
    dtype = next(model.parameters()).dtype
    return {k: (v.to(dtype) if torch.is_floating_point(v) else v).to(device) for k, v in batch.items()}


MAKERS = {"ours": make_ours, "openmm-ml": make_openmm_ml, "ase": make_ase, "floor": make_floor}


def time_steps(step, n: int) -> float:
    start = time.perf_counter()
    step(n)
    return n / (time.perf_counter() - start)


# ---------------------------------------------------------------- main
def machine_info(threads: int) -> dict:
    import importlib.metadata as md

    versions = {}
    for pkg in ("torch", "openmm", "openmmtorch", "mace-torch", "e3nn", "openmmml", "ase", "vesin-torch"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    cpu = host_platform.processor() or host_platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": sys.version.split()[0], "cpu": cpu, "cores": os.cpu_count(), "threads": threads,
            "platform": host_platform.platform(), "versions": versions}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="MACE model file (default: a random ScaleShiftMACE)")
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--max-L", type=int, default=1)
    parser.add_argument("--r-max", type=float, default=5.0, help="cutoff of the random model (Angstrom)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--molecule", default="paracetamol")
    parser.add_argument("--replicas", type=int, default=100)
    parser.add_argument("--box-molecule", default="ec")
    parser.add_argument("--box-density", type=float, default=1.32)
    parser.add_argument("--box-atoms", type=int, nargs="*", default=[500, 3000])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per round, single molecule")
    parser.add_argument("--replica-steps", type=int, default=5)
    parser.add_argument("--box-steps", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps (TorchScript profiles the first calls)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", nargs="*", default=list(ENGINES) + ["floor"], choices=list(MAKERS))
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenMM CPU threads (same for all)")
    parser.add_argument("--quick", action="store_true", help="reduced sizes: 10 replicas, a 500-atom box, few steps")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results", help="folder for the JSON")
    args = parser.parse_args(argv)
    if args.quick:
        args.replicas, args.box_atoms, args.steps, args.replica_steps, args.box_steps = 10, [500], 20, 5, 2
        args.rounds = min(args.rounds, 2)
    args.r_max_nm = args.r_max / 10.0

    os.environ["OPENMM_CPU_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    from openmm_physembed.io import write_json

    model_path = args.model
    if model_path is None:
        from openmm_physembed.testing import make_random_mace_model

        model_path = make_random_mace_model(Path(tempfile.mkdtemp(prefix="md_throughput_")) / "random.model",
                                            r_max_angstrom=args.r_max, num_channels=args.channels,
                                            max_L=args.max_L, dtype=args.dtype)
        model_note = f"random ScaleShiftMACE {args.channels} channels, L={args.max_L}, 2 interactions, r_max {args.r_max} A"
    else:
        model_note = str(model_path)
        args.r_max_nm = __import__("openmm_physembed.potentials.mace_model", fromlist=["x"]).MACEModelInfo.from_path(
            model_path).r_max_nm

    info = machine_info(args.threads)
    print(f"# {info['cpu']} ({info['cores']} cores, {args.threads} thread(s)), Python {info['python']}")
    print("# " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    print(f"# model: {model_note}, {args.dtype}; Langevin 300 K, 0.5 fs; medians of {args.rounds} rounds")

    from openmm_physembed.torch_device import torchscript_optimization

    systems = build_systems(args)
    results = {}
    # Off is measured faster for MACE on the CPU (torch_device.set_torchscript_optimization), and the
    # MD engine runs TorchForces that way there; every engine here runs in this thread with it off.
    with torchscript_optimization(False):
        for name, spec in systems.items():
            runners = {}
            for engine in args.engines:
                runner = MAKERS[engine](spec, model_path, args.dtype)
                runner(args.warmup)
                runners[engine] = runner
            rates = {engine: [] for engine in runners}
            for _ in range(args.rounds):  # interleaved: load changes hit every engine alike
                for engine, runner in runners.items():
                    rates[engine].append(time_steps(runner, spec["steps"]))
            med = {engine: statistics.median(r) for engine, r in rates.items()}
            results[name] = {"n_atoms": spec["n_atoms"], "steps_per_round": spec["steps"], "steps_per_s": med,
                             "all_rounds": rates}
            del runners

    header = f"{'system':<14}{'atoms':>7}" + "".join(f"{e:>12}" for e in args.engines)
    ratio_cols = [e for e in ("openmm-ml", "ase", "floor") if e in args.engines and "ours" in args.engines]
    header += "".join(f"{'ours/' + e:>16}" for e in ratio_cols)
    print("\nsteps/s (higher is better)")
    print(header)
    for name, res in results.items():
        s = res["steps_per_s"]
        row = f"{name:<14}{res['n_atoms']:>7}" + "".join(f"{s[e]:>12.2f}" for e in args.engines)
        ratios = {e: s["ours"] / s[e] for e in ratio_cols}
        res["ratios"] = ratios
        row += "".join(f"{ratios[e]:>16.2f}" for e in ratio_cols)
        print(row)
    print("\nratios > 1: ours is faster; 'floor' is the bare model forward+backward (no engine, no neighbour list).")
    notes = {"replicas": "ours: overlapping copies, edges within each copy; openmm-ml and ase: the copies "
                         "spaced on a grid (extent + r_max apart) in one gas-phase system",
             "platform": "OpenMM CPU platform; ASE Langevin with MACECalculator on the CPU",
             "torchscript": "TorchScript's graph-executor optimisation is off in the main thread (faster on CPU, "
                            "as MDEngine runs a TorchForce there); every engine runs in that thread, so the "
                            "peers' scripted e3nn parts run the same way"}
    out = write_json(args.out / "md_throughput.json",
                     {"machine": info, "model": model_note, "dtype": args.dtype, "notes": notes, "results": results})
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
