"""Instantaneous pressure tensor of a running OpenMM simulation, behind one small interface.

    P_ab = (1/V) [ sum_i m_i v_ia v_ib  -  dU/d(eps_ab) ]

The kinetic part comes from the velocities; the configurational (virial) part is the strain
derivative of the potential energy. Providers differ only in how they get that derivative, and
register under a name, as the backends of openmm-ml's ``MLPotential`` do:

- ``finite-difference`` (:class:`FiniteDifferencePressureTensor`): OpenMM 8.6's
  ``MonteCarloFlexibleBarostat.computeStressTensor``, a central strain finite difference
  (delta = 1e-3, 12 energy evaluations) over chosen force groups. Exact to O(delta^2) for any
  force field whose energy is continuous, slow for expensive ones.
- ``exact-mace`` (:class:`ExactMACEPressureTensor`): the MACE virial from the model's own strain
  derivative (the ``virial`` method of the TorchForce's module: one forward+backward pass, no
  finite difference) for the MACE force group, plus :class:`FiniteDifferencePressureTensor`
  restricted to the other groups (CSO, classical terms), which are cheap to evaluate 12 times.
- ``auto``: ``exact-mace`` for a System with a MACE TorchForce, else ``finite-difference``.

New providers subclass :class:`PressureTensorProvider`, implement
:meth:`~PressureTensorProvider.virial_bar` and register with :func:`register_pressure_provider`.

Requirements checked by :meth:`PressureTensorProvider.prepare_system`: a periodic System without
constraints or virtual sites (a strain derivative at fixed bond lengths needs the constraint
virial, which OpenMM does not expose) and without an active barostat (Green-Kubo needs NVT).

Energy jumps at a cutoff (Lennard-Jones truncated without a switching function, as OpenMM's
``NonbondedForce`` does unless told otherwise) make the finite difference count pairs that cross
the cutoff under the +-delta strain; this adds white noise (and a small bias to a Green-Kubo
integral proportional to the sampling interval). :func:`energy_discontinuities` names such forces.
Measured on a 900-atom GAFF EMC box (PME, LJ truncated at 1.0 nm): the step-to-step noise of the
shear components is at most 82 bar against a 1480 bar spread, a Green-Kubo bias below 0.0005 cP at
5 fs sampling even if all of it were white; for LJ argon truncated at 2.5 sigma it is as large as the
signal, hence the shifted potential of ``benchmarks/lj_viscosity.py``.

Cost: one finite-difference sample is 12 energy evaluations, about 13-15 MD steps of the same
System on the CPU platform (GAFF box above: 39 ms vs 2.9 ms per step).
"""

from __future__ import annotations

import importlib
from typing import Callable, Iterable

import numpy as np

from ...errors import PropertyError
from ...units import BAR_IN_KJ_PER_MOL_NM3

_BUILTIN: dict[str, str] = {
    "finite-difference": "openmm_physembed.properties.viscosity.pressure:FiniteDifferencePressureTensor",
    "exact-mace": "openmm_physembed.properties.viscosity.pressure:ExactMACEPressureTensor",
    "auto": "openmm_physembed.properties.viscosity.pressure:AutoPressureTensor",
}
_REGISTERED: dict[str, Callable[..., "PressureTensorProvider"]] = {}

# A disabled barostat (frequency 0) whose only job is computeStressTensor.
STRESS_BAROSTAT_NAME = "PressureTensorFiniteDifference"
ALL_GROUPS = frozenset(range(32))


def register_pressure_provider(name: str, factory: Callable[..., "PressureTensorProvider"]) -> None:
    """Make ``create_pressure_provider(name, **options)`` call ``factory(**options)``."""
    _REGISTERED[name] = factory


def available_pressure_providers() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTERED))


def create_pressure_provider(name: str = "auto", **options) -> "PressureTensorProvider":
    """A provider by registered name (``auto``, ``exact-mace``, ``finite-difference``, or registered)."""
    if name in _REGISTERED:
        return _REGISTERED[name](**options)
    if name in _BUILTIN:
        module, attribute = _BUILTIN[name].split(":")
        return getattr(importlib.import_module(module), attribute)(**options)
    raise PropertyError(f"unknown pressure-tensor provider {name!r}; available: "
                        f"{', '.join(available_pressure_providers())}")


