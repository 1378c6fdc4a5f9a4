"""Building the OpenMM Simulation (and its Context) on the chosen platform with the project's defaults."""

from __future__ import annotations

import numpy as np

from .platforms import choose_platform


def make_simulation(system, topology, positions_nm, integrator, platform: str | None = None,
                    box_vectors_nm=None, properties: dict | None = None, precision: str | None = None):
    """An ``app.Simulation`` on the chosen platform with positions (nm) set.

    ``precision`` applies to GPU platforms (see :func:`.platforms.choose_platform`); ``properties``
    are the Context's own platform properties and win over both.
    """
    from openmm import app

    from .system_xml import has_torch_force

    chosen = choose_platform(platform, system.getNumParticles(), has_torch_force(system), precision=precision)
    simulation = app.Simulation(topology, system, integrator, chosen, properties or {})
    if box_vectors_nm is not None:
        simulation.context.setPeriodicBoxVectors(*np.asarray(box_vectors_nm, dtype=float))
    simulation.context.setPositions(np.asarray(positions_nm, dtype=float))
    return simulation


def potential_energy_kj_mol(simulation) -> float:
    from openmm import unit

    return simulation.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
