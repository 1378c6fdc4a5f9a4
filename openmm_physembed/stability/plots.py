"""Stability plots: collapse probability bars (baseline vs augmented) and survival curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .report import survival_curve

COLORS = {"baseline": "tab:blue", "augmented": "tab:green"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_collapse_bars(summaries: dict[str, dict[str, dict]], path: str | Path, title: str = "") -> Path:
    """``summaries[molecule][method]`` -> MethodSummary dicts; grouped bars with Wilson 95% intervals."""
    plt = _pyplot()
    molecules = list(summaries)
    methods = ["baseline", "augmented"]
    x = np.arange(len(molecules))
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(4, 2.2 * len(molecules)), 3.6))
    for offset, method in zip((-width / 2, width / 2), methods):
        values = [100 * summaries[m][method]["collapse_probability"] for m in molecules]
        low = [100 * summaries[m][method]["collapse_probability_ci95"][0] for m in molecules]
        high = [100 * summaries[m][method]["collapse_probability_ci95"][1] for m in molecules]
        err = [np.subtract(values, low), np.subtract(high, values)]
        bars = ax.bar(x + offset, values, width, yerr=err, capsize=3, color=COLORS[method],
                      label="plain frames" if method == "baseline" else "bond-length sampling")
        for bar, m in zip(bars, molecules):
            s = summaries[m][method]
            ax.annotate(f"{s['n_collapsed']}/{s['n_trajectories']}", (bar.get_x() + bar.get_width() / 2, 1),
                        ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, molecules)
    ax.set_ylabel("collapse probability (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_survival(records_by_method: dict[str, list[dict]], test_ps: float, timestep_fs: float,
                  path: str | Path, title: str = "") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for method, records in records_by_method.items():
        t, alive = survival_curve(records, test_ps, timestep_fs)
        ax.step(t, 100 * alive, where="post", color=COLORS.get(method), label=f"{method} (n = {len(records)})")
    ax.set_xlabel("time (ps)")
    ax.set_ylabel("intact trajectories (%)")
    ax.set_ylim(-2, 102)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