def voigt_to_tensor(six) -> np.ndarray:
    """(..., 6) in the order xx, yy, zz, xy, xz, yz -> symmetric (..., 3, 3)."""
    s = np.asarray(six, dtype=float)
    xx, yy, zz, xy, xz, yz = np.moveaxis(s, -1, 0)
    return np.stack([np.stack([xx, xy, xz], -1), np.stack([xy, yy, yz], -1), np.stack([xz, yz, zz], -1)], -2)


def tensor_to_voigt(tensor) -> np.ndarray:
    """Symmetric (..., 3, 3) -> (..., 6) in the order xx, yy, zz, xy, xz, yz (off-diagonals averaged)."""
    t = np.asarray(tensor, dtype=float)
    return np.stack([t[..., 0, 0], t[..., 1, 1], t[..., 2, 2], 0.5 * (t[..., 0, 1] + t[..., 1, 0]),
                     0.5 * (t[..., 0, 2] + t[..., 2, 0]), 0.5 * (t[..., 1, 2] + t[..., 2, 1])], -1)


def kinetic_pressure_bar(masses_amu, velocities_nm_ps, volume_nm3: float) -> np.ndarray:
    """(1/V) sum_i m_i v_i (x) v_i in bar (amu nm^2/ps^2 = kJ/mol)."""
    m = np.asarray(masses_amu, dtype=float)
    v = np.asarray(velocities_nm_ps, dtype=float)
    return np.einsum("i,ia,ib->ab", m, v, v) / volume_nm3 / BAR_IN_KJ_PER_MOL_NM3


def force_groups_in(system) -> set[int]:
    """Force groups used by the System's energy terms (barostats and motion removers excluded)."""
    import openmm

    skip = (openmm.MonteCarloBarostat, openmm.MonteCarloAnisotropicBarostat, openmm.MonteCarloFlexibleBarostat,
            openmm.MonteCarloMembraneBarostat, openmm.CMMotionRemover, openmm.AndersenThermostat)
    return {f.getForceGroup() for f in system.getForces() if not isinstance(f, skip)}


def energy_discontinuities(system) -> list[str]:
    """Forces whose energy jumps at a cutoff (finite-difference pressure picks up crossing pairs)."""
    import openmm
    from openmm import unit

    found = []
    cutoff_methods = (openmm.NonbondedForce.CutoffPeriodic, openmm.NonbondedForce.CutoffNonPeriodic,
                      openmm.NonbondedForce.Ewald, openmm.NonbondedForce.PME, openmm.NonbondedForce.LJPME)
    for index, force in enumerate(system.getForces()):
        if isinstance(force, openmm.NonbondedForce) and force.getNonbondedMethod() in cutoff_methods \
                and force.getNonbondedMethod() != openmm.NonbondedForce.LJPME and not force.getUseSwitchingFunction():
            found.append(f"force {index} ({force.getName()}): Lennard-Jones truncated at "
                         f"{force.getCutoffDistance().value_in_unit(unit.nanometer):g} nm without a switching function")
        elif isinstance(force, openmm.CustomNonbondedForce) and force.getNonbondedMethod() in (
                openmm.CustomNonbondedForce.CutoffPeriodic, openmm.CustomNonbondedForce.CutoffNonPeriodic) \
                and not force.getUseSwitchingFunction():
            found.append(f"force {index} ({force.getName()}): truncated at "
                         f"{force.getCutoffDistance().value_in_unit(unit.nanometer):g} nm "
                         "without a switching function")
    return found


def check_system_for_pressure(system) -> None:
    """Refuse Systems whose pressure tensor a strain derivative cannot give (see module docstring)."""
    import openmm

    if not system.usesPeriodicBoundaryConditions():
        raise PropertyError("the pressure tensor needs a periodic System (a liquid box)")
    if system.getNumConstraints() > 0:
        raise PropertyError(
            f"the System has {system.getNumConstraints()} constraints; the pressure tensor is computed from "
            "a strain derivative of the energy, which misses the constraint forces. Build it without "
            "constraints (createSystem(constraints=None, rigidWater=False)) and use a 0.5-1 fs time step")
    virtual = [i for i in range(system.getNumParticles()) if system.isVirtualSite(i)]
    if virtual:
        raise PropertyError(f"the System has {len(virtual)} virtual sites (first: particle {virtual[0]}); "
                            "the strain finite difference does not support them")
    for force in system.getForces():
        active = (isinstance(force, (openmm.MonteCarloBarostat, openmm.MonteCarloAnisotropicBarostat,
                                     openmm.MonteCarloFlexibleBarostat, openmm.MonteCarloMembraneBarostat))
                  and force.getFrequency() > 0)
        if active:
            raise PropertyError(f"the System has an active {type(force).__name__}; Green-Kubo needs constant "
                                "volume: remove the barostat (the NPT run that equilibrated the box is separate)")


