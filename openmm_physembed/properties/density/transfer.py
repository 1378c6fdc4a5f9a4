"""Transfer test of a fitted (alpha, a1): densities of other liquids and temperatures, like Table 1."""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ...io import write_json
from ...simulation.liquid_setup import LiquidSetup
from ..estimates import Estimate
from ..experimental import ExperimentalLiquid
from .npt import NPTProtocol
from .tasks import DensityTask, run_density_task


@dataclass(frozen=True)
class TransferRow:
    system: str
    temperature_K: float
    without_correction: Estimate
    with_correction: Estimate
    experiment_g_cm3: float

    def as_dict(self) -> dict:
        return {"system": self.system, "temperature_K": self.temperature_K,
                "without": self.without_correction.as_dict(), "with": self.with_correction.as_dict(),
                "experiment_g_cm3": self.experiment_g_cm3}


def mean_absolute_errors(rows: list[TransferRow]) -> tuple[float, float]:
    """Density MAE (g/cm3) without and with the correction."""
    without = np.mean([abs(r.without_correction.value - r.experiment_g_cm3) for r in rows])
    with_ = np.mean([abs(r.with_correction.value - r.experiment_g_cm3) for r in rows])
    return float(without), float(with_)


def format_transfer_table(rows: list[TransferRow]) -> str:
    lines = [f"{'system':<14}{'T (K)':>8}{'without':>18}{'with':>18}{'experiment':>12}"]
    for r in rows:
        lines.append(f"{r.system:<14}{r.temperature_K:>8.2f}"
                     f"{r.without_correction.value:>11.3f} ±{r.without_correction.stderr:.3f}"
                     f"{r.with_correction.value:>11.3f} ±{r.with_correction.stderr:.3f}{r.experiment_g_cm3:>12.3f}")
    without, with_ = mean_absolute_errors(rows)
    change = 100.0 * (with_ - without) / without if without else float("nan")
    lines.append(f"density MAE: {without:.4f} -> {with_:.4f} g/cm3 ({change:+.0f}%)")
    return "\n".join(lines)


def run_transfer(cases: list[ExperimentalLiquid], make_setup: Callable[[ExperimentalLiquid], LiquidSetup],
                 alpha: float, a1: float, out_dir: str | Path, protocol: NPTProtocol = NPTProtocol(),
                 executor: Executor | None = None) -> list[TransferRow]:
    """NPT of every case with alpha = 0 and with the fitted (alpha, a1), all runs in parallel."""
    from ...executors import SerialExecutor

    out_dir = Path(out_dir)
    tasks = []
    for case in cases:
        setup = make_setup(case)
        tag = f"{case.system.replace(' ', '_').replace(':', '-')}_{case.temperature_K:.2f}K"
        run_protocol = protocol.with_changes(temperature_K=case.temperature_K)
        tasks.append(DensityTask(setup, run_protocol, {"alpha": 0.0, "a1": a1}, out_dir / tag / "uncorrected"))
        tasks.append(DensityTask(setup, run_protocol, {"alpha": alpha, "a1": a1}, out_dir / tag / "corrected"))
    results = list((executor or SerialExecutor()).map(run_density_task, tasks))
    rows = [TransferRow(case.system, case.temperature_K, results[2 * k].density, results[2 * k + 1].density,
                        case.density_g_cm3) for k, case in enumerate(cases)]
    write_json(out_dir / "transfer.json", {"alpha": alpha, "a1": a1, "rows": [r.as_dict() for r in rows],
                                           "mae_without_with": mean_absolute_errors(rows)})
    return rows
