"""Subcommand ``train``: MACE models with mace-torch's own training, one per seed."""

from __future__ import annotations

import argparse
import ast
import re

from ..cli_checks import DistinctSeeds, existing_file, positive_int, random_seed
from ..cli_common import add_executor_options

#: What mace_run_train's --E0s takes besides a table.
MACE_E0S_KEYWORDS = ("average", "estimated", "foundation")


def register(subparsers) -> None:
    from .presets import TRAINING_PRESETS

    presets = "; ".join(f"{name}: {preset.description}" for name, preset in TRAINING_PRESETS.items())
    train = subparsers.add_parser(
        "train", help="train MACE models (mace_run_train) on labelled extxyz, several seeds",
        description="Train one MACE model per seed with mace-torch's mace_run_train. Writes OUT/seed_<k>/ with "
                    "the model, mace's logs and checkpoints, and a learning-curve PNG. Resumable: rerun the "
                    f"same command after an interruption. Presets -- {presets}.")
    train.add_argument("--train", required=True, type=existing_file,
                       help="training extxyz (REF_energy, REF_forces)")
    train.add_argument("--valid", required=True, type=existing_file, help="validation extxyz")
    train.add_argument("-o", "--out", required=True, help="output directory")
    train.add_argument("--preset", default="quick", choices=sorted(TRAINING_PRESETS))
    train.add_argument("--seeds", type=random_seed, nargs="+", action=DistinctSeeds, default=[0],
                       help="random seeds (one model each)")
    train.add_argument("--e0s", default=None, type=_e0s,
                       help="isolated-atom energies: the labeller's .e0s.json, 'average' or another "
                            "mace_run_train --E0s value (default: TRAIN-stem.e0s.json beside the training file)")
    train.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a mace_run_train option of the preset, e.g. --set max_num_epochs=200 "
                            "--set swa=True; KEY=None removes it (repeatable)")
    train.add_argument("--device", default=None, type=_device, help="cpu or cuda (default: cuda when available)")
    train.add_argument("--threads-per-seed", type=positive_int, default=None,
                       help="OMP_NUM_THREADS of each training run")
    add_executor_options(train)
    train.set_defaults(handler=_train)


def _device(text: str) -> str:
    """A torch device name mace_run_train accepts (whether it is present is torch's to say, when it runs)."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps|xpu", text):
        raise argparse.ArgumentTypeError(f"must be cpu, cuda, cuda:N, mps or xpu, got {text!r}")
    return text


def _e0s(text: str) -> str:
    """A mace E0s keyword, a ``{Z: eV}`` table or an existing .e0s.json: anything else would reach
    mace_run_train as a keyword and fail there, once per seed."""
    if text.lower() in MACE_E0S_KEYWORDS:
        return text
    if text.lstrip().startswith("{"):
        try:
            if isinstance(ast.literal_eval(text), dict):
                return text
        except (ValueError, SyntaxError):
            pass
        raise argparse.ArgumentTypeError(f"is not a {{Z: energy in eV}} table: {text!r}")
    return existing_file(text)


def parse_overrides(items: list[str]) -> dict:
    """``["a=1", "b=True", "c=None", "d=text"]`` -> ``{"a": 1, "b": True, "c": None, "d": "text"}``."""
    from ..errors import TrainingError

    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise TrainingError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        overrides[key.strip()] = value
    return overrides


def _train(args: argparse.Namespace) -> int:
    import contextlib

    from .mace_train import train_mace

    overrides = parse_overrides(args.overrides)
    if args.workers or args.dask_scheduler:
        from ..cli_common import executor_from_args

        context = executor_from_args(args)
    else:  # seeds one after the other: each mace run already uses every core
        context = contextlib.nullcontext(None)
    with context as executor:
        models = train_mace(args.train, args.valid, args.out, preset=args.preset, seeds=args.seeds, e0s=args.e0s,
                            overrides=overrides, device=args.device, executor=executor,
                            threads_per_seed=args.threads_per_seed, progress=True)
    stress = all(m.valid_stress_rmse_mev_per_angstrom3 is not None for m in models)
    print(f"validation errors:\n{'seed':>5} {'E RMSE meV/atom':>16} {'F RMSE meV/A':>13}"
          + (f" {'stress RMSE meV/A^3':>20}" if stress else "") + "  model")
    for model in models:
        print(f"{model.seed:>5} {model.valid_energy_rmse_mev_per_atom:>16.2f} "
              f"{model.valid_forces_rmse_mev_per_angstrom:>13.1f}"
              + (f" {model.valid_stress_rmse_mev_per_angstrom3:>20.3f}" if stress else "") + f"  {model.model_path}")
    return 0
