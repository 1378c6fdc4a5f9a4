"""CSO parameters of a topology: D3 classes at frozen coordination numbers, C6 and R0.

See :mod:`openmm_physembed.potentials.cso` for the energy expression.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ...chem.graph import adjacency_matrix, connected_components_of, pieces_per_group, traversal_order
from ...chem.residues import fragment_cause
from ...errors import PotentialError
from .d3 import isolated_pair_data

# Published CSO constants (Schröder et al. 2015), as in s-dftd3's CSODampingParam.
CSO_A2 = 2.5
CSO_A4_BOHR = 6.25
# There is deliberately no default (alpha, a1): each pair belongs to one model file
# (:mod:`..correction_choice`, PUBLISHED_CORRECTIONS).
DEFAULT_CUTOFF_NM = 1.2
# Atoms of one element whose frozen CNs differ by less than this share a class. Symmetry-equivalent
# atoms of an embedded geometry differ by ~1e-6, which would move C6 by about as much, so only
# numerically identical CNs are merged by default.
DEFAULT_CN_TOLERANCE = 1e-9

GLOBAL_PARAMETERS = ("alpha", "a1", "s6")
DERIVATIVE_PARAMETERS = ("alpha", "a1")


@dataclass(frozen=True)
class CSOParameters:
    """Everything the CSO term needs about a System's atoms, in OpenMM units.

    Attributes
    ----------
    atomic_numbers, molecule_index, atom_class
        Per atom: element, molecule it belongs to, CSO class index.
    class_atomic_numbers, class_coordination_numbers
        Per class: element and the frozen D3 coordination number.
    c6_kj_mol_nm6
        C6 between classes (n_classes x n_classes), kJ/mol nm^6.
    r0_nm
        R0 = sqrt(3 Q_A Q_B) between classes, nm.
    """

    atomic_numbers: np.ndarray
    molecule_index: np.ndarray
    atom_class: np.ndarray
    class_atomic_numbers: np.ndarray
    class_coordination_numbers: np.ndarray
    c6_kj_mol_nm6: np.ndarray
    r0_nm: np.ndarray

    @property
    def n_atoms(self) -> int:
        return len(self.atomic_numbers)

    @property
    def n_classes(self) -> int:
        return len(self.class_atomic_numbers)

    def atom_c6(self) -> np.ndarray:
        """C6 between every pair of atoms (n_atoms x n_atoms), kJ/mol nm^6."""
        return self.c6_kj_mol_nm6[np.ix_(self.atom_class, self.atom_class)]

    def atom_r0(self) -> np.ndarray:
        return self.r0_nm[np.ix_(self.atom_class, self.atom_class)]

    def molecules(self) -> list[np.ndarray]:
        """Atom indices of every molecule, in order of molecule index."""
        order = np.argsort(self.molecule_index, kind="stable")
        bounds = np.flatnonzero(np.diff(self.molecule_index[order])) + 1
        return [np.sort(chunk) for chunk in np.split(order, bounds)]

    def intramolecular_pairs(self) -> set[tuple[int, int]]:
        return {(int(i), int(j)) for atoms in self.molecules() for i, j in itertools.combinations(atoms, 2)}


# ---------------------------------------------------------------------------------------------- topology
def _atomic_numbers(topology) -> np.ndarray:
    numbers = []
    for atom in topology.atoms():
        if atom.element is None:
            raise PotentialError(
                f"atom {atom.index} ({atom.name!r} in residue {atom.residue.name!r}) has no element in the "
                "topology; the CSO term needs every element (load the structure with element columns)"
            )
        numbers.append(atom.element.atomic_number)
    return np.array(numbers, dtype=int)


def molecule_index_from_topology(topology) -> np.ndarray:
    """Molecule index of every atom: atoms joined by bonds or sharing a residue are one molecule.

    Molecules are numbered in order of their first atom.
    """
    links = [(bond[0].index, bond[1].index) for bond in topology.bonds()]
    for residue in topology.residues():
        atoms = [a.index for a in residue.atoms()]
        links.extend((atoms[0], other) for other in atoms[1:])
    return connected_components_of(topology.getNumAtoms(), links)


def _bonds_by_molecule(topology, molecule_index: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    bonds: dict[int, list[tuple[int, int]]] = {}
    for bond in topology.bonds():
        i, j = bond[0].index, bond[1].index
        if molecule_index[i] == molecule_index[j]:
            bonds.setdefault(int(molecule_index[i]), []).append((i, j))
    return bonds


def _whole(positions: np.ndarray, atoms: np.ndarray, bonds: list[tuple[int, int]], box: np.ndarray | None):
    """Positions of one molecule with periodic jumps removed (walking the bonds, then the first atom).

    Each bonded fragment is walked breadth first from its lowest atom; every atom is placed at the
    minimum image of its bond to the atom it was reached from. A fragment's first atom (other than
    atom 0) is placed at its minimum image relative to atom 0.
    """
    xyz = positions[atoms].copy()
    if box is None:
        return xyz
    local = {int(a): k for k, a in enumerate(atoms)}
    inverse = np.linalg.inv(box)

    def image(vector):
        return vector - np.round(vector @ inverse) @ box

    local_bonds = [(local[i], local[j]) for i, j in bonds]
    graph = adjacency_matrix(len(atoms), local_bonds)
    fragment = connected_components_of(len(atoms), local_bonds)
    _, starts = np.unique(fragment, return_index=True)
    for start in np.sort(starts):
        if start:
            xyz[start] = xyz[0] + image(xyz[start] - xyz[0])
        order, predecessor = traversal_order(graph, start)
        for k in order[1:]:
            xyz[k] = xyz[predecessor[k]] + image(xyz[k] - xyz[predecessor[k]])
    return xyz


def _refuse_fragmented_molecules(topology, molecule_index: np.ndarray) -> None:
    """In a periodic box a molecule is made whole by walking its bonds; pieces without a bond between
    them could only be placed by a guess (the minimum image), and the guess moves atoms a box vector
    away in small boxes, which ruins their coordination numbers. So such a molecule is refused."""
    bonds = [(a.index, b.index) for a, b in topology.bonds()]
    labels, groups = np.unique(molecule_index, return_inverse=True)
    pieces = pieces_per_group(len(molecule_index), bonds, groups.ravel())
    broken = np.flatnonzero(pieces > 1)
    if len(broken) == 0:
        return
    molecule = int(labels[broken[0]])
    atoms = [atom for atom in topology.atoms() if molecule_index[atom.index] == molecule]
    names = sorted({atom.residue.name for atom in atoms})
    what = f"residue {names[0]!r}" if len(names) == 1 else f"residues {names}"
    others = f"; one of {len(broken)} such molecules" if len(broken) > 1 else ""
    raise PotentialError(
        f"the CSO term cannot make molecule {molecule} ({what}, {len(atoms)} atoms{others}) whole in the periodic "
        f"box: its bonds join it into {int(pieces[broken[0]])} pieces, not one: {fragment_cause(names[0])}; give "
        "the topology with all bonds (a LiquidBox's own, or a PDB file written with a residue name OpenMM does "
        "not know)"
    )


def _box_vectors_nm(topology) -> np.ndarray | None:
    vectors = topology.getPeriodicBoxVectors()
    if vectors is None:
        return None
    from openmm import unit

    return np.array([[v.value_in_unit(unit.nanometer) for v in vec] for vec in vectors], dtype=float)


def length_nm(value, what: str = "length") -> float | None:
    """A length in nm from a float (nm) or an ``openmm.unit`` Quantity; ``None`` stays ``None``."""
    if value is None:
        return None
    from openmm import unit

    if unit.is_quantity(value):
        if not value.unit.is_compatible(unit.nanometer):
            raise PotentialError(f"{what} must be a length, got {value}")
        value = value.value_in_unit(unit.nanometer)
    return float(value)


def _as_nm_array(positions, n_atoms: int, what: str) -> np.ndarray:
    try:
        from openmm import unit

        if unit.is_quantity(positions):
            positions = positions.value_in_unit(unit.nanometer)
    except ImportError:  # pragma: no cover
        pass
    array = np.asarray(positions, dtype=float)
    if array.shape != (n_atoms, 3):
        raise PotentialError(f"{what} has shape {array.shape}; expected ({n_atoms}, 3) in nm")
    return array


# ---------------------------------------------------------------------------------------------- parameters
def cso_parameters(topology, positions_nm=None, *, molecule_index=None,
                   reference_positions_nm: np.ndarray | Mapping[str, np.ndarray] | None = None,
                   cn_tolerance: float = DEFAULT_CN_TOLERANCE) -> CSOParameters:
    """Classes, C6 and R0 of every atom of ``topology`` from D3 at frozen coordination numbers.

    Molecules that repeat (same elements in the same order, same bonds) share one *template*; its
    coordination numbers come from one reference geometry, taken as an isolated molecule: the
    template's entry of ``reference_positions_nm`` when that is a mapping from residue name to an
    (n, 3) array, else the first such molecule in ``reference_positions_nm`` (a whole-system array),
    else in ``positions_nm``. Molecules split by the periodic box are made whole first, by their
    bonds: in a periodic box a molecule whose bonds do not join all of its atoms is refused.

    Parameters
    ----------
    topology
        OpenMM Topology with elements (bonds and residues define molecules).
    positions_nm
        Positions of every atom, nm (array or ``openmm.unit`` Quantity).
    molecule_index
        Molecule of every atom; default: atoms joined by bonds or sharing a residue.
    reference_positions_nm
        Geometry that fixes the coordination numbers, see above.
    cn_tolerance
        Atoms of one element whose CNs differ by less than this share a class.
    """
    numbers = _atomic_numbers(topology)
    n = len(numbers)
    if n == 0:
        raise PotentialError("the topology has no atoms")
    if molecule_index is None:
        molecule_index = molecule_index_from_topology(topology)
    molecule_index = np.asarray(molecule_index, dtype=int)
    if molecule_index.shape != (n,):
        raise PotentialError(f"molecule_index has shape {molecule_index.shape}; expected ({n},)")
    box = _box_vectors_nm(topology)
    if box is not None:
        _refuse_fragmented_molecules(topology, molecule_index)
    by_name: Mapping[str, np.ndarray] | None = None
    if isinstance(reference_positions_nm, Mapping):
        by_name = {k: np.asarray(v, dtype=float) for k, v in reference_positions_nm.items()}
        source = None if positions_nm is None else _as_nm_array(positions_nm, n, "positions_nm")
    elif reference_positions_nm is not None:
        source = _as_nm_array(reference_positions_nm, n, "reference_positions_nm")
    elif positions_nm is not None:
        source = _as_nm_array(positions_nm, n, "positions_nm")
    else:
        raise PotentialError(
            "the CSO term needs a geometry to freeze D3 coordination numbers: pass positions_nm "
            "(or reference_positions_nm)"
        )

    bonds = _bonds_by_molecule(topology, molecule_index)
    atoms_list = list(topology.atoms())
    templates: dict[tuple, int] = {}
    template_geometry: list[tuple[np.ndarray, np.ndarray]] = []
    molecule_template: dict[int, tuple[int, np.ndarray]] = {}
    order = np.argsort(molecule_index, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(molecule_index[order]) != 0])
    for atoms in np.split(order, starts[1:]):
        m = molecule_index[atoms[0]]
        local = {int(a): k for k, a in enumerate(atoms)}
        key = (tuple(numbers[atoms]), tuple(sorted((min(local[i], local[j]), max(local[i], local[j]))
                                                   for i, j in bonds.get(int(m), []))))
        if key not in templates:
            residue_names = {atoms_list[a].residue.name for a in atoms}
            if by_name is not None and len(residue_names) == 1 and next(iter(residue_names)) in by_name:
                xyz = by_name[next(iter(residue_names))]
                if xyz.shape != (len(atoms), 3):
                    raise PotentialError(
                        f"reference_positions_nm[{next(iter(residue_names))!r}] has shape {xyz.shape}; "
                        f"that molecule has {len(atoms)} atoms"
                    )
            elif source is not None:
                xyz = _whole(source, atoms, bonds.get(int(m), []), box)
            else:
                raise PotentialError(
                    f"no reference geometry for residue(s) {sorted(residue_names)}: add it to "
                    "reference_positions_nm or pass positions_nm"
                )
            templates[key] = len(template_geometry)
            template_geometry.append((numbers[atoms], xyz))
        molecule_template[int(m)] = (templates[key], atoms)

    data = isolated_pair_data(template_geometry)
    offsets = np.cumsum([0] + [len(z) for z, _ in template_geometry])

    # Classes: (element, CN) within tolerance, over all template atoms.
    order = np.lexsort((data.coordination_numbers, data.atomic_numbers))
    template_atom_class = np.empty(len(order), dtype=int)
    representatives: list[int] = []
    for k in order:
        last = representatives[-1] if representatives else None
        if (last is None or data.atomic_numbers[k] != data.atomic_numbers[last]
                or abs(data.coordination_numbers[k] - data.coordination_numbers[last]) >= cn_tolerance):
            representatives.append(int(k))
        template_atom_class[k] = len(representatives) - 1
    reps = np.array(representatives)

    atom_class = np.empty(n, dtype=int)
    for template, atoms in molecule_template.values():
        atom_class[atoms] = template_atom_class[offsets[template]:offsets[template + 1]]

    r0 = data.r0_nm[np.ix_(reps, reps)]
    diagonal = np.diag(r0)
    if not np.allclose(r0, np.sqrt(np.outer(diagonal, diagonal)), rtol=1e-9, atol=0.0):
        raise PotentialError(
            "dftd3's R0 is no longer sqrt(3 Q_A Q_B) (not separable); this dftd3 version is unsupported"
        )
    return CSOParameters(
        atomic_numbers=numbers,
        molecule_index=molecule_index,
        atom_class=atom_class,
        class_atomic_numbers=data.atomic_numbers[reps],
        class_coordination_numbers=data.coordination_numbers[reps],
        c6_kj_mol_nm6=data.c6_kj_mol_nm6[np.ix_(reps, reps)],
        r0_nm=r0,
    )