class PressureTensorProvider:
    """Interface: the instantaneous pressure tensor (bar) of a Context.

    Subclasses implement :meth:`virial_bar` (the configurational part) and may extend
    :meth:`prepare_system` (called once on the System before the Context is created) and
    ``state_include`` (what the reporter's State must contain).
    """

    name = "abstract"
    state_include: tuple[str, ...] = ("velocities",)

    def __init__(self, include_kinetic: bool = True):
        self.include_kinetic = bool(include_kinetic)
        self._masses: np.ndarray | None = None

    def prepare_system(self, system) -> None:
        check_system_for_pressure(system)

    def virial_bar(self, context, state) -> np.ndarray:  # pragma: no cover - interface
        """-(1/V) dU/d(eps) over this provider's forces, (3, 3) bar."""
        raise NotImplementedError

    def kinetic_bar(self, context, state) -> np.ndarray:
        from openmm import unit

        if self._masses is None:
            system = context.getSystem()
            self._masses = np.array([system.getParticleMass(i).value_in_unit(unit.dalton)
                                     for i in range(system.getNumParticles())])
        velocities = state.getVelocities(asNumpy=True).value_in_unit(unit.nanometer / unit.picosecond)
        volume = state.getPeriodicBoxVolume().value_in_unit(unit.nanometer**3)
        return kinetic_pressure_bar(self._masses, velocities, volume)

    def compute_bar(self, context, state=None) -> np.ndarray:
        """Full (3, 3) pressure tensor in bar; ``state`` must hold velocities (fetched if None)."""
        if state is None:
            state = context.getState(getVelocities=True, getPositions="positions" in self.state_include)
        tensor = self.virial_bar(context, state)
        if self.include_kinetic:
            tensor = tensor + self.kinetic_bar(context, state)
        return tensor

    def describe(self) -> dict:
        return {"provider": self.name, "include_kinetic": self.include_kinetic}


