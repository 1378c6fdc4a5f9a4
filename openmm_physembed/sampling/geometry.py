"""Graph and coordinate helpers of the bond-length sampler: pure functions over numpy arrays.

A molecule is a number of atoms plus a list of bonds ``(i, j)``; positions are ``(n_atoms, 3)``
arrays in nm. Nothing here knows about force fields: the sampler passes in what it looked up.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

# The graph walks (sides of a cut bond, ring bonds, bond distances) are scipy's csgraph, kept in
# one module for every stage; they are re-exported here under the names the sampler has used.
from ..chem.graph import Bond as Bond
from ..chem.graph import component as component
from ..chem.graph import ring_bonds as ring_bonds
from ..chem.graph import topological_distances as topological_distances


def neighbours(n_atoms: int, bonds: Iterable[Bond]) -> list[set[int]]:
    """Bonded neighbours of every atom (degrees, terminal groups); graph walks use :mod:`..chem.graph`."""
    adjacency: list[set[int]] = [set() for _ in range(n_atoms)]
    for i, j in bonds:
        adjacency[i].add(j)
        adjacency[j].add(i)
    return adjacency


def bond_length(positions: np.ndarray, i: int, j: int) -> float:
    return float(np.linalg.norm(positions[j] - positions[i]))


def bond_lengths(positions: np.ndarray, bonds: Sequence[Bond]) -> np.ndarray:
    """Distance of every atom pair of ``bonds`` in every frame: ``(..., n_atoms, 3)`` -> ``(..., n_bonds)``.

    The one implementation for the sampler, the collapse detector and the collapse explanations;
    any pairs will do (the detector passes its non-bonded pairs too).

    >>> bond_lengths(np.array([[[0.0, 0, 0], [0.3, 0.4, 0]]]), [(0, 1)])
    array([[0.5]])
    """
    index = np.asarray(bonds, dtype=int).reshape(-1, 2)
    return np.linalg.norm(positions[..., index[:, 1], :] - positions[..., index[:, 0], :], axis=-1)


def set_bond_length(
    positions: np.ndarray, i: int, j: int, new_length: float,
    moved_with_i: Iterable[int], moved_with_j: Iterable[int], fraction_i: float,
) -> np.ndarray:
    """Translate two rigid groups along the i->j axis so that |r_j - r_i| becomes ``new_length``.

    The group of ``i`` moves by ``-fraction_i * delta`` and the group of ``j`` by
    ``+(1 - fraction_i) * delta`` along the unit vector from i to j, with
    ``delta = new_length - old_length``; atoms in neither group stay put. ``fraction_i = 0``
    moves only j's side, ``0.5`` moves both by half.
    """
    out = np.array(positions, dtype=float, copy=True)
    axis = out[j] - out[i]
    old = float(np.linalg.norm(axis))
    unit = axis / old
    delta = new_length - old
    group_i, group_j = list(moved_with_i), list(moved_with_j)
    if group_i:
        out[group_i] -= fraction_i * delta * unit
    if group_j:
        out[group_j] += (1.0 - fraction_i) * delta * unit
    return out


def rotate_about_axis(
    positions: np.ndarray, atoms: Iterable[int], origin: np.ndarray, direction: np.ndarray, angle_degrees: float
) -> np.ndarray:
    """Rotate ``atoms`` by ``angle_degrees`` (right-handed about ``direction``) around the line through ``origin``.

    Rodrigues' formula: v' = v cos(t) + (u x v) sin(t) + u (u . v)(1 - cos(t)).
    """
    out = np.array(positions, dtype=float, copy=True)
    atoms = list(atoms)
    unit = np.asarray(direction, dtype=float) / np.linalg.norm(direction)
    theta = np.deg2rad(angle_degrees)
    v = out[atoms] - origin
    rotated = (v * np.cos(theta) + np.cross(unit, v) * np.sin(theta)
               + np.outer(v @ unit, unit) * (1.0 - np.cos(theta)))
    out[atoms] = rotated + origin
    return out


def dihedral_degrees(positions: np.ndarray, a: int, b: int, c: int, d: int) -> float:
    """Signed dihedral a-b-c-d in degrees (IUPAC sign convention)."""
    b0 = positions[a] - positions[b]
    b1 = positions[c] - positions[b]
    b2 = positions[d] - positions[c]
    b1 = b1 / np.linalg.norm(b1)
    v = b0 - (b0 @ b1) * b1
    w = b2 - (b2 @ b1) * b1
    x = v @ w
    y = np.cross(b1, v) @ w
    return float(np.degrees(np.arctan2(y, x)))


def bond_angles(bonds: np.ndarray) -> np.ndarray:
    """Every bonded angle (i, j, k) with j the vertex, i < k."""
    neighbours: dict[int, list[int]] = {}
    for a, b in np.asarray(bonds, dtype=int):
        neighbours.setdefault(int(a), []).append(int(b))
        neighbours.setdefault(int(b), []).append(int(a))
    triples = [(i, j, k) for j, ns in sorted(neighbours.items()) for i in sorted(ns) for k in sorted(ns) if i < k]
    return np.array(triples, dtype=int).reshape(-1, 3)


def angle_values_deg(positions: np.ndarray, angles: np.ndarray) -> np.ndarray:
    x = np.asarray(positions, dtype=float)
    u = x[..., angles[:, 0], :] - x[..., angles[:, 1], :]
    v = x[..., angles[:, 2], :] - x[..., angles[:, 1], :]
    cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
