"""Self-contained NPT density jobs that any Executor (process pool, Dask) can run."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ...simulation.liquid_setup import LiquidSetup
from .npt import DensityResult, NPTProtocol, run_density


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
    return run_density(task.setup, task.out_dir, task.protocol, parameters=task.parameters, progress=task.progress)
