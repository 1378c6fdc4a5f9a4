"""Summaries of stability outcomes: per arm, per seed and between the arms.

Pure functions over the per-trajectory records the pipeline writes (``arm``, ``stable``,
``collapse_step``, ``seed``, ...; reports written before the rename name the arm ``method``, and
:func:`record_arm` reads both). Besides the fixed-length collapse fraction (with its Wilson
interval) every summary carries the survival statistics of :mod:`.survival`: exposure, hazard
with its exact interval and the implied probability of collapse within the published 100 ps,
printed beside the published percentage.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

from . import survival

#: The two arms of the experiment: models trained on the plain frames and on the augmented set.
ARMS = ("baseline", "augmented")

#: Published collapse probabilities within 100 ps at 800 K (MACE, 50 structures; Hu, Hou & Jiang, Fig. 2c).
PUBLISHED_P100: dict[str, dict[str, float]] = {
    "paracetamol": {"baseline": 0.77, "augmented": 0.0},
    "novec7000": {"baseline": 0.59, "augmented": 0.0},
    "ac-ala3-nhme": {"baseline": 0.22, "augmented": 0.0},
    # The paper's peptide by its formula, C6H12N2O2 (chem/library.py): the same published row.
    "ac-ala-nhme": {"baseline": 0.22, "augmented": 0.0},
}


def record_arm(record: dict) -> str:
    """The arm of a trajectory record or collapse explanation, new key ``arm`` or old key ``method``.

    >>> record_arm({"arm": "augmented"}), record_arm({"method": "baseline"})
    ('augmented', 'baseline')
    """
    return record["arm"] if "arm" in record else record["method"]


@dataclass(frozen=True)
class ArmSummary:
    arm: str
    n_trajectories: int
    n_collapsed: int
    collapse_probability: float  # fraction collapsed within test_ps
    collapse_probability_ci95: tuple[float, float]  # Wilson score interval
    mean_survival_ps: float  # censored at the test length for stable trajectories
    test_ps: float
    exposure_ps: float  # trajectory-ps until collapse or the end of the test
    hazard_per_ps: list  # [value, low, high], exact Poisson 95% interval
    p100: list  # [value, low, high]: 1 - exp(-100 ps * hazard)
    published_p100: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def wilson_interval(k: int, n: int, confidence: float = survival.CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (scipy's ``binomtest(...).proportion_ci``)."""
    from scipy.stats import binomtest

    if n == 0:
        return (0.0, 1.0)
    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
    return (float(ci.low), float(ci.high))


def survival_times_ps(records: list[dict], test_ps: float, timestep_fs: float) -> np.ndarray:
    return np.array([test_ps if r["stable"] else r["collapse_step"] * timestep_fs * 1e-3 for r in records],
                    dtype=float)


def collapsed_flags(records: list[dict]) -> np.ndarray:
    return np.array([not r["stable"] for r in records], dtype=bool)


def hazard(records: list[dict], test_ps: float, timestep_fs: float) -> survival.HazardEstimate:
    return survival.hazard_estimate(survival_times_ps(records, test_ps, timestep_fs), collapsed_flags(records))


def summarize(arm: str, records: list[dict], test_ps: float, timestep_fs: float,
              published_p100: float | None = None) -> ArmSummary:
    n = len(records)
    k = int(collapsed_flags(records).sum())
    times = survival_times_ps(records, test_ps, timestep_fs)
    h = hazard(records, test_ps, timestep_fs)
    return ArmSummary(arm, n, k, k / n if n else float("nan"), wilson_interval(k, n),
                         float(times.mean()) if n else float("nan"), test_ps, h.exposure_ps,
                         h.hazard_per_ps.as_list(), h.p_collapse_within_horizon.as_list(), published_p100)


def per_seed(records: list[dict], test_ps: float, timestep_fs: float) -> dict[str, dict]:
    """Hazard of each training seed's model (seeds differ as much as models do: look before pooling)."""
    seeds = sorted({int(r["seed"]) for r in records})
    return {str(s): hazard([r for r in records if int(r["seed"]) == s], test_ps, timestep_fs).as_dict()
            for s in seeds}


def compare_arms(augmented: list[dict], baseline: list[dict], test_ps: float, timestep_fs: float) -> dict:
    """Rate ratio augmented / baseline (exact interval, two-sided p) and the log-rank test."""
    ta, ca = survival_times_ps(augmented, test_ps, timestep_fs), collapsed_flags(augmented)
    tb, cb = survival_times_ps(baseline, test_ps, timestep_fs), collapsed_flags(baseline)
    ratio = survival.rate_ratio(int(ca.sum()), float(ta.sum()), int(cb.sum()), float(tb.sum()))
    test = survival.logrank(ta, ca, tb, cb)
    return {"rate_ratio": [ratio.value, ratio.low, ratio.high], "p_value": ratio.p_value,
            "test": "exact conditional binomial test of two Poisson rates (two-sided)",
            "logrank": {"statistic": test.statistic, "p_value": test.p_value}}


def model_level(records: list[dict], test_ps: float, timestep_fs: float) -> dict:
    """Augmented vs baseline with the trained model as the unit (:mod:`.model_level`)."""
    from .model_level import model_level_summary, per_model_counts

    return model_level_summary(per_model_counts(records, test_ps, timestep_fs, "augmented"),
                               per_model_counts(records, test_ps, timestep_fs, "baseline"))


