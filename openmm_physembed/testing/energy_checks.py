"""Checks on MD that have a textbook answer."""

from __future__ import annotations


def nve_energy_excursion(context, integrator, n_steps: int, n_reports: int = 10):
    """(peak-to-peak total energy, peak-to-peak kinetic energy), kJ/mol, over ``n_steps`` of NVE.

    The usual energy-conservation check: the first should be a small fraction of the second and
    scale as dt^2 with the time step of a Verlet integrator.
    """
    import numpy as np
    from openmm import unit

    totals, kinetic = [], []
    for _ in range(n_reports):
        integrator.step(n_steps // n_reports)
        state = context.getState(getEnergy=True)
        kinetic.append(state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole))
        totals.append(state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole) + kinetic[-1])
    if not np.all(np.isfinite(totals)):
        raise AssertionError(f"non-finite energy in NVE: {totals}")
    return float(np.ptp(totals)), float(np.ptp(kinetic))
