"""Does hydrogen mass repartitioning at 2 fs give the GAFF density of 1 fs without it? (issue 24, item 2)

GAFF NPT of EMC at 298.15 K and 1 bar, the protocol ``physembed density`` runs (Langevin middle,
1/ps, Monte Carlo barostat every 25 steps), twice from the same packed box and seed:

a. 1 fs, the force field's masses;
b. 2 fs, hydrogens at ``--hydrogen-mass`` amu (3 by default), taken from their heavy atoms.

Each density is the package's estimate (pymbar equilibration detection over the whole run, then
the mean with a statistical-inefficiency standard error: ``properties/density/estimators.py``).
HMR holds up when the two agree within 2 combined standard errors with both errors at most
``--target-stderr`` (0.003 g/cm3); the speed-up is the ratio of ns/day, timed on the same
machine in the same call, and of effectively independent samples per wall hour. The boxes are
the liquid table's size (16 EMC, GAFF cutoff 0.45 box edges, as ``physembed liquid-dataset``)
and optionally 100 molecules (``--n-molecules 16 100``, cutoff 1.0 nm).

Resumable: rerun the same command to continue (a longer ``--ps`` is a new run in its own
directory). Writes ``benchmarks/results/liquid/hmr_check.json``. Usage::

    python benchmarks/liquid/hmr_density_check.py                 # the check, ~2 ns per variant
    python benchmarks/liquid/hmr_density_check.py --ps 4 --results /tmp/hmr_check.json   # smoke run
"""

from __future__ import annotations

import argparse
import importlib.metadata
import math
import os
import platform as host_platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parents[1] / "results" / "liquid" / "hmr_check.json"
# Frames 100 fs apart in both variants, so their effective sample counts compare per unit time.
FRAME_FS = 100.0
MIN_EFFECTIVE_TO_EXTRAPOLATE = 20.0


def gaff_emc_box(n_molecules: int, seed: int):
    """The packed EMC box, its pure GAFF System (cutoff as the liquid dataset's GAFF NPT) and cutoff.

    Pure GAFF, without the switched-off CSO term ``physembed density`` carries: it adds cost, not physics.
    """
    from openmm_physembed.properties.experimental import lookup
    from openmm_physembed.properties.liquid import LiquidSpec

    box = LiquidSpec.from_experiment(lookup("EMC", 298.15), n_molecules, seed=seed).pack("bcc")
    cutoff_nm = min(1.0, round(0.45 * box.box_edge_nm, 3))
    return box, box.create_system(nonbonded_cutoff_nm=cutoff_nm), cutoff_nm


def protocol_for(timestep_fs: float, hydrogen_mass_amu: float | None, ps: float, platform: str | None, seed: int):
    from openmm_physembed.properties.density.npt import NPTProtocol
    from openmm_physembed.simulation.dynamics import Dynamics

    dynamics = Dynamics(298.15, timestep_fs, pressure_bar=1.0, seed=seed, platform=platform,
                        hydrogen_mass_amu=hydrogen_mass_amu)
    n_steps = int(round(ps * 1000.0 / timestep_fs))
    # The whole run is the averaging window: equilibration detection decides where averaging starts.
    return NPTProtocol(dynamics, n_steps=n_steps, report_interval=max(1, int(round(FRAME_FS / timestep_fs))),
                       average_last_ps=ps)


def time_variants(setup, protocols, n_steps: int, rounds: int) -> list[dict]:
    """Median steps/s of each protocol's NPT on ``setup``, timed in alternating rounds.

    Alternating rounds, each variant in its own Context, so that load from other work on the
    machine falls on both alike: on shared cores one-off timings of the same run differ by 2x.
    """
    from openmm_physembed.simulation.engine import MDEngine

    engines = [MDEngine(setup.system(), setup.topology, setup.positions_nm, p.dynamics,
                        box_vectors_nm=setup.box_vectors_nm) for p in protocols]
    try:
        for md in engines:
            md.start(minimize_iterations=20)  # packmol contacts would make the first steps unrepresentative
            md.simulation.step(20)
        rates = [[] for _ in engines]
        for _ in range(rounds):
            for md, rate in zip(engines, rates):
                started = time.perf_counter()
                md.simulation.step(n_steps)
                rate.append(n_steps / (time.perf_counter() - started))
        return [{"steps_per_second": float(np.median(r)), "rounds": [round(x, 1) for x in r],
                 "platform": md.context.getPlatform().getName()} for md, r in zip(engines, rates)]
    finally:
        for md in engines:
            md.close()


