"""The CSO term as OpenMM forces: the CustomNonbondedForce, its pair fix and long-range correction."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ...errors import PotentialError
from ...units import BOHR_IN_NM
from ...workarounds import CPU_LONG_RANGE_CORRECTION
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

    from ..corrections import choose_correction

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
        correction = None
        if CPU_LONG_RANGE_CORRECTION.active():
            correction = _long_range_force(force, float(cutoff_nm), parameters.molecule_index, exclusions,
                                           parameter_derivatives)
        if correction is None:  # a fixed OpenMM, or no intermolecular pair to carry it: OpenMM's own
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

    Why not ``force.setUseLongRangeCorrection(True)``:
    :data:`openmm_physembed.workarounds.CPU_LONG_RANGE_CORRECTION`. Here A and B come once from OpenMM's own integration, and the correction is carried by a
    one-pair CustomNonbondedForce whose energy is zero inside the cutoff and whose integrand
    beyond it is a single class pair, so re-integrating it costs nothing. Energy, box dependence
    (1/V, so the barostat sees it) and dE/dalpha, dE/da1 equal OpenMM's correction.
    Returns None when every pair is intramolecular (nothing can carry it).
    """

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


