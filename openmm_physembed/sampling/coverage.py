"""Coverage by design: every bond type stretched, every bendable angle type bent, at least once.

Why: the published draw picks one bond per structure with p ~ 1/k. A stiff bond type that
occurs once in a molecule (an acid O-H, a nitrile C#N) then has a small chance per structure,
and 45 structures easily miss it. The models trained on such a set break exactly there (the
held-out aryl ester acid: all 9 augmented collapses broke the never-stretched ``oh-ho``; issue
28). So each augmented set first gives every type one structure of its own (a stretch for a bond
type, a bend for an angle type) and only the structures left over follow the 1/k draw. When a
molecule has more types than structures, structures carry more than one modification.

The schedule is a pure function of the type list, the number of structures and a random stream;
a type whose draw the geometry check refuses in its structure moves on to the next structure
(:func:`carry_over`), and a type that no structure could take is reported, never hidden.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def per_structure_quota(n_types: int, n_structures: int, minimum: int) -> int:
    """Modifications per structure: the requested ``minimum``, more when types outnumber structures.

    >>> per_structure_quota(9, 45, 1), per_structure_quota(60, 45, 1), per_structure_quota(0, 45, 2)
    (1, 2, 2)
    """
    if n_structures <= 0:
        return minimum
    return max(minimum, math.ceil(n_types / n_structures))


def coverage_schedule(types: Sequence[str], n_structures: int, rng: np.random.Generator) -> list[list[str]]:
    """The types each structure must cover: every type once, in random structures, spread evenly.

    Types are shuffled and dealt round-robin over a random order of the structures, so no
    structure holds two scheduled types before every structure holds one.

    >>> schedule = coverage_schedule(["a", "b", "c"], 5, np.random.default_rng(0))
    >>> sorted(t for s in schedule for t in s), sum(len(s) > 0 for s in schedule)
    (['a', 'b', 'c'], 3)
    """
    schedule: list[list[str]] = [[] for _ in range(n_structures)]
    if n_structures == 0:
        return schedule
    order = rng.permutation(n_structures)
    for n, name in enumerate(rng.permutation(sorted(types))):
        schedule[int(order[n % n_structures])].append(str(name))
    return schedule


def carry_over(schedule: list[list[str]], structure: int, deferred: Sequence[str]) -> list[str]:
    """Hand the types structure ``structure`` could not take to the next one; returns what falls off the end."""
    if not deferred:
        return []
    if structure + 1 < len(schedule):
        schedule[structure + 1] = list(deferred) + schedule[structure + 1]
        return []
    return list(deferred)


def missing_types(all_types: Sequence[str], covered: Sequence[str]) -> list[str]:
    """Types of ``all_types`` that never occur in ``covered`` (sorted).

    >>> missing_types(["c3-hc", "oh-ho", "c-o"], ["c3-hc", "c-o", "c3-hc"])
    ['oh-ho']
    """
    return sorted(set(all_types) - set(covered))


__all__ = ["carry_over", "coverage_schedule", "missing_types", "per_structure_quota"]
