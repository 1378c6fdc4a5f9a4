"""Sizing a stability design at the model level: simulated clustered outcomes of known answer.

Each model's hazard is drawn from a gamma distribution with mean ``mean_hazard_per_ps`` and
squared coefficient of variation ``alpha`` (the between-model variance that
:func:`.model_level.negative_binomial_rate_ratio` estimates); each of its ``n_starts``
trajectories collapses after an exponential time at that hazard or survives ``test_ps``. The
outcomes are what the pipeline records per model: collapses and trajectory-ps of exposure.

:func:`rejection_rates` runs the model-level permutation test and the trajectory-level
single-hazard test (:func:`.survival.rate_ratio`) on the same simulated experiments, so the
same numbers give the model-level test's size (equal arms) and power (arm a's mean hazard
``effect`` times arm b's), and show the single-hazard test's false-positive rate when models
differ.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .model_level import permutation_test, split_matrix
from .survival import rate_ratio


@dataclass(frozen=True)
class Design:
    n_models: int  # per arm
    n_starts: int  # trajectories per model
    test_ps: float

    @property
    def trajectory_ps_per_arm(self) -> float:
        return self.n_models * self.n_starts * self.test_ps

    def wall_time_h(self, training_min_per_model: float = 4.4, parallel_trainings: int = 2,
                    md_trajectory_ps_per_s: float = 0.69, arms: int = 2) -> float:
        """Upper bound of the training and stability-MD wall time (every trajectory runs to the end)."""
        training = arms * self.n_models * training_min_per_model / parallel_trainings * 60.0
        md = arms * self.trajectory_ps_per_arm / md_trajectory_ps_per_s
        return (training + md) / 3600.0

    def as_dict(self) -> dict:
        return {**asdict(self), "trajectory_ps_per_arm": self.trajectory_ps_per_arm}


def simulate_arm(rng: np.random.Generator, design: Design, mean_hazard_per_ps: float, alpha: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(collapses, exposure ps) per model of one arm."""
    if alpha > 0:
        hazards = rng.gamma(1.0 / alpha, mean_hazard_per_ps * alpha, size=design.n_models)
    else:
        hazards = np.full(design.n_models, mean_hazard_per_ps)
    with np.errstate(divide="ignore"):
        times = rng.exponential(1.0 / np.maximum(hazards, 1e-300)[:, None], size=(design.n_models, design.n_starts))
    collapsed = times < design.test_ps
    exposure = np.minimum(times, design.test_ps).sum(axis=1)
    return collapsed.sum(axis=1), exposure


def rejection_rates(design: Design, baseline_hazard_per_ps: float, alpha: float, effect: float = 1.0,
                    n_experiments: int = 2000, significance: float = 0.01, seed: int = 0) -> dict:
    """Fraction of simulated experiments each test calls significant at ``significance``.

    With ``effect = 1`` (equal arms) these are false-positive rates; otherwise power. Returns the
    rates with their binomial Monte Carlo standard errors.
    """
    rng = np.random.default_rng(seed)
    splits = split_matrix(design.n_models, design.n_models)
    model_hits = trajectory_hits = 0
    for _ in range(n_experiments):
        k_a, t_a = simulate_arm(rng, design, baseline_hazard_per_ps * effect, alpha)
        k_b, t_b = simulate_arm(rng, design, baseline_hazard_per_ps, alpha)
        if k_a.sum() + k_b.sum() == 0:
            continue  # nothing collapsed: neither test can reject
        model_hits += permutation_test(k_a, t_a, k_b, t_b, splits=splits).p_value < significance
        trajectory_hits += rate_ratio(int(k_a.sum()), float(t_a.sum()), int(k_b.sum()),
                                      float(t_b.sum())).p_value < significance

    def rate(hits: int) -> list[float]:
        p = hits / n_experiments
        return [p, float(np.sqrt(p * (1 - p) / n_experiments))]

    return {"model_level": rate(model_hits), "trajectory_level": rate(trajectory_hits),
            "n_experiments": n_experiments, "significance": significance, "effect": effect,
            "baseline_hazard_per_ps": baseline_hazard_per_ps, "alpha": alpha, "design": design.as_dict()}


__all__ = ["Design", "rejection_rates", "simulate_arm"]
