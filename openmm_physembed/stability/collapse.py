"""Detecting structural collapse of (batched) gas-phase molecules.

A replica has collapsed when, in any checked frame,

* a bonded distance differs from its equilibrium length by more than ``bond_tolerance_nm``
  (published: 0.5 A), with equilibrium lengths from the force field (GAFF r0), or
* two atoms that are not bonded come closer than ``overlap_distance_nm`` (0.6 A by default:
  shorter than any real bond except H-H in H2 at 0.74 A, so no intact molecule reaches it), or
* any coordinate is NaN or infinite.

Functions are pure: positions in, verdicts out. The MD loop decides what to do with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sampling.geometry import bond_lengths


@dataclass(frozen=True)
class CollapseCriteria:
    bond_tolerance_nm: float = 0.05
    overlap_distance_nm: float = 0.06


@dataclass(frozen=True)
class CollapseEvent:
    """Why one replica collapsed (the first violation found, worst first)."""

    replica: int
    cause: str  # "bond", "overlap" or "nan"
    atoms: tuple[int, int] | None  # atom indices within the molecule
    distance_nm: float | None
    reference_nm: float | None  # equilibrium length (bond) or threshold (overlap)

    def describe(self, symbols: list[str] | None = None) -> str:
        if self.cause == "nan":
            return "non-finite coordinates"
        i, j = self.atoms
        label = f"{symbols[i]}{i}-{symbols[j]}{j}" if symbols else f"{i}-{j}"
        if self.cause == "bond":
            return f"bond {label} at {self.distance_nm * 10:.2f} A (equilibrium {self.reference_nm * 10:.2f} A)"
        return f"atoms {label} overlap at {self.distance_nm * 10:.2f} A (< {self.reference_nm * 10:.2f} A)"


def nonbonded_pairs(n_atoms: int, bonds: np.ndarray) -> np.ndarray:
    """All atom pairs (i < j) that are not directly bonded."""
    i, j = np.triu_indices(n_atoms, k=1)
    bonded = {(min(a, b), max(a, b)) for a, b in np.asarray(bonds, dtype=int)}
    keep = np.array([(a, b) not in bonded for a, b in zip(i, j)], dtype=bool)
    return np.stack([i[keep], j[keep]], axis=1)


def detect_collapse(positions_nm: np.ndarray, bonds: np.ndarray, bond_lengths_nm: np.ndarray,
                    criteria: CollapseCriteria = CollapseCriteria(),
                    pairs: np.ndarray | None = None) -> list[CollapseEvent | None]:
    """Verdict for each replica of ``positions_nm`` (shape (n_replicas, n_atoms, 3), or one molecule).

    Returns one entry per replica: None if intact, else the worst violation.
    """
    x = np.asarray(positions_nm, dtype=float)
    if x.ndim == 2:
        x = x[None]
    bonds = np.asarray(bonds, dtype=int)
    reference = np.asarray(bond_lengths_nm, dtype=float)
    if pairs is None:
        pairs = nonbonded_pairs(x.shape[1], bonds)
    finite = np.all(np.isfinite(x), axis=(1, 2))
    safe = np.where(finite[:, None, None], x, 0.0)
    bond_r = bond_lengths(safe, bonds)
    bond_excess = np.abs(bond_r - reference[None]) - criteria.bond_tolerance_nm
    pair_r = bond_lengths(safe, pairs)  # the distances of the non-bonded pairs, (n_replicas, n_pairs)
    verdicts: list[CollapseEvent | None] = []
    for replica in range(len(x)):
        if not finite[replica]:
            verdicts.append(CollapseEvent(replica, "nan", None, None, None))
            continue
        worst_bond = int(np.argmax(bond_excess[replica])) if len(bonds) else -1
        if worst_bond >= 0 and bond_excess[replica, worst_bond] > 0:
            a, b = bonds[worst_bond]
            verdicts.append(CollapseEvent(replica, "bond", (int(a), int(b)), float(bond_r[replica, worst_bond]),
                                          float(reference[worst_bond])))
            continue
        if pair_r.shape[1]:
            closest = int(np.argmin(pair_r[replica]))
            if pair_r[replica, closest] < criteria.overlap_distance_nm:
                a, b = pairs[closest]
                verdicts.append(CollapseEvent(replica, "overlap", (int(a), int(b)),
                                              float(pair_r[replica, closest]), criteria.overlap_distance_nm))
                continue
        verdicts.append(None)
    return verdicts
