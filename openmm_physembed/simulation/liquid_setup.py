"""A liquid an MD job can rebuild anywhere: System (XML), topology and start state.

It pickles everywhere (process pools, Dask). A MACE TorchForce cannot travel as XML
(openmm-torch 1.5 crashes when deserialising it, see :mod:`.workarounds`), so it is left out of the
XML and rebuilt in the worker from its ``add_mace_force`` arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LiquidSetup:
    """Everything an NPT run needs besides the protocol: System (XML), topology, start state."""

    system_xml: str = field(repr=False)
    topology: object = field(repr=False)
    positions_nm: np.ndarray = field(repr=False)
    box_vectors_nm: np.ndarray
    total_mass_amu: float
    label: str = "liquid"
    mace_arguments: dict | None = None  # add_mace_force keyword arguments (model_path, dtype, ...)

    @classmethod
    def from_system(cls, system, topology, positions_nm, box_vectors_nm=None, label: str = "liquid",
                    mace_arguments: dict | None = None):
        """Capture a System; one with a MACE TorchForce needs the ``add_mace_force`` arguments."""
        from openmm import unit

        from ..errors import PropertyError
        from .system_xml import serialize_without_torch_forces

        if box_vectors_nm is None:
            box_vectors_nm = [v.value_in_unit(unit.nanometer) for v in system.getDefaultPeriodicBoxVectors()]
        mass = float(sum(system.getParticleMass(i)._value for i in range(system.getNumParticles())))
        xml, torch_groups = serialize_without_torch_forces(system)
        if torch_groups and mace_arguments is None:
            raise PropertyError("the System has a TorchForce: pass mace_arguments (model_path, dtype, ...) so "
                                "workers can rebuild it, e.g. LiquidSetup.from_corrected(...)")
        if torch_groups:
            mace_arguments = {"force_group": torch_groups[0], **mace_arguments}
        return cls(xml, topology, np.asarray(positions_nm, dtype=float), np.asarray(box_vectors_nm, dtype=float),
                   mass, label, mace_arguments)

    @classmethod
    def from_corrected(cls, corrected, box_vectors_nm=None, label: str = "liquid"):
        """From a :class:`~openmm_physembed.potentials.corrected.CorrectedMACESystem`."""
        return cls.from_system(corrected.system, corrected.topology, corrected.positions_nm, box_vectors_nm, label,
                               corrected.mace_arguments)

    def system(self):
        from .system_xml import deserialize_system

        system = deserialize_system(self.system_xml)
        if self.mace_arguments:
            from ..potentials.mace_force import add_mace_force

            arguments = dict(self.mace_arguments)
            add_mace_force(system, self.topology, arguments.pop("model_path"), **arguments)
        return system
