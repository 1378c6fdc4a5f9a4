"""Bond-graph helpers (scipy csgraph) against RDKit's own graph algorithms and hand-built graphs."""

from __future__ import annotations

import numpy as np
import pytest

from openmm_physembed.chem import graph
from openmm_physembed.sampling import geometry

Chem = pytest.importorskip("rdkit.Chem")

SMILES = [
    "CCO",  # chain, no ring
    "c1ccccc1O",  # one ring with a substituent
    "c1ccc2ccccc2c1",  # fused rings: the shared bond is in both
    "C1CCC2(CC1)CCCC2",  # spiro: two rings through one atom
    "C1CC2CCC1C2",  # norbornane: bridged
    "C1CC1CCC1CC1",  # two rings joined by a chain of bridges
    "[Na+].[Cl-].O.CC(=O)[O-]",  # fragments, including lone atoms
    "C1CC1.C(C)C.c1ccccc1",  # rings in separate fragments
]


def mol_graph(smiles):
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    return mol, mol.GetNumAtoms(), bonds


def labels_from_fragments(n_atoms, fragments):
    """Component labels numbered in order of first atom, from RDKit's fragment tuples."""
    labels = np.empty(n_atoms, dtype=int)
    for k, atoms in enumerate(sorted(fragments, key=min)):
        labels[list(atoms)] = k
    return labels


@pytest.mark.parametrize("smiles", SMILES)
def test_components_equal_rdkit_fragments_numbered_by_first_atom(smiles):
    mol, n, bonds = mol_graph(smiles)
    expected = labels_from_fragments(n, Chem.GetMolFrags(mol))
    np.testing.assert_array_equal(graph.connected_components_of(n, bonds), expected)


@pytest.mark.parametrize("smiles", SMILES)
def test_ring_bonds_equal_rdkit_ring_info(smiles):
    mol, n, bonds = mol_graph(smiles)
    expected = {tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx()))) for b in mol.GetBonds() if b.IsInRing()}
    assert geometry.ring_bonds(n, bonds) == expected
    # Direction and duplicates of the input do not matter.
    assert geometry.ring_bonds(n, [(j, i) for i, j in bonds] + bonds) == expected


@pytest.mark.parametrize("smiles", SMILES)
def test_topological_distances_equal_rdkit(smiles):
    mol, n, bonds = mol_graph(smiles)
    expected = Chem.GetDistanceMatrix(mol)
    expected[expected > 1e7] = np.inf  # RDKit's "no path" is 1e8
    np.testing.assert_array_equal(geometry.topological_distances(n, bonds), expected)


@pytest.mark.parametrize("smiles", SMILES[:6])
def test_component_after_cutting_each_bond_equals_rdkit_fragments(smiles):
    mol, n, bonds = mol_graph(smiles)
    for index, (i, j) in enumerate(bonds):
        cut = Chem.RWMol(mol)
        cut.RemoveBond(i, j)
        own = next(set(f) for f in Chem.GetMolFrags(cut.GetMol(), sanitizeFrags=False) if i in f)
        assert geometry.component(i, n, bonds, cut=[(j, i)]) == own
    # Cutting every ring bond leaves the atoms a ring-bond move must carry with each end.
    rings = geometry.ring_bonds(n, bonds)
    cut = Chem.RWMol(mol)
    for i, j in rings:
        cut.RemoveBond(i, j)
    for i, _ in rings:
        own = next(set(f) for f in Chem.GetMolFrags(cut.GetMol(), sanitizeFrags=False) if i in f)
        assert geometry.component(i, n, bonds, cut=rings) == own


def test_hand_built_graphs():
    # 0-1-2-0 triangle, 2-3 bridge, 4 alone, 5-6 pair.
    bonds = [(0, 1), (1, 2), (2, 0), (2, 3), (5, 6)]
    assert graph.connected_components_of(7, bonds).tolist() == [0, 0, 0, 0, 1, 2, 2]
    assert geometry.ring_bonds(7, bonds) == {(0, 1), (1, 2), (0, 2)}
    assert geometry.component(3, 7, bonds, cut=[(2, 3)]) == {3}
    assert geometry.component(4, 7, bonds) == {4}
    order, predecessor = graph.traversal_order(graph.adjacency_matrix(7, bonds), 3)
    assert order[0] == 3 and sorted(order) == [0, 1, 2, 3]
    assert all(list(order).index(predecessor[k]) < list(order).index(k) for k in order[1:])
    assert graph.connected_components_of(3, []).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        graph.adjacency_matrix(3, [(0, 3)])


