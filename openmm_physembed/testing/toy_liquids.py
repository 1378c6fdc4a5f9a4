"""A cheap liquid with a linear 'a1' parameter, for tests, notebooks and demonstrations.

Liquid argon (Lennard-Jones, eps = 0.996 kJ/mol, sigma = 0.3405 nm; Rowley, Nicholson & Parsonage,
J. Comput. Phys. 1975, 17, 401) with an extra attraction - a1 * c * 4 eps (sigma/r)^6 that, like the
CSO correction, enters the energy linearly through a global parameter registered for energy
derivatives. At 85 K and 1 bar the plain model gives about 1.40 g/cm3, at 100 K and 20 bar 1.32.
The extra term is Lennard-Jones with eps' = eps (1 + c a1)^2, so a1 raises the triple point
(83 K at a1 = 0, 93 K at c a1 = 0.06): scan a1 well above it, or the liquid may freeze.
"""

from __future__ import annotations

import numpy as np

ARGON_MASS_AMU = 39.948
ARGON_EPSILON_KJ_MOL = 0.996
ARGON_SIGMA_NM = 0.3405


def argon_with_attraction(n_per_side: int = 5, edge_nm: float = 2.0, attraction_scale: float = 0.3,
                          cutoff_nm: float = 0.85, a1: float = 0.0):
    """(system, topology, positions_nm) of a cubic lattice of argon atoms in a periodic box."""
    import openmm
    from openmm import app

    n = n_per_side**3
    system = openmm.System()
    topology = app.Topology()
    chain = topology.addChain()
    for _ in range(n):
        system.addParticle(ARGON_MASS_AMU)
        topology.addAtom("Ar", app.element.argon, topology.addResidue("AR", chain))
    eps, sigma = ARGON_EPSILON_KJ_MOL, ARGON_SIGMA_NM
    force = openmm.CustomNonbondedForce(
        f"4*{eps}*(({sigma}/r)^12 - ({sigma}/r)^6) - a1*{attraction_scale}*4*{eps}*({sigma}/r)^6"
    )
    force.addGlobalParameter("a1", a1)
    force.addEnergyParameterDerivative("a1")
    force.setNonbondedMethod(openmm.CustomNonbondedForce.CutoffPeriodic)
    force.setCutoffDistance(cutoff_nm)
    force.setUseLongRangeCorrection(True)
    for _ in range(n):
        force.addParticle([])
    system.addForce(force)
    box = np.eye(3) * edge_nm
    system.setDefaultPeriodicBoxVectors(*box)
    topology.setPeriodicBoxVectors(box)
    grid = (np.arange(n_per_side) + 0.5) * edge_nm / n_per_side
    positions = np.array(np.meshgrid(grid, grid, grid, indexing="ij")).reshape(3, -1).T
    return system, topology, positions
