"""The molecule list a barostat needs in Systems whose forces do not define bonds (MACE-only Systems).

OpenMM finds molecules through the bonds its forces declare. A System made of a TorchForce (and
a CustomNonbondedForce) declares none, so a MonteCarloBarostat would scale every atom on its own
and stretch every bond at each volume move. A zero-energy CustomBondForce over the topology's
bonds fixes that without changing any energy or force.
"""

from __future__ import annotations


def declares_bonds(system) -> bool:
    import openmm

    bonded = (openmm.HarmonicBondForce, openmm.CustomBondForce)
    return any(isinstance(f, bonded) and getattr(f, "getNumBonds")() > 0 for f in system.getForces())


def add_molecule_definition(system, topology) -> object | None:
    """Add a zero-energy CustomBondForce over ``topology``'s bonds unless the System has bonds already."""
    force = molecule_definition(system, topology)
    if force is not None:
        system.addForce(force)
    return force


def molecule_definition(system, topology) -> object | None:
    """The zero-energy CustomBondForce :func:`add_molecule_definition` adds (None when not needed)."""
    import openmm

    if declares_bonds(system):
        return None
    force = openmm.CustomBondForce("0")
    force.setName("MoleculeDefinition")
    for bond in topology.bonds():
        force.addBond(bond[0].index, bond[1].index, [])
    return force if force.getNumBonds() else None