def run_variant(name: str, setup, protocol, out_dir: Path, timing: dict) -> dict:
    from openmm_physembed.properties.density.npt import run_density

    system = setup.system()
    started = time.perf_counter()
    result = run_density(setup, out_dir, protocol, system=system, progress=True)
    wall_s = time.perf_counter() - started
    dt_fs = protocol.dynamics.timestep_fs
    density = result.density
    production_ps = result.window.n_frames * FRAME_FS * 1e-3
    return {
        "variant": name,
        "timestep_fs": dt_fs,
        "hydrogen_mass_amu": protocol.dynamics.hydrogen_mass_amu,
        "simulated_ps": protocol.simulated_ps,
        "density_g_cm3": density.value,
        "stderr_g_cm3": density.stderr,
        "n_effective": density.n_effective,
        "trusted": density.trusted,
        "note": density.note,
        "window": {"start_frame": result.window.start, "n_frames": result.window.n_frames, "g": result.window.g,
                   "equilibrated": result.window.equilibrated, "production_ps": production_ps},
        "ps_per_effective_sample": production_ps / density.n_effective if density.n_effective else None,
        # The density divides this (the System's masses before the engine repartitions them) by the volume.
        "total_mass_amu": setup.total_mass_amu,
        "total_mass_during_run_amu": _mass_in_run(system, setup.topology, protocol),
        **timing,
        "ns_per_day": dt_fs * 1e-6 * timing["steps_per_second"] * 86400.0,
        "wall_s_this_call": wall_s,
        "directory": str(out_dir),
    }


def _mass_in_run(system, topology, protocol) -> float:
    from openmm_physembed.simulation.masses import particle_masses_amu, repartitioned_masses

    hydrogen_mass = protocol.dynamics.hydrogen_mass_amu
    masses = particle_masses_amu(system) if hydrogen_mass is None else repartitioned_masses(system, topology,
                                                                                            hydrogen_mass)
    return float(masses.sum())


def compare(plain: dict, hmr: dict, target_stderr: float) -> dict:
    difference = hmr["density_g_cm3"] - plain["density_g_cm3"]
    combined = math.hypot(hmr["stderr_g_cm3"], plain["stderr_g_cm3"])
    z = difference / combined if combined > 0 else float("inf")
    precise = max(hmr["stderr_g_cm3"], plain["stderr_g_cm3"]) <= target_stderr and plain["trusted"] and hmr["trusted"]
    if not precise:
        verdict = (f"inconclusive: standard errors {plain['stderr_g_cm3']:.4f} and {hmr['stderr_g_cm3']:.4f} g/cm3 "
                   f"(target {target_stderr}){'' if plain['trusted'] and hmr['trusted'] else ', untrusted'}; "
                   "run longer (--ps)")
    elif abs(z) <= 2:
        verdict = f"HMR holds up: the densities differ by {z:+.2f} combined standard errors"
    else:
        verdict = f"HMR changes the density: {z:+.2f} combined standard errors"

    def samples_per_hour(run):
        ps_per_sample = run["ps_per_effective_sample"]
        return 3600.0 * run["ns_per_day"] * 1000.0 / 86400.0 / ps_per_sample if ps_per_sample else None

    per_hour = [samples_per_hour(plain), samples_per_hour(hmr)]
    return {
        "difference_g_cm3": difference,
        "combined_stderr_g_cm3": combined,
        "difference_in_combined_stderr": z,
        "within_2_stderr": abs(z) <= 2,
        "stderr_target_met": precise,
        "speedup_ns_per_day": hmr["ns_per_day"] / plain["ns_per_day"],
        "effective_samples_per_wall_hour": {"1fs": per_hour[0], "2fs_hmr": per_hour[1]},
        "verdict": verdict,
    }


def wall_time_needed(run: dict, target_stderr: float) -> float | None:
    """Wall seconds for a standard error of ``target_stderr``, from this run's g and speed; None from a run
    too short for that (pymbar's g of a series a few correlation times long is bounded by its length)."""
    if not run["trusted"] or not run["stderr_g_cm3"] > 0 or run["n_effective"] < MIN_EFFECTIVE_TO_EXTRAPOLATE:
        return None
    production_ps = run["window"]["production_ps"] * (run["stderr_g_cm3"] / target_stderr) ** 2
    equilibration_ps = run["window"]["start_frame"] * FRAME_FS * 1e-3
    return (equilibration_ps + production_ps) * 1000.0 / run["timestep_fs"] / run["steps_per_second"]


