"""Seed checks shared by the library's entry points and the command line.

A seed reaches three consumers with different ranges, and a bad one used to surface only when
the consumer was reached, after hours of work: numpy's legacy ``np.random.seed`` (mace_run_train
seeds numpy, torch and ``random`` with its ``--seed``) takes 0 .. 2**32 - 1; OpenMM's integrator
and velocity seeds are C ints, 0 .. 2**31 - 1. Negative seeds are refused everywhere.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

#: numpy's legacy seeding, used by mace_run_train for the training seed.
SEED_MAX = 2**32 - 1
#: OpenMM's ``setRandomNumberSeed`` and ``setVelocitiesToTemperature`` take a C int.
MD_SEED_MAX = 2**31 - 1


def check_seed(seed, error: type[Exception] = ValueError, maximum: int = SEED_MAX, name: str = "seed") -> int:
    """``seed`` as an int, or ``error`` when it is not a whole number in [0, ``maximum``].

    >>> check_seed(7)
    7
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    ValueError: seed must be a whole number in [0, 4294967295], got -1
    """
    try:
        value = operator.index(seed) if not isinstance(seed, bool) else None
    except TypeError:
        value = None
    if value is None or not 0 <= value <= maximum:
        raise error(f"{name} must be a whole number in [0, {maximum}], got {seed!r}")
    return value


def check_seeds(seeds: Iterable, error: type[Exception] = ValueError, maximum: int = SEED_MAX,
                name: str = "seeds") -> tuple[int, ...]:
    """``seeds`` as ints: at least one, each in [0, ``maximum``], no two equal (equal seeds give the
    same model, not another sample); else ``error``.

    >>> check_seeds([0, 1, 1])
    Traceback (most recent call last):
    ...
    ValueError: seeds must be distinct, got [0, 1, 1]
    """
    seeds = list(seeds)
    if not seeds:
        raise error(f"{name} must hold at least one seed")
    values = tuple(check_seed(s, error, maximum) for s in seeds)
    if len(set(values)) != len(values):
        raise error(f"{name} must be distinct, got {list(values)}")
    return values
