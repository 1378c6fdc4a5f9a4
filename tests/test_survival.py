"""Survival statistics of the stability benchmark against textbook values and simulated hazards."""

from __future__ import annotations

import numpy as np
import pytest

from openmm_physembed.stability import survival
from openmm_physembed.stability.explain import explain_collapse, training_bond_ranges
from openmm_physembed.stability.report import (
    compare_arms,
    per_seed,
    summarize,
    wilson_interval,
)

# Freireich et al. (Blood 1963) 6-MP vs placebo remission times in weeks, the textbook data set of
# Kaplan-Meier and log-rank (Gehan 1965; Kleinbaum & Klein, Survival Analysis, ch. 2).
SIX_MP = np.array([6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35], float)
SIX_MP_EVENT = np.array([1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0], bool)
PLACEBO = np.array([1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23], float)


def test_poisson_interval_matches_garwood_tables():
    # 0 events: upper limit 3.689 (the "rule of 3.7"); 10 events: 4.795-18.390 (Garwood 1936 tables).
    assert survival.poisson_rate_interval(0, 1.0) == pytest.approx((0.0, 3.6889), abs=1e-4)
    assert survival.poisson_rate_interval(10, 1.0) == pytest.approx((4.7954, 18.3904), abs=1e-4)
    assert survival.poisson_rate_interval(10, 200.0) == pytest.approx((4.7954 / 200, 18.3904 / 200), rel=1e-4)


def test_rate_ratio_with_no_events_in_one_arm_is_the_closed_form_clopper_pearson():
    # Equal exposures, 0 vs k: p = 2 * 0.5**k; upper pi = 1 - 0.025**(1/k), ratio = pi / (1 - pi).
    for k in (8, 10, 14):
        ratio = survival.rate_ratio(0, 500.0, k, 500.0)
        assert ratio.p_value == pytest.approx(2 * 0.5**k, rel=1e-9)
        upper = 1 - 0.025 ** (1 / k)
        assert ratio.high == pytest.approx(upper / (1 - upper), rel=1e-9)
        assert ratio.value == 0.0 and ratio.low == 0.0
    # Unequal exposures scale the ratio: 2 collapses in 100 ps vs 8 in 400 ps is a ratio of exactly 1.
    assert survival.rate_ratio(2, 100.0, 8, 400.0).value == pytest.approx(1.0)
    assert survival.rate_ratio(2, 100.0, 8, 400.0).p_value == pytest.approx(1.0)


def test_kaplan_meier_and_logrank_on_the_freireich_data():
    curve = survival.kaplan_meier(SIX_MP, SIX_MP_EVENT)
    expected = {6: 0.857, 7: 0.807, 10: 0.753, 13: 0.690, 16: 0.627, 22: 0.538, 23: 0.448}
    for t, s in expected.items():
        k = np.searchsorted(curve.time_ps, t, side="right") - 1
        assert curve.survival[k] == pytest.approx(s, abs=6e-4)
        assert curve.low[k] < s < curve.high[k]
    # Log-rank chi-square 16.79 (p = 4.2e-5); scipy's statistic is its signed square root.
    test = survival.logrank(SIX_MP, SIX_MP_EVENT, PLACEBO, np.ones_like(PLACEBO, bool))
    assert test.statistic**2 == pytest.approx(16.79, abs=0.01)
    assert test.p_value == pytest.approx(4.17e-5, rel=0.01)


def test_hazard_and_its_interval_on_simulated_constant_hazard_data():
    """1000 simulated benchmarks at a known hazard: unbiased estimate, 95% coverage, exact p100."""
    rng = np.random.default_rng(7)
    rate, test_ps, n = 0.02, 20.0, 40
    estimates, covered, p100_covered = [], 0, 0
    true_p100 = 1 - np.exp(-100 * rate)
    trials = 1000
    for _ in range(trials):
        t = rng.exponential(1 / rate, size=n)
        collapsed = t < test_ps
        h = survival.hazard_estimate(np.minimum(t, test_ps), collapsed)
        estimates.append(h.hazard_per_ps.value)
        covered += h.hazard_per_ps.low <= rate <= h.hazard_per_ps.high
        p100_covered += h.p_collapse_within_horizon.low <= true_p100 <= h.p_collapse_within_horizon.high
    estimates = np.array(estimates)
    # Mean within 4 standard errors of the truth (collapses / exposure is asymptotically unbiased;
    # its small bias at ~11 events per benchmark is ~1/k ~ 9%: allowed for in the tolerance).
    assert abs(estimates.mean() - rate) < 4 * estimates.std() / np.sqrt(trials) + 0.1 * rate
    # The exact interval is conservative: coverage >= 95% minus 3 binomial standard errors.
    se = np.sqrt(0.95 * 0.05 / trials)
    assert covered / trials >= 0.95 - 3 * se
    assert p100_covered == covered  # p100 is a monotone map of the hazard interval


