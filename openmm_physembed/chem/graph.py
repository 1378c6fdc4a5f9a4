"""Bond graphs as scipy sparse matrices: components, traversal order, ring bonds, bond distances.

Every graph walk of the toolkit (molecules of a topology, unwrapping a molecule across the
box, the sides of a bond the sampler moves) goes through here, so there is one implementation,
``scipy.sparse.csgraph``, and not one hand-written walk per module.

A graph is a number of atoms plus bonds ``(i, j)``; bonds are undirected and repeated bonds
count once.

>>> connected_components_of(5, [(3, 4), (0, 2)]).tolist()
[0, 1, 0, 2, 2]
>>> sorted(ring_bonds(4, [(0, 1), (1, 2), (2, 0), (2, 3)]))
[(0, 1), (0, 2), (1, 2)]
>>> pieces_per_group(5, [(0, 1), (1, 2), (3, 4)], [0, 0, 1, 1, 1]).tolist()
[1, 2]
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from scipy.sparse import coo_array, csgraph, csr_array

Bond = tuple[int, int]


def adjacency_matrix(n_atoms: int, bonds: Iterable[Bond]) -> csr_array:
    """Symmetric 0/1 adjacency matrix (``n_atoms`` x ``n_atoms``, sparse) of ``bonds``."""
    pairs = np.asarray(list(bonds), dtype=np.int64).reshape(-1, 2)
    if pairs.size and (pairs.min() < 0 or pairs.max() >= n_atoms):
        raise ValueError(f"bond atom indices must lie in [0, {n_atoms}); got {pairs.min()}..{pairs.max()}")
    rows = np.concatenate([pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([pairs[:, 1], pairs[:, 0]])
    matrix = coo_array((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n_atoms, n_atoms)).tocsr()
    # A bond listed twice would sum to weight 2; only connectivity matters here.
    matrix.data[:] = 1
    return matrix


def connected_components_of(n_atoms: int, bonds: Iterable[Bond]) -> np.ndarray:
    """Component label of every atom, components numbered in order of their first (lowest) atom."""
    _, labels = csgraph.connected_components(adjacency_matrix(n_atoms, bonds), directed=False)
    # Relabel explicitly: scipy happens to number in this order today, but does not promise it,
    # and molecule indices written to files must not change with a scipy release.
    _, first_atom = np.unique(labels, return_index=True)
    rank = np.empty(len(first_atom), dtype=np.int64)
    rank[np.argsort(first_atom)] = np.arange(len(first_atom))
    return rank[labels]


def pieces_per_group(n_atoms: int, bonds: Iterable[Bond], groups) -> np.ndarray:
    """Number of connected pieces of every group (residue, molecule) through the bonds inside it.

    ``groups`` gives every atom's group, numbered from 0; bonds between two groups do not join
    anything. A group whose atoms are one bonded molecule has 1 piece.
    """
    groups = np.asarray(groups, dtype=np.int64)
    if groups.shape != (n_atoms,):
        raise ValueError(f"groups has shape {groups.shape}; expected ({n_atoms},)")
    if n_atoms == 0:
        return np.zeros(0, dtype=np.int64)
    pairs = np.asarray(list(bonds), dtype=np.int64).reshape(-1, 2)
    inside = pairs[groups[pairs[:, 0]] == groups[pairs[:, 1]]]
    labels = connected_components_of(n_atoms, inside)
    # Every component lies in one group, so counting components by the group of their first atom
    # counts each group's pieces.
    _, first_atom = np.unique(labels, return_index=True)
    return np.bincount(groups[first_atom], minlength=int(groups.max()) + 1)


def traversal_order(graph: csr_array, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Breadth-first order of the atoms reachable from ``start`` and each one's predecessor.

    ``predecessors[start]`` and those of unreachable atoms are negative; every other atom of
    ``order`` comes after its predecessor.
    """
    order, predecessors = csgraph.breadth_first_order(graph, int(start), directed=False,
                                                     return_predecessors=True)
    return order, predecessors


def component(start: int, n_atoms: int, bonds: Iterable[Bond], cut: Iterable[Bond] = ()) -> frozenset[int]:
    """Atoms reachable from ``start`` through ``bonds`` once the bonds in ``cut`` are removed."""
    removed = {tuple(sorted(b)) for b in cut}
    kept = [b for b in bonds if tuple(sorted(b)) not in removed]
    order = csgraph.breadth_first_order(adjacency_matrix(n_atoms, kept), int(start), directed=False,
                                        return_predecessors=False)
    return frozenset(int(i) for i in order)


def ring_bonds(n_atoms: int, bonds: Iterable[Bond]) -> frozenset[Bond]:
    """Bonds that lie on a cycle, as sorted pairs: their two atoms stay connected without them."""
    unique = sorted({tuple(sorted((int(i), int(j)))) for i, j in bonds})
    ring = []
    for index, (i, j) in enumerate(unique):
        rest = adjacency_matrix(n_atoms, unique[:index] + unique[index + 1:])
        _, labels = csgraph.connected_components(rest, directed=False)
        if labels[i] == labels[j]:
            ring.append((i, j))
    return frozenset(ring)


def topological_distances(n_atoms: int, bonds: Iterable[Bond]) -> np.ndarray:
    """Bond counts on the shortest path between every pair of atoms (``inf`` across fragments)."""
    return csgraph.shortest_path(adjacency_matrix(n_atoms, bonds), directed=False, unweighted=True)
