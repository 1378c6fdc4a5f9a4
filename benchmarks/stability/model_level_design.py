"""Model-level power of candidate `cpu` stability designs at the measured between-model variance.

1. Between-model variance: alpha (CV^2 of the per-model hazard) of each committed baseline arm,
   from the negative-binomial fit (stability/model_level.py) of its per-seed collapses.
2. Simulated clustered experiments (stability/design.py): per-model hazards from a gamma
   distribution of that alpha, the same in both arms (size) or 10x / 30x lower in the augmented
   arm (power); the model-level permutation test and the trajectory-level single-hazard test on
   the same data.
3. Wall time of each design from the measured costs (training 4.4 min per model, two at a time;
   800 K MD 0.69 trajectory-ps/s on 2 cores).

Writes benchmarks/results/stability/design/model_level_design.json and power.png.
    .venv/bin/python benchmarks/stability/model_level_design.py [--experiments 1000]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from openmm_physembed.io import write_json
from openmm_physembed.plotting import pyplot, save_figure
from openmm_physembed.stability.design import Design, rejection_rates
from openmm_physembed.stability.model_level import one_arm_fit

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "stability"
OUT = RESULTS / "design"
# The committed baseline arms (the arm no method changes); the confirmation seeds join paracetamol's.
BASELINES = {
    "paracetamol": ["paracetamol/stability_report.json", "confirmation_seeds_4_5/paracetamol/stability_report.json"],
    "novec7000": ["novec7000/stability_report.json"],
    "ac-ala-nhme": ["ac-ala-nhme/stability_report.json"],
}
DESIGNS = [Design(4, 20, 12.5), Design(6, 14, 12.5), Design(8, 10, 12.5), Design(10, 8, 12.5), Design(10, 10, 12.5),
           Design(12, 7, 12.5)]
EFFECTS = (1.0, 0.1, 1 / 30)


def measured_between_model_variance() -> dict:
    out = {}
    for molecule, files in BASELINES.items():
        counts = []
        for name in files:
            report = json.loads((RESULTS / name).read_text())
            counts += [(v["collapses"], v["exposure_ps"]) for v in report["per_seed"]["baseline"].values()]
        k, t = map(np.array, zip(*counts))
        mean_hazard, alpha = one_arm_fit(k, t)
        out[molecule] = {"n_models": len(k), "per_model_hazard_per_ps": (k / t).tolist(),
                         "mean_hazard_per_ps": mean_hazard, "alpha": alpha,
                         "hazard_fold_range": float((k / t).max() / (k / t).min())}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000)
    args = parser.parse_args()
    started = time.perf_counter()
    variance = measured_between_model_variance()
    alpha = float(np.mean([v["alpha"] for v in variance.values()]))
    hazard = float(np.median([v["mean_hazard_per_ps"] for v in variance.values()]))
    print(f"between-model alpha per molecule: " + ", ".join(f"{m} {v['alpha']:.2f}" for m, v in variance.items())
          + f"; mean {alpha:.2f}; baseline hazard (median of molecules) {hazard:.3f} per ps")
    rows = []
    for design in DESIGNS:
        for effect in EFFECTS:
            r = rejection_rates(design, hazard, alpha, effect, n_experiments=args.experiments, seed=17)
            rows.append({**r, "wall_time_h": design.wall_time_h()})
            print(f"  {design.n_models:>2} models x {design.n_starts:>2} starts x {design.test_ps:g} ps "
                  f"({design.wall_time_h():.1f} h/molecule) effect {1 / effect:>4.0f}x: model-level "
                  f"{r['model_level'][0]:.3f} +- {r['model_level'][1]:.3f}, trajectory-level "
                  f"{r['trajectory_level'][0]:.3f} +- {r['trajectory_level'][1]:.3f}")
    write_json(OUT / "model_level_design.json", {
        "between_model_variance": variance, "alpha_used": alpha, "baseline_hazard_per_ps_used": hazard,
        "significance": 0.01, "rows": rows, "wall_s": time.perf_counter() - started,
        "note": ("rate at effect 1 = false-positive rate (size); below 1 = power. The model-level test is the "
                 "exact permutation test over models; the trajectory-level one pools each arm's trajectories "
                 "into one Poisson hazard (exact conditional binomial test)."),
    })
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4))
    labels = [f"{d.n_models}x{d.n_starts}" for d in DESIGNS]
    for ax, effect, title in ((axes[0], 1.0, "false-positive rate, equal arms"),
                              (axes[1], 0.1, "power against a 10x effect")):
        for level, marker in (("model_level", "o"), ("trajectory_level", "s")):
            values = [r[level] for r in rows if r["effect"] == effect]
            ax.errorbar(range(len(DESIGNS)), [v[0] for v in values], yerr=[2 * v[1] for v in values],
                        marker=marker, capsize=3, label=level.replace("_", " "))
        if effect == 1.0:
            ax.axhline(0.01, color="k", ls="--", lw=0.8, label="alpha = 0.01")
        ax.set_xticks(range(len(DESIGNS)), labels)
        ax.set_xlabel("models per arm x starts per model (12.5 ps)")
        ax.set_title(title)
        ax.legend()
    fig.suptitle(f"gamma between-model variance alpha = {alpha:.2f} (measured), p < 0.01")
    save_figure(fig, OUT / "power.png")
    print(f"-> {OUT / 'model_level_design.json'}")


if __name__ == "__main__":
    main()