class FiniteDifferencePressureTensor(PressureTensorProvider):
    """Virial by OpenMM's strain finite difference (``MonteCarloFlexibleBarostat.computeStressTensor``).

    For each of the six components OpenMM applies the deformation F = I +- delta e_a (x) e_b
    (delta = 1e-3) to the box and the coordinates and differentiates the energy:
    sigma_ab = (1/V) dU/d(eps_ab) in bar, tension positive; this provider returns P = -sigma.
    ``computeStressTensor`` evaluates the energy of the integrator's integration force groups, so
    restricting it to ``force_groups`` means setting those on the integrator for the duration
    of the call (restored afterwards, also on error).

    Parameters
    ----------
    force_groups
        Force groups whose virial is wanted; None = whatever the integrator integrates (the
        full potential of the dynamics).
    scale_molecules_as_rigid
        False (default): every atom follows the strain (atomic virial, what mace-torch's
        virial is). True: molecule centres follow it (molecular virial); both give the same
        Green-Kubo viscosity, the molecular one with smaller fluctuations.
    include_kinetic
        Add the kinetic term from the State's velocities.
    """

    name = "finite-difference"

    def __init__(self, force_groups: Iterable[int] | None = None, scale_molecules_as_rigid: bool = False,
                 include_kinetic: bool = True):
        super().__init__(include_kinetic)
        if force_groups is not None:
            force_groups = frozenset(int(g) for g in force_groups)
            bad = [g for g in force_groups if not 0 <= g <= 31]
            if bad:
                raise PropertyError(f"force groups must be 0-31; got {bad}")
        self.force_groups = force_groups
        self.scale_molecules_as_rigid = bool(scale_molecules_as_rigid)
        self._barostat_index: int | None = None

    def prepare_system(self, system) -> None:
        import openmm
        from openmm import unit

        from ...simulation.system_xml import is_torch_force

        super().prepare_system(system)
        groups = ALL_GROUPS if self.force_groups is None else self.force_groups
        if any(is_torch_force(f) and f.getForceGroup() in groups for f in system.getForces()):
            # computeStressTensor evaluates a TorchForce with the GIL held, which torch refuses.
            raise PropertyError("the finite-difference pressure cannot include a MACE TorchForce (openmm-torch "
                                "fails inside computeStressTensor); use pressure provider 'exact-mace' or 'auto'")
        for index, force in enumerate(system.getForces()):
            if isinstance(force, openmm.MonteCarloFlexibleBarostat) and force.getName() == STRESS_BAROSTAT_NAME:
                if force.getScaleMoleculesAsRigid() != self.scale_molecules_as_rigid:
                    force.setScaleMoleculesAsRigid(self.scale_molecules_as_rigid)
                self._barostat_index = index
                return
        # Barostats share the Context parameters MonteCarloPressure/-Temperature: a second one must
        # declare the same defaults or the Context refuses to build.
        pressure, temperature = 1.0, 300.0
        for force in system.getForces():
            if isinstance(force, (openmm.MonteCarloBarostat, openmm.MonteCarloFlexibleBarostat,
                                  openmm.MonteCarloMembraneBarostat)):
                pressure = force.getDefaultPressure().value_in_unit(unit.bar)
                temperature = force.getDefaultTemperature().value_in_unit(unit.kelvin)
        barostat = openmm.MonteCarloFlexibleBarostat(pressure, temperature, 0, self.scale_molecules_as_rigid)
        barostat.setName(STRESS_BAROSTAT_NAME)
        self._barostat_index = system.addForce(barostat)

    def _barostat(self, context):
        import openmm

        system = context.getSystem()
        index = self._barostat_index
        if index is not None and index < system.getNumForces():
            force = system.getForce(index)
            if isinstance(force, openmm.MonteCarloFlexibleBarostat) and force.getName() == STRESS_BAROSTAT_NAME:
                return force
        for index, force in enumerate(system.getForces()):
            if isinstance(force, openmm.MonteCarloFlexibleBarostat) and force.getName() == STRESS_BAROSTAT_NAME:
                self._barostat_index = index
                return force
        raise PropertyError("the Context's System has no stress barostat: call prepare_system(system) "
                            "before creating the Simulation/Context")

    def virial_bar(self, context, state=None) -> np.ndarray:
        from openmm import unit

        if self.force_groups is not None and not self.force_groups:
            return np.zeros((3, 3))
        barostat = self._barostat(context)
        integrator = context.getIntegrator()
        previous = integrator.getIntegrationForceGroups()
        try:
            if self.force_groups is not None:
                integrator.setIntegrationForceGroups(sum(1 << g for g in self.force_groups))
            stress = barostat.computeStressTensor(context, False)
        finally:
            integrator.setIntegrationForceGroups(previous)
        stress = np.asarray(stress.value_in_unit(unit.bar), dtype=float)
        return -voigt_to_tensor(stress)

    def describe(self) -> dict:
        groups = None if self.force_groups is None else sorted(self.force_groups)
        return {**super().describe(), "force_groups": groups,
                "scale_molecules_as_rigid": self.scale_molecules_as_rigid}


