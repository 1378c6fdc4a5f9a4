"""Survival statistics of stability runs: hazard, Kaplan-Meier, rate ratio, log-rank.

A trajectory contributes *exposure* (trajectory-ps) until it collapses or its test ends, so
trajectories of different lengths, seeds and presets pool correctly. Read as a constant hazard
``lambda`` (collapses per trajectory-ps), the number of collapses in an exposure ``T`` is Poisson
with mean ``lambda T``; the published "collapse probability within 100 ps" is then
``1 - exp(-100 lambda)``. Each estimate comes from scipy (no hand-made formulae):

- exact (Garwood) Poisson interval of the hazard from chi-square quantiles;
- rate ratio of two arms with its exact interval and p-value: given ``k_a + k_b`` collapses, ``k_a``
  is binomial with ``p = T_a / (T_a + T_b)`` when the hazards are equal (``scipy.stats.binomtest``,
  Clopper-Pearson interval mapped to the ratio);
- Kaplan-Meier survival with its (log-log) confidence band (``scipy.stats.ecdf`` on censored data);
- the log-rank test (``scipy.stats.logrank``), which does not assume a constant hazard.

Functions are pure: survival times and collapse flags in, numbers out.

>>> poisson_rate_interval(0, 100.0)[1] * 100        # no event in 100 ps: upper bound 3.69 / 100 ps
3.6888...
>>> ratio = rate_ratio(0, 800.0, 10, 700.0)          # 0 vs 10 collapses in similar exposure
>>> round(ratio.p_value, 5), round(ratio.high, 2)
(0.00049, 0.39)
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np

CONFIDENCE = 0.95
#: The published test length; hazards are also reported as a probability of collapse within it.
PUBLISHED_TEST_PS = 100.0


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def as_list(self) -> list[float]:
        return [float(self.value), float(self.low), float(self.high)]


@dataclass(frozen=True)
class HazardEstimate:
    """Collapses per trajectory-ps of one arm (or one seed), with the implied ``horizon_ps`` risk."""

    n_trajectories: int
    collapses: int
    exposure_ps: float
    hazard_per_ps: Interval
    horizon_ps: float
    p_collapse_within_horizon: Interval  # 1 - exp(-horizon * hazard), interval mapped through it

    def as_dict(self) -> dict:
        return {"n_trajectories": self.n_trajectories, "collapses": self.collapses,
                "exposure_ps": self.exposure_ps, "hazard_per_ps": self.hazard_per_ps.as_list(),
                "horizon_ps": self.horizon_ps, "p100": self.p_collapse_within_horizon.as_list()}


@dataclass(frozen=True)
class RateRatio:
    """Hazard of arm ``a`` over that of arm ``b`` with an exact interval and two-sided p-value."""

    value: float
    low: float
    high: float
    p_value: float
    collapses_a: int
    collapses_b: int
    exposure_a_ps: float
    exposure_b_ps: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LogRank:
    statistic: float
    p_value: float


@dataclass(frozen=True)
class SurvivalCurve:
    """Kaplan-Meier estimate as a step function: ``survival[i]`` holds on ``[time_ps[i], time_ps[i+1])``."""

    time_ps: np.ndarray
    survival: np.ndarray
    low: np.ndarray
    high: np.ndarray


def poisson_rate_interval(collapses: int, exposure: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Exact (Garwood 1936) interval of a Poisson rate from ``collapses`` events in ``exposure``.

    Examples
    --------
    10 events in one unit of exposure: 4.795-18.390 (Garwood's tables).

    >>> [round(v, 4) for v in poisson_rate_interval(10, 1.0)]
    [4.7954, 18.3904]
    """
    from scipy.stats import chi2

    if exposure <= 0:
        return (0.0, float("inf"))
    tail = (1.0 - confidence) / 2.0
    low = chi2.ppf(tail, 2 * collapses) / 2.0 if collapses > 0 else 0.0
    high = chi2.ppf(1.0 - tail, 2 * collapses + 2) / 2.0
    return (float(low / exposure), float(high / exposure))


