"""Density estimators against analytic cases: AR(1) inefficiencies, Gaussian MBAR reweighting, failures flagged."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.signal import lfilter

from openmm_physembed.errors import PhysEmbedWarning, PropertyWarning
from openmm_physembed.properties.density.estimators import (
    ProductionWindow,
    ReweightingSamples,
    fluctuation_derivative,
    mbar_predict,
    mean_estimate,
    production_window,
    statistical_inefficiency_with_note,
)
from openmm_physembed.properties.estimates import Estimate
from openmm_physembed.units import BOLTZMANN_KJ_PER_MOL_K

TEMPERATURE_K = 300.0
KT = BOLTZMANN_KJ_PER_MOL_K * TEMPERATURE_K


def ar1(phi, n, seed):
    """x_t = phi x_{t-1} + e_t: statistical inefficiency g = (1 + phi) / (1 - phi)."""
    return lfilter([1.0], [1.0, -phi], np.random.default_rng(seed).normal(size=n))


# ---------------------------------------------------------------------------------------------- inefficiency
@pytest.mark.parametrize("phi", [0.0, 0.5, 0.8])
def test_statistical_inefficiency_of_ar1_is_analytic(phi):
    n = 200_000
    with warnings.catch_warnings():
        warnings.simplefilter("error", PhysEmbedWarning)
        g, note = statistical_inefficiency_with_note(ar1(phi, n, seed=11))
    expected = (1 + phi) / (1 - phi)
    # Sokal's relative error of an integrated autocorrelation time summed over a window of M
    # lags is sqrt(2 (2M + 1) / N); pymbar's window here is about 10 tau_int = 5 g (measured:
    # 1.9 % and 3.4 % spread over 20 seeds at phi = 0.5 and 0.8, as the formula gives).
    relative_error = np.sqrt(2 * (2 * 5 * expected + 1) / n)
    assert note == ""
    assert g == pytest.approx(expected, rel=4 * relative_error)


@pytest.mark.parametrize("series, reason", [
    (np.full(200, 1.3), "constant series"),
    (np.full(7, 0.1), "constant series"),  # the mean of 0.1s is not exactly 0.1
    (np.array([1.0, 1.2, 0.9, 1.1, 1.0]), "only 5 samples"),
    # A drift through the whole run: g is bounded by the run's length, not measured.
    (np.linspace(1.0, 1.1, 60) + 0.001 * np.random.default_rng(2).normal(size=60), "fewer than 5 independent"),
])
def test_failed_inefficiency_warns_and_is_flagged(series, reason):
    with pytest.warns(PropertyWarning, match=reason):
        g, note = statistical_inefficiency_with_note(series)
    assert reason in note and g >= 1.0


def test_old_statistical_inefficiency_name_warns_and_still_returns_g_and_note():
    """Our (g, note) function no longer shares pymbar's name (pymbar's returns g alone)."""
    from pymbar import timeseries

    from openmm_physembed.properties.density import estimators

    series = ar1(0.5, 5000, seed=3)
    with pytest.warns(DeprecationWarning, match="statistical_inefficiency_with_note"):
        g, note = estimators.statistical_inefficiency(series)
    assert note == "" and g == pytest.approx(float(timeseries.statistical_inefficiency(series, mintime=3)), rel=1e-12)


def test_window_mean_and_derivative_of_a_constant_series_are_untrusted():
    constant = np.full(100, 1.25)
    with pytest.warns(PropertyWarning, match="constant series"):
        window = production_window(constant)
    assert not window.trusted and "constant" in window.note
    estimate = mean_estimate(constant, window, "g/cm3")
    assert estimate.value == 1.25 and not estimate.trusted and estimate.note == window.note
    assert estimate.as_dict()["trusted"] is False and "constant" in estimate.as_dict()["note"]
    assert "untrusted" in str(estimate)
    with pytest.warns(PropertyWarning):
        derivative = fluctuation_derivative(constant, np.random.default_rng(0).normal(size=100), TEMPERATURE_K)
    assert not derivative.trusted and "constant" in derivative.note


def test_normal_series_stay_trusted_without_warnings():
    series = 1.0 + 0.01 * ar1(0.5, 2000, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PhysEmbedWarning)
        window = production_window(series)
        estimate = mean_estimate(series, window, "g/cm3")
        derivative = fluctuation_derivative(series, ar1(0.5, 2000, seed=4), TEMPERATURE_K)
    assert window.trusted and estimate.trusted and derivative.trusted
    assert estimate.as_dict()["trusted"] is True and estimate.note == ""
    assert str(estimate) == f"{estimate.value:.4f} +/- {estimate.stderr:.4f} g/cm3"


def test_estimate_defaults_to_trusted():
    estimate = Estimate(1.0, 0.1, 10.0, "g/cm3")
    assert estimate.trusted and estimate.as_dict() == {"value": 1.0, "stderr": 0.1, "n_effective": 10.0,
                                                       "unit": "g/cm3", "method": "", "trusted": True, "note": ""}
    assert ProductionWindow(0, 10, 1.0, 0).trusted


# ---------------------------------------------------------------------------------------------- MBAR
def gaussian_samples(seed, n_per_run=500, parameters=(0.0, 1.0), sigma=1.0, **flags):
    """Runs at lambda_k of U/kT = x^2 / (2 s^2) - lambda x / s^2, i.e. x ~ N(lambda, s^2).

    Observable A = 2 + 0.1 x: <A>(lambda) = 2 + 0.1 lambda and, with dU/dlambda = -kT x / s^2,
    d<A>/dlambda = -beta Cov(A, dU/dlambda) = 0.1 exactly. A P V term of a varying volume is
    included with the pressure set so that it adds a constant shift only to the sampled states.
    """
    rng = np.random.default_rng(seed)
    parameters = np.asarray(parameters, dtype=float)
    run = np.repeat(np.arange(len(parameters)), n_per_run)
    x = rng.normal(parameters[run], sigma)
    energy = KT * (x**2 / (2 * sigma**2) - parameters[run] * x / sigma**2)
    return ReweightingSamples(parameters, run, energy, -KT * x / sigma**2, np.zeros_like(x), 2.0 + 0.1 * x,
                              TEMPERATURE_K, 0.0, **flags)


def test_mbar_reweights_gaussians_to_the_analytic_answer():
    targets = [0.5, 0.0, 1.5]  # between, at and beyond the sampled states
    predictions = mbar_predict(gaussian_samples(0, n_per_run=5000), targets, unit="u")
    for target, p in zip(targets, predictions):
        assert p.parameter == target
        assert abs(p.observable.value - (2.0 + 0.1 * target)) < 4 * p.observable.stderr
        assert abs(p.derivative.value - 0.1) < 4 * p.derivative.stderr
        assert p.observable.trusted and p.observable.method == "MBAR" and p.derivative.unit == "u per unit parameter"
        assert p.observable.n_effective == p.effective_samples
    # Kish size: about all 10000 frames support the midpoint, fewer the extrapolation.
    assert predictions[0].effective_samples > 0.7 * 10_000 > predictions[2].effective_samples > 100


def test_mbar_error_bars_match_the_spread_over_repeats():
    """pymbar's asymptotic standard errors describe the scatter of independent repeats."""
    targets = [0.5, 1.5]
    values, errors = [], []
    for seed in range(60):
        predictions = mbar_predict(gaussian_samples(seed, n_per_run=300), targets)
        values.append([[p.observable.value, p.derivative.value] for p in predictions])
        errors.append([[p.observable.stderr, p.derivative.stderr] for p in predictions])
    spread = np.std(values, axis=0, ddof=1)
    reported = np.mean(errors, axis=0)
    # The sample standard deviation of 60 repeats is itself uncertain by ~1/sqrt(2 * 59) = 9 %.
    np.testing.assert_allclose(spread, reported, rtol=0.3)


def test_mbar_passes_on_untrusted_samples():
    samples = gaussian_samples(1, trusted=False, note="run at a1=0.0: constant series")
    prediction = mbar_predict(samples, [0.5])[0]
    for estimate in (prediction.observable, prediction.derivative):
        assert not estimate.trusted and estimate.note == "run at a1=0.0: constant series"