class ExactMACEPressureTensor(PressureTensorProvider):
    """MACE virial from the model's strain derivative + finite differences for every other force.

    The MACE part calls the ``virial`` method of the module inside the System's MACE TorchForce
    (added by :func:`~openmm_physembed.potentials.mace_force.add_mace_force`): MACE differentiates
    its energy with respect to a symmetric strain of positions and cell, images included, in one
    backward pass. The other force groups (CSO, a classical force field) go through
    :class:`FiniteDifferencePressureTensor`; both are the atomic virial, so they add up.
    The MACE TorchForce must be alone in its force group (``CorrectedMACESystem`` does this).
    """

    name = "exact-mace"
    state_include = ("positions", "velocities")

    def __init__(self, include_kinetic: bool = True):
        super().__init__(include_kinetic)
        self.mace_group: int | None = None
        self.rest: FiniteDifferencePressureTensor | None = None
        self._module = None
        self._on_device: dict = {}  # copies of the module on the GPUs Contexts ran on

    def prepare_system(self, system) -> None:
        from ...simulation.system_xml import is_torch_force

        super().prepare_system(system)
        torch_forces = [f for f in system.getForces() if is_torch_force(f)]
        if len(torch_forces) != 1:
            raise PropertyError(f"exact-mace needs exactly one MACE TorchForce in the System, found "
                                f"{len(torch_forces)}; use pressure provider 'finite-difference'")
        force = _as_torch_force(torch_forces[0])
        module = force.getModule()
        if not hasattr(module, "virial"):
            raise PropertyError("the System's TorchForce has no virial method (not built by add_mace_force); "
                                "use pressure provider 'finite-difference'")
        self.mace_group = force.getForceGroup()
        sharing = [type(f).__name__ for f in system.getForces()
                   if f.getForceGroup() == self.mace_group and not is_torch_force(f) and _is_energy_term(f)
                   and f.getName() != "MoleculeDefinition"]  # zero energy: only tells barostats about molecules
        if sharing:
            raise PropertyError(f"force group {self.mace_group} holds the MACE TorchForce and also "
                                f"{', '.join(sharing)}; give MACE a force group of its own")
        self._module = module
        self._on_device = {}
        rest = force_groups_in(system) - {self.mace_group}
        self.rest = None
        if rest:
            self.rest = FiniteDifferencePressureTensor(force_groups=rest, include_kinetic=False)
            self.rest.prepare_system(system)

    def mace_virial_bar(self, state, device=None) -> np.ndarray:
        """MACE's part of the virial (bar) for ``state``, evaluated on ``device`` (default: where
        the module was built, the CPU for :func:`~openmm_physembed.potentials.add_mace_force`)."""
        from openmm import unit

        from ...potentials.mace_module import mace_virial, module_on

        if self._module is None:
            raise PropertyError("call prepare_system(system) before computing the pressure")
        module = self._module
        if device is not None:
            module = self._on_device.get(str(device))
            if module is None:
                module = self._on_device[str(device)] = module_on(self._module, device)
        virial_kj = mace_virial(module, state.getPositions(asNumpy=True).value_in_unit(unit.nanometer),
                                np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)))
        return virial_kj / state.getPeriodicBoxVolume().value_in_unit(unit.nanometer**3) / BAR_IN_KJ_PER_MOL_NM3

    def virial_bar(self, context, state) -> np.ndarray:
        tensor = self.mace_virial_bar(state, torch_device_of(context))
        if self.rest is not None:
            tensor = tensor + self.rest.virial_bar(context, state)
        return tensor

    def describe(self) -> dict:
        return {**super().describe(), "mace_group": self.mace_group,
                "finite_difference_groups": None if self.rest is None else sorted(self.rest.force_groups)}


class AutoPressureTensor(PressureTensorProvider):
    """``exact-mace`` when the System has a MACE TorchForce, else ``finite-difference``."""

    name = "auto"

    def __init__(self, include_kinetic: bool = True, **finite_difference_options):
        super().__init__(include_kinetic)
        self._options = finite_difference_options
        self.chosen: PressureTensorProvider | None = None

    def prepare_system(self, system) -> None:
        from ...simulation.system_xml import has_torch_force

        if has_torch_force(system):
            self.chosen = ExactMACEPressureTensor(include_kinetic=self.include_kinetic)
        else:
            self.chosen = FiniteDifferencePressureTensor(include_kinetic=self.include_kinetic, **self._options)
        self.chosen.prepare_system(system)
        self.state_include = self.chosen.state_include

    def _provider(self) -> PressureTensorProvider:
        if self.chosen is None:
            raise PropertyError("call prepare_system(system) before computing the pressure")
        return self.chosen

    def virial_bar(self, context, state) -> np.ndarray:
        return self._provider().virial_bar(context, state)

    def compute_bar(self, context, state=None) -> np.ndarray:
        return self._provider().compute_bar(context, state)

    def describe(self) -> dict:
        return {**super().describe(), "chosen": None if self.chosen is None else self.chosen.describe()}


def torch_device_of(context) -> str:
    """The torch device where the TorchForce runs in ``context``: its GPU on the CUDA platform
    (``cuda:DeviceIndex``, as openmm-torch moves the module), else the CPU."""
    platform = context.getPlatform()
    if platform.getName() != "CUDA":
        return "cpu"
    index = platform.getPropertyValue(context, "DeviceIndex").split(",")[0].strip() or "0"
    return f"cuda:{int(index)}"


def _as_torch_force(force):
    """The System hands plugin forces back as plain ``Force``; cast to TorchForce."""
    from ...potentials.mace_force import import_openmmtorch

    openmmtorch = import_openmmtorch()
    return force if hasattr(force, "getModule") else openmmtorch.TorchForce.cast(force)


def _is_energy_term(force) -> bool:
    import openmm

    return not isinstance(force, (openmm.MonteCarloBarostat, openmm.MonteCarloAnisotropicBarostat,
                                  openmm.MonteCarloFlexibleBarostat, openmm.MonteCarloMembraneBarostat,
                                  openmm.CMMotionRemover, openmm.AndersenThermostat))
