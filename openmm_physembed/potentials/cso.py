"""The intermolecular CSO dispersion correction as an OpenMM force.

The physics-embedded top-down correction of the paper is ``E = E_MLFF + alpha * E_CSO`` with the
C6-only dispersion term of Schröder, Creon and Schwabe (J. Chem. Theory Comput. 11, 3163 (2015))
summed over *intermolecular* atom pairs only:

    E_CSO = - sum_{A<B, different molecules} [s6 + a1 / (1 + exp((R_AB - a2 R0_AB) / bohr))]
                                              C6_AB / (R_AB^6 + a4^6)

a2 = 2.5, a4 = 6.25 bohr; R0_AB = sqrt(3 Q_A Q_B) and C6_AB from D3 (:mod:`.d3`), C6 at each
atom's coordination number frozen at the molecule's reference geometry.

OpenMM implementation: one ``CustomNonbondedForce`` whose particles carry a class index
(class = element + frozen coordination number); C6 is a ``Discrete2DFunction`` table over class
pairs, and a2*R0 = b_A b_B is folded into a per-particle factor b (R0_AB = sqrt(3 Q_A Q_B) is
separable); ``alpha``, ``a1`` and ``s6`` are global parameters (change them in a live
Context with ``context.setParameter``), and ``alpha`` and ``a1`` are registered for energy
parameter derivatives (``state.getEnergyParameterDerivatives()['a1']``, which the density fit
uses). Every intramolecular pair is excluded. Periodic systems use a cutoff (default 1.2 nm)
with OpenMM's long-range correction, carried by a separate one-pair force
(``CSOLongRangeCorrection``, same value, see ``_long_range_force``) because OpenMM 8.6.1's CPU
platform re-integrates a pair force's own correction on every step; non-periodic ones use no
cutoff, so clusters get the exact pair sum.

OpenMM's CPU and GPU platforms demand that every nonbonded force of a System share one exclusion
list. When the System already has a ``NonbondedForce`` or ``CustomNonbondedForce`` (a GAFF base),
the CSO force copies that force's exclusions, and a ``CustomBondForce`` in the same force group
cancels the intramolecular pairs the copy leaves in (1-5 and further) and restores any excluded
intermolecular pair, so the total is still the intermolecular sum.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..errors import PotentialError
from ..units import BOHR_IN_NM
from .d3 import isolated_pair_data

# Published CSO constants (Schröder et al. 2015), as in s-dftd3's CSODampingParam.
CSO_A2 = 2.5
CSO_A4_BOHR = 6.25
# There is deliberately no default (alpha, a1): each pair belongs to one model file
# (:mod:`.corrections`, PUBLISHED_CORRECTIONS).
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
    """Molecule index of every atom: atoms joined by bonds or sharing a residue are one molecule."""
    n = topology.getNumAtoms()
    parent = np.arange(n)

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i, j):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    for bond in topology.bonds():
        union(bond[0].index, bond[1].index)
    for residue in topology.residues():
        atoms = [a.index for a in residue.atoms()]
        for other in atoms[1:]:
            union(atoms[0], other)
    roots = np.array([find(i) for i in range(n)])
    _, index = np.unique(roots, return_inverse=True)
    # Number molecules in order of their first atom.
    first = {}
    relabel = np.empty(n, dtype=int)
    for i, m in enumerate(index):
        relabel[i] = first.setdefault(m, len(first))
    return relabel


def _bonds_by_molecule(topology, molecule_index: np.ndarray) -> dict[int, list[tuple[int, int]]]:
    bonds: dict[int, list[tuple[int, int]]] = {}
    for bond in topology.bonds():
        i, j = bond[0].index, bond[1].index
        if molecule_index[i] == molecule_index[j]:
            bonds.setdefault(int(molecule_index[i]), []).append((i, j))
    return bonds


def _whole(positions: np.ndarray, atoms: np.ndarray, bonds: list[tuple[int, int]], box: np.ndarray | None):
    """Positions of one molecule with periodic jumps removed (walking the bonds, then the first atom)."""
    xyz = positions[atoms].copy()
    if box is None:
        return xyz
    local = {int(a): k for k, a in enumerate(atoms)}
    inverse = np.linalg.inv(box)

    def image(vector):
        return vector - np.round(vector @ inverse) @ box

    neighbours: dict[int, list[int]] = {}
    for i, j in bonds:
        neighbours.setdefault(local[i], []).append(local[j])
        neighbours.setdefault(local[j], []).append(local[i])
    placed = np.zeros(len(atoms), dtype=bool)
    for start in range(len(atoms)):
        if placed[start]:
            continue
        if start:
            xyz[start] = xyz[0] + image(xyz[start] - xyz[0])
        placed[start] = True
        stack = [start]
        while stack:
            k = stack.pop()
            for other in neighbours.get(k, []):
                if not placed[other]:
                    xyz[other] = xyz[k] + image(xyz[other] - xyz[k])
                    placed[other] = True
                    stack.append(other)
    return xyz


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
    else in ``positions_nm``. Molecules split by the periodic box are made whole first.

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


# ---------------------------------------------------------------------------------------------- force
# The sigmoid's exponent is capped: OpenMM integrates the long-range correction (and its a1
# derivative) in single precision out to r ~ 1e5 nm, and an overflowing exp there makes the
# integration fail to converge. At the cap the sigmoid is 4e-18, and no pair inside a periodic
# cutoff gets near it (the exponent is below 20 at r = 1.2 nm), so energies are unchanged.
SIGMOID_EXPONENT_CAP = 40.0


def _pair_energy_expression(a4_nm: float, offset: str, c6: str) -> str:
    """-alpha (s6 + a1 sigmoid) C6 / (r^6 + a4^6), with the sigmoid exponent r/bohr - ``offset``.

    ``offset`` is a2 R0 / bohr: the sigmoid's argument is in bohr, its width 1 bohr.
    """
    exponent = f"min(r*{1.0 / BOHR_IN_NM!r} - {offset}, {SIGMOID_EXPONENT_CAP!r})"
    return f"-alpha*(s6 + a1/(1 + exp({exponent})))*{c6}/(r^6 + {a4_nm**6!r})"


def _sigmoid_factors(parameters: CSOParameters, a2: float) -> np.ndarray:
    """Per-class b with b_A b_B = a2 R0_AB / bohr (R0_AB = sqrt(R0_AA R0_BB), checked in cso_parameters).

    Folding R0 into a per-particle parameter spares the pair kernel one table lookup (36 vs 52 ms
    per step for 3000 atoms on one CPU thread, benchmarks/cso_cost.py).
    """
    return np.sqrt(a2 * np.diag(parameters.r0_nm) / BOHR_IN_NM)


def _existing_exclusions(system, n_atoms: int) -> set[tuple[int, int]] | None:
    """The exclusion list OpenMM will require the new force to share, or None if there is none."""
    import openmm

    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce) and force.getNumParticles() == n_atoms:
            pairs = (force.getExceptionParameters(k)[:2] for k in range(force.getNumExceptions()))
        elif isinstance(force, openmm.CustomNonbondedForce) and force.getNumParticles() == n_atoms:
            pairs = (force.getExclusionParticles(k) for k in range(force.getNumExclusions()))
        else:
            continue
        return {(min(int(i), int(j)), max(int(i), int(j))) for i, j in pairs}
    return None


def _free_force_group(system) -> int:
    used = {force.getForceGroup() for force in system.getForces()}
    for group in range(32):
        if group not in used:
            return group
    raise PotentialError("all 32 OpenMM force groups are in use; pass force_group explicitly")


def add_cso_correction(system, topology, positions_nm=None, *, alpha: float | None = None,
                       a1: float | None = None, s6: float | None = None, correction=None, model_path=None,
                       force_correction: bool = False, a2: float = CSO_A2, a4_bohr: float = CSO_A4_BOHR,
                       cutoff_nm: float = DEFAULT_CUTOFF_NM, force_group: int | None = None,
                       molecule_index=None, reference_positions_nm=None, periodic: bool | None = None,
                       long_range_correction: bool = True, switch_distance_nm: float | None = None,
                       parameters: CSOParameters | None = None, cn_tolerance: float = DEFAULT_CN_TOLERANCE,
                       parameter_derivatives: Sequence[str] = DERIVATIVE_PARAMETERS):
    """Add ``alpha * E_CSO`` over intermolecular pairs to ``system``; returns the CustomNonbondedForce.

    Works on any System with one particle per topology atom (MACE or GAFF base).

    Parameters
    ----------
    system, topology
        The System to extend and its Topology (elements; bonds and residues define molecules).
    positions_nm
        Geometry whose molecules, each taken in isolation, fix the D3 coordination numbers
        (see :func:`cso_parameters`); nm array or ``openmm.unit`` Quantity.
    alpha, a1, s6
        Initial values of the global parameters of the same names. There is no default: give
        ``alpha`` and ``a1`` (``s6`` defaults to 1), or ``correction``.
    correction, model_path, force_correction
        Instead of alpha/a1/s6: a published name (``"mace-off23-small"``, ``"mace-ec-emc"``) or a
        file written by ``physembed fit-a1``, which must have been fitted for ``model_path`` (the
        MACE model file of this System; ``None`` for a GAFF base) unless ``force_correction``.
        See :func:`.corrections.choose_correction`.
    a2, a4_bohr
        Fixed CSO constants (published 2.5 and 6.25 bohr).
    cutoff_nm
        Periodic cutoff; OpenMM's long-range correction accounts for pairs beyond it.
    long_range_correction
        Add that correction (periodic systems), as the force ``CSOLongRangeCorrection`` in the
        same force group.
    force_group
        Force group of the CSO forces; default: the lowest group no other force uses, so the
        CSO energy can be read alone (``getState(groups={g})``).
    periodic
        Default: periodic when the topology has box vectors or the System uses periodic forces.
        Non-periodic systems use NoCutoff: every intermolecular pair, exactly.
    switch_distance_nm
        Optional OpenMM switching function from this distance to the cutoff (default: plain
        cutoff, as s-dftd3 does).
    parameters
        Precomputed :func:`cso_parameters` (skips the D3 evaluation).
    parameter_derivatives
        Global parameters whose energy derivatives OpenMM computes (default ``alpha`` and ``a1``;
        the density fit reads dE/da1). On the CPU platform derivatives make the CSO several times
        slower (benchmarks/results/cso_cost.json: 1292 vs 265 ms per step, 2995 atoms, 2 shared
        cores); pass ``()`` for production runs that do not need them.
    """
    import openmm

    from .corrections import choose_correction

    chosen = choose_correction(correction, alpha=alpha, a1=a1, s6=s6, model_path=model_path, force=force_correction)
    alpha, a1, s6 = chosen.alpha, chosen.a1, chosen.s6
    cutoff_nm = length_nm(cutoff_nm, "cutoff_nm")
    switch_distance_nm = length_nm(switch_distance_nm, "switch_distance_nm")
    parameter_derivatives = tuple(parameter_derivatives)
    unknown = set(parameter_derivatives) - set(GLOBAL_PARAMETERS)
    if unknown:
        raise PotentialError(f"parameter_derivatives {sorted(unknown)} are not CSO parameters {GLOBAL_PARAMETERS}")

    n = system.getNumParticles()
    if n != topology.getNumAtoms():
        raise PotentialError(f"System has {n} particles but the topology {topology.getNumAtoms()} atoms")
    if parameters is None:
        parameters = cso_parameters(topology, positions_nm, molecule_index=molecule_index,
                                    reference_positions_nm=reference_positions_nm, cn_tolerance=cn_tolerance)
    elif parameters.n_atoms != n:
        raise PotentialError(f"CSO parameters are for {parameters.n_atoms} atoms, the System has {n}")
    if periodic is None:
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
    if force_group is None:
        force_group = _free_force_group(system)
    if not 0 <= int(force_group) <= 31:
        raise PotentialError(f"force_group must be 0-31, got {force_group}")

    a4_nm = a4_bohr * BOHR_IN_NM
    force = openmm.CustomNonbondedForce(_pair_energy_expression(a4_nm, "b1*b2", "cso_c6(cls1, cls2)"))
    force.setName("CSOCorrection")
    k = parameters.n_classes
    # Discrete2DFunction wants values[i + k*j] = f(i, j).
    force.addTabulatedFunction("cso_c6", openmm.Discrete2DFunction(k, k, parameters.c6_kj_mol_nm6.T.ravel().tolist()))
    for name, value in zip(GLOBAL_PARAMETERS, (alpha, a1, s6)):
        force.addGlobalParameter(name, float(value))
    for name in parameter_derivatives:
        force.addEnergyParameterDerivative(name)
    force.addPerParticleParameter("cls")
    force.addPerParticleParameter("b")
    b = _sigmoid_factors(parameters, a2)
    for c in parameters.atom_class:
        force.addParticle([float(c), float(b[c])])

    if periodic:
        vectors = np.array([[x._value for x in v] for v in system.getDefaultPeriodicBoxVectors()])
        topology_box = _box_vectors_nm(topology)
        if topology_box is not None:
            vectors = topology_box
        width = float(np.min(np.abs(np.diag(vectors))))
        if 2.0 * cutoff_nm > width:
            raise PotentialError(
                f"CSO cutoff {cutoff_nm} nm is more than half the box width {width:.3f} nm; "
                "use a larger box or a shorter cutoff_nm"
            )
        force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
        force.setCutoffDistance(float(cutoff_nm))
        if switch_distance_nm is not None:
            if not 0 < switch_distance_nm < cutoff_nm:
                raise PotentialError(f"switch_distance_nm must lie in (0, {cutoff_nm}), got {switch_distance_nm}")
            force.setUseSwitchingFunction(True)
            force.setSwitchingDistance(float(switch_distance_nm))
    else:
        force.setNonbondedMethod(openmm.CustomNonbondedForce.NoCutoff)
    force.setForceGroup(int(force_group))

    intramolecular = parameters.intramolecular_pairs()
    shared = _existing_exclusions(system, n)
    exclusions = intramolecular if shared is None else shared
    for i, j in sorted(exclusions):
        force.addExclusion(i, j)
    system.addForce(force)
    if periodic and long_range_correction:
        correction = _long_range_force(force, float(cutoff_nm), parameters.molecule_index, exclusions,
                                       parameter_derivatives)
        if correction is None:  # no intermolecular pair to carry it: OpenMM's own correction
            force.setUseLongRangeCorrection(True)
        else:
            system.addForce(correction)

    if shared is not None:
        fix_remove = sorted(intramolecular - shared)  # intramolecular pairs the nonbonded force still sums
        fix_add = sorted(shared - intramolecular)  # intermolecular pairs the shared list excludes
        if fix_remove or fix_add:
            system.addForce(_pair_fix_force(parameters, fix_remove, fix_add, alpha, a1, s6, a2, a4_nm,
                                            cutoff_nm if periodic else None, periodic, int(force_group),
                                            parameter_derivatives))
    return force


def _long_range_force(force, cutoff_nm: float, molecule_index, exclusions, parameter_derivatives: Sequence[str]):
    """OpenMM's long-range correction of ``force``, -alpha (s6 A + a1 B) / V, as a force of its own.

    Why not ``force.setUseLongRangeCorrection(True)``: OpenMM 8.6.1's CPU platform integrates the
    correction (and one integral per parameter derivative) over every pair of particle classes on
    every step, which made the CSO 8x slower (129 vs 16 ms per step for 1050 atoms, 15 classes).
    Here A and B come once from OpenMM's own integration, and the correction is carried by a
    one-pair CustomNonbondedForce whose energy is zero inside the cutoff and whose integrand
    beyond it is a single class pair, so re-integrating it costs nothing. Energy, box dependence
    (1/V, so the barostat sees it) and dE/dalpha, dE/da1 equal OpenMM's correction.
    Returns None when every pair is intramolecular (nothing can carry it).
    """
    import openmm

    pair = _intermolecular_pair(molecule_index, exclusions)
    if pair is None:
        return None
    # C(alpha=1, s6, a1) is linear: two evaluations give A (s6 part) and B (a1 part).
    coefficient_s6, coefficient_a1 = _long_range_coefficients(
        force, cutoff_nm, [{"alpha": 1.0, "s6": 1.0, "a1": 0.0}, {"alpha": 1.0, "s6": 0.0, "a1": 1.0}])
    # rc/r^4 integrates to 1 against r^2 dr beyond rc; the calibration absorbs OpenMM's pair counting.
    shape = f"step(r - {cutoff_nm!r})*{cutoff_nm!r}/r^4"
    unit_force = _one_pair_force(force.getNumParticles(), pair, exclusions, shape, cutoff_nm, (), ())
    (per_unit,) = _long_range_coefficients(unit_force, cutoff_nm, [{}])
    global_parameters = [(force.getGlobalParameterName(k), force.getGlobalParameterDefaultValue(k))
                         for k in range(force.getNumGlobalParameters())]
    correction = _one_pair_force(
        force.getNumParticles(), pair, exclusions,
        f"alpha*(s6*{coefficient_s6 / per_unit!r} + a1*{coefficient_a1 / per_unit!r})*{shape}",
        cutoff_nm, global_parameters, parameter_derivatives)
    correction.setName("CSOLongRangeCorrection")
    correction.setForceGroup(force.getForceGroup())
    return correction


def _intermolecular_pair(molecule_index, exclusions) -> tuple[int, int] | None:
    molecule_index = np.asarray(molecule_index)
    others = np.flatnonzero(molecule_index != molecule_index[0])
    for i in np.flatnonzero(molecule_index == molecule_index[0]):
        for j in others:
            if (min(i, j), max(i, j)) not in exclusions:
                return int(i), int(j)
    return None


def _one_pair_force(n_particles: int, pair, exclusions, expression: str, cutoff_nm: float, global_parameters,
                    parameter_derivatives):
    import openmm

    force = openmm.CustomNonbondedForce(expression)
    for name, value in global_parameters:
        force.addGlobalParameter(name, float(value))
    for name in parameter_derivatives:
        force.addEnergyParameterDerivative(name)
    for _ in range(n_particles):
        force.addParticle([])
    for i, j in sorted(exclusions):  # every nonbonded force of a System must share one exclusion list
        force.addExclusion(int(i), int(j))
    force.addInteractionGroup([pair[0]], [pair[1]])
    force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(float(cutoff_nm))
    force.setUseLongRangeCorrection(True)
    return force


def _long_range_coefficients(force, cutoff_nm: float, parameter_sets: Sequence[Mapping[str, float]]) -> list[float]:
    """E_LRC * V of a CustomNonbondedForce (kJ/mol nm^3) per set of global parameter values, from
    OpenMM's Reference platform (one Context for all sets).

    The particles sit on a grid wider than the cutoff in a large box, so no pair is inside the
    cutoff and the energy is the correction alone; the coefficient does not depend on the box.
    """
    import openmm

    copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(force))
    copy.setForceGroup(0)
    copy.setUseLongRangeCorrection(True)
    n = copy.getNumParticles()
    spacing = 1.01 * cutoff_nm
    side = int(np.ceil(n ** (1.0 / 3.0)))
    edge = max(side * spacing, 2.01 * cutoff_nm)
    grid = np.stack(np.meshgrid(*[np.arange(side)] * 3, indexing="ij"), axis=-1).reshape(-1, 3)[:n] * spacing
    system = openmm.System()
    for _ in range(n):
        system.addParticle(1.0)
    system.setDefaultPeriodicBoxVectors((edge, 0, 0), (0, edge, 0), (0, 0, edge))
    system.addForce(copy)
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(grid)
    coefficients = []
    for parameter_values in parameter_sets:
        for name, value in parameter_values.items():
            context.setParameter(name, float(value))
        coefficients.append(float(context.getState(getEnergy=True).getPotentialEnergy()._value * edge**3))
    del context
    return coefficients


def _pair_fix_force(parameters: CSOParameters, remove, add, alpha, a1, s6, a2, a4_nm, cutoff_nm, periodic,
                    force_group: int, parameter_derivatives: Sequence[str]):
    """CustomBondForce that subtracts (sign -1) or adds (sign +1) single CSO pairs."""
    import openmm

    expression = f"sign*({_pair_energy_expression(a4_nm, 'offset', 'c6')})"
    if cutoff_nm is not None:
        # Match the nonbonded force, which sees a pair only inside the cutoff.
        expression = f"step({float(cutoff_nm)!r} - r)*" + expression
    force = openmm.CustomBondForce(expression)
    force.setName("CSOCorrectionPairFix")
    for name, value in zip(GLOBAL_PARAMETERS, (alpha, a1, s6)):
        force.addGlobalParameter(name, float(value))
    for name in parameter_derivatives:
        force.addEnergyParameterDerivative(name)
    for name in ("sign", "c6", "offset"):
        force.addPerBondParameter(name)
    cls = parameters.atom_class
    b = _sigmoid_factors(parameters, a2)
    for sign, pairs in ((-1.0, remove), (1.0, add)):
        for i, j in pairs:
            force.addBond(int(i), int(j), [sign, float(parameters.c6_kj_mol_nm6[cls[i], cls[j]]),
                                           float(b[cls[i]] * b[cls[j]])])
    force.setUsesPeriodicBoundaryConditions(bool(periodic))
    force.setForceGroup(force_group)
    return force


def cso_forces(system) -> list:
    """The forces :func:`add_cso_correction` added to ``system`` (the nonbonded force and any pair fix)."""
    return [f for f in system.getForces()
            if f.getName() in ("CSOCorrection", "CSOCorrectionPairFix", "CSOLongRangeCorrection")]


def long_range_correction_kj_mol(system, positions_nm, box_vectors_nm=None,
                                 parameter_values: Mapping[str, float] | None = None) -> float:
    """The energy OpenMM's long-range correction adds to the CSO term, kJ/mol.

    Evaluated as E(correction on) - E(correction off) for the CSO forces alone on the Reference
    platform. The correction assumes a uniform pair distribution beyond the cutoff and counts all
    class pairs (intramolecular ones included, a relative overcount of about atoms-per-molecule /
    atoms-in-box).
    """
    import openmm

    forces = cso_forces(system)
    if not forces:
        raise PotentialError("this System has no CSO correction (add one with add_cso_correction)")
    energies = []
    for use in (True, False):
        test = openmm.System()
        for i in range(system.getNumParticles()):
            test.addParticle(system.getParticleMass(i))
        test.setDefaultPeriodicBoxVectors(*system.getDefaultPeriodicBoxVectors())
        for force in forces:
            copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(force))
            copy.setForceGroup(0)
            if isinstance(copy, openmm.CustomNonbondedForce):
                copy.setUseLongRangeCorrection(use and force.getUseLongRangeCorrection())
            test.addForce(copy)
        context = openmm.Context(test, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("Reference"))
        if box_vectors_nm is not None:
            context.setPeriodicBoxVectors(*np.asarray(box_vectors_nm, dtype=float))
        context.setPositions(np.asarray(positions_nm, dtype=float))
        for name, value in (parameter_values or {}).items():
            context.setParameter(name, float(value))
        energies.append(context.getState(getEnergy=True).getPotentialEnergy()._value)
        del context
    return float(energies[0] - energies[1])


# ---------------------------------------------------------------------------------------------- reference
def cso_energy_reference(parameters: CSOParameters, positions_nm, *, a1: float, alpha: float = 1.0,
                         s6: float = 1.0, a2: float = CSO_A2, a4_bohr: float = CSO_A4_BOHR,
                         box_vectors_nm=None, cutoff_nm: float | None = None) -> float:
    """Plain numpy ``alpha * E_CSO`` over intermolecular pairs (kJ/mol), no long-range correction.

    Periodic (minimum image, orthorhombic or cutoff below half the box) when ``box_vectors_nm`` is
    given, then only pairs within ``cutoff_nm``. O(N^2) memory: for tests and small systems.
    """
    xyz = np.asarray(positions_nm, dtype=float)
    delta = xyz[:, None, :] - xyz[None, :, :]
    if box_vectors_nm is not None:
        box = np.asarray(box_vectors_nm, dtype=float)
        delta -= np.round(delta @ np.linalg.inv(box)) @ box
    r = np.linalg.norm(delta, axis=-1)
    c6, r0 = parameters.atom_c6(), parameters.atom_r0()
    a4_nm = a4_bohr * BOHR_IN_NM
    with np.errstate(over="ignore"):
        pair = -(s6 + a1 / (1.0 + np.exp((r - a2 * r0) / BOHR_IN_NM))) * c6 / (r**6 + a4_nm**6)
    mask = parameters.molecule_index[:, None] != parameters.molecule_index[None, :]
    if box_vectors_nm is not None and cutoff_nm is not None:
        mask &= r <= cutoff_nm
    return float(alpha * 0.5 * pair[mask].sum())
