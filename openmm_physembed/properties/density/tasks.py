"""Self-contained NPT density jobs that any Executor (process pool, Dask) can run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ...simulation.liquid_setup import LiquidSetup
from .npt import DensityResult, NPTProtocol, run_npt


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
