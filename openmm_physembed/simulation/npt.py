"""Constant-pressure MD of a liquid: the one NPT runner of the package.

The density workflow (:func:`~openmm_physembed.properties.density.npt.run_density`), the
Green-Kubo start frames (:func:`~openmm_physembed.properties.viscosity.workflow.run_npt_frames`)
and the GAFF reference NPT (:func:`~openmm_physembed.sampling.reference_md.run_liquid_npt`) all
run through :func:`run_npt_md`; they differ only in what they record (:func:`.runner.state_recorder`)
and what they make of the records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import SimulationError
from .dynamics import Dynamics
from .engine import run_md
from .liquid_setup import LiquidSetup
from .runner import ArrayRecorder


def run_npt_md(liquid: LiquidSetup, dynamics: Dynamics, n_steps: int, directory: str | Path,
               recorders: Sequence[ArrayRecorder] = (), settings: Mapping | None = None, *, system=None,
               parameters: Mapping[str, float] | None = None, minimize_iterations: int = 0,
               progress: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Run (or resume, or reload) NPT of ``liquid`` in ``directory``; returns the recorders' arrays.

    ``dynamics`` must have a ``pressure_bar`` (the engine adds the Monte Carlo barostat and, for a
    System without bonds, the molecule list it needs, both for the run only). ``system`` is a
    System of this liquid already built in this process (default: ``liquid.system()``), e.g. one
    the caller keeps for several runs. ``parameters`` are global parameter values for the Context.
    """
    if dynamics.pressure_bar is None or dynamics.thermostat == "verlet":
        raise SimulationError("NPT needs Dynamics with a pressure_bar and a thermostat")
    system = liquid.system() if system is None else system
    if not system.usesPeriodicBoundaryConditions():
        raise SimulationError(f"NPT needs a periodic System (a liquid box); {liquid.label!r} is not periodic")
    return run_md(system, liquid.topology, liquid.positions_nm, dynamics, n_steps, directory, recorders, settings,
                  box_vectors_nm=liquid.box_vectors_nm, parameters=parameters,
                  minimize_iterations=minimize_iterations, progress=progress)