def test_rate_ratio_test_holds_its_size_and_finds_a_real_difference():
    rng = np.random.default_rng(11)
    trials, n, test_ps = 2000, 60, 10.0

    def arm(rate):
        t = rng.exponential(1 / rate, size=n)
        return np.minimum(t, test_ps), t < test_ps

    rejections_null = rejections_alt = 0
    for _ in range(trials):
        (ta, ca), (tb, cb) = arm(0.02), arm(0.02)
        rejections_null += survival.rate_ratio(ca.sum(), ta.sum(), cb.sum(), tb.sum()).p_value < 0.05
        (ta, ca), (tb, cb) = arm(0.002), arm(0.02)
        rejections_alt += survival.rate_ratio(ca.sum(), ta.sum(), cb.sum(), tb.sum()).p_value < 0.05
    se = np.sqrt(0.05 * 0.95 / trials)
    assert rejections_null / trials <= 0.05 + 3 * se  # exact conditional test: size at most alpha
    assert rejections_alt / trials > 0.8


def test_kaplan_meier_matches_the_simulated_survival_function():
    rng = np.random.default_rng(3)
    rate, test_ps = 0.05, 20.0
    t = rng.exponential(1 / rate, size=4000)
    curve = survival.kaplan_meier(np.minimum(t, test_ps), t < test_ps)
    for x in (5.0, 10.0, 19.0):
        k = np.searchsorted(curve.time_ps, x, side="right") - 1
        truth = np.exp(-rate * x)
        half_width = (curve.high[k] - curve.low[k]) / 2
        assert abs(curve.survival[k] - truth) < 2 * half_width  # ~4 standard errors


def test_power_of_ten_expected_collapses():
    # 0 vs k at equal exposure reaches p < 0.01 from k = 8: P(Poisson(10) >= 8) = 0.7798.
    assert survival.power_zero_events(10.0, 1.0, 0.01) == pytest.approx(0.77978, abs=1e-4)


def test_wilson_interval_textbook_values():
    # Newcombe (Stat Med 1998) table: 0/10 -> 0-0.2775, 5/10 -> 0.2366-0.7634.
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    # 0/20 -> upper 0.161 (at k = 0 the upper limit is z^2 / (n + z^2) = 3.8415 / 23.8415);
    # 5/20 -> 0.112-0.469 (the usual textbook example of the score interval, Newcombe's method 3).
    assert wilson_interval(0, 20) == pytest.approx((0.0, 0.1611), abs=1e-4)
    assert wilson_interval(5, 20) == pytest.approx((0.1119, 0.4687), abs=1e-4)


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 20), (5, 20), (20, 20), (3, 50), (37, 120), (0, 120)])
@pytest.mark.parametrize("confidence", [0.90, 0.95, 0.99])
def test_wilson_interval_is_the_closed_form_and_scipys(k, n, confidence):
    from scipy.stats import binomtest, norm

    # Wilson (J. Am. Stat. Assoc. 1927, 22, 209): centre (k + z^2/2) / (n + z^2),
    # half-width z / (n + z^2) sqrt(k (n - k) / n + z^2 / 4).
    z = norm.ppf(0.5 + confidence / 2)
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * np.sqrt(k * (n - k) / n + z * z / 4)
    low, high = wilson_interval(k, n, confidence)
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-12)
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_wilson_interval_of_no_trajectories_is_uninformative():
    # n = 0 has no information: the whole [0, 1] (scipy's binomtest refuses n = 0).
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_report_survival_curve_hand_worked():
    """Kaplan-Meier of 6 trajectories of 10 ps: collapses at 2, 5, 5, 8 ps, two stable (censored at 10).

    At risk / collapsed: t=2: 6/1 -> S = 5/6; t=5: 5/2 -> S = 5/6 * 3/5 = 1/2; t=8: 3/1 -> S = 1/3,
    held to the end of the test. Log-log band at t=5 by hand (Kalbfleisch & Prentice): Greenwood sum
    1/(6*5) + 2/(5*3) = 1/6, se of log(-log S) = sqrt(1/6) / ln 2 = 0.5890, so the band is
    S^exp(+-1.96 * 0.5890) = (0.5^3.1724, 0.5^0.3152) = (0.1109, 0.8037).
    """
    from openmm_physembed.stability.report import survival_curve

    steps = [2000, 5000, 5000, 8000]  # 1 fs steps
    records = ([{"stable": False, "collapse_step": s} for s in steps]
               + [{"stable": True, "collapse_step": None}] * 2)
    curve = survival_curve(records, test_ps=10.0, timestep_fs=1.0)
    np.testing.assert_allclose(curve.time_ps, [0.0, 2.0, 5.0, 8.0, 10.0])
    np.testing.assert_allclose(curve.survival, [1.0, 5 / 6, 1 / 2, 1 / 3, 1 / 3], rtol=1e-12)
    assert (curve.low[2], curve.high[2]) == pytest.approx((0.1109, 0.8037), abs=1e-4)
    assert np.all(curve.low <= curve.survival) and np.all(curve.survival <= curve.high)


