"""The one place MD is assembled: System + topology + start state + :class:`Dynamics` + recorders.

Stages hand the engine what to simulate and what to record; it builds the integrator, the
barostat (and, for a System without bonded forces, the molecule definition the barostat needs),
the Simulation on the chosen platform, sets global parameters, starts fresh (minimise, draw
velocities) or resumes, and runs through :func:`.runner.run_checkpointed`.

    with MDEngine(system, topology, positions_nm, Dynamics(300.0, pressure_bar=1.0)) as md:
        md.start([out_dir], minimize_iterations=500)
        records = md.run(100_000, out_dir, [recorder], settings={"liquid": "EMC"})

:func:`run_md` is that in one call. Forces the engine adds to the caller's System are removed
again on :meth:`MDEngine.close` (a Context keeps references to them, so only after it is gone).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..errors import SimulationError
from .dynamics import Dynamics
from .masses import repartition_hydrogen_mass, set_masses
from .runner import CHECKPOINT_FILE, ArrayRecorder, run_checkpointed
from .contexts import make_simulation
from .platforms import platform_precision_argument

BAROSTATS = ("MonteCarloBarostat", "MonteCarloFlexibleBarostat", "MonteCarloAnisotropicBarostat")


class MDEngine:
    """One Simulation of ``system`` under ``dynamics``, run in resumable phases.

    Parameters
    ----------
    system
        Any OpenMM System without a barostat (the engine adds one when ``dynamics.pressure_bar``
        is set, and removes it on :meth:`close`). With ``dynamics.hydrogen_mass_amu`` its masses
        are repartitioned for the run and restored on :meth:`close` as well.
    positions_nm, box_vectors_nm
        Start state (nm); the box defaults to the System's.
    parameters
        Global parameter values to set in the Context (e.g. ``{'alpha': 0.05, 'a1': 0.6}``).
    seed
        Integrator and velocity seed; default ``dynamics.seed`` (replicas pass their own).
    platform_precision
        OpenMM ``Precision`` of a CUDA/OpenCL Context (see :func:`.platforms.platform_properties`);
        ``precision`` is its deprecated name (``precision`` means the MACE dtype).

    With a TorchForce on a CPU or Reference Context, TorchScript's graph-executor optimisation
    is off in the constructing thread until :meth:`close` (measured 5-15 % faster for MACE there;
    :func:`~openmm_physembed.torch_device.set_torchscript_optimization`), then restored: run the
    engine in the thread that made it.
    """

    def __init__(self, system, topology, positions_nm, dynamics: Dynamics, *, box_vectors_nm=None,
                 parameters: Mapping[str, float] | None = None, seed: int | None = None,
                 platform_precision: str | None = None, precision: str | None = None):
        platform_precision = platform_precision_argument(platform_precision, precision, "MDEngine")
        self.system = system
        self.dynamics = dynamics
        self.seed = dynamics.seed if seed is None else int(seed)
        self.parameters = {k: float(v) for k, v in (parameters or {}).items()}
        self._added = []
        self._masses_before = None
        self._torchscript_before = None
        if dynamics.hydrogen_mass_amu is not None:
            self._masses_before = repartition_hydrogen_mass(system, topology, dynamics.hydrogen_mass_amu)
        try:
            self._assemble(topology, positions_nm, box_vectors_nm, platform_precision)
        except BaseException:
            self.close()
            raise

    def _assemble(self, topology, positions_nm, box_vectors_nm, platform_precision) -> None:
        from .barostat_molecules import molecule_definition
        from .platforms import GPU_PLATFORMS
        from .system_xml import has_torch_force

        system, dynamics = self.system, self.dynamics
        barostat = dynamics.barostat()
        if barostat is not None:
            if not system.usesPeriodicBoundaryConditions():
                raise SimulationError("constant pressure needs a periodic System (a liquid box)")
            if any(type(f).__name__ in BAROSTATS for f in system.getForces()):
                raise SimulationError("the System already has a barostat; pass it without one (Dynamics.pressure_bar "
                                      "adds it)")
            # Without declared bonds a barostat would scale every atom on its own (MACE-only Systems).
            self._add(molecule_definition(system, topology))
            self._add(barostat)
        self.simulation = make_simulation(system, topology, positions_nm, dynamics.integrator(self.seed),
                                          dynamics.platform, box_vectors_nm=box_vectors_nm,
                                          platform_precision=platform_precision)
        if has_torch_force(system) and self.context.getPlatform().getName() not in GPU_PLATFORMS:
            from ..torch_device import set_torchscript_optimization

            self._torchscript_before = set_torchscript_optimization(False)
        for name, value in self.parameters.items():
            self.simulation.context.setParameter(name, value)

    def _add(self, force) -> None:
        if force is not None:
            self._added.append(self.system.addForce(force))

    @property
    def context(self):
        return self.simulation.context

    def start(self, run_dirs: Sequence[str | Path] = (), minimize_iterations: int = 0) -> bool:
        """Start fresh unless one of ``run_dirs`` holds a checkpoint: minimise (if asked), then draw
        Maxwell-Boltzmann velocities. Returns True for a fresh start."""
        if any((Path(d) / CHECKPOINT_FILE).is_file() for d in run_dirs):
            return False
        if minimize_iterations:
            self.simulation.minimizeEnergy(maxIterations=int(minimize_iterations))
        self.context.setVelocitiesToTemperature(self.dynamics.temperature_K, self.seed)
        return True

    def run(self, n_steps: int, directory: str | Path, recorders: Sequence[ArrayRecorder] = (),
            settings: Mapping | None = None, *, progress: str | None = None, block_steps: int = 1000,
            checkpoint_interval_s: float = 60.0, on_block: Callable[[object], bool] | None = None,
            restart_step_count: bool = False) -> dict[str, dict[str, np.ndarray]]:
        """Run (or resume, or reload) ``n_steps`` in ``directory``; see :func:`.runner.run_checkpointed`.

        The settings that define the run are ``settings`` plus the dynamics, seed, parameters and
        atom count. ``restart_step_count`` starts this phase's step count at 0 (production after an
        equilibration phase in another directory).
        """
        if restart_step_count and not (Path(directory) / CHECKPOINT_FILE).is_file():
            self.simulation.currentStep = 0
            self.context.setStepCount(0)
        defined_by = {"dynamics": asdict(self.dynamics), "seed": self.seed, "parameters": self.parameters,
                      "n_atoms": self.system.getNumParticles(), **dict(settings or {})}
        return run_checkpointed(self.simulation, n_steps, directory, list(recorders), settings=defined_by,
                                checkpoint_interval_s=checkpoint_interval_s,
                                block_steps=max(1, min(block_steps, n_steps)), progress=progress, on_block=on_block)

    def close(self) -> None:
        """Free the Context, then take the engine's forces out of the caller's System again and give it
        back its own masses."""
        self.simulation = None
        if self._torchscript_before is not None:
            from ..torch_device import set_torchscript_optimization

            set_torchscript_optimization(self._torchscript_before)
            self._torchscript_before = None
        for index in sorted(self._added, reverse=True):
            self.system.removeForce(index)
        self._added = []
        if self._masses_before is not None:
            set_masses(self.system, self._masses_before)
            self._masses_before = None

    def __enter__(self) -> "MDEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_md(system, topology, positions_nm, dynamics: Dynamics, n_steps: int, directory: str | Path,
           recorders: Sequence[ArrayRecorder] = (), settings: Mapping | None = None, *, box_vectors_nm=None,
           parameters: Mapping[str, float] | None = None, seed: int | None = None, minimize_iterations: int = 0,
           progress: str | None = None, block_steps: int = 1000, checkpoint_interval_s: float = 60.0,
           on_block: Callable[[object], bool] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """One resumable MD run: :class:`MDEngine` started fresh or resumed in ``directory``, run, closed."""
    with MDEngine(system, topology, positions_nm, dynamics, box_vectors_nm=box_vectors_nm, parameters=parameters,
                  seed=seed) as md:
        md.start([directory], minimize_iterations)
        return md.run(n_steps, directory, recorders, settings, progress=progress, block_steps=block_steps,
                      checkpoint_interval_s=checkpoint_interval_s, on_block=on_block)
