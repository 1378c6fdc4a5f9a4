"""Self-contained NPT jobs that any Executor (process pool, Dask) can run.

A task carries the System as XML and the topology/positions as plain Python objects, so it
pickles everywhere. A MACE TorchForce cannot travel as XML (openmm-torch 1.5 crashes when
deserialising it), so it is left out of the XML and rebuilt in the worker from its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .density import DensityResult, NPTProtocol, run_npt


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
        from ..simulation.plugins import serialize_without_torch_forces

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

    def npt_simulation(self, protocol: NPTProtocol, parameters: dict | None = None):
        """A Simulation of this liquid under ``protocol`` (Langevin + Monte Carlo barostat), start
        state and global ``parameters`` set; not minimised."""
        import openmm

        from ..simulation.molecules import add_molecule_definition
        from ..simulation.setup import langevin_integrator, make_simulation

        system = self.system()
        add_molecule_definition(system, self.topology)
        system.addForce(openmm.MonteCarloBarostat(protocol.pressure_bar, protocol.temperature_K,
                                                  protocol.barostat_interval))
        integrator = langevin_integrator(protocol.temperature_K, protocol.friction_per_ps, protocol.timestep_fs,
                                         protocol.seed)
        simulation = make_simulation(system, self.topology, self.positions_nm, integrator, protocol.platform,
                                     box_vectors_nm=self.box_vectors_nm)
        for name, value in (parameters or {}).items():
            simulation.context.setParameter(name, float(value))
        return simulation

    def system(self):
        from ..simulation.plugins import deserialize_system

        system = deserialize_system(self.system_xml)
        if self.mace_arguments:
            from ..potentials.mace_force import add_mace_force

            arguments = dict(self.mace_arguments)
            add_mace_force(system, self.topology, arguments.pop("model_path"), **arguments)
        return system


@dataclass(frozen=True)
class DensityTask:
    setup: LiquidSetup
    protocol: NPTProtocol
    parameters: dict
    out_dir: Path
    progress: bool = False

    def with_parameters(self, **values) -> "DensityTask":
        return replace(self, parameters={**self.parameters, **values})


def run_density_task(task: DensityTask) -> DensityResult:
    """Worker entry point (module level, so it pickles by reference)."""
    setup = task.setup
    return run_npt(setup.system(), setup.topology, setup.positions_nm, task.out_dir, task.protocol,
                   box_vectors_nm=setup.box_vectors_nm, parameters=task.parameters,
                   total_mass_amu=setup.total_mass_amu, progress=task.progress)
