"""Building the OpenMM Simulation (and its Context) on the chosen platform with the project's defaults."""

from __future__ import annotations

import numpy as np

from .platforms import choose_platform, platform_precision_argument, platform_properties


def make_simulation(system, topology, positions_nm, integrator, platform: str | None = None,
                    box_vectors_nm=None, properties: dict | None = None, platform_precision: str | None = None, *,
                    precision: str | None = None):
    """An ``app.Simulation`` on the chosen platform with positions (nm) set.

    The Context gets :func:`.platforms.platform_properties` (CPU threads; ``platform_precision``
    on GPU platforms), and ``properties``, the caller's own, win over both. ``precision`` is the
    deprecated name of ``platform_precision``.
    """
    from openmm import app

    from .system_xml import has_torch_force

    platform_precision = platform_precision_argument(platform_precision, precision, "make_simulation")
    chosen = choose_platform(platform, system.getNumParticles(), has_torch_force(system))
    context_properties = {**platform_properties(chosen, platform_precision), **(properties or {})}
    simulation = app.Simulation(topology, system, integrator, chosen, context_properties)
    if box_vectors_nm is not None:
        simulation.context.setPeriodicBoxVectors(*np.asarray(box_vectors_nm, dtype=float))
    simulation.context.setPositions(np.asarray(positions_nm, dtype=float))
    return simulation


def potential_energy_kj_mol(simulation) -> float:
    from openmm import unit

    return simulation.context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