def probability_within(hazard_per_ps: float, horizon_ps: float = PUBLISHED_TEST_PS) -> float:
    """Probability of at least one collapse within ``horizon_ps`` at a constant hazard.

    Examples
    --------
    One collapse per 100 ps on average: 1 - 1/e.

    >>> round(probability_within(0.01, horizon_ps=100.0), 4)
    0.6321
    """
    return float(-np.expm1(-hazard_per_ps * horizon_ps))


def exposure_and_collapses(survival_ps, collapsed) -> tuple[float, int]:
    """Total trajectory-ps and number of collapses.

    Examples
    --------
    >>> exposure_and_collapses([2.0, 5.0, 10.0], [True, True, False])
    (17.0, 2)
    """
    survival_ps = np.asarray(survival_ps, dtype=float)
    collapsed = np.asarray(collapsed, dtype=bool)
    return float(survival_ps.sum()), int(collapsed.sum())


def hazard_estimate(survival_ps, collapsed, horizon_ps: float = PUBLISHED_TEST_PS,
                    confidence: float = CONFIDENCE) -> HazardEstimate:
    """Constant-hazard estimate from each trajectory's survival time (ps) and whether it collapsed.

    Examples
    --------
    Two collapses (at 2 and 5 ps) in 27 trajectory-ps: 2/27 = 0.0741 per ps.

    >>> h = hazard_estimate([2.0, 5.0, 10.0, 10.0], [True, True, False, False])
    >>> h.collapses, h.exposure_ps, [round(v, 4) for v in h.hazard_per_ps.as_list()]
    (2, 27.0, [0.0741, 0.009, 0.2676])
    >>> round(h.p_collapse_within_horizon.value, 3)  # 1 - exp(-100 * 2/27)
    0.999
    """
    exposure, k = exposure_and_collapses(survival_ps, collapsed)
    rate = k / exposure if exposure > 0 else float("nan")
    low, high = poisson_rate_interval(k, exposure, confidence)
    p = Interval(probability_within(rate, horizon_ps), probability_within(low, horizon_ps),
                 probability_within(high, horizon_ps))
    return HazardEstimate(len(np.atleast_1d(survival_ps)), k, exposure, Interval(rate, low, high), horizon_ps, p)


def rate_ratio(collapses_a: int, exposure_a: float, collapses_b: int, exposure_b: float,
               confidence: float = CONFIDENCE) -> RateRatio:
    """Exact conditional comparison of two Poisson rates (hazard a / hazard b).

    Given ``n = k_a + k_b`` collapses, ``k_a`` is binomial(n, T_a / (T_a + T_b)) if the hazards are
    equal; the p-value is ``binomtest``'s two-sided one and the Clopper-Pearson interval of the
    binomial proportion ``pi`` maps to the ratio ``pi / (1 - pi) * T_b / T_a``.

    Examples
    --------
    0 against 10 collapses in equal exposures: p = 2 * 0.5**10.

    >>> ratio = rate_ratio(0, 500.0, 10, 500.0)
    >>> ratio.value, ratio.p_value == 2 * 0.5**10
    (0.0, True)
    >>> rate_ratio(2, 100.0, 8, 400.0).value  # equal hazards, 0.02 per ps
    1.0
    """
    from scipy.stats import binomtest

    n = int(collapses_a + collapses_b)
    if n == 0 or exposure_a <= 0 or exposure_b <= 0:
        return RateRatio(float("nan"), 0.0, float("inf"), 1.0, int(collapses_a), int(collapses_b),
                         float(exposure_a), float(exposure_b))
    share = exposure_a / (exposure_a + exposure_b)
    test = binomtest(int(collapses_a), n, share)
    ci = test.proportion_ci(confidence_level=confidence, method="exact")
    scale = exposure_b / exposure_a

    def to_ratio(pi: float) -> float:
        return float("inf") if pi >= 1.0 else float(pi / (1.0 - pi) * scale)

    value = to_ratio(collapses_a / n)
    return RateRatio(value, to_ratio(ci.low), to_ratio(ci.high), float(test.pvalue), int(collapses_a),
                     int(collapses_b), float(exposure_a), float(exposure_b))


