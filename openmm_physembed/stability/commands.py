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
from ..cli_common import add_executor_options, add_molecule_argument, given_options, molecule_from_args

DEFAULT_PRESET = "quick"


def register(subparsers) -> None:
    from ..training.presets import TRAINING_PRESETS
    from .protocol import PRESETS

    parser = subparsers.add_parser(
        "stability", help="stability benchmark of bond-length sampling for one molecule",
        description="GAFF reference MD -> bond-length sampling -> GFN2-xTB labels -> MACE (baseline and "
                    "augmented, several seeds) -> batched 800 K MD -> collapse report and plots. Resumable: "
                    "rerun the same command after an interruption.")
    add_molecule_argument(parser)
    parser.add_argument("--preset", choices=sorted(PRESETS), default=DEFAULT_PRESET,
                        help="; ".join(protocol.describe() for protocol in PRESETS.values())
                        + f" (default {DEFAULT_PRESET})")
    parser.add_argument("-o", "--out", default=None, help="output directory (default runs/stability/<molecule>_<preset>)")
    parser.add_argument("--seeds", type=random_seed, nargs="+", action=DistinctSeeds, default=None,
                        help="MACE training seeds")
    parser.add_argument("--n-starts", type=positive_int, default=None, help="start structures per model")
    parser.add_argument("--test-ps", type=positive_float, default=None, help="length of each 800 K trajectory (ps)")
    parser.add_argument("--temperature", type=positive_float, default=None, help="test temperature (K)")
    parser.add_argument("--training-preset", choices=sorted(TRAINING_PRESETS), default=None,
                        help="MACE preset (default: the one the stability preset names)")
    parser.add_argument("--md-dtype", choices=["float32", "float64"], default=None)
    parser.add_argument("--angles-per-structure", type=non_negative_int, default=None,
                        help="bonded angles bent per augmented structure (0 = bond-length sampling alone, as "
                             "published; default: the preset's, 1 for quick and cpu)")
    parser.add_argument("--random-draw", dest="cover_every_type", action="store_const", const=False, default=None,
                        help="the paper's random bond draw alone, no structure reserved per bond/angle type "
                             "(default for --preset paper; quick and cpu cover every type)")
    parser.add_argument("--platform", type=platform_name, default=None,
                        help="OpenMM platform for the MLFF MD (default automatic)")
    parser.add_argument("--charge-method", choices=["bcc", "gasteiger"], default=None)
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    add_executor_options(parser, workers_help="local worker processes (default: one per CPU core, one on a GPU "
                                              "machine)")
    parser.set_defaults(handler=_stability)


def protocol_from_args(args: argparse.Namespace):
    """The stability preset ``--preset`` with the options the user gave."""
    from dataclasses import replace

    from .protocol import get_protocol

    protocol = get_protocol(args.preset)
    changes = given_options(args, "seeds", "n_starts", "test_ps", "training_preset", "md_dtype",
                            "angles_per_structure", "cover_every_type", "charge_method")
    test_md = given_options(args, "platform", temperature_K="temperature")
    return replace(protocol, **changes, test_md=replace(protocol.test_md, **test_md))


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

    molecule = molecule_from_args(args)
    protocol = protocol_from_args(args)
    out = Path(args.out or f"runs/stability/{molecule.name}_{protocol.name}")
    print(f"stability preset {protocol.describe()}")
    if args.workers is None and not args.serial and not args.dask_scheduler:
        args.workers = default_stability_workers()
    executor_wanted = (args.workers or 0) > 1 or args.dask_scheduler
    if executor_wanted:
        from ..cli_common import executor_from_args

        with executor_from_args(args) as executor:
            result = run_stability(molecule, out, protocol, executor, progress=not args.quiet)
    else:
        result = run_stability(molecule, out, protocol, None, progress=not args.quiet)
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