def machine() -> dict:
    cpu = host_platform.processor() or host_platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = {}
    for package in ("openmm", "parmed", "pymbar", "numpy"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "python": host_platform.python_version(),
            "openmm_cpu_threads": os.environ.get("OPENMM_CPU_THREADS"), **versions}


def main(argv: list[str] | None = None) -> int:
    from openmm_physembed.io import write_json
    from openmm_physembed.properties.density.wall_time import format_hours
    from openmm_physembed.simulation.liquid_setup import LiquidSetup

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-molecules", type=int, nargs="+", default=[16], help="EMC molecules per box")
    parser.add_argument("--ps", type=float, default=2000.0, help="simulated ps per variant")
    parser.add_argument("--hydrogen-mass", type=float, default=3.0, help="amu, variant b")
    parser.add_argument("--timestep", type=float, default=2.0, help="fs, variant b")
    parser.add_argument("--target-stderr", type=float, default=0.003, help="g/cm3")
    parser.add_argument("--timing-steps", type=int, default=1000, help="steps per timing round and variant")
    parser.add_argument("--timing-rounds", type=int, default=5, help="alternating timing rounds (median kept)")
    parser.add_argument("--platform", default="CPU", help="OpenMM platform (the small box would get Reference)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", default="runs/hmr_density_check")
    parser.add_argument("--results", default=str(RESULTS))
    args = parser.parse_args(argv)

    report = {"liquid": "EMC", "temperature_K": 298.15, "pressure_bar": 1.0, "base": "GAFF (AM1-BCC), flexible bonds",
              "ps_per_variant": args.ps, "target_stderr_g_cm3": args.target_stderr, "machine": machine(),
              "boxes": {}}
    rows = []
    for n in args.n_molecules:
        box, system, cutoff_nm = gaff_emc_box(n, args.seed)
        setup = LiquidSetup.from_system(system, box.topology, box.positions_nm, box.box_vectors_nm, label="EMC")
        out = Path(args.out) / f"emc{n}_{args.ps:g}ps"
        variants = (("1fs", 1.0, None), (f"{args.timestep:g}fs_hmr{args.hydrogen_mass:g}", args.timestep,
                                         args.hydrogen_mass))
        protocols = [protocol_for(dt, hm, args.ps, args.platform, args.seed) for _, dt, hm in variants]
        timings = time_variants(setup, protocols, args.timing_steps, args.timing_rounds)
        runs = [run_variant(name, setup, protocol, out / name, timing)
                for (name, _, _), protocol, timing in zip(variants, protocols, timings)]
        comparison = compare(*runs, args.target_stderr)
        needed = [wall_time_needed(run, args.target_stderr) for run in runs]
        report["boxes"][str(n)] = {"n_molecules": n, "n_atoms": box.n_atoms, "box_edge_nm": box.box_edge_nm,
                                   "gaff_cutoff_nm": cutoff_nm, "runs": runs, "comparison": comparison,
                                   "wall_s_for_target_stderr": dict(zip((v[0] for v in variants), needed))}
        for run, seconds in zip(runs, needed):
            rows.append((n, run, seconds))
        write_json(args.results, report)  # after every box: a long multi-box run leaves what it finished

    print(f"\nGAFF EMC, 298.15 K, 1 bar, {args.ps:g} ps per variant; {report['machine']['cpu']}, "
          f"{report['machine']['cores']} cores, OpenMM {report['machine']['openmm']}")
    print(f"{'mol':>4} {'variant':>12} {'density g/cm3':>20} {'N_eff':>6} {'g':>6} {'steps/s':>8} {'ns/day':>7} "
          f"{'wall for SE target':>18}")
    for n, run, seconds in rows:
        estimate = f"{run['density_g_cm3']:.4f} ± {run['stderr_g_cm3']:.4f}"
        print(f"{n:>4} {run['variant']:>12} {estimate:>20} {run['n_effective']:>6.1f} {run['window']['g']:>6.1f} "
              f"{run['steps_per_second']:>8.0f} {run['ns_per_day']:>7.2f} "
              f"{format_hours(seconds) if seconds else 'run too short':>18}")
    for n, box in report["boxes"].items():
        c = box["comparison"]
        print(f"{n} molecules: difference {c['difference_g_cm3']:+.4f} g/cm3 = "
              f"{c['difference_in_combined_stderr']:+.2f} combined SE; ns/day x{c['speedup_ns_per_day']:.2f}; {c['verdict']}")
    print(f"-> {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
