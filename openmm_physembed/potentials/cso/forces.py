"""The CSO term as OpenMM forces: the CustomNonbondedForce, its pair fix and long-range correction."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ...errors import PotentialError
from ...units import BOHR_IN_NM
from .parameters import (
    CSO_A2,
    CSO_A4_BOHR,
    DEFAULT_CN_TOLERANCE,
    DEFAULT_CUTOFF_NM,
    DERIVATIVE_PARAMETERS,
    GLOBAL_PARAMETERS,
    CSOParameters,
    _box_vectors_nm,
    cso_parameters,
    length_nm,
)

# ---------------------------------------------------------------------------------------------- force
# The sigmoid's exponent is capped: OpenMM's own long-range correction of this expression (when
# switched on, as benchmarks and tests do) integrates it in single precision out to r ~ 1e5 nm, and
# an overflowing exp there makes the integration fail to converge; _tail_coefficients applies the
# same cap. At the cap the sigmoid is 4e-18, and no pair inside a periodic cutoff gets near it (the
# exponent is below 20 at r = 1.2 nm), so energies are unchanged.
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
        See :func:`.correction_choice.choose_correction`.
    a2, a4_bohr
        Fixed CSO constants (published 2.5 and 6.25 bohr).
    cutoff_nm
        Periodic cutoff; a long-range correction accounts for the intermolecular pairs beyond it.
    long_range_correction
        Add that correction (periodic systems), as the force ``CSOLongRangeCorrection`` in the
        same force group (see ``_long_range_force``).
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
    from openmm import unit

    from ..correction_choice import choose_correction

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
        vectors = np.array([v.value_in_unit(unit.nanometer) for v in system.getDefaultPeriodicBoxVectors()])
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
        correction = _long_range_force(force, parameters, exclusions, float(cutoff_nm), switch_distance_nm, a2, a4_nm,
                                       parameter_derivatives)
        if correction is not None:
            system.addForce(correction)

    if shared is not None:
        fix_remove = sorted(intramolecular - shared)  # intramolecular pairs the nonbonded force still sums
        fix_add = sorted(shared - intramolecular)  # intermolecular pairs the shared list excludes
        if fix_remove or fix_add:
            system.addForce(_pair_fix_force(parameters, fix_remove, fix_add, alpha, a1, s6, a2, a4_nm,
                                            cutoff_nm if periodic else None, periodic, int(force_group),
                                            parameter_derivatives))
    return force


def _long_range_force(force, parameters: CSOParameters, exclusions, cutoff_nm: float,
                      switch_distance_nm: float | None, a2: float, a4_nm: float, parameter_derivatives: Sequence[str]):
    """The CSO tail over intermolecular pairs, alpha (s6 A + a1 B) / V, as a one-pair force.

    A and B come from :func:`_tail_coefficients`. Why not ``force.setUseLongRangeCorrection(True)``:
    OpenMM counts every pair of particles (N^2/2), intramolecular ones included, which the CSO term
    leaves out, so a 6-molecule box got a tail 20 % too deep; and OpenMM 8.6.1's CPU platform
    re-integrates its correction over every class pair on every step (129 vs 16 ms per step for
    1050 atoms and 15 classes, benchmarks/cso_cost.py ``cso_builtin_lrc``). The carrier is a
    CustomNonbondedForce whose energy is zero inside the cutoff and whose one pair has an integrand
    of known integral beyond it, so OpenMM's correction of it is A and B times a calibration
    constant (OpenMM's pair-counting convention), cheap to re-integrate, and still 1/V (the barostat
    sees it), with OpenMM's energy derivatives for the global parameters in ``parameter_derivatives``.
    Returns None when there is no intermolecular pair, hence no tail.
    """
    coefficient_s6, coefficient_a1 = _tail_coefficients(parameters, cutoff_nm, switch_distance_nm, a2, a4_nm)
    pair = _intermolecular_pair(parameters.molecule_index, exclusions)
    if pair is None:
        if coefficient_s6 != 0.0:
            raise PotentialError("every intermolecular pair is excluded by the System's nonbonded force, so no "
                                 "pair can carry the CSO long-range correction; pass long_range_correction=False")
        return None
    # rc/r^4 integrates to 1 against r^2 dr beyond rc; per_unit is what OpenMM makes of that one pair.
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


def _intermolecular_class_pairs(parameters: CSOParameters) -> np.ndarray:
    """W_ab: ordered pairs (atom of class a, atom of class b) in different molecules.

    W = N N^T - sum_m n_m n_m^T with N the class counts of the box and n_m those of molecule m;
    W_ab + W_ba (a != b) and W_aa / 2 count unordered pairs, so sum(W) / 2 is the number of
    intermolecular pairs.
    """
    molecules = np.unique(parameters.molecule_index, return_inverse=True)[1]
    per_molecule = np.zeros((molecules.max() + 1, parameters.n_classes))
    np.add.at(per_molecule, (molecules, parameters.atom_class), 1.0)
    total = per_molecule.sum(axis=0)
    return np.outer(total, total) - per_molecule.T @ per_molecule


def _tail_coefficients(parameters: CSOParameters, cutoff_nm: float, switch_distance_nm: float | None,
                       a2: float, a4_nm: float) -> tuple[float, float]:
    """A and B of the CSO tail alpha (s6 A + a1 B) / V, kJ/mol nm^3, over intermolecular pairs.

    The uniform-liquid tail (g(r) = 1 beyond the cutoff; Allen and Tildesley, Computer Simulation
    of Liquids, on long-range corrections), pair by pair:

        V E_tail = 4 pi sum_{A<B, different molecules} int w(r) r^2 E_AB(r) dr
                 = 2 pi sum_{a,b} W_ab int w(r) r^2 E_ab(r) dr

    with W from :func:`_intermolecular_class_pairs`, E_ab the pair energy of the force
    (:func:`_pair_energy_expression`, exponent cap included), w = 1 beyond the cutoff and, with a
    switching function S, w = 1 - S on [r_switch, r_c] (the part the switched force leaves out,
    as OpenMM's own correction does). Gauss-Legendre in x = r_c / r, where both integrands are
    smooth: 16 panels of 16 nodes agree with scipy's quad to ~1e-14 for cutoffs of 0.3-1.2 nm.
    """
    x, wx = _gauss_legendre(0.0, 1.0, panels=16, order=16)
    r = cutoff_nm / x
    weights = wx * cutoff_nm / x**2 * r**2 / (r**6 + a4_nm**6)  # dr = rc dx / x^2
    if switch_distance_nm is not None:
        rs, ws = _gauss_legendre(switch_distance_nm, cutoff_nm, panels=4, order=16)
        t = (rs - switch_distance_nm) / (cutoff_nm - switch_distance_nm)
        r = np.concatenate([r, rs])
        weights = np.concatenate([weights, ws * t**3 * (10.0 + t * (-15.0 + 6.0 * t)) * rs**2 / (rs**6 + a4_nm**6)])
    b = _sigmoid_factors(parameters, a2)
    exponent = np.minimum(r / BOHR_IN_NM - np.outer(b, b)[..., None], SIGMOID_EXPONENT_CAP)
    sigmoid_integral = (weights / (1.0 + np.exp(exponent))).sum(axis=-1)
    weighted_c6 = _intermolecular_class_pairs(parameters) * parameters.c6_kj_mol_nm6
    return (float(-2.0 * np.pi * weighted_c6.sum() * weights.sum()),
            float(-2.0 * np.pi * (weighted_c6 * sigmoid_integral).sum()))


def _gauss_legendre(lo: float, hi: float, panels: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(lo, hi, panels + 1)
    half = 0.5 * np.diff(edges)[:, None]
    return ((edges[:-1, None] + half * (nodes + 1.0)).ravel(), (half * weights).ravel())


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
    from openmm import unit

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
        energy = context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        coefficients.append(float(energy * edge**3))
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
    """The energy the long-range correction adds to the CSO term, kJ/mol.

    Evaluated as E(correction on) - E(correction off) for the CSO forces alone on the Reference
    platform. The correction assumes a uniform pair distribution beyond the cutoff and counts
    intermolecular pairs only (:func:`_tail_coefficients`); on a CSO force whose own OpenMM
    correction was switched on instead, it reads that one, which counts every pair.
    """
    import openmm
    from openmm import unit

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
        energies.append(context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
        del context
    return float(energies[0] - energies[1])