def _censored(survival_ps, collapsed):
    from scipy.stats import CensoredData

    survival_ps = np.asarray(survival_ps, dtype=float)
    collapsed = np.asarray(collapsed, dtype=bool)
    return CensoredData(uncensored=survival_ps[collapsed], right=survival_ps[~collapsed])


def kaplan_meier(survival_ps, collapsed, confidence: float = CONFIDENCE) -> SurvivalCurve:
    """Kaplan-Meier survival from time 0 with its pointwise band (Greenwood variance, log-log scale).

    Examples
    --------
    Collapses at 2, 5, 5 and 8 ps, two trajectories censored at 10 ps: S = 5/6, 5/6 * 3/5, 1/2 * 2/3.

    >>> curve = kaplan_meier([2.0, 5.0, 5.0, 8.0, 10.0, 10.0], [True, True, True, True, False, False])
    >>> curve.time_ps.tolist(), curve.survival.round(4).tolist()
    ([0.0, 2.0, 5.0, 8.0, 10.0], [1.0, 0.8333, 0.5, 0.3333, 0.3333])
    """
    from scipy.stats import ecdf

    survival_ps = np.asarray(survival_ps, dtype=float)
    collapsed = np.asarray(collapsed, dtype=bool)
    end = float(survival_ps.max()) if survival_ps.size else 0.0
    if not collapsed.any():
        # scipy needs one event; with none the estimate is 1 and the band is undefined (kept at 1).
        t = np.array([0.0, end])
        return SurvivalCurve(t, np.ones(2), np.ones(2), np.ones(2))
    result = ecdf(_censored(survival_ps, collapsed)).sf
    with warnings.catch_warnings():
        # Where the estimate is 0 or 1 the log-log band is undefined (NaN; replaced below): expected.
        warnings.filterwarnings("ignore", "The confidence interval is undefined", RuntimeWarning)
        band = result.confidence_interval(confidence_level=confidence, method="log-log")
    t = np.concatenate([[0.0], result.quantiles])
    s = np.concatenate([[1.0], result.probabilities])
    low = np.concatenate([[1.0], np.nan_to_num(band.low.probabilities, nan=0.0)])
    high = np.concatenate([[1.0], np.nan_to_num(band.high.probabilities, nan=1.0)])
    if end > t[-1]:
        t, s, low, high = (np.append(t, end), np.append(s, s[-1]), np.append(low, low[-1]),
                           np.append(high, high[-1]))
    return SurvivalCurve(t, s, low, high)


def logrank(survival_a, collapsed_a, survival_b, collapsed_b) -> LogRank:
    """Log-rank test of equal survival in two arms (``scipy.stats.logrank``, two-sided).

    Examples
    --------
    Without any collapse there is nothing to compare:

    >>> logrank([1.0, 2.0], [False, False], [1.0], [False])
    LogRank(statistic=0.0, p_value=1.0)
    """
    from scipy.stats import logrank as scipy_logrank

    if not (np.any(collapsed_a) or np.any(collapsed_b)):
        return LogRank(0.0, 1.0)
    result = scipy_logrank(_censored(survival_a, collapsed_a), _censored(survival_b, collapsed_b))
    return LogRank(float(result.statistic), float(result.pvalue))


def power_zero_events(expected_collapses_b: float, exposure_ratio_a_to_b: float = 1.0,
                      alpha: float = 0.01) -> float:
    """Probability that the rate-ratio test reaches p < ``alpha`` when arm a has no collapses.

    Arm b's collapses are Poisson(``expected_collapses_b``); arm a (exposure
    ``exposure_ratio_a_to_b`` times b's) has none. Used to size presets from a hazard.

    Examples
    --------
    At equal exposure 0 vs k reaches p < 0.01 from k = 8 on: P(Poisson(10) >= 8).

    >>> round(power_zero_events(10.0, 1.0, alpha=0.01), 4)
    0.7798
    """
    from scipy.stats import poisson

    needed = 1
    while rate_ratio(0, exposure_ratio_a_to_b, needed, 1.0).p_value >= alpha:
        needed += 1
    return float(poisson.sf(needed - 1, expected_collapses_b))
