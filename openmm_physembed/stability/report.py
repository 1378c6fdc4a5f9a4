"""Summaries of stability outcomes: collapse probability, survival times, survival curves.

Pure functions over the per-replica records; plots and the CLI read these.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MethodSummary:
    method: str
    n_trajectories: int
    n_collapsed: int
    collapse_probability: float
    collapse_probability_ci95: tuple[float, float]  # Wilson score interval
    mean_survival_ps: float  # censored at the test length for stable trajectories
    test_ps: float

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def wilson_interval(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson, JASA 1927, 22, 209)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denominator = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denominator
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    return (float(max(0.0, centre - half)), float(min(1.0, centre + half)))


def survival_times_ps(records: list[dict], test_ps: float, timestep_fs: float) -> np.ndarray:
    return np.array([test_ps if r["stable"] else r["collapse_step"] * timestep_fs * 1e-3 for r in records])


def summarize(method: str, records: list[dict], test_ps: float, timestep_fs: float) -> MethodSummary:
    n = len(records)
    k = sum(not r["stable"] for r in records)
    times = survival_times_ps(records, test_ps, timestep_fs)
    return MethodSummary(method, n, k, k / n if n else float("nan"), wilson_interval(k, n),
                         float(times.mean()) if n else float("nan"), test_ps)


def survival_curve(records: list[dict], test_ps: float, timestep_fs: float, n_points: int = 200):
    """(t in ps, fraction of trajectories still intact at t)."""
    times = survival_times_ps(records, test_ps, timestep_fs)
    stable = np.array([r["stable"] for r in records])
    t = np.linspace(0.0, test_ps, n_points)
    alive = np.array([np.mean((times > x) | stable) for x in t]) if len(records) else np.ones_like(t)
    return t, alive
