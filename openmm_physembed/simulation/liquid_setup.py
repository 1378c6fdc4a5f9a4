"""The one liquid state every runner accepts: System (XML), topology and start state.

Like openmmtools' ``ThermodynamicState`` + ``SamplerState`` in one object: the NPT runner
(:func:`.npt.run_npt_md`), the density and viscosity workflows and the GAFF reference NPT all
take a :class:`LiquidSetup`. It pickles everywhere (process pools, Dask). A MACE TorchForce
cannot travel as XML (openmm-torch 1.5 crashes when deserialising it, see :mod:`..workarounds`),
so it is left out of the XML and rebuilt in the worker by ``torch_force_builder`` (the function
that made it, pickled by reference, e.g. ``add_mace_force``) from its arguments. This module
therefore never imports the MACE code itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from ..errors import SimulationError


@dataclass(frozen=True)
class LiquidSetup:
    """Everything an NPT run needs besides the protocol: System (XML), topology, start state.

    ``system_xml`` None marks a liquid around a System that exists only in this process
    (:meth:`in_process`): runners must then be handed that System (``system=``).
    """

    system_xml: str | None = field(repr=False)
    topology: object = field(repr=False)
    positions_nm: np.ndarray = field(repr=False)
    box_vectors_nm: np.ndarray
    total_mass_amu: float
    label: str = "liquid"
    mace_arguments: dict | None = None  # torch_force_builder keyword arguments (model_path, dtype, ...)
    # Rebuilds the TorchForce left out of system_xml: builder(system, topology, model_path, **arguments).
    torch_force_builder: Callable | None = field(default=None, repr=False)

    @classmethod
    def from_system(cls, system, topology, positions_nm, box_vectors_nm=None, label: str = "liquid",
                    mace_arguments: dict | None = None, torch_force_builder: Callable | None = None):
        """Capture a System; one with a MACE TorchForce needs the function that made it
        (``torch_force_builder``, e.g. ``add_mace_force``) and its arguments (``mace_arguments``)."""
        from openmm import unit

        from .system_xml import serialize_without_torch_forces

        if box_vectors_nm is None:
            box_vectors_nm = [v.value_in_unit(unit.nanometer) for v in system.getDefaultPeriodicBoxVectors()]
        mass = float(sum(system.getParticleMass(i).value_in_unit(unit.dalton) for i in range(system.getNumParticles())))
        xml, torch_groups = serialize_without_torch_forces(system)
        if torch_groups and (mace_arguments is None or torch_force_builder is None):
            raise SimulationError("the System has a TorchForce: pass mace_arguments (model_path, dtype, ...) and "
                                  "torch_force_builder (add_mace_force) so workers can rebuild it, e.g. "
                                  "LiquidSetup.from_corrected(...)")
        if torch_groups:
            mace_arguments = {"force_group": torch_groups[0], **mace_arguments}
        return cls(xml, topology, np.asarray(positions_nm, dtype=float), np.asarray(box_vectors_nm, dtype=float),
                   mass, label, mace_arguments, torch_force_builder)

    @classmethod
    def from_corrected(cls, corrected, box_vectors_nm=None, label: str = "liquid"):
        """From a :class:`~openmm_physembed.potentials.corrected_system.CorrectedMACESystem`."""
        return cls.from_system(corrected.system, corrected.topology, corrected.positions_nm, box_vectors_nm, label,
                               corrected.mace_arguments, corrected.mace_force_builder)

    @classmethod
    def from_box(cls, box, nonbonded_cutoff_nm: float = 1.0, label: str | None = None):
        """The GAFF liquid of a packed :class:`~openmm_physembed.chem.box.LiquidBox` (PME at that cutoff)."""
        setup = cls.from_system(box.create_system(nonbonded_cutoff_nm=nonbonded_cutoff_nm), box.topology,
                                box.positions_nm, box.box_vectors_nm,
                                label or "+".join(m.name for m in box.molecules))
        # The box's mass is the molecules' (what densities were always computed from), not the particles' sum.
        return replace(setup, total_mass_amu=box.total_mass_amu)

    @classmethod
    def in_process(cls, system, topology, positions_nm, box_vectors_nm=None, total_mass_amu: float | None = None,
                   label: str = "liquid"):
        """A liquid around a System that stays in this process (no XML, so any force may be in it);
        pass the System itself to the runner (``system=``)."""
        from openmm import unit

        if box_vectors_nm is None:
            box_vectors_nm = [v.value_in_unit(unit.nanometer) for v in system.getDefaultPeriodicBoxVectors()]
        if total_mass_amu is None:
            total_mass_amu = float(sum(system.getParticleMass(i).value_in_unit(unit.dalton)
                                       for i in range(system.getNumParticles())))
        return cls(None, topology, np.asarray(positions_nm, dtype=float), np.asarray(box_vectors_nm, dtype=float),
                   float(total_mass_amu), label)

    def system(self):
        """A new System of this liquid (the TorchForce rebuilt, if it had one)."""
        from .system_xml import deserialize_system

        if self.system_xml is None:
            raise SimulationError(f"liquid {self.label!r} wraps a System that exists only in the caller's "
                                  "process (LiquidSetup.in_process); pass that System to the runner (system=...)")
        system = deserialize_system(self.system_xml)
        if self.mace_arguments:
            if self.torch_force_builder is None:
                raise SimulationError(f"liquid {self.label!r} has MACE arguments but no torch_force_builder to "
                                      "rebuild its TorchForce; make it with LiquidSetup.from_corrected(...)")
            arguments = dict(self.mace_arguments)
            self.torch_force_builder(system, self.topology, arguments.pop("model_path"), **arguments)
        return system