def test_labels_follow_first_atom_whatever_the_bond_order():
    # Atom 0 is bonded last and to a late atom: its molecule is still molecule 0.
    bonds = [(1, 2), (3, 4), (4, 0)]
    assert graph.connected_components_of(5, bonds).tolist() == [0, 1, 1, 0, 0]


# ---------------------------------------------------------------------------------------------- CSO users


def topology_of(residues, bonds, box_nm=None):
    """An OpenMM Topology with one residue per entry of ``residues`` (its atom count) and ``bonds``."""
    from openmm import app

    topology = app.Topology()
    chain = topology.addChain()
    atoms = []
    for size in residues:
        residue = topology.addResidue("RES", chain)
        atoms += [topology.addAtom(f"C{k}", app.Element.getBySymbol("C"), residue) for k in range(size)]
    for i, j in bonds:
        topology.addBond(atoms[i], atoms[j])
    if box_nm is not None:
        topology.setPeriodicBoxVectors(np.asarray(box_nm))
    return topology


def test_molecule_index_joins_bonds_and_residues_in_order_of_first_atom():
    from openmm_physembed.potentials.cso import molecule_index_from_topology

    # Residues: [0, 1], [2], [3, 4, 5], [6], [7]; bonds join 1-6 (across residues) and 3-4.
    # Residue 2's atoms 3, 4, 5 are one molecule although 5 has no bond.
    topology = topology_of([2, 1, 3, 1, 1], [(1, 6), (3, 4)])
    assert molecule_index_from_topology(topology).tolist() == [0, 0, 1, 2, 2, 2, 0, 3]


def test_molecule_index_equals_rdkit_fragments_of_a_multi_molecule_topology():
    from openmm_physembed.potentials.cso import molecule_index_from_topology

    mol, n, bonds = mol_graph("CCO.O.[Na+].c1ccccc1.CC")
    # One residue per atom, so only bonds join atoms.
    topology = topology_of([1] * n, bonds)
    expected = labels_from_fragments(n, Chem.GetMolFrags(mol))
    np.testing.assert_array_equal(molecule_index_from_topology(topology), expected)


@pytest.mark.parametrize("box", [np.diag([1.2, 1.3, 1.1]),
                                 np.array([[1.2, 0.0, 0.0], [0.4, 1.3, 0.0], [-0.3, 0.5, 1.1]])])
def test_whole_undoes_periodic_wrapping(box):
    """A ring molecule plus a second fragment, each atom shifted by random lattice vectors.

    Walking the bonds must give the unwrapped molecule back up to one lattice translation (the
    one of atom 0); the unbonded fragment comes back at its minimum image from atom 0.
    """
    from rdkit.Chem import AllChem

    from openmm_physembed.potentials.cso.parameters import _whole

    mol = Chem.AddHs(Chem.MolFromSmiles("c1ccccc1CC"))
    AllChem.EmbedMolecule(mol, randomSeed=1)
    xyz = mol.GetConformer().GetPositions() * 0.1  # nm
    bonds = [(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in mol.GetBonds()]
    # A lone atom 0.3 nm from atom 0: a second fragment of the same residue.
    xyz = np.vstack([xyz, xyz[0] + [0.3, 0.0, 0.0]])
    n = len(xyz)
    rng = np.random.default_rng(4)
    wrapped = xyz + rng.integers(-2, 3, size=(n, 3)) @ box
    # Put the molecule among other atoms: _whole works on the indices it is given.
    positions = np.vstack([rng.normal(size=(3, 3)), wrapped])
    atoms = np.arange(3, 3 + n)
    whole = _whole(positions, atoms, [(i + 3, j + 3) for i, j in bonds], box)
    shift = whole[0] - xyz[0]
    np.testing.assert_allclose(np.linalg.solve(box.T, shift), np.round(np.linalg.solve(box.T, shift)), atol=1e-9)
    np.testing.assert_allclose(whole - shift, xyz, atol=1e-9)
    np.testing.assert_array_equal(_whole(positions, atoms, bonds=[(i + 3, j + 3) for i, j in bonds], box=None),
                                  wrapped)
