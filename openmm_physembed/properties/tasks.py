"""Self-contained NPT jobs that any Executor (process pool, Dask) can run.

A task carries the System as XML and the topology/positions as plain Python objects, so it
pickles everywhere; the worker loads OpenMM plugins (openmm-torch) before deserialising.
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

    @classmethod
    def from_system(cls, system, topology, positions_nm, box_vectors_nm=None, label: str = "liquid"):
        import openmm
        from openmm import unit

        if box_vectors_nm is None:
            box_vectors_nm = [v.value_in_unit(unit.nanometer) for v in system.getDefaultPeriodicBoxVectors()]
        mass = float(sum(system.getParticleMass(i)._value for i in range(system.getNumParticles())))
        return cls(openmm.XmlSerializer.serialize(system), topology, np.asarray(positions_nm, dtype=float),
                   np.asarray(box_vectors_nm, dtype=float), mass, label)

    def system(self):
        from ..simulation.plugins import deserialize_system

        return deserialize_system(self.system_xml)


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
