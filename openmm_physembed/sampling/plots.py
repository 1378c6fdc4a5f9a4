"""Bond-length (and bond-angle) distributions per type before and after sampling (matplotlib, PNG)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping

import numpy as np

from ..io import atomic_path


def plot_bond_length_distributions(
    before_angstrom: Mapping[str, np.ndarray],
    after_angstrom: Mapping[str, np.ndarray],
    path: str | Path,
    segments_angstrom: Mapping[str, Mapping[str, tuple[float, float]]] | None = None,
    title: str = "",
    bins: int = 40,
    xlabel: str = "bond length / Å",
) -> Path:
    """One panel per bond type: overlaid histograms of the lengths before and after (Angstrom).

    ``segments_angstrom[bond_type] = {"compression": (lo, hi), "stretch": (lo, hi)}`` shades
    the sampling segments. Counts are on a log axis: one modified bond per structure is a small
    tail next to the unmodified bonds. Angles (degrees, segments ``closing``/``opening``) plot the
    same way with ``xlabel="angle / degrees"``.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    types = sorted(set(before_angstrom) | set(after_angstrom))
    n_cols = min(4, max(1, len(types)))
    n_rows = max(1, math.ceil(len(types) / n_cols))
    fig = Figure(figsize=(3.4 * n_cols, 2.6 * n_rows + 0.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(n_rows, n_cols, squeeze=False).ravel())
    for ax, bond_type in zip(axes, types):
        before = np.asarray(before_angstrom.get(bond_type, []), dtype=float)
        after = np.asarray(after_angstrom.get(bond_type, []), dtype=float)
        values = np.concatenate([before, after])
        spans = (segments_angstrom or {}).get(bond_type, {})
        edges_lo = min([values.min()] + [lo for lo, _ in spans.values()])
        edges_hi = max([values.max()] + [hi for _, hi in spans.values()])
        edges = np.linspace(edges_lo, edges_hi + 1e-9, bins + 1)
        for name, color in (("compression", "tab:blue"), ("stretch", "tab:red"), ("closing", "tab:blue"),
                            ("opening", "tab:red")):
            if name in spans:
                ax.axvspan(*spans[name], color=color, alpha=0.08, lw=0)
        ax.hist(before, bins=edges, histtype="stepfilled", color="0.6", alpha=0.7, label="before")
        ax.hist(after, bins=edges, histtype="step", color="tab:green", lw=1.4, label="after")
        ax.set_yscale("log")
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(bond_type, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(types):]:
        ax.set_visible(False)
    if types:
        axes[0].legend(fontsize=7, loc="upper right")
        axes[0].set_ylabel("count")
    if title:
        fig.suptitle(title, fontsize=11)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    return path
