"""Argument types of the ``physembed`` command line, so that a bad value stops a command with one
line before any work starts (not in training, after the GAFF MD, the sampling and the labels).

Each function is an argparse ``type=``: it takes the text and returns the value, or raises
:class:`argparse.ArgumentTypeError` saying what is wrong (argparse puts the option's name in
front, and ``cli.main`` prints it as one line). Checks that combine options sit at the top of
the handlers.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from .checks import MD_SEED_MAX, SEED_MAX, check_seeds


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def _bounded(text: str, kind: type, what: str, accept) -> int | float:
    """``text`` as ``kind`` when ``accept(value)``; else the one-line error saying ``what`` it must be."""
    value = _number(text, kind, what)
    if not accept(value):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A count, a number of steps or an interval: a whole number > 0."""
    return _bounded(text, int, "a whole number > 0", lambda v: v > 0)


def non_negative_int(text: str) -> int:
    """A count that may be zero (equilibration steps, angles per structure)."""
    return _bounded(text, int, "a whole number >= 0", lambda v: v >= 0)


def finite_float(text: str) -> float:
    """A pressure, a CSO parameter: any finite number."""
    return _number(text, float, "a finite number")


def positive_float(text: str) -> float:
    """A temperature (K), time step, length, density, tolerance: finite and > 0."""
    return _bounded(text, float, "a finite number > 0", lambda v: v > 0)


def non_negative_float(text: str) -> float:
    """A friction, a weight, a margin, an equilibration time: finite and >= 0."""
    return _bounded(text, float, "a finite number >= 0", lambda v: v >= 0)


def probability(text: str) -> float:
    return _bounded(text, float, "a number in [0, 1]", lambda v: 0.0 <= v <= 1.0)


def random_seed(text: str) -> int:
    """A training or sampling seed (numpy's range, :data:`~.checks.SEED_MAX`)."""
    return _seed(text, SEED_MAX)


def md_seed(text: str) -> int:
    """An OpenMM integrator/velocity seed, or packmol's (a C int, :data:`~.checks.MD_SEED_MAX`)."""
    return _seed(text, MD_SEED_MAX)


def _seed(text: str, maximum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= maximum:
        raise argparse.ArgumentTypeError(f"seed must be a whole number in [0, {maximum}], got {text!r}")
    return value


class DistinctSeeds(argparse.Action):
    """``--seeds A B ...`` with ``type=random_seed``: refuses repeats (a repeated seed trains the same model twice)."""

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            values = list(check_seeds(values, argparse.ArgumentTypeError))
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        setattr(namespace, self.dest, values)


def existing_file(text: str) -> str:
    """An input file (model, dataset, frames, correction) that must exist now."""
    path = Path(text).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"no such file: {text!r}" if not path.exists()
                                         else f"{text!r} is not a file")
    return text


def existing_dir(text: str) -> str:
    """An input directory that must exist now."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"no such directory: {text!r}" if not path.exists()
                                         else f"{text!r} is not a directory")
    return text


def platform_name(text: str) -> str:
    """An OpenMM platform present on this machine (imports OpenMM, only when the option is given)."""
    from .simulation.platforms import available_platforms

    names = available_platforms()
    if text not in names:
        raise argparse.ArgumentTypeError(f"OpenMM platform {text!r} is not available here; available: "
                                         f"{', '.join(names)}")
    return text


def require_files(directory: str | Path, names, error: type[Exception], made_by: str) -> None:
    """Refuse an input directory that lacks one of ``names`` (before anything is written)."""
    missing = [name for name in names if not (Path(directory) / name).is_file()]
    if missing:
        raise error(f"{directory} has no {', '.join(missing)}; give a directory written by {made_by}")