def survival_curve(records: list[dict], test_ps: float, timestep_fs: float) -> survival.SurvivalCurve:
    """Kaplan-Meier curve of the records (trajectories censored at ``test_ps``) with its 95% band."""
    return survival.kaplan_meier(survival_times_ps(records, test_ps, timestep_fs), collapsed_flags(records))


def molecule_summary(summaries: dict[str, dict], comparison: dict, molecule: str) -> dict:
    """One molecule's entry of ``benchmarks/results/stability/summary.json``."""
    def arm(s: dict) -> dict:
        return {"collapses": s["n_collapsed"], "trajectories": s["n_trajectories"], "exposure_ps": s["exposure_ps"],
                "hazard_per_ps": s["hazard_per_ps"], "p100": s["p100"]}

    entry = {"baseline": arm(summaries["baseline"]), "augmented": arm(summaries["augmented"]),
             "rate_ratio": comparison["rate_ratio"], "p_value": comparison["p_value"],
             "logrank_p_value": comparison["logrank"]["p_value"],
             "published_p100": PUBLISHED_P100.get(molecule, {"baseline": None, "augmented": None})}
    if "model_level" in comparison:
        m = comparison["model_level"]
        entry["model_level"] = {"n_models": m["n_models"], "p_value": m["p_value"], "rate_ratio": m["rate_ratio"],
                                "between_model_alpha": m["between_model_alpha"],
                                "method": m["method"] + "; rate ratio: " + m["rate_ratio_method"]}
    return entry


def format_report(molecule: str, summaries: dict[str, dict], comparison: dict, seeds: dict | None = None) -> str:
    """The console table: collapses, exposure, hazard, implied 100-ps probability vs published, test."""
    lines = [f"{molecule}: collapses per trajectory-ps (exact 95% intervals); P(collapse in 100 ps) = 1 - exp(-100 h)"]
    lines.append(f"  {'arm':<10} {'collapsed':>10} {'exposure ps':>12} {'hazard 1/ps':>28} "
                 f"{'P(100 ps)':>22} {'published':>9}")
    for arm, s in summaries.items():
        h, p = s["hazard_per_ps"], s["p100"]
        published = s.get("published_p100")
        lines.append(f"  {arm:<10} {s['n_collapsed']:>4}/{s['n_trajectories']:<5} {s['exposure_ps']:>12.1f} "
                     f"{h[0]:>9.2e} [{h[1]:.1e}, {h[2]:.1e}] {100 * p[0]:>7.1f}% [{100 * p[1]:.0f}-{100 * p[2]:.0f}%] "
                     f"{'' if published is None else f'{100 * published:.0f}%':>9}")
    rr = comparison["rate_ratio"]
    lines.append(f"  trajectory level (every trajectory independent): rate ratio augmented/baseline {rr[0]:.3g} "
                 f"(95% CI {rr[1]:.3g}-{rr[2]:.3g}), p = {comparison['p_value']:.2g}; "
                 f"log-rank p = {comparison['logrank']['p_value']:.2g}")
    m = comparison.get("model_level")
    if m:
        mr = m["rate_ratio"]
        alpha = m.get("between_model_alpha")
        lines.append(f"  model level ({m['n_models'][1]} augmented vs {m['n_models'][0]} baseline models, the unit of "
                     f"replication): permutation p = {m['p_value']:.2g} (smallest possible {m['min_p_value']:.2g}); "
                     f"NB rate ratio {mr[0]:.3g} (95% CI {mr[1]:.3g}-{mr[2]:.3g})"
                     + (f", between-model CV^2 {alpha:.2f}" if alpha is not None else ""))
        lines.append("  " + claim_level(comparison))
    if seeds:
        for arm, by_seed in seeds.items():
            parts = [f"seed {k}: {v['collapses']}/{v['n_trajectories']} in {v['exposure_ps']:.0f} ps"
                     for k, v in by_seed.items()]
            lines.append(f"  {arm:<10} " + "; ".join(parts))
    return "\n".join(lines)


def claim_level(comparison: dict, significance: float = 0.01) -> str:
    """Which level supports 'the augmented arm collapses less', in one sentence."""
    m = comparison.get("model_level")
    trajectory = comparison["p_value"] < significance and comparison["rate_ratio"][0] < 1
    if m and m["p_value"] < significance and m["rate_ratio"][0] < 1:
        return f"supported at the model level (p < {significance:g}): it holds across independently trained models"
    if trajectory:
        return (f"supported at the trajectory level only: p < {significance:g} there, but not across models "
                f"(model-level p = {m['p_value']:.2g}); trajectories of one model are not independent evidence"
                if m else f"supported at the trajectory level (p < {significance:g}); no model-level test")
    return f"not supported at p < {significance:g} at either level"


def is_underpowered(summaries: dict[str, dict], alpha: float = 0.01) -> bool:
    """True when even the published baseline hazard would rarely give p < ``alpha`` at this exposure."""
    published = max(p["baseline"] for p in PUBLISHED_P100.values())  # paracetamol's 77%
    rate = -np.log1p(-published) / survival.PUBLISHED_TEST_PS
    exposure_b = summaries["baseline"]["exposure_ps"]
    exposure_a = summaries["augmented"]["exposure_ps"]
    if exposure_b <= 0:
        return True
    return survival.power_zero_events(rate * exposure_b, exposure_a / exposure_b, alpha) < 0.8


def __getattr__(name: str):
    if name == "MethodSummary":
        warnings.warn("stability.report.MethodSummary is deprecated; it is ArmSummary (field 'arm')",
                      DeprecationWarning, stacklevel=2)
        return ArmSummary
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
