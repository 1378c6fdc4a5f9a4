"""The ensemble, thermostat, barostat, time step, seed and platform of an MD run: one dataclass.

Every MD protocol of the package (NPT density, NVT viscosity, GAFF reference MD, MACE MD, the
stability test) nests a :class:`Dynamics` instead of repeating these fields, and the engine
(:mod:`.engine`) turns it into OpenMM objects in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..errors import SimulationError

THERMOSTATS = ("langevin", "nose-hoover", "verlet")


@dataclass(frozen=True)
class Dynamics:
    """How the equations of motion are integrated.

    ``thermostat``: ``langevin`` (LangevinMiddle, ``friction_per_ps``), ``nose-hoover``
    (``friction_per_ps`` is the collision frequency; deterministic, no stochastic damping of
    momentum correlations, for Green-Kubo) or ``verlet`` (NVE, for energy-conservation checks).
    ``pressure_bar`` None keeps the volume fixed; a value adds a Monte Carlo barostat every
    ``barostat_interval`` steps. ``platform`` None picks CUDA, else CPU (Reference for small
    classical systems), see :func:`.platforms.choose_platform`.

    ``hydrogen_mass_amu`` None keeps the System's masses; a value (3.0 is usual) repartitions them
    for the run as OpenMM's ``createSystem(hydrogenMass=...)`` does (:mod:`.masses`): each hydrogen
    bonded to a heavy atom gets that mass, taken from the heavy atom, so the total mass and every
    equilibrium property stay the same and a 2 fs step becomes stable without constraints.
    Dynamical properties (viscosity, diffusion) do change with it.
    """

    temperature_K: float = 298.15
    timestep_fs: float = 1.0
    thermostat: str = "langevin"
    friction_per_ps: float = 1.0
    pressure_bar: float | None = None
    barostat_interval: int = 25
    seed: int = 2024
    platform: str | None = None
    hydrogen_mass_amu: float | None = None

    def __post_init__(self):
        if self.thermostat not in THERMOSTATS:
            raise SimulationError(f"thermostat {self.thermostat!r} is not one of {', '.join(THERMOSTATS)}")
        if not (self.timestep_fs > 0 and self.temperature_K > 0):
            raise SimulationError(f"time step ({self.timestep_fs} fs) and temperature ({self.temperature_K} K) "
                                  "must be positive")
        if self.hydrogen_mass_amu is not None and not (math.isfinite(self.hydrogen_mass_amu)
                                                       and self.hydrogen_mass_amu > 0):
            raise SimulationError(f"hydrogen mass must be a positive number of amu (3.0 is usual), got "
                                  f"{self.hydrogen_mass_amu}")

    @property
    def timestep_ps(self) -> float:
        return self.timestep_fs * 1e-3

    def ps(self, n_steps: int) -> float:
        """Simulated time of ``n_steps`` steps, ps."""
        return n_steps * self.timestep_ps

    def with_changes(self, **changes) -> "Dynamics":
        """A copy with the given fields changed; ``None`` values leave a field as it is."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def integrator(self, seed: int | None = None):
        """The OpenMM integrator; ``seed`` overrides :attr:`seed` (replicas of one protocol)."""
        import openmm

        seed = self.seed if seed is None else seed
        if self.thermostat == "verlet":
            return openmm.VerletIntegrator(self.timestep_ps)
        if self.thermostat == "nose-hoover":
            return openmm.NoseHooverIntegrator(self.temperature_K, self.friction_per_ps, self.timestep_ps)
        integrator = openmm.LangevinMiddleIntegrator(self.temperature_K, self.friction_per_ps, self.timestep_ps)
        integrator.setRandomNumberSeed(int(seed))
        return integrator

    def barostat(self):
        """A Monte Carlo barostat at :attr:`pressure_bar`, or None at constant volume."""
        if self.pressure_bar is None:
            return None
        import openmm

        return openmm.MonteCarloBarostat(self.pressure_bar, self.temperature_K, self.barostat_interval)
