"""Stability benchmark for the three published molecules, with one summary table and chart.

Runs :func:`openmm_physembed.run_stability` (the same pipeline as ``physembed stability``) for
Novec 7000, Ac-Ala3-NHMe and paracetamol, one after the other, each into ``OUT/<molecule>``
(resumable: rerun to continue), then writes

- ``OUT/summary.md`` and ``OUT/summary.json``: collapse probability (95% Wilson interval), mean
  survival time, per molecule and method, next to the published numbers where given;
- ``OUT/collapse_probability.png``: grouped bars, baseline vs bond-length sampling.

Usage::

    python benchmarks/stability/run_all.py --preset quick --out runs/stability_benchmark
    python benchmarks/stability/run_all.py --preset paper --workers 4     # GPU machine

The ``paper`` preset is the published protocol (5 seeds x 20 starts x 100 ps at 800 K, ``paper``
MACE preset): GPU work. ``quick`` takes roughly 15-30 min per molecule on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

MOLECULES = ("novec7000", "ac-ala3-nhme", "paracetamol")


def summary_table(summaries: dict[str, dict[str, dict]], test_ps: float, temperature_K: float) -> str:
    lines = [f"Collapse within {test_ps:g} ps at {temperature_K:g} K (95% Wilson interval)", "",
             "| molecule | method | collapsed | probability | 95% CI | mean survival (ps) |",
             "|---|---|---|---|---|---|"]
    for molecule, by_method in summaries.items():
        for method, s in by_method.items():
            low, high = s["collapse_probability_ci95"]
            lines.append(f"| {molecule} | {method} | {s['n_collapsed']}/{s['n_trajectories']} | "
                         f"{100 * s['collapse_probability']:.0f}% | {100 * low:.0f}-{100 * high:.0f}% | "
                         f"{s['mean_survival_ps']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=("quick", "paper"), default="quick")
    parser.add_argument("--molecules", nargs="+", default=list(MOLECULES))
    parser.add_argument("--out", type=Path, default=None, help="default runs/stability_benchmark_<preset>")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: in-process)")
    parser.add_argument("--platform", default=None, help="OpenMM platform of the MLFF MD")
    args = parser.parse_args(argv)

    from openmm_physembed import Molecule, run_stability
    from openmm_physembed.executors import make_executor
    from openmm_physembed.io import write_json
    from openmm_physembed.stability.plots import plot_collapse_bars
    from openmm_physembed.stability.protocol import get_protocol

    protocol = get_protocol(args.preset)
    out = args.out or Path(f"runs/stability_benchmark_{args.preset}")
    summaries, wall = {}, {}
    for name in args.molecules:
        molecule = Molecule.from_any(name)
        print(f"=== {molecule.name} ({protocol.name} preset)")
        if args.workers:
            with make_executor(max_workers=args.workers) as executor:
                result = run_stability(molecule, out / molecule.name, protocol, executor, md_platform=args.platform)
        else:
            result = run_stability(molecule, out / molecule.name, protocol, None, md_platform=args.platform)
        summaries[molecule.name] = result.summaries
        wall[molecule.name] = result.wall_s
    table = summary_table(summaries, protocol.test_ps, protocol.temperature_K)
    (out / "summary.md").write_text(table)
    write_json(out / "summary.json", {"preset": protocol.name, "summaries": summaries, "wall_s": wall})
    chart = plot_collapse_bars(summaries, out / "collapse_probability.png",
                               title=f"{protocol.name}: {protocol.test_ps:g} ps at {protocol.temperature_K:g} K")
    print(table)
    print(f"table: {out / 'summary.md'}; chart: {chart}")
    return summaries


if __name__ == "__main__":
    main()
