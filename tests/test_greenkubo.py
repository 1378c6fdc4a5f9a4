"""Green-Kubo estimators against analytic cases.

Synthetic series are discrete Ornstein-Uhlenbeck (AR(1)) processes, whose autocorrelation
sigma^2 q^k (q = exp(-dt/tau)) has the exact discrete integral
dt (c_0/2 + sum_{k>=1} c_k) = sigma^2 dt/2 coth(dt/(2 tau)) -- the quantity both a trapezoidal
running integral and STACIE's zero-frequency spectrum estimate (it tends to sigma^2 tau for dt << tau).
Coverage is checked over fixed seeds: every estimate within 3.5 of its own standard errors, and the
root-mean-square z-score between 0.4 and 1.8 (error bars neither inflated nor too small).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from openmm_physembed.errors import PropertyError
from openmm_physembed.properties.viscosity.greenkubo import (
    PressureSeries,
    autocorrelation,
    double_exponential,
    green_kubo_prefactor,
    running_integral,
    shear_components,
    split_segments,
    stacie_acint,
    time_decomposition,
    viscosity_curves,
    viscosity_stacie,
    viscosity_time_decomposition,
)
from openmm_physembed.properties.viscosity.pressure import (
    tensor_to_voigt,
    voigt_to_tensor,
)
from openmm_physembed.units import BAR_IN_KJ_PER_MOL_NM3, BOLTZMANN_KJ_PER_MOL_K


def ornstein_uhlenbeck(rng, n_sequences: int, n_steps: int, dt: float, tau: float, variance: float) -> np.ndarray:
    """Stationary AR(1) sequences with autocorrelation variance * exp(-|t|/tau)."""
    q = np.exp(-dt / tau)
    x0 = rng.normal(0.0, np.sqrt(variance), n_sequences)
    noise = rng.normal(0.0, np.sqrt(variance * (1 - q * q)), (n_sequences, n_steps - 1))
    rest = lfilter([1.0], [1.0, -q], noise, axis=1, zi=(q * x0)[:, None])[0]
    return np.concatenate([x0[:, None], rest], axis=1)


def ou_integral(dt: float, tau: float, variance: float) -> float:
    return variance * dt / 2.0 / np.tanh(dt / (2.0 * tau))


def _td_curves(x: np.ndarray, dt: float, segment: int):
    segments = split_segments(x, segment).reshape(-1, segment)
    acf = autocorrelation(segments, segment // 2)
    return running_integral(acf, dt), np.arange(segment // 2 + 1) * dt


def _check_coverage(z_scores):
    z = np.asarray(z_scores)
    assert np.all(np.abs(z) < 3.5), z
    assert 0.4 < np.sqrt(np.mean(z**2)) < 1.8, z


# ----------------------------------------------------------------------------- building blocks

def test_shear_components_of_tensors_and_voigt_agree_and_are_rotation_invariant():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 3, 3))
    tensors = a + np.swapaxes(a, 1, 2) + 5.0 * np.eye(3)
    from_tensor = shear_components(tensors)
    from_voigt = shear_components(tensor_to_voigt(tensors))
    np.testing.assert_allclose(from_tensor, from_voigt, atol=1e-12)
    np.testing.assert_allclose(voigt_to_tensor(tensor_to_voigt(tensors)), tensors, atol=1e-12)
    assert from_tensor.shape == (5, 50)
    # Daivis & Evans: sum_i P'_i^2 = 1/2 P_tl : P_tl (traceless part), which no rotation changes.
    traceless = tensors - np.trace(tensors, axis1=1, axis2=2)[:, None, None] / 3.0 * np.eye(3)
    np.testing.assert_allclose((from_tensor**2).sum(0), 0.5 * np.einsum("nab,nab->n", traceless, traceless),
                               rtol=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rotated = np.einsum("ab,nbc,dc->nad", q, tensors, q)
    np.testing.assert_allclose((shear_components(rotated) ** 2).sum(0), (from_tensor**2).sum(0), rtol=1e-10)
    # The isotropic pressure does not enter.
    np.testing.assert_allclose(shear_components(tensors + 100.0 * np.eye(3)), from_tensor, atol=1e-9)
    with pytest.raises(PropertyError):
        shear_components(np.zeros((10, 4)))


def test_autocorrelation_equals_direct_sum():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 257))
    acf = autocorrelation(x, max_lag=40)
    direct = np.array([[np.dot(row[: len(row) - k], row[k:]) / (len(row) - k) for k in range(41)] for row in x])
    np.testing.assert_allclose(acf, direct, rtol=1e-10, atol=1e-12)
    centred = autocorrelation(x + 3.0, max_lag=5, subtract_mean=True)
    np.testing.assert_allclose(centred, autocorrelation(x - x.mean(1, keepdims=True), max_lag=5), atol=1e-10)


def test_running_integral_of_an_exponential():
    dt, tau = 0.01, 0.7
    t = np.arange(2000) * dt
    integral = running_integral(np.exp(-t / tau), dt)
    np.testing.assert_allclose(integral, tau * (1 - np.exp(-t / tau)), rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(double_exponential(1e6, 2.0, 0.3, 0.1, 5.0), 2.0 * (0.3 * 0.1 + 0.7 * 5.0))


def test_green_kubo_prefactor_matches_the_kj_per_mol_route():
    volume, temperature = 27.0, 298.15
    # eta = V/(kB T) int <P P> dt with P in kJ/mol/nm^3, giving kJ/mol/nm^3 ps; one kJ/mol/nm^3 is
    # 1/BAR_IN_KJ_PER_MOL_NM3 bar = 1e5/BAR... Pa; times 1e-12 s/ps and 1e3 cP/(Pa s).
    kt = BOLTZMANN_KJ_PER_MOL_K * temperature
    expected = volume / kt * BAR_IN_KJ_PER_MOL_NM3**2 * (1e5 / BAR_IN_KJ_PER_MOL_NM3) * 1e-12 * 1e3
    assert green_kubo_prefactor(volume, temperature) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(PropertyError):
        green_kubo_prefactor(-1.0, 300.0)


# ----------------------------------------------------------------------------- estimators on OU

def test_stacie_recovers_the_integral_of_ornstein_uhlenbeck_series():
    dt, tau, variance = 0.1, 1.0, 2.0
    truth = ou_integral(dt, tau, variance)
    z = []
    for seed in range(6):
        x = ornstein_uhlenbeck(np.random.default_rng(seed), 10, 2000, dt, tau, variance)
        estimate = stacie_acint(x, 1.0, dt, model="lorentz").estimate
        z.append((estimate.value - truth) / estimate.stderr)
        assert estimate.stderr < 0.15 * truth
    _check_coverage(z)
    assert abs(np.mean(z)) < 3.0 / np.sqrt(len(z))


def test_stacie_exppoly_recovers_a_two_timescale_integral():
    dt = 0.1
    truth = ou_integral(dt, 0.3, 2.0) + ou_integral(dt, 2.0, 0.5)
    z = []
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        x = ornstein_uhlenbeck(rng, 5, 10000, dt, 0.3, 2.0) + ornstein_uhlenbeck(rng, 5, 10000, dt, 2.0, 0.5)
        estimate = stacie_acint(x, 1.0, dt, model="exppoly").estimate
        z.append((estimate.value - truth) / estimate.stderr)
    _check_coverage(z)


def test_time_decomposition_recovers_a_two_timescale_integral():
    dt = 0.1
    truth = ou_integral(dt, 0.3, 2.0) + ou_integral(dt, 2.0, 0.5)
    z = []
    for seed in range(10):
        rng = np.random.default_rng(200 + seed)
        x = ornstein_uhlenbeck(rng, 5, 10000, dt, 0.3, 2.0) + ornstein_uhlenbeck(rng, 5, 10000, dt, 2.0, 0.5)
        curves, time = _td_curves(x, dt, 1000)
        result = time_decomposition(curves, time, n_bootstrap=100, seed=seed)
        z.append((result.estimate.value - truth) / result.estimate.stderr)
        assert result.n_curves == 50
        assert 0 < result.cutoff_time <= time[-1]
        assert 0.2 < result.power_b < 1.0  # the spread of a running integral grows roughly like sqrt(t)
        assert result.fitted(result.cutoff_time) == pytest.approx(
            np.interp(result.cutoff_time, result.time, result.mean), rel=0.1)
    _check_coverage(z)


def test_time_decomposition_refuses_unusable_input():
    rng = np.random.default_rng(5)
    x = ornstein_uhlenbeck(rng, 1, 2000, 0.1, 1.0, 1.0)
    curves, time = _td_curves(x, 0.1, 1000)
    with pytest.raises(PropertyError, match="many independent curves"):
        time_decomposition(curves, time)
    # Very short segments: each curve's spread exceeds 40% of the mean almost at once.
    curves, time = _td_curves(ornstein_uhlenbeck(rng, 5, 2000, 0.1, 1.0, 1.0), 0.1, 40)
    with pytest.raises(PropertyError, match="too noisy"):
        time_decomposition(curves, time)


# ----------------------------------------------------------------------------- viscosity (units)

def _synthetic_pressure(rng, n_steps: int, dt: float, tau: float, variance: float) -> np.ndarray:
    """(n, 6) pressure tensors whose five shear components are independent OU series."""
    p1 = ornstein_uhlenbeck(rng, 5, n_steps, dt, tau, variance)
    xy, xz, yz, aniso1, aniso2 = p1
    xx = 2.0 / np.sqrt(3.0) * aniso1  # with xx + yy + zz = 0, P'_4 = 1.5 xx / sqrt(3)
    yy = (-xx + 2.0 * aniso2) / 2.0
    zz = (-xx - 2.0 * aniso2) / 2.0
    isotropic = 300.0 + rng.normal(0.0, 50.0, n_steps)  # must not leak into the shear components
    pressure = np.stack([xx + isotropic, yy + isotropic, zz + isotropic, xy, xz, yz], axis=1)
    np.testing.assert_allclose(shear_components(pressure), p1, atol=1e-9)
    return pressure


def test_viscosity_estimators_recover_a_known_viscosity_in_cp():
    dt_ps, tau_ps, variance_bar2 = 0.005, 0.2, 150.0**2
    volume, temperature = 30.0, 300.0
    rng = np.random.default_rng(11)
    series = [PressureSeries(_synthetic_pressure(rng, 16000, dt_ps, tau_ps, variance_bar2), dt_ps, volume, temperature)
              for _ in range(3)]
    truth_cp = green_kubo_prefactor(volume, temperature) * ou_integral(dt_ps, tau_ps, variance_bar2)
    stacie = viscosity_stacie(series)
    assert stacie.estimate.unit == "cP" and stacie.n_sequences == 15
    assert abs(stacie.estimate.value - truth_cp) < 3.5 * stacie.estimate.stderr
    assert stacie.corrtime_exp == pytest.approx(tau_ps, rel=0.3)
    curves = viscosity_curves(series, n_segments=16)
    assert curves.integrals_cp.shape[0] == 3 * 5 * 16
    assert curves.acf_mean_cp_per_ps[0] == pytest.approx(
        green_kubo_prefactor(volume, temperature) * variance_bar2, rel=0.05)
    td = viscosity_time_decomposition(curves, n_bootstrap=100)
    assert td.estimate.unit == "cP"
    assert abs(td.estimate.value - truth_cp) < 3.5 * td.estimate.stderr
    assert td.estimate.stderr < 0.2 * truth_cp


def test_analysis_keeps_one_estimator_when_the_other_cannot_work():
    from openmm_physembed.properties.viscosity.workflow import (
        GreenKuboAnalysis,
        analyze_viscosity,
    )

    rng = np.random.default_rng(3)
    dt_ps = 0.005
    series = [PressureSeries(_synthetic_pressure(rng, 2000, dt_ps, 0.2, 150.0**2), dt_ps, 30.0, 300.0)
              for _ in range(2)]
    # 100-sample segments: the time-decomposition window collapses, STACIE still fits the spectrum.
    result = analyze_viscosity(series, GreenKuboAnalysis(n_segments=20, n_bootstrap=20))
    assert result.time_decomposition is None and result.stacie is not None
    assert len(result.failures) == 1 and result.failures[0].startswith("time decomposition")
    with pytest.raises(PropertyError, match="no viscosity estimate"):
        analyze_viscosity([PressureSeries(s.pressure_bar[:40], dt_ps, 30.0, 300.0) for s in series],
                          GreenKuboAnalysis(n_segments=1))
