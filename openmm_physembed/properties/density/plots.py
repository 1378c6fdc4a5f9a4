"""Plots for density runs and a1 fits (matplotlib, Agg; each returns the PNG path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...plotting import pyplot as _pyplot
from ...plotting import save_figure as _save
from .a1_fit import A1FitResult, pooled_samples
from .estimators import mbar_predict
from .npt import DensityResult


def plot_density_trace(result: DensityResult, path: str | Path, experiment_g_cm3: float | None = None) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(result.time_ps, result.density_g_cm3, lw=0.6, color="0.5", label="instantaneous")
    start = result.time_ps[result.window.start]
    ax.axvspan(start, result.time_ps[-1], color="tab:blue", alpha=0.1, label="averaged")
    ax.axhline(result.density.value, color="tab:blue", label=f"mean {result.density}")
    if experiment_g_cm3 is not None:
        ax.axhline(experiment_g_cm3, color="k", ls="--", label=f"experiment {experiment_g_cm3:.3f}")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("density (g/cm$^3$)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_a1_fit(results: list[A1FitResult], path: str | Path, target_tolerance_g_cm3: float = 0.002) -> Path:
    """Density vs a1: simulated points with error bars, the linear fit, the target band and the
    MBAR-reweighted curve from all runs of the reweighting method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    target = results[0].target_density_g_cm3
    all_a1 = [r.parameters["a1"] for res in results for r in res.runs]
    lo, hi = min(all_a1 + [res.a1.value for res in results]), max(all_a1 + [res.a1.value for res in results])
    pad = 0.15 * max(hi - lo, 0.2)
    grid = np.linspace(lo - pad, hi + pad, 60)
    ax.axhspan(target - target_tolerance_g_cm3, target + target_tolerance_g_cm3, color="gold", alpha=0.4,
               label=f"target {target:.3f} g/cm$^3$")
    markers = {"scan": ("o", "tab:blue"), "reweighting": ("s", "tab:red")}
    for res in results:
        marker, color = markers.get(res.method, ("^", "tab:green"))
        a = [r.parameters["a1"] for r in res.runs]
        rho = [r.density.value for r in res.runs]
        err = [r.density.stderr for r in res.runs]
        ax.errorbar(a, rho, yerr=err, fmt=marker, color=color, capsize=3,
                    label=f"{res.method}: {res.n_simulations} runs, a1 = {res.a1.value:.3f}")
        if res.linear_fit is not None:
            ax.plot(grid, res.linear_fit.predict(grid), color=color, lw=1, label="linear fit")
        if res.method == "reweighting":
            predictions = mbar_predict(pooled_samples(list(res.runs)), grid, unit="g/cm3")
            ok = np.array([p.effective_samples >= 10 for p in predictions])
            mean = np.array([p.observable.value for p in predictions])
            sd = np.array([p.observable.stderr for p in predictions])
            ax.plot(grid[ok], mean[ok], color=color, ls="--", lw=1, label="MBAR reweighted (ESS >= 10)")
            ax.fill_between(grid[ok], (mean - sd)[ok], (mean + sd)[ok], color=color, alpha=0.15)
    ax.set_xlabel("a1")
    ax.set_ylabel("density (g/cm$^3$)")
    ax.legend(fontsize=7)
    return _save(fig, path)
