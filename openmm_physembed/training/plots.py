"""Learning curves from mace-torch's per-epoch results file.

mace_run_train appends one JSON object per line to ``results/<name>_run-<seed>_train.txt``:
``"mode": "opt"`` lines hold the loss of each training batch, ``"mode": "eval"`` lines the
validation loss and errors (eV, eV/Angstrom) after each evaluated epoch. A resumed run repeats
epochs; the last record of an epoch wins.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Mapping

import numpy as np

from ..io import atomic_path, write_json

MEV_PER_EV = 1000.0


def read_mace_results(path: str | Path) -> dict[str, np.ndarray]:
    """Per-epoch arrays: ``epoch``, ``train_loss`` (mean over batches), ``valid_loss``,
    ``valid_rmse_e_mev_per_atom``, ``valid_rmse_f_mev_per_angstrom`` (NaN where absent)."""
    train_losses: dict[int, list[float]] = defaultdict(list)
    evals: dict[int, dict] = {}
    path = Path(path)
    lines = path.read_text().splitlines() if path.is_file() else []
    previous_opt_epoch = None
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed run
        epoch = record.get("epoch")
        if epoch is None:
            continue  # the evaluation before the first epoch
        epoch = int(epoch)
        if record.get("mode") == "opt":
            if epoch != previous_opt_epoch:  # a new block of batches: a resumed run redoes the epoch
                train_losses[epoch] = []
                previous_opt_epoch = epoch
            train_losses[epoch].append(float(record["loss"]))
        elif record.get("mode") == "eval":
            evals[epoch] = record
            previous_opt_epoch = None
    epochs = sorted(set(train_losses) | set(evals))

    def column(key: str, scale: float = 1.0) -> np.ndarray:
        return np.array([float(evals[e][key]) * scale if e in evals and key in evals[e] else np.nan
                         for e in epochs])

    return {
        "epoch": np.array(epochs, dtype=int),
        "train_loss": np.array([np.mean(train_losses[e]) if train_losses.get(e) else np.nan for e in epochs]),
        "valid_loss": column("loss"),
        "valid_rmse_e_mev_per_atom": column("rmse_e_per_atom", MEV_PER_EV),
        "valid_rmse_f_mev_per_angstrom": column("rmse_f", MEV_PER_EV),
    }


def plot_learning_curve(curve: Mapping[str, np.ndarray], png_path: str | Path, title: str = "") -> Path:
    """Loss and validation RMSEs against epoch; the data go to a JSON file beside the PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    png_path = Path(png_path)
    epoch = np.asarray(curve["epoch"])
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    axes[0].plot(epoch, curve["train_loss"], label="train (batch mean)")
    axes[0].plot(epoch, curve["valid_loss"], label="validation")
    axes[0].set_ylabel("loss")
    axes[0].legend()
    axes[1].plot(epoch, curve["valid_rmse_e_mev_per_atom"], color="C2")
    axes[1].set_ylabel("validation energy RMSE (meV/atom)")
    axes[2].plot(epoch, curve["valid_rmse_f_mev_per_angstrom"], color="C3")
    axes[2].set_ylabel("validation force RMSE (meV/Å)")
    for axis in axes:
        axis.set_xlabel("epoch")
        if np.any(np.isfinite(axis.lines[0].get_ydata())) and np.nanmin(axis.lines[0].get_ydata()) > 0:
            axis.set_yscale("log")
    if title:
        fig.suptitle(title)
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    write_json(png_path.with_suffix(".json"), {key: np.asarray(value) for key, value in curve.items()})
    return png_path
