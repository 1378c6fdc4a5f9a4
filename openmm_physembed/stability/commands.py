"""Subcommand ``stability``: the whole benchmark pipeline for one molecule."""

from __future__ import annotations

import argparse

from ..cli_common import add_executor_options, add_molecule_argument, molecule_from_args


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "stability", help="stability benchmark of bond-length sampling for one molecule",
        description="GAFF reference MD -> bond-length sampling -> GFN2-xTB labels -> MACE (baseline and "
                    "augmented, several seeds) -> batched 800 K MD -> collapse report and plots. Resumable: "
                    "rerun the same command after an interruption.")
    add_molecule_argument(parser)
    parser.add_argument("--preset", choices=["quick", "paper"], default="quick",
                        help="quick: minutes on a CPU; paper: the published protocol (GPU)")
    parser.add_argument("-o", "--out", default=None, help="output directory (default runs/stability/<molecule>_<preset>)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="MACE training seeds")
    parser.add_argument("--n-starts", type=int, default=None, help="start structures per model")
    parser.add_argument("--test-ps", type=float, default=None, help="length of each 800 K trajectory (ps)")
    parser.add_argument("--temperature", type=float, default=None, help="test temperature (K)")
    parser.add_argument("--training-preset", default=None, help="MACE preset (quick, paper)")
    parser.add_argument("--md-dtype", choices=["float32", "float64"], default=None)
    parser.add_argument("--platform", default=None, help="OpenMM platform for the MLFF MD (default automatic)")
    parser.add_argument("--charge-method", choices=["bcc", "gasteiger"], default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_options(parser)
    parser.set_defaults(handler=_stability, workers=None)


def _stability(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .pipeline import run_stability
    from .protocol import get_protocol

    molecule = molecule_from_args(args)
    protocol = get_protocol(args.preset).with_changes(
        seeds=tuple(args.seeds) if args.seeds else None, n_starts=args.n_starts, test_ps=args.test_ps,
        temperature_K=args.temperature, training_preset=args.training_preset, md_dtype=args.md_dtype,
        charge_method=args.charge_method)
    out = Path(args.out or f"runs/stability/{molecule.name}_{protocol.name}")
    executor_wanted = args.workers or args.dask_scheduler
    if executor_wanted:
        from ..cli_common import executor_from_args

        with executor_from_args(args) as executor:
            result = run_stability(molecule, out, protocol, executor, progress=not args.quiet,
                                   md_platform=args.platform)
    else:
        result = run_stability(molecule, out, protocol, None, progress=not args.quiet, md_platform=args.platform)
    print(f"\n{molecule.name}: collapse probability over {protocol.test_ps:g} ps at {protocol.temperature_K:g} K")
    for method, s in result.summaries.items():
        low, high = s["collapse_probability_ci95"]
        print(f"  {method:<10} {100 * s['collapse_probability']:5.1f}%  ({s['n_collapsed']}/{s['n_trajectories']}, "
              f"95% CI {100 * low:.0f}-{100 * high:.0f}%)  mean survival {s['mean_survival_ps']:.2f} ps")
    print(f"report: {result.report_path}")
    for name, path in result.plots.items():
        print(f"plot ({name}): {path}")
    print(f"wall time {result.wall_s / 60:.1f} min")
    return 0
