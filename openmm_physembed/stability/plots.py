"""Stability plots: collapse probability bars (baseline vs augmented) and survival curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plotting import pyplot as _pyplot
from ..plotting import save_figure as _save
from .report import ARMS, survival_curve

COLORS = {"baseline": "tab:blue", "augmented": "tab:green"}


def save_figure(fig, ax, path: str | Path, title: str = "", legend_size: int = 8, legend_loc: str = "best") -> Path:
    """Legend, title, layout, PNG at 120 dpi, figure closed: the ending every stability plot shares."""
    ax.legend(fontsize=legend_size, loc=legend_loc)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_collapse_bars(summaries: dict[str, dict[str, dict]], path: str | Path, title: str = "") -> Path:
    """``summaries[molecule][arm]`` -> ArmSummary dicts; grouped bars with Wilson 95% intervals."""
    plt = _pyplot()
    molecules = list(summaries)
    x = np.arange(len(molecules))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(4, 2.2 * len(molecules)), 3.6))
    for offset, arm in zip((-width / 2, width / 2), ARMS):
        values = [100 * summaries[m][arm]["collapse_probability"] for m in molecules]
        low = [100 * summaries[m][arm]["collapse_probability_ci95"][0] for m in molecules]
        high = [100 * summaries[m][arm]["collapse_probability_ci95"][1] for m in molecules]
        err = [np.subtract(values, low), np.subtract(high, values)]
        bars = ax.bar(x + offset, values, width, yerr=err, capsize=3, color=COLORS[arm],
                      label="plain frames" if arm == "baseline" else "bond-length sampling")
        for bar, m in zip(bars, molecules):
            s = summaries[m][arm]
            ax.annotate(f"{s['n_collapsed']}/{s['n_trajectories']}", (bar.get_x() + bar.get_width() / 2, 1),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, molecules)
    ax.set_ylabel("collapse probability (%)")
    ax.set_ylim(0, 105)
    return save_figure(fig, ax, path, title)


def plot_survival(records_by_arm: dict[str, list[dict]], test_ps: float, timestep_fs: float,
                  path: str | Path, title: str = "", hazards: dict[str, dict] | None = None) -> Path:
    """Kaplan-Meier survival of each arm with its 95% band; the legend gives collapses / exposure."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for arm, records in records_by_arm.items():
        curve = survival_curve(records, test_ps, timestep_fs)
        color = COLORS.get(arm)
        label = f"{arm} (n = {len(records)})"
        if hazards and arm in hazards:
            h = hazards[arm]
            label = (f"{arm}: {h['n_collapsed']}/{h['n_trajectories']} collapsed, "
                     f"{h['exposure_ps']:.0f} ps, P(100 ps) {100 * h['p100'][0]:.0f}%")
        ax.step(curve.time_ps, 100 * curve.survival, where="post", color=color, label=label)
        ax.fill_between(curve.time_ps, 100 * curve.low, 100 * curve.high, step="post", color=color, alpha=0.2,
                        linewidth=0)
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("intact trajectories (%, Kaplan-Meier, 95% band)")
    ax.set_xlim(0, test_ps)
    ax.set_ylim(-2, 102)
    return save_figure(fig, ax, path, title, legend_size=7, legend_loc="lower left")