def test_kaplan_meier_hand_worked_with_interior_censoring():
    # Times 1, 2+, 3, 4+, 5 (+ censored): S(1) = 4/5, S(3) = 4/5 * 2/3 = 8/15, S(5) = 8/15 * 0/1 = 0;
    # censored times leave S unchanged.
    curve = survival.kaplan_meier([1.0, 2.0, 3.0, 4.0, 5.0], [True, False, True, False, True])
    k = np.searchsorted(curve.time_ps, [0.5, 1.0, 2.5, 3.0, 4.5, 5.0], side="right") - 1
    np.testing.assert_allclose(curve.survival[k], [1.0, 0.8, 0.8, 8 / 15, 8 / 15, 0.0], rtol=1e-12)
    # No collapse at all: survival 1 throughout, up to the longest trajectory.
    none = survival.kaplan_meier([3.0, 3.0], [False, False])
    np.testing.assert_array_equal(none.survival, [1.0, 1.0])
    assert none.time_ps[-1] == 3.0


def _records(arm, seed, times, collapsed, test_ps):
    return [{"arm": arm, "seed": seed, "start": i, "stable": not c,
             "collapse_step": int(round(t * 1000)) if c else None} for i, (t, c) in enumerate(zip(times, collapsed))]


def test_report_counts_exposure_until_collapse_or_end():
    base = _records("baseline", 0, [1.0, 2.5, 5.0, 5.0], [True, True, False, False], 5.0)
    aug = _records("augmented", 0, [5.0] * 4, [False] * 4, 5.0)
    s = summarize("baseline", base, 5.0, 1.0, published_p100=0.77)
    assert (s.n_collapsed, s.exposure_ps) == (2, pytest.approx(13.5))
    assert s.hazard_per_ps[0] == pytest.approx(2 / 13.5)
    assert s.p100[0] == pytest.approx(1 - np.exp(-100 * 2 / 13.5))
    comparison = compare_arms(aug, base, 5.0, 1.0)
    assert comparison["rate_ratio"][0] == 0.0
    # 0 of 2 collapses in the augmented arm, which holds 20 / 33.5 of the exposure.
    # Two-sided binomial p: P(0 of 2) = (13.5/33.5)**2; no outcome is less likely, so that is all.
    assert comparison["p_value"] == pytest.approx((13.5 / 33.5) ** 2)
    assert per_seed(base, 5.0, 1.0)["0"]["collapses"] == 2


def test_explanation_names_the_bond_and_its_training_range():
    bonds = np.array([[0, 1], [1, 2]])
    r0 = np.array([0.1, 0.15])
    training = np.array([[[0, 0, 0], [0.1 + d, 0, 0], [0.25 + d, 0, 0]] for d in (0.0, 0.01, 0.02)])
    ranges = {"augmented": training_bond_ranges(training, bonds)}
    intact = np.array([[0, 0, 0], [0.14, 0, 0], [0.29, 0, 0]])  # bond 0-1 already 0.02 nm past its range
    broken = np.array([[0, 0, 0], [0.16, 0, 0], [0.31, 0, 0]])
    record = {"arm": "augmented", "seed": 0, "start": 3, "collapse_time_ps": 1.2, "cause": "bond",
              "description": "bond", "atoms": (0, 1), "distance_nm": 0.16}
    e = explain_collapse(record, (intact, broken), bonds, r0, ["hc-c3", "c3-c3"], ["H", "C", "C"], ranges)
    assert e["bond"]["gaff_types"] == "hc-c3" and e["bond"]["training_range_A"]["augmented"] == pytest.approx([1.0, 1.2])
    assert e["precursor"]["atoms"] == "H0-C1"
    assert e["precursor"]["beyond_training_A"] == pytest.approx(0.2)
    assert e["verdict"].startswith("outside")


