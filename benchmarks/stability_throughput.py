"""What decides the cost of the 800 K stability MD on a CPU: a throughput table.

The stability test runs many copies of one molecule (paracetamol, 20 atoms) in one OpenMM Context
(:func:`openmm_physembed.stability.replica_md.build_replica_context`, the code the benchmark itself
uses). Its cost is trajectory-ps per wall second. This script changes one thing at a time from the
``small`` MACE preset the ``quick`` stability preset trains (32 channels, max L 1, correlation 2,
spherical harmonics to l = 3, radial MLP [64, 64, 64], r_max 5 A, float32, 10 replicas, torch on
all cores) and then times the combinations that the results suggest:

- model size: channels, ``max_L``, ``max_ell`` (edge spherical harmonics), radial MLP, r_max;
- dtype; replicas per Context; torch threads per process;
- two processes side by side (one thread each) against one process with two threads: on a
  2-core machine, small MACE graphs do not keep two intra-op threads busy;
- the collapse check (``detect_collapse`` on every replica) per call, against the steps it follows.

Models are random ``ScaleShiftMACE`` files of the same architecture (cost depends on the
architecture, not on the weights). Rates are medians of ``--rounds`` timed rounds after a warm-up
round. Writes ``benchmarks/results/stability_throughput.json``.

Usage::

    python benchmarks/stability_throughput.py             # ~10 min on 2 cores
    python benchmarks/stability_throughput.py --only small cpu --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform as host_platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SMALL = dict(num_channels=32, max_L=1, correlation=2, max_ell=3, radial_MLP=[64, 64, 64], r_max=5.0,
             dtype="float32", replicas=10, threads=None)

# name -> changes from SMALL. "cpu" is the architecture the stability ``cpu`` preset trains.
VARIANTS: dict[str, dict] = {
    "small": {},
    "float64": {"dtype": "float64"},
    "channels16": {"num_channels": 16},
    "channels8": {"num_channels": 8},
    "max_L0": {"max_L": 0},
    "max_ell2": {"max_ell": 2},
    "radial32x2": {"radial_MLP": [32, 32]},
    "radial16x2": {"radial_MLP": [16, 16]},
    "r_max4": {"r_max": 4.0},
    "replicas1": {"replicas": 1},
    "replicas20": {"replicas": 20},
    "replicas40": {"replicas": 40},
    "threads1": {"threads": 1},
    "L0_channels16": {"num_channels": 16, "max_L": 0},
    "L0_max_ell2": {"max_L": 0, "max_ell": 2},
    "L0_channels16_max_ell2": {"num_channels": 16, "max_L": 0, "max_ell": 2},
    "cpu": {"num_channels": 16, "max_L": 0, "replicas": 20},
    "cpu_threads1": {"num_channels": 16, "max_L": 0, "replicas": 20, "threads": 1},
}


def make_model(spec: dict, path: Path) -> Path:
    from openmm_physembed.testing import make_random_mace_model

    return make_random_mace_model(path, atomic_numbers=(1, 6, 7, 8), r_max_angstrom=spec["r_max"],
                                  num_channels=spec["num_channels"], max_L=spec["max_L"],
                                  correlation=spec["correlation"], dtype=spec["dtype"], max_ell=spec["max_ell"],
                                  radial_MLP=spec["radial_MLP"], interaction_scale_ev=0.1)


def time_variant(spec: dict, steps: int, rounds: int, workdir: Path) -> dict:
    """Steps/s of one variant in this process (after one warm-up round)."""
    import torch

    from openmm_physembed import Molecule
    from openmm_physembed.simulation.dynamics import Dynamics
    from openmm_physembed.stability.collapse import detect_collapse, nonbonded_pairs
    from openmm_physembed.stability.replica_md import (
        ReplicaMDSettings,
        build_replica_context,
    )

    if spec["threads"]:
        torch.set_num_threads(int(spec["threads"]))
    molecule = Molecule.from_name("paracetamol")
    model = make_model(spec, workdir / f"model_{abs(hash(json.dumps(spec, sort_keys=True)))}.model")
    n = int(spec["replicas"])
    settings = ReplicaMDSettings(Dynamics(800.0, seed=1), dtype=spec["dtype"])
    bonds = np.array(molecule.bonds, dtype=int)
    context = build_replica_context(model, molecule.symbols, molecule.masses_amu, bonds, n, settings)
    rng = np.random.default_rng(0)
    x = molecule.positions_nm[None] + rng.normal(scale=0.002, size=(n, molecule.n_atoms, 3))
    context.setPositions(x.reshape(-1, 3))
    context.setVelocitiesToTemperature(300.0, 1)
    integrator = context.getIntegrator()
    integrator.step(max(2, steps // 4))  # warm-up: TorchScript profiling runs, allocations
    rates = []
    for _ in range(rounds):
        context.setPositions(x.reshape(-1, 3))
        t0 = time.perf_counter()
        integrator.step(steps)
        context.getState(getEnergy=True)
        rates.append(steps / (time.perf_counter() - t0))
    # One collapse check as the MD loop does it: getState + detector on every replica.
    r0 = np.linalg.norm(molecule.positions_nm[bonds[:, 0]] - molecule.positions_nm[bonds[:, 1]], axis=1)
    pairs = nonbonded_pairs(molecule.n_atoms, bonds)
    t0 = time.perf_counter()
    for _ in range(20):
        state = context.getState(getPositions=True, getVelocities=True)
        detect_collapse(state.getPositions(asNumpy=True)._value.reshape(n, -1, 3), bonds, r0, pairs=pairs)
    check_s = (time.perf_counter() - t0) / 20
    steps_per_s = statistics.median(rates)
    return {"spec": spec, "steps_per_s": steps_per_s, "all_rounds": rates,
            "trajectory_ps_per_s": steps_per_s * n * 1e-3, "check_s": check_s,
            "torch_threads": torch.get_num_threads()}


def run_in_subprocess(name: str, steps: int, rounds: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--worker", name, "--steps", str(steps), "--rounds", str(rounds)],
                            stdout=subprocess.PIPE, text=True)


def parse_worker(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    return json.loads(out.strip().splitlines()[-1])


def machine() -> dict:
    import openmm
    import torch

    return {"python": host_platform.python_version(), "cpu": host_platform.processor() or host_platform.machine(),
            "cores": os.cpu_count(), "torch": torch.__version__, "openmm": openmm.__version__}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=None, help=f"variants to time (default all: {', '.join(VARIANTS)})")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--no-pairs", action="store_true", help="skip the two-processes-side-by-side rows")
    parser.add_argument("--merge", action="store_true", help="keep the rows of an earlier run in --out")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "stability_throughput.json")
    args = parser.parse_args(argv)

    if args.worker:
        with tempfile.TemporaryDirectory() as tmp:
            spec = {**SMALL, **VARIANTS[args.worker]}
            print(json.dumps(time_variant(spec, args.steps, args.rounds, Path(tmp))))
        return {}

    names = args.only or list(VARIANTS)
    results, pairs = {}, {}
    if args.merge and args.out.is_file():
        earlier = json.loads(args.out.read_text())
        results, pairs = earlier.get("results", {}), earlier.get("two_processes", {})
    # Each variant in a fresh process, alone on the machine: torch's thread pool size is fixed at
    # first use, and nothing else competes for the cores.
    for name in names:
        results[name] = parse_worker(run_in_subprocess(name, args.steps, args.rounds))
        r = results[name]
        print(f"{name:<14} {r['steps_per_s']:7.2f} steps/s x {r['spec']['replicas']:>3} replicas = "
              f"{r['trajectory_ps_per_s']:.3f} trajectory-ps/s  (check {1e3 * r['check_s']:.1f} ms, "
              f"{r['torch_threads']} torch threads)", flush=True)
    if not args.no_pairs:
        for name in ("small", "cpu"):
            if name not in names:
                continue
            # Two one-thread processes at once: what a pool of 2 workers gets on 2 cores.
            procs = [run_in_subprocess(f"{name}_threads1" if f"{name}_threads1" in VARIANTS else "threads1",
                                       args.steps, args.rounds) for _ in range(2)]
            both = [parse_worker(p) for p in procs]
            total = sum(b["trajectory_ps_per_s"] for b in both)
            pairs[name] = {"per_process": both, "trajectory_ps_per_s": total}
            print(f"{name:<14} 2 processes x 1 thread: {total:.3f} trajectory-ps/s together", flush=True)
    base = results.get("small", {}).get("trajectory_ps_per_s")
    table = {name: {"trajectory_ps_per_s": r["trajectory_ps_per_s"], "steps_per_s": r["steps_per_s"],
                    "replicas": r["spec"]["replicas"],
                    "speedup_vs_small": (r["trajectory_ps_per_s"] / base) if base else None}
             for name, r in results.items()}
    for name, p in pairs.items():
        table[f"{name}_2procs_x_1thread"] = {"trajectory_ps_per_s": p["trajectory_ps_per_s"],
                                             "speedup_vs_small": (p["trajectory_ps_per_s"] / base) if base else None}
    report = {"machine": machine(), "molecule": "paracetamol (20 atoms)", "temperature_K": 800.0,
              "timestep_fs": 1.0, "baseline_spec": SMALL, "variants": VARIANTS, "table": table,
              "results": results, "two_processes": pairs,
              "notes": "one factor at a time from the 'small' preset, then the combination used by the cpu "
                       "stability preset; each row in its own process, alone on the machine; medians of rounds"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
