"""Model-level inference (issue 28, items 1-2): checked against statsmodels, scipy, an analytic
bound and simulated clustered data of known answer.

Simulated data: per-model hazards from a gamma distribution (CV^2 0.86, the mean of the committed
baseline arms; benchmarks/results/stability/design/), the same in both arms for the size and 10x
lower in the augmented arm for the power; 10 models x 8 starts x 12.5 ps (the `cpu` preset).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from openmm_physembed.errors import StabilityError
from openmm_physembed.stability.design import Design, rejection_rates
from openmm_physembed.stability.model_level import (
    model_level_summary,
    negative_binomial_rate_ratio,
    one_arm_fit,
    permutation_test,
)
from openmm_physembed.stability.protocol import get_protocol

K_A, T_A = [1, 0, 3, 0, 2, 1], [120.0, 125.0, 110.0, 125.0, 118.0, 121.0]
K_B, T_B = [5, 13, 2, 8, 4, 1], [90.0, 60.0, 110.0, 70.0, 95.0, 120.0]


def test_negative_binomial_fit_equals_statsmodels():
    from statsmodels.discrete.discrete_model import NegativeBinomial

    fit = negative_binomial_rate_ratio(K_A, T_A, K_B, T_B)
    k = np.r_[K_A, K_B]
    x = np.r_[np.ones(6), np.zeros(6)]
    reference = NegativeBinomial(k, np.column_stack([np.ones(12), x]), offset=np.log(np.r_[T_A, T_B])).fit(disp=0)
    assert fit.rate_ratio[0] == pytest.approx(math.exp(reference.params[1]), rel=1e-4)
    assert fit.alpha == pytest.approx(reference.params[2], rel=1e-3)
    assert fit.log_likelihood == pytest.approx(reference.llf, abs=1e-6)
    # Profile and Wald intervals differ, but both hold the estimate and agree to ~15 % here.
    wald = np.exp(reference.conf_int()[1])
    assert fit.rate_ratio[1] < fit.rate_ratio[0] < fit.rate_ratio[2]
    assert fit.rate_ratio[1] == pytest.approx(wald[0], rel=0.2) and fit.rate_ratio[2] == pytest.approx(wald[1], rel=0.2)


def test_separated_upper_bound_reduces_to_the_poisson_profile_bound():
    """Equal baseline models, no augmented collapse: alpha -> 0 and the Poisson profile LR bound
    (2 K log((r T_a + T_b) / T_b) = chi2_1(0.95)) is r = (exp(chi2/(2K)) - 1) T_b / T_a."""
    k_b, t_b = [6, 6, 6, 6], [100.0] * 4
    t_a = [125.0] * 4
    fit = negative_binomial_rate_ratio([0] * 4, t_a, k_b, t_b)
    K, crit = sum(k_b), stats.chi2.ppf(0.95, 1)
    expected = (math.exp(crit / (2 * K)) - 1) * sum(t_b) / sum(t_a)
    assert fit.separated and fit.rate_ratio[0] == 0.0 and fit.alpha < 1e-3
    assert fit.rate_ratio[2] == pytest.approx(expected, rel=1e-3)


def test_permutation_test_equals_scipy_exact():
    h_a, h_b = np.array(K_A) / T_A, np.array(K_B) / T_B
    reference = stats.permutation_test((h_a, h_b), lambda a, b: np.mean(a) - np.mean(b), n_resamples=np.inf,
                                       permutation_type="independent", alternative="two-sided")
    ours = permutation_test(K_A, T_A, K_B, T_B)
    assert ours.exact and ours.n_splits == math.comb(12, 6)
    assert ours.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_smallest_p_of_four_models_per_arm_is_0_029():
    result = permutation_test([0] * 4, [125.0] * 4, [5, 3, 8, 4], [90.0, 100.0, 70.0, 95.0])
    assert result.p_value == pytest.approx(2 / 70) and result.min_p_value == pytest.approx(2 / 70)


def test_bad_counts_are_refused():
    with pytest.raises(StabilityError, match="counts"):
        permutation_test([-1], [10.0], [1], [10.0])
    with pytest.raises(StabilityError, match="no collapse"):
        negative_binomial_rate_ratio([1], [10.0], [0], [10.0])


CPU = get_protocol("cpu")
DESIGN = Design(len(CPU.seeds), CPU.n_starts, CPU.test_ps)


def test_model_level_test_holds_its_size_where_the_single_hazard_test_does_not():
    rates = rejection_rates(DESIGN, 0.096, 0.86, effect=1.0, n_experiments=500, seed=3)
    model, model_se = rates["model_level"]
    trajectory, _ = rates["trajectory_level"]
    # Exact permutation: false positives <= 1 %, within 3 Monte Carlo standard errors of 0.01.
    assert model <= 0.01 + 3 * max(model_se, math.sqrt(0.01 * 0.99 / 500))
    # Pooling trajectories of clustered models: many times the nominal rate (~16 % measured).
    assert trajectory > 0.08


def test_power_against_a_10x_effect_at_the_cpu_design():
    rates = rejection_rates(DESIGN, 0.096, 0.86, effect=0.1, n_experiments=300, seed=4)
    power, se = rates["model_level"]
    # benchmarks/results/stability/design: 0.867 +- 0.011 from 1000 experiments.
    assert power == pytest.approx(0.867, abs=4 * max(se, 0.02))


def test_one_arm_fit_recovers_the_simulated_between_model_variance():
    from openmm_physembed.stability.design import simulate_arm

    rng = np.random.default_rng(11)
    k, t = simulate_arm(rng, Design(400, 8, 12.5), 0.05, 0.8)
    hazard, alpha = one_arm_fit(k, t)
    assert hazard == pytest.approx(0.05, rel=0.1)
    assert alpha == pytest.approx(0.8, rel=0.25)


def test_model_level_summary_has_the_summary_json_fields():
    summary = model_level_summary({s: (k, t) for s, (k, t) in enumerate(zip(K_A, T_A))},
                                  {s: (k, t) for s, (k, t) in enumerate(zip(K_B, T_B))})
    assert summary["n_models"] == [6, 6]
    assert len(summary["rate_ratio"]) == 3 and 0 < summary["p_value"] < 1
    assert summary["between_model_alpha"] > 0 and "permutation" in summary["method"]