def test_explanation_names_an_angle_outside_its_training_range():
    from openmm_physembed.sampling.geometry import angle_values_deg, bond_angles
    from openmm_physembed.stability.explain import training_angle_ranges

    bonds = np.array([[0, 1], [0, 2]])  # a water-like H-O-H
    angles = bond_angles(bonds)
    assert angles.tolist() == [[1, 0, 2]]

    def frame(theta_deg):
        t = np.radians(theta_deg)
        return np.array([[0, 0, 0], [0.1, 0, 0], [0.1 * np.cos(t), 0.1 * np.sin(t), 0]])

    training = np.array([frame(a) for a in (100.0, 105.0, 110.0)])
    assert angle_values_deg(frame(104.5), angles)[0] == pytest.approx(104.5)
    ranges = {"augmented": training_bond_ranges(training, bonds)}
    angle_ranges = {"augmented": training_angle_ranges(training, angles)}
    record = {"method": "augmented", "seed": 1, "start": 0, "collapse_time_ps": 2.0, "cause": "overlap",
              "description": "atoms H1-H2 overlap", "atoms": (1, 2), "distance_nm": 0.05}
    e = explain_collapse(record, (frame(60.0), frame(20.0)), bonds, np.array([0.1, 0.1]), ["ow-hw"] * 2,
                         ["O", "H", "H"], ranges, angle_ranges)
    assert e["angle_precursor"]["atoms"] == "H1-O0-H2"
    assert e["angle_precursor"]["beyond_training_deg"] == pytest.approx(40.0)


# Reports written before the stability code said "arm" name it "method" in every trajectory record
# and collapse explanation; the committed results are such reports and must stay readable.
COMMITTED = ["paracetamol", "novec7000", "ac-ala-nhme"]


@pytest.mark.parametrize("molecule", COMMITTED)
def test_committed_reports_with_the_old_method_key_read_the_same(molecule):
    import json
    from pathlib import Path

    from openmm_physembed.stability.explain import format_explanations
    from openmm_physembed.stability.model_level import per_model_counts
    from openmm_physembed.stability.report import ARMS, record_arm

    path = Path(__file__).parents[1] / "benchmarks" / "results" / "stability" / molecule / "stability_report.json"
    report = json.loads(path.read_text())
    records = report["trajectories"]
    assert all("method" in r and "arm" not in r for r in records)  # the old layout, as committed
    protocol = report["protocol"]
    timestep_fs = protocol["test_md"]["timestep_fs"] if "test_md" in protocol else protocol["timestep_fs"]
    for arm in ARMS:
        mine = [r for r in records if record_arm(r) == arm]
        # The counts the report stored when it was written are the reference.
        assert summarize(arm, mine, protocol["test_ps"], timestep_fs).n_collapsed == report["summary"][arm]["n_collapsed"]
        counts = per_model_counts(records, protocol["test_ps"], timestep_fs, arm)
        stored = report["per_seed"][arm]
        assert {str(seed): k for seed, (k, _) in counts.items()} == {seed: v["collapses"] for seed, v in stored.items()}
        assert [t for _, t in counts.values()] == pytest.approx([v["exposure_ps"] for v in stored.values()])
        lines = format_explanations(report["collapses"], arm)
        assert len(lines.splitlines()) == report["summary"][arm]["n_collapsed"]
        assert all(line.startswith(f"  {arm} seed") for line in lines.splitlines())


def test_new_records_say_arm_and_the_old_summary_name_warns():
    import openmm_physembed.stability.report as report

    records = _records("augmented", 0, [1.0, 5.0], [True, False], 5.0)
    assert summarize("augmented", records, 5.0, 1.0).as_dict()["arm"] == "augmented"
    with pytest.warns(DeprecationWarning, match="ArmSummary"):
        assert report.MethodSummary is report.ArmSummary
    import openmm_physembed.stability.pipeline as pipeline

    with pytest.warns(DeprecationWarning, match="ARMS"):
        assert pipeline.METHODS == report.ARMS == ("baseline", "augmented")
