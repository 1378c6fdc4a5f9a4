"""Subcommand ``stability``: the whole benchmark pipeline for one molecule."""

from __future__ import annotations

import argparse

from ..cli_checks import (
    DistinctSeeds,
    non_negative_int,
    platform_name,
    positive_float,
    positive_int,
    random_seed,
)
from ..cli_common import add_executor_options, add_molecule_argument, molecule_from_args


def register(subparsers) -> None:
    from ..training.presets import TRAINING_PRESETS
    from .protocol import PRESETS

    parser = subparsers.add_parser(
        "stability", help="stability benchmark of bond-length sampling for one molecule",
        description="GAFF reference MD -> bond-length sampling -> GFN2-xTB labels -> MACE (baseline and "
                    "augmented, several seeds) -> batched 800 K MD -> collapse report and plots. Resumable: "
                    "rerun the same command after an interruption.")
    add_molecule_argument(parser)
    parser.add_argument("--preset", choices=list(PRESETS), default="quick",
                        help="quick: ~15 min on 2 CPU cores, too small to separate the arms; cpu: sized to "
                             "separate them on 2 CPU cores (~1.5 h per molecule); paper: the published protocol (GPU)")
    parser.add_argument("-o", "--out", default=None, help="output directory (default runs/stability/<molecule>_<preset>)")
    parser.add_argument("--seeds", type=random_seed, nargs="+", action=DistinctSeeds, default=None,
                        help="MACE training seeds")
    parser.add_argument("--n-starts", type=positive_int, default=None, help="start structures per model")
    parser.add_argument("--test-ps", type=positive_float, default=None, help="length of each 800 K trajectory (ps)")
    parser.add_argument("--temperature", type=positive_float, default=None, help="test temperature (K)")
    parser.add_argument("--training-preset", choices=sorted(TRAINING_PRESETS), default=None,
                        help="MACE preset (quick, small, cpu, paper; default: the stability preset's)")
    parser.add_argument("--md-dtype", choices=["float32", "float64"], default=None)
    parser.add_argument("--angles-per-structure", type=non_negative_int, default=None,
                        help="bonded angles bent per augmented structure (0 = bond-length sampling alone, as "
                             "published; default: the preset's, 1 for quick and cpu)")
    parser.add_argument("--random-draw", action="store_true",
                        help="the paper's random bond draw alone, no structure reserved per bond/angle type "
                             "(default for --preset paper; quick and cpu cover every type)")
    parser.add_argument("--platform", type=platform_name, default=None,
                        help="OpenMM platform for the MLFF MD (default automatic)")
    parser.add_argument("--charge-method", choices=["bcc", "gasteiger"], default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_options(parser)
    parser.set_defaults(handler=_stability, workers=None)
    for action in parser._actions:
        if action.dest == "workers":
            action.help = "local worker processes (default: one per CPU core, one on a GPU machine)"


def default_stability_workers() -> int:
    """One process per core on the CPU, one in all on a GPU.

    The stability jobs (xTB labels, MACE training, TorchForce MD) hold no CustomNonbondedForce, so
    OpenMM 8.6.1's shared-core slow mode does not apply; and small MACE graphs do not keep two
    intra-op threads busy: paracetamol on 2 cores, two 1-thread workers give 1.45x the
    trajectory-ps of one 2-thread process (benchmarks/results/stability_throughput.json).
    """
    import os

    from ..simulation.platforms import available_platforms

    if "CUDA" in available_platforms():
        return 1
    return max(1, os.cpu_count() or 1)


def _stability(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .pipeline import run_stability
    from .protocol import get_protocol

    molecule = molecule_from_args(args)
    protocol = get_protocol(args.preset).with_changes(
        seeds=tuple(args.seeds) if args.seeds else None, n_starts=args.n_starts, test_ps=args.test_ps,
        temperature_K=args.temperature, training_preset=args.training_preset, md_dtype=args.md_dtype,
        angles_per_structure=args.angles_per_structure,
        cover_every_type=False if args.random_draw else None,
        charge_method=args.charge_method)
    out = Path(args.out or f"runs/stability/{molecule.name}_{protocol.name}")
    if args.workers is None and not args.serial and not args.dask_scheduler:
        args.workers = default_stability_workers()
    executor_wanted = (args.workers or 0) > 1 or args.dask_scheduler
    if executor_wanted:
        from ..cli_common import executor_from_args

        with executor_from_args(args) as executor:
            result = run_stability(molecule, out, protocol, executor, progress=not args.quiet,
                                   md_platform=args.platform)
    else:
        result = run_stability(molecule, out, protocol, None, progress=not args.quiet, md_platform=args.platform)
    from .explain import format_explanations
    from .report import is_underpowered

    print(f"\n{molecule.name}: {protocol.temperature_K:g} K, {protocol.test_ps:g} ps per trajectory, "
          f"{len(protocol.seeds)} seeds x {protocol.n_starts} starts per arm")
    print(result.text())
    augmented_collapses = format_explanations(result.collapses or [], "augmented")
    if augmented_collapses:
        print("augmented collapses (bond, its length, the range the model was trained on):")
        print(augmented_collapses)
    if is_underpowered(result.summaries):
        print("NOTE: this exposure is too small to separate the arms (even the published baseline hazard would "
              "give p < 0.01 less than 80% of the time). Run `physembed stability MOLECULE --preset cpu` or see "
              "the committed results in benchmarks/results/stability/ (README, 'Stability').")
    print(f"report: {result.report_path}")
    for name, path in result.plots.items():
        print(f"plot ({name}): {path}")
    print(f"wall time {result.wall_s / 60:.1f} min")
    return 0
