"""The geometry check of the bond-length and angle sampling: no two atoms closer than allowed.

A structure passes when every pair of atoms ``min_bond_separation`` or more bonds apart (2, i.e.
every pair that is not directly bonded) is at least the equilibrium length such a pair would
have plus a margin (0.25 A). That length is the typing source's force-field r0 of the atom-type
pair (``lookup``), or the sum of the two atoms' covalent radii (Cordero et al. 2008,
``ase.data.covalent_radii``) when the force field has no bond parameter for the pair.

One table of thresholds per molecule (:func:`clash_thresholds`), checked after every bond
modification (:mod:`.bond_sampling`) and every bend (:mod:`.angle_sampling`) by
:func:`close_pairs`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..chem.bond_typing import BondTyping
from ..chem.gaff import bond_type_name
from ..chem.graph import topological_distances
from ..units import NM_PER_ANGSTROM

Lookup = Callable[[str, str], "tuple[float, float] | None"]


def covalent_radius_nm(symbol: str) -> float:
    from ase.data import atomic_numbers, covalent_radii

    return float(covalent_radii[atomic_numbers[symbol]]) * NM_PER_ANGSTROM


def clash_thresholds(typing: BondTyping, symbols: Sequence[str], lookup: Lookup, margin_nm: float,
                     min_bond_separation: int = 2) -> tuple[np.ndarray, dict[str, dict]]:
    """Minimum allowed distance of every checked pair (nm; NaN = not checked) and the table used.

    ``threshold = r_eq(type_i, type_j) + margin_nm`` for pairs at least ``min_bond_separation``
    bonds apart; r_eq is the force field's r0 of the type pair, else the sum of covalent radii.
    The table maps each type pair (``c3-hc``) to ``{"r_eq_nm", "source"}``.
    """
    n_atoms = len(typing.atom_types)
    separation = topological_distances(n_atoms, [(b.atom1, b.atom2) for b in typing.bonds])
    table: dict[str, dict] = {}
    thresholds = np.full((n_atoms, n_atoms), np.nan)
    for i in range(n_atoms):
        for j in range(i + 1, n_atoms):
            if separation[i, j] < min_bond_separation:
                continue
            pair = bond_type_name(typing.atom_types[i], typing.atom_types[j])
            if pair not in table:
                found = lookup(typing.atom_types[i], typing.atom_types[j])
                if found is not None:
                    table[pair] = {"r_eq_nm": float(found[1]), "source": typing.source}
                else:
                    table[pair] = {"r_eq_nm": covalent_radius_nm(symbols[i]) + covalent_radius_nm(symbols[j]),
                                   "source": "covalent radii"}
            thresholds[i, j] = thresholds[j, i] = table[pair]["r_eq_nm"] + margin_nm
    return thresholds, table


def close_pairs(positions: np.ndarray, thresholds: np.ndarray) -> list[tuple[int, int, float, float]]:
    """Pairs ``i < j`` whose distance is below ``thresholds[i, j]`` (``nan``/``0`` = unchecked).

    Returns ``(i, j, distance, threshold)`` tuples, closest-relative-to-threshold first.

    >>> limits = np.full((3, 3), np.nan); limits[0, 2] = limits[2, 0] = 0.25
    >>> close_pairs(np.array([[0.0, 0, 0], [0.1, 0, 0], [0.2, 0, 0]]), limits)
    [(0, 2, 0.2, 0.25)]
    """
    diff = positions[:, None, :] - positions[None, :, :]
    distances = np.linalg.norm(diff, axis=-1)
    limits = np.nan_to_num(thresholds, nan=0.0)
    upper = np.triu(np.ones_like(limits, dtype=bool), k=1)
    i_idx, j_idx = np.nonzero(upper & (distances < limits))
    found = [(int(i), int(j), float(distances[i, j]), float(limits[i, j])) for i, j in zip(i_idx, j_idx)]
    return sorted(found, key=lambda item: item[2] - item[3])


__all__ = ["clash_thresholds", "close_pairs", "covalent_radius_nm"]
