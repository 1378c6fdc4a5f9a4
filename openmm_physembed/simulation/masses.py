"""Hydrogen mass repartitioning (HMR): heavier hydrogens, lighter heavy atoms, the same total mass.

The configurational distribution of a classical System, and so every equilibrium property
(density, structure), does not depend on its masses; the dynamics does. Moving mass from each
heavy atom to its bonded hydrogens slows the fastest (X-H stretch) vibrations, so a longer time
step stays stable (Feenstra, Hess & Berendsen, J. Comput. Chem. 1999, 20, 786; Hopkins et al.,
J. Chem. Theory Comput. 2015, 11, 1864). Whether its sampling error stays below a density's
standard error is what ``benchmarks/liquid/hmr_density_check.py`` measures. Transport properties
do change.

The convention is OpenMM's ``ForceField.createSystem(hydrogenMass=...)``: every hydrogen bonded
to an atom that is not a hydrogen gets mass ``hydrogen_mass_amu``, and what it gains is taken
from that atom. Masses are plain particle masses, so this works alike for GAFF Systems and for
MACE TorchForce Systems (whose bonds are the topology's).
"""

from __future__ import annotations

import numpy as np

from ..errors import SimulationError


def particle_masses_amu(system) -> np.ndarray:
    from openmm import unit

    return np.array([system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles())],
                    dtype=float)


def repartitioned_masses(system, topology, hydrogen_mass_amu: float) -> np.ndarray:
    """The particle masses (amu) after repartitioning; ``system`` is not changed.

    Examples
    --------
    Methane at 3 amu per hydrogen: each H gains 3 - 1.008 amu, the carbon loses four times that.

    >>> import openmm
    >>> from openmm import app
    >>> topology = app.Topology()
    >>> residue = topology.addResidue("CH4", topology.addChain())
    >>> carbon = topology.addAtom("C", app.element.carbon, residue)
    >>> for k in range(4):
    ...     topology.addBond(carbon, topology.addAtom(f"H{k}", app.element.hydrogen, residue))
    >>> system = openmm.System()
    >>> for mass in (12.011, 1.008, 1.008, 1.008, 1.008):
    ...     _ = system.addParticle(mass)
    >>> masses = repartitioned_masses(system, topology, 3.0)
    >>> [round(float(m), 3) for m in masses]
    [4.043, 3.0, 3.0, 3.0, 3.0]
    >>> round(float(masses.sum()), 3)
    16.043
    """
    from openmm.app import element

    if not (np.isfinite(hydrogen_mass_amu) and hydrogen_mass_amu > 0):
        raise SimulationError(f"hydrogen mass must be a positive number of amu, got {hydrogen_mass_amu}")
    if topology.getNumAtoms() != system.getNumParticles():
        raise SimulationError(f"hydrogen mass repartitioning needs the System's topology: it has "
                              f"{topology.getNumAtoms()} atoms, the System {system.getNumParticles()} particles")
    masses = particle_masses_amu(system)
    hydrogens_of: dict[int, list[int]] = {}
    atoms = list(topology.atoms())
    for atom1, atom2 in topology.bonds():
        if atom1.element is element.hydrogen:
            atom1, atom2 = atom2, atom1
        if atom2.element is element.hydrogen and atom1.element not in (element.hydrogen, None):
            hydrogens_of.setdefault(atom1.index, []).append(atom2.index)
    repartitioned = masses.copy()
    for heavy, hydrogens in hydrogens_of.items():
        for hydrogen in hydrogens:  # one bond at a time, as OpenMM does
            repartitioned[heavy] -= hydrogen_mass_amu - repartitioned[hydrogen]
            repartitioned[hydrogen] = hydrogen_mass_amu
    emptied = [heavy for heavy in hydrogens_of if repartitioned[heavy] <= 0]
    if emptied:
        atom = atoms[emptied[0]]
        # M - sum_i (h - m_i) > 0 for a heavy atom of mass M with n hydrogens of masses m_i: h < (M + sum m_i) / n.
        limit = min((masses[heavy] + masses[hs].sum()) / len(hs) for heavy, hs in hydrogens_of.items())
        raise SimulationError(
            f"hydrogen mass {hydrogen_mass_amu:g} amu would leave atom {atom.name} (residue {atom.residue.name} "
            f"{atom.residue.index}, {masses[atom.index]:.3f} amu, {len(hydrogens_of[atom.index])} H) with "
            f"{repartitioned[atom.index]:.3f} amu; use less than {limit:.3f} amu (3-4 amu is usual)")
    return repartitioned


def repartition_hydrogen_mass(system, topology, hydrogen_mass_amu: float) -> np.ndarray:
    """Set the repartitioned masses in ``system``; returns the previous ones (to restore them with
    :func:`set_masses`)."""
    before = particle_masses_amu(system)
    set_masses(system, repartitioned_masses(system, topology, hydrogen_mass_amu))
    return before


def set_masses(system, masses_amu) -> None:
    for index, mass in enumerate(masses_amu):
        system.setParticleMass(index, float(mass))
