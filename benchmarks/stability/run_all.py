"""Stability benchmark for the three published molecules, with one summary table and chart.

Runs :func:`openmm_physembed.run_stability` (the same pipeline as ``physembed stability``) for
Novec 7000, Ac-Ala3-NHMe and paracetamol, one after the other, each into ``OUT/<molecule>``
(resumable: rerun to continue), then writes

- ``OUT/summary.md``: per molecule and arm, collapses / exposure (trajectory-ps), hazard with its
  exact 95% interval, the implied probability of collapse within 100 ps beside the published one,
  and the rate ratio augmented / baseline with its exact interval and p-value;
- ``OUT/summary.json`` in the layout of ``benchmarks/results/stability/summary.json``;
- ``OUT/collapse_probability.png``: grouped bars, baseline vs bond-length sampling.

``--results DIR`` also copies each molecule's report, survival plot and the summary there
(the committed ``benchmarks/results/stability/``). Molecules that have not finished are skipped
in the summary with a note (rerun to continue them).

Usage::

    python benchmarks/stability/run_all.py --preset cpu --molecules paracetamol --results benchmarks/results/stability
    python benchmarks/stability/run_all.py --preset paper --workers 4     # GPU machine

The ``paper`` preset is the published protocol (5 seeds x 20 starts x 100 ps at 800 K, ``paper``
MACE preset): GPU work. ``cpu`` takes ~1.5 h per molecule on 2 CPU cores, ``quick`` ~15 min.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# The peptide by the paper's formula, C6H12N2O2 (Ac-Ala-NHMe); `--molecules ac-ala3-nhme` for the
# capped tri-alanine its name suggests.
MOLECULES = ("novec7000", "ac-ala-nhme", "paracetamol")


def summary_table(summary: dict[str, dict], test_ps: float, temperature_K: float) -> str:
    """Markdown table of ``summary[molecule]`` entries (:func:`report.molecule_summary`)."""
    lines = [f"Stability at {temperature_K:g} K, {test_ps:g} ps per trajectory; hazard = collapses per "
             "trajectory-ps (exact 95% interval); P(100 ps) = 1 - exp(-100 hazard); rate ratio = augmented / "
             "baseline hazard. Trajectory level: every trajectory independent (exact conditional binomial test); "
             "model level: the trained model is the unit (exact permutation test over models, negative-binomial "
             "rate ratio with profile-likelihood interval); both two-sided", "",
             "| molecule | arm | models | collapsed / exposure | hazard (1/ps) | P(collapse in 100 ps) | published | "
             "trajectory-level rate ratio | p | model-level rate ratio | p |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for molecule, entry in summary.items():
        for arm in ("baseline", "augmented"):
            a = entry[arm]
            h, p = a["hazard_per_ps"], a["p100"]
            published = entry["published_p100"].get(arm)
            rr = entry["rate_ratio"]
            m = entry.get("model_level")
            tail = (f"{rr[0]:.2g} ({rr[1]:.2g}-{rr[2]:.2g}) | {entry['p_value']:.2g}" if arm == "augmented"
                    else " | ")
            mr = m["rate_ratio"] if m else None
            tail += (f" | {mr[0]:.2g} ({mr[1]:.2g}-{mr[2]:.2g}) | {m['p_value']:.2g}" if m and arm == "augmented"
                     else " | | ")
            n_models = m["n_models"][0 if arm == "baseline" else 1] if m else ""
            lines.append(f"| {molecule} | {arm} | {n_models} | {a['collapses']}/{a['trajectories']} in {a['exposure_ps']:.0f} ps | "
                         f"{h[0]:.2g} ({h[1]:.2g}-{h[2]:.2g}) | {100 * p[0]:.0f}% ({100 * p[1]:.0f}-{100 * p[2]:.0f}%) | "
                         f"{'' if published is None else f'{100 * published:.0f}%'} | {tail} |")
    return "\n".join(lines) + "\n"


def protocol_overrides(items: list[str]) -> dict:
    """``["angles_per_structure=3"]`` -> ``{"angles_per_structure": 3}``, refusing fields StabilityProtocol lacks.

    The KEY=VALUE parsing is ``physembed train --set``'s (literal values, else text).
    """
    from dataclasses import fields

    from openmm_physembed.errors import TrainingError
    from openmm_physembed.stability.protocol import StabilityProtocol
    from openmm_physembed.training.commands import parse_overrides

    known = {f.name for f in fields(StabilityProtocol)}
    try:
        overrides = parse_overrides(items)
    except TrainingError as exc:
        raise SystemExit(str(exc)) from None
    if unknown := sorted(set(overrides) - known):
        raise SystemExit(f"--set {', '.join(unknown)}: not a StabilityProtocol field; one of {', '.join(sorted(known))}")
    return overrides


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    from openmm_physembed.stability.protocol import PRESETS

    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--results", type=Path, default=None,
                        help="also copy reports, plots and summary here (e.g. benchmarks/results/stability)")
    parser.add_argument("--summarize-only", action="store_true",
                        help="do not run anything; summarise the finished molecules under --out")
    parser.add_argument("--molecules", nargs="+", default=list(MOLECULES))
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="MACE training seeds (default: the preset's)")
    parser.add_argument("--out", type=Path, default=None, help="default runs/stability_benchmark_<preset>")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: in-process)")
    parser.add_argument("--platform", default=None, help="OpenMM platform of the MLFF MD")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="change a StabilityProtocol field of the preset, e.g. --set angles_per_structure=3 "
                             "--set n_frames=100 --set training_preset=small (repeatable; one design per --out)")
    args = parser.parse_args(argv)

    import shutil
    from dataclasses import replace

    from openmm_physembed import Molecule, run_stability
    from openmm_physembed.executors import make_executor
    from openmm_physembed.io import write_json
    from openmm_physembed.stability.plots import plot_collapse_bars
    from openmm_physembed.stability.protocol import get_protocol
    from openmm_physembed.stability.report import claim_level, molecule_summary

    protocol = replace(get_protocol(args.preset), **protocol_overrides(args.overrides))
    if args.seeds:
        protocol = replace(protocol, seeds=tuple(args.seeds))
    if args.platform:
        protocol = replace(protocol, test_md=replace(protocol.test_md, platform=args.platform))
    out = args.out or Path(f"runs/stability_benchmark_{args.preset}")
    summary, summaries, wall, protocols = {}, {}, {}, {}
    for name in args.molecules:
        molecule = Molecule.from_any(name)
        report_path = out / molecule.name / "stability_report.json"
        if args.summarize_only:
            if not report_path.is_file():
                print(f"=== {molecule.name}: not finished, skipped")
                continue
            report = json.loads(report_path.read_text())
        else:
            print(f"=== {molecule.name} ({protocol.name} preset)")
            if args.workers:
                with make_executor(max_workers=args.workers) as executor:
                    result = run_stability(molecule, out / molecule.name, protocol, executor)
            else:
                result = run_stability(molecule, out / molecule.name, protocol, None)
            report = json.loads(result.report_path.read_text())
        summaries[molecule.name] = report["summary"]
        protocols[molecule.name] = report["protocol"]
        if "model_level" not in report["comparison"]:  # a report made before model-level inference
            from openmm_physembed.stability.report import model_level

            test = report["protocol"]  # older reports flattened the test Dynamics into the protocol
            timestep_fs = test["test_md"]["timestep_fs"] if "test_md" in test else test["timestep_fs"]
            report["comparison"]["model_level"] = model_level(report["trajectories"], test["test_ps"], timestep_fs)
        summary[molecule.name] = molecule_summary(report["summary"], report["comparison"], molecule.name)
        summary[molecule.name]["claim"] = claim_level(report["comparison"])
        wall[molecule.name] = report["wall_time_s"]["total_s"]
        if args.results:
            target = args.results / molecule.name
            target.mkdir(parents=True, exist_ok=True)
            slim = {k: v for k, v in report.items() if k != "plots"}
            (target / "stability_report.json").write_text(json.dumps(slim, indent=1))
            for plot in ("survival.png", "collapse_probability.png", "augmentation/bond_length_distributions.png"):
                source = out / molecule.name / plot
                if source.is_file():
                    shutil.copy(source, target / Path(plot).name)
    if not summary:
        print("nothing finished yet")
        return {}
    table = summary_table(summary, protocol.test_ps, protocol.temperature_K)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.md").write_text(table)
    # What the reports were run with (a summary of older runs must not show today's preset).
    ran = protocols[next(iter(protocols))]
    document = {"preset": ran.get("name", protocol.name),
                "protocol": {k: ran.get(k) for k in ("seeds", "n_starts", "test_ps", "training_preset",
                                                     "angles_per_structure", "cover_every_type")}
                | {"temperature_K": protocol.temperature_K},
                **summary, "wall_s": wall}
    write_json(out / "summary.json", document)
    chart = plot_collapse_bars(summaries, out / "collapse_probability.png",
                               title=f"{protocol.name}: {protocol.test_ps:g} ps at {protocol.temperature_K:g} K")
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        write_json(args.results / "summary.json", document)
        (args.results / "summary.md").write_text(table)
        shutil.copy(chart, args.results / "collapse_probability.png")
    print(table)
    print(f"table: {out / 'summary.md'}; chart: {chart}")
    return summary


if __name__ == "__main__":
    main()
