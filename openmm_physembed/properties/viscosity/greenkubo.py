"""Green-Kubo estimators of autocorrelation integrals, and the shear viscosity built from them.

Pure functions over numpy arrays (pymbar style): nothing here runs MD. Two independent
estimators are provided, because a Green-Kubo integral is only as good as its error bar:

- :func:`stacie_acint`: the spectral estimator of STACIE (Toraman, Fauconnier, Verstraelen,
  J. Chem. Inf. Model. 2025, PyPI ``stacie``): fit a model (default Lorentzian) to the low-frequency
  power spectrum of the sequences; the zero-frequency intercept is the integral, with a standard
  error from the fit.
- :func:`time_decomposition`: the time-decomposition method of Zhang, Otani & Maginn (J. Chem.
  Theory Comput. 2015, 11, 3537): running integrals of many independent segments, a
  double-exponential fit of their mean weighted by 1/t^b (b from a power-law fit of their spread),
  cut off where the spread exceeds a fraction of the mean.

For the shear viscosity (:func:`viscosity_stacie`, :func:`viscosity_time_decomposition`) the six
pressure-tensor components of each NVT run are turned into five statistically independent shear
components (:func:`shear_components`, the transformation of STACIE's documentation) and

    eta = V / (kB T) * integral_0^inf < P'(0) P'(t) > dt

is reported in cP (mPa s) for pressure in bar, time in ps and volume in nm^3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ...errors import PropertyError
from ...units import BOLTZMANN_J_PER_K, M3_PER_NM3, PA_PER_BAR, PA_S_IN_CP, S_PER_PS
from ..estimates import Estimate

# The five independent anisotropic combinations, in the order :func:`shear_components` returns them.
SHEAR_COMPONENT_NAMES = ("Pxy", "Pxz", "Pyz", "(Pxx - Pyy/2 - Pzz/2)/sqrt(3)", "(Pyy - Pzz)/2")
# Order of the six stored pressure-tensor components: OpenMM's (computeStressTensor) order.
VOIGT_ORDER = ("xx", "yy", "zz", "xy", "xz", "yz")
STACIE_MODELS = ("lorentz", "exppoly", "pade")


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------

def shear_components(pressure) -> np.ndarray:
    """Five independent anisotropic components of a pressure-tensor series.

    P'_1..5 = Pxy, Pxz, Pyz, (Pxx - Pyy/2 - Pzz/2)/sqrt(3), (Pyy - Pzz)/2

    For an isotropic fluid the five have the same autocorrelation function and are mutually
    uncorrelated; their mean ACF equals the traceless-tensor form of Daivis & Evans (J. Chem.
    Phys. 1994, 100, 541), Eq. A5 (derivation: STACIE documentation, "Shear Viscosity").

    Parameters
    ----------
    pressure
        ``(..., 6)`` in the order xx, yy, zz, xy, xz, yz (OpenMM's), or ``(..., 3, 3)`` tensors
        (the off-diagonal pairs are averaged).

    Returns
    -------
    ``(5, ...)`` array: component first, time (or whatever the leading axes were) after.

    Examples
    --------
    One sample (xx, yy, zz, xy, xz, yz): (2 - 1/2 - 0/2)/sqrt(3) = 0.866 and (1 - 0)/2 = 0.5.

    >>> shear_components(np.array([[2.0, 1.0, 0.0, 0.5, -0.5, 0.25]]))[:, 0].round(4).tolist()
    [0.5, -0.5, 0.25, 0.866, 0.5]
    """
    p = np.asarray(pressure, dtype=float)
    if p.ndim >= 2 and p.shape[-2:] == (3, 3):
        xx, yy, zz = p[..., 0, 0], p[..., 1, 1], p[..., 2, 2]
        xy = 0.5 * (p[..., 0, 1] + p[..., 1, 0])
        xz = 0.5 * (p[..., 0, 2] + p[..., 2, 0])
        yz = 0.5 * (p[..., 1, 2] + p[..., 2, 1])
    elif p.shape[-1:] == (6,):
        xx, yy, zz, xy, xz, yz = np.moveaxis(p, -1, 0)
    else:
        raise PropertyError(f"pressure must have shape (..., 6) or (..., 3, 3); got {p.shape}")
    return np.stack([xy, xz, yz, (xx - 0.5 * yy - 0.5 * zz) / np.sqrt(3.0), 0.5 * (yy - zz)])


def green_kubo_prefactor(volume_nm3: float, temperature_K: float) -> float:
    """V / (kB T) in cP per (bar^2 ps): multiply an integral of <P(0)P(t)> (bar^2 ps) to get cP.

    Examples
    --------
    27 nm^3 at 300 K: 27e-27 m^3 / (1.380649e-23 J/K * 300 K) = 6.5187e-6 / Pa, times
    1e10 Pa^2/bar^2 * 1e-12 s/ps * 1e3 cP/(Pa s):

    >>> f"{green_kubo_prefactor(27.0, 300.0):.4e}"
    '6.5187e-05'
    """
    if volume_nm3 <= 0 or temperature_K <= 0:
        raise PropertyError(f"volume ({volume_nm3} nm^3) and temperature ({temperature_K} K) must be positive")
    si = volume_nm3 * M3_PER_NM3 / (BOLTZMANN_J_PER_K * temperature_K)  # m^3 / J = 1 / Pa
    return si * PA_PER_BAR**2 * S_PER_PS * PA_S_IN_CP


def autocorrelation(series, max_lag: int | None = None, subtract_mean: bool = False) -> np.ndarray:
    """Time autocorrelation function along the last axis, by FFT.

    c_k = 1/(N - k) * sum_{i=0}^{N-k-1} x_i x_{i+k},   k = 0 .. max_lag

    The 1/(N - k) normalisation makes every lag unbiased (for a zero-mean series). Shear
    pressure components have zero mean by symmetry, so the mean is not subtracted by default:
    subtracting an estimated mean biases the integral by about -2 tau/N (relative).

    Examples
    --------
    An alternating series: c_0 = 4/4, c_1 = -3/3, c_2 = 2/2, c_3 = -1/1.

    >>> autocorrelation([1.0, -1.0, 1.0, -1.0]).round(12).tolist()
    [1.0, -1.0, 1.0, -1.0]
    """
    x = np.asarray(series, dtype=float)
    n = x.shape[-1]
    if n < 2:
        raise PropertyError(f"a series of {n} samples has no autocorrelation")
    max_lag = n - 1 if max_lag is None else int(min(max_lag, n - 1))
    if subtract_mean:
        x = x - x.mean(axis=-1, keepdims=True)
    size = 1 << int(np.ceil(np.log2(2 * n - 1)))  # zero padding: no wrap-around
    spectrum = np.fft.rfft(x, n=size, axis=-1)
    acf = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=-1)[..., : max_lag + 1]
    return acf / (n - np.arange(max_lag + 1))


def running_integral(acf, timestep: float) -> np.ndarray:
    """Cumulative trapezoidal integral along the last axis, starting at 0 for t = 0.

    Examples
    --------
    >>> running_integral([1.0, 1.0, 3.0], timestep=0.5).tolist()
    [0.0, 0.5, 1.5]
    """
    from scipy.integrate import cumulative_trapezoid

    return cumulative_trapezoid(np.asarray(acf, dtype=float), dx=float(timestep), axis=-1, initial=0.0)


def split_segments(series, segment_length: int) -> np.ndarray:
    """``(..., N)`` -> ``(..., N // L, L)`` non-overlapping segments; the remainder is dropped.

    Examples
    --------
    >>> split_segments(np.arange(7), 3).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    x = np.asarray(series)
    n_segments = x.shape[-1] // int(segment_length)
    if n_segments < 1:
        raise PropertyError(f"segment length {segment_length} exceeds the series length {x.shape[-1]}")
    return x[..., : n_segments * segment_length].reshape(*x.shape[:-1], n_segments, segment_length)


# --------------------------------------------------------------------------------------------
# STACIE
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StacieEstimate:
    """A STACIE autocorrelation-integral estimate plus the diagnostics worth reporting.

    ``estimate.n_effective`` is STACIE's effective number of fitted spectrum points (it should
    be well above 3x the model's parameter count; STACIE's docs aim for >= 60 with the Lorentz
    model). ``recommended_simulation_time`` and ``recommended_block_time`` are STACIE's advice
    from the exponential correlation time (Lorentz model only; NaN otherwise).
    """

    estimate: Estimate
    model: str
    n_sequences: int
    timestep: float
    corrtime_exp: float = float("nan")
    corrtime_exp_std: float = float("nan")
    cutoff_frequency: float = float("nan")
    recommended_simulation_time: float = float("nan")
    recommended_block_time: float = float("nan")
    result: object = field(default=None, repr=False, compare=False)  # stacie.estimate.Result, for plots


def _stacie_model(name: str):
    from stacie import ExpPolyModel, LorentzModel, PadeModel

    if name == "lorentz":
        return LorentzModel()
    if name == "exppoly":
        return ExpPolyModel([0, 1, 2])
    if name == "pade":
        return PadeModel([0, 2], [2])
    raise PropertyError(f"unknown STACIE model {name!r}; choose one of {', '.join(STACIE_MODELS)}")


def stacie_acint(sequences, prefactors=1.0, timestep: float = 1.0, model: str = "lorentz",
                 unit: str = "") -> StacieEstimate:
    """Autocorrelation integral F * integral_0^inf <x(0) x(t)> dt by STACIE.

    STACIE computes the averaged power spectrum C_k = F h / (2N) |sum_n x_n exp(-2 pi i n k / N)|^2
    of the sequences, whose zero-frequency limit is the integral, and fits ``model`` to its
    low-frequency part with a cutoff chosen by cross-validation (Toraman et al., J. Chem. Inf.
    Model. 2025, DOI 10.1021/acs.jcim.5c01475).

    Parameters
    ----------
    sequences
        ``(n_sequences, n_steps)``: statistically independent, equally long series.
    prefactors
        F, one per sequence or one for all (e.g. V/(kB T) per replica).
    timestep
        Time between samples.
    model
        ``lorentz`` (STACIE's choice for viscosity), ``exppoly`` or ``pade``.
    """
    from stacie import compute_spectrum, estimate_acint

    x = np.atleast_2d(np.asarray(sequences, dtype=float))
    if x.shape[1] < 64:
        raise PropertyError(f"{x.shape[1]} samples per sequence are too few for a spectrum (need >= 64)")
    if not np.all(np.isfinite(x)):
        raise PropertyError("the sequences contain NaN or inf: the simulation blew up")
    f = np.broadcast_to(np.asarray(prefactors, dtype=float), (x.shape[0],)).copy()
    spectrum = compute_spectrum(x, prefactors=f, timestep=float(timestep))
    try:
        result = estimate_acint(spectrum, _stacie_model(model))
    except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
        raise PropertyError(f"STACIE could not fit the {model} model to the spectrum: {exc}; "
                            "the sequences are probably too short: run longer or add replicas") from exc
    props = result.props
    return StacieEstimate(
        estimate=Estimate(float(result.acint), float(result.acint_std), float(result.neff), unit,
                          f"STACIE {model}"),
        model=model,
        n_sequences=int(x.shape[0]),
        timestep=float(timestep),
        corrtime_exp=float(props.get("corrtime_exp", np.nan)),
        corrtime_exp_std=float(props.get("corrtime_exp_std", np.nan)),
        cutoff_frequency=float(props.get("fcut", np.nan)),
        recommended_simulation_time=float(props.get("exp_simulation_time", np.nan)),
        recommended_block_time=float(props.get("exp_block_time", np.nan)),
        result=result,
    )


# --------------------------------------------------------------------------------------------
# Time decomposition
# --------------------------------------------------------------------------------------------

def double_exponential(t, amplitude: float, alpha: float, tau1: float, tau2: float):
    """eta(t) = A alpha tau1 (1 - exp(-t/tau1)) + A (1 - alpha) tau2 (1 - exp(-t/tau2)).

    The running integral of A [alpha exp(-t/tau1) + (1 - alpha) exp(-t/tau2)]; its limit
    A alpha tau1 + A (1 - alpha) tau2 is the Green-Kubo integral (Zhang et al. 2015, Eq. 6).

    Examples
    --------
    At t = 0 it is 0; long after both times, 2 * 0.5 * 1 + 2 * 0.5 * 3 = 4.

    >>> [round(float(double_exponential(t, 2.0, 0.5, 1.0, 3.0)), 12) for t in (0.0, 1000.0)]
    [0.0, 4.0]
    """
    t = np.asarray(t, dtype=float)
    return (amplitude * alpha * tau1 * -np.expm1(-t / tau1)
            + amplitude * (1.0 - alpha) * tau2 * -np.expm1(-t / tau2))


@dataclass(frozen=True)
class TimeDecomposition:
    """Result of :func:`time_decomposition`; arrays are on the (thinned) fitting grid ``time``."""

    estimate: Estimate
    time: np.ndarray = field(repr=False)
    mean: np.ndarray = field(repr=False)  # mean running integral over curves
    std: np.ndarray = field(repr=False)  # standard deviation over curves (not of the mean)
    cutoff_time: float = float("nan")
    power_b: float = float("nan")  # std(t) ~ power_prefactor * t^b
    power_prefactor: float = float("nan")
    parameters: tuple[float, float, float, float] = (np.nan, np.nan, np.nan, np.nan)  # A, alpha, tau1, tau2
    n_curves: int = 0
    std_fraction: float = 0.4

    def fitted(self, t) -> np.ndarray:
        return double_exponential(t, *self.parameters)


def _thin(n: int, max_points: int) -> np.ndarray:
    stride = max(1, int(np.ceil(n / max_points)))
    return np.arange(0, n, stride)


def _fit_double_exponential(t, y, weight_sqrt, starts):
    from scipy.optimize import least_squares

    t_max, t_min = float(t[-1]), float(t[1] if len(t) > 1 else t[0])

    def residual(p):
        amplitude, alpha, log_tau1, log_tau2 = p
        return (double_exponential(t, amplitude, alpha, np.exp(log_tau1), np.exp(log_tau2)) - y) * weight_sqrt

    # A decay time longer than the fitted window cannot be resolved from it; unbounded, such fits
    # extrapolate without limit (and make the bootstrap spread meaningless).
    lower = [0.0, 0.0, np.log(t_min / 20.0), np.log(t_min / 20.0)]
    upper = [np.inf, 1.0, np.log(t_max), np.log(t_max)]
    best = None
    for start in starts:
        x0 = np.clip(start, np.array(lower) + 1e-12, np.array(upper) - 1e-12)
        fit = least_squares(residual, x0, bounds=(lower, upper), x_scale="jac", max_nfev=2000)
        if best is None or fit.cost < best.cost:
            best = fit
    amplitude, alpha, log_tau1, log_tau2 = best.x
    return best.x, (float(amplitude), float(alpha), float(np.exp(log_tau1)), float(np.exp(log_tau2)))


def _limit(params) -> float:
    amplitude, alpha, tau1, tau2 = params
    return amplitude * (alpha * tau1 + (1.0 - alpha) * tau2)


def time_decomposition(curves, time, std_fraction: float = 0.4, n_bootstrap: int = 300, seed: int = 0,
                       max_fit_points: int = 1500, unit: str = "") -> TimeDecomposition:
    """Green-Kubo integral by the time-decomposition method (Zhang, Otani & Maginn, JCTC 2015).

    1. The running integrals eta_i(t) of many independent trajectories (or segments) give a mean
       <eta>(t) and a spread sigma(t).
    2. sigma(t) = A t^b is fitted (log-log least squares).
    3. The fit window ends at t_cut, the first time where sigma(t) > ``std_fraction`` * <eta>(t)
       (the paper's 40% rule), or at the last lag.
    4. <eta>(t) on (0, t_cut] is fitted by :func:`double_exponential` minimising
       sum_t (<eta>(t) - eta_fit(t))^2 / t^b; the estimate is the fit's t -> inf limit.

    The standard error is the spread of the whole fit (steps 1 and 4 at fixed b and t_cut) over
    ``n_bootstrap`` bootstrap resamplings of the curves; the paper gives no formula of its own.

    Parameters
    ----------
    curves
        ``(n_curves, n_times)`` running integrals (already multiplied by the prefactor), each
        starting at 0 for ``time[0] = 0``.
    time
        ``(n_times,)`` equally spaced times.
    """
    curves = np.asarray(curves, dtype=float)
    time = np.asarray(time, dtype=float)
    if curves.ndim != 2 or curves.shape[1] != len(time):
        raise PropertyError(f"curves must be (n_curves, {len(time)}); got {curves.shape}")
    if curves.shape[0] < 3:
        raise PropertyError(f"time decomposition needs many independent curves; got {curves.shape[0]} "
                            "(use more replicas or shorter segments)")
    if not np.all(np.isfinite(curves)):
        raise PropertyError("the running integrals contain NaN or inf")
    keep = _thin(len(time), max_fit_points)
    time, curves = time[keep], curves[:, keep]
    mean = curves.mean(axis=0)
    std = curves.std(axis=0, ddof=1)

    positive = (time > 0) & (std > 0)
    if positive.sum() < 5:
        raise PropertyError("the running integrals are too short to fit their spread")
    b, log_prefactor = np.polyfit(np.log(time[positive]), np.log(std[positive]), 1)

    too_noisy = (time > 0) & (std > std_fraction * np.abs(mean))
    first = int(np.argmax(too_noisy)) if too_noisy.any() else len(time)
    n_fit = max(first, 2)
    if n_fit < 10:
        raise PropertyError(
            f"the spread of the running integrals exceeds {std_fraction:.0%} of their mean after only "
            f"{n_fit} points (t = {time[n_fit - 1]:.3g}); the data are too noisy for the time-decomposition "
            "fit: use longer segments (each curve's spread grows like sqrt(t / segment length)) or run longer")
    t_fit = time[1:n_fit]  # t = 0 has zero spread and infinite weight
    weight_sqrt = t_fit ** (-b / 2.0)

    dt = t_fit[0]
    slope0 = max((mean[1] - mean[0]) / max(time[1] - time[0], 1e-300), 1e-300)
    starts = []
    for tau1 in (dt, t_fit[-1] / 100.0, t_fit[-1] / 10.0):
        for tau2 in (t_fit[-1] / 10.0, t_fit[-1] / 3.0, t_fit[-1]):
            for alpha in (0.5, 0.9):
                starts.append([slope0, alpha, np.log(tau1), np.log(tau2)])
    x_best, params = _fit_double_exponential(t_fit, mean[1:n_fit], weight_sqrt, starts)

    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(int(n_bootstrap)):
        sample = curves[rng.integers(0, curves.shape[0], curves.shape[0])].mean(axis=0)
        _, p = _fit_double_exponential(t_fit, sample[1:n_fit], weight_sqrt, [x_best])
        boot.append(_limit(p))
    stderr = float(np.std(boot, ddof=1)) if len(boot) > 1 else float("nan")
    return TimeDecomposition(
        estimate=Estimate(_limit(params), stderr, float(curves.shape[0]), unit, "time decomposition"),
        time=time, mean=mean, std=std, cutoff_time=float(t_fit[-1]), power_b=float(b),
        power_prefactor=float(np.exp(log_prefactor)), parameters=params, n_curves=int(curves.shape[0]),
        std_fraction=float(std_fraction),
    )


# --------------------------------------------------------------------------------------------
# Shear viscosity from pressure-tensor series
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PressureSeries:
    """The pressure tensor of one NVT run, sampled every ``timestep_ps``."""

    pressure_bar: np.ndarray = field(repr=False)  # (n_samples, 6): xx, yy, zz, xy, xz, yz
    timestep_ps: float
    volume_nm3: float
    temperature_K: float

    @property
    def prefactor(self) -> float:
        return green_kubo_prefactor(self.volume_nm3, self.temperature_K)

    @property
    def duration_ps(self) -> float:
        return len(self.pressure_bar) * self.timestep_ps


@dataclass(frozen=True)
class GreenKuboCurves:
    """Per-curve running integrals (cP) and the mean ACF (cP/ps) of the shear components."""

    time_ps: np.ndarray = field(repr=False)
    integrals_cp: np.ndarray = field(repr=False)  # (n_curves, n_lags)
    acf_mean_cp_per_ps: np.ndarray = field(repr=False)  # prefactor * <P'(0)P'(t)>, averaged over curves
    acf_sem_cp_per_ps: np.ndarray = field(repr=False)
    segment_ps: float = float("nan")


def _common_timestep(series: Sequence[PressureSeries]) -> float:
    if not series:
        raise PropertyError("no pressure series given")
    steps = {round(s.timestep_ps, 12) for s in series}
    if len(steps) != 1:
        raise PropertyError(f"the pressure series have different sampling intervals: {sorted(steps)} ps")
    return float(series[0].timestep_ps)


def viscosity_stacie(series: Sequence[PressureSeries], model: str = "lorentz") -> StacieEstimate:
    """Shear viscosity (cP) by STACIE from the five shear components of every run.

    Each run contributes five independent sequences with prefactor V/(kB T) of that run; runs
    of unequal length are cut to the shortest (STACIE needs equal lengths).
    """
    dt = _common_timestep(series)
    n = min(len(s.pressure_bar) for s in series)
    sequences = np.concatenate([shear_components(s.pressure_bar[:n]) for s in series])
    prefactors = np.concatenate([np.full(5, s.prefactor) for s in series])
    return stacie_acint(sequences, prefactors, dt, model=model, unit="cP")


def viscosity_curves(series: Sequence[PressureSeries], segment_ps: float | None = None,
                     max_lag_ps: float | None = None, n_segments: int = 10) -> GreenKuboCurves:
    """Running integrals eta_i(t) = V/(kB T) int_0^t <P'(0)P'(t')> dt' of every segment and component.

    Each run is cut into non-overlapping segments of ``segment_ps`` (default: the shortest run
    divided by ``n_segments``); each segment and each of the five shear components gives one
    curve up to ``max_lag_ps`` (default half a segment).
    """
    dt = _common_timestep(series)
    shortest = min(len(s.pressure_bar) for s in series)
    length = int(round(segment_ps / dt)) if segment_ps else shortest // int(n_segments)
    length = min(length, shortest)
    if length < 20:
        raise PropertyError(f"segments of {length} samples are too short; run longer or give a longer segment_ps")
    max_lag = int(round(max_lag_ps / dt)) if max_lag_ps else length // 2
    max_lag = min(max_lag, length - 1)
    integrals, acfs = [], []
    for s in series:
        segments = split_segments(shear_components(s.pressure_bar), length)  # (5, n_seg, L)
        acf = s.prefactor * autocorrelation(segments, max_lag).reshape(-1, max_lag + 1)
        acfs.append(acf)
        integrals.append(running_integral(acf, dt))
    acf_all = np.concatenate(acfs)
    return GreenKuboCurves(
        time_ps=np.arange(max_lag + 1) * dt,
        integrals_cp=np.concatenate(integrals),
        acf_mean_cp_per_ps=acf_all.mean(axis=0),
        acf_sem_cp_per_ps=acf_all.std(axis=0, ddof=1) / np.sqrt(len(acf_all)),
        segment_ps=length * dt,
    )


def viscosity_time_decomposition(curves: GreenKuboCurves, std_fraction: float = 0.4, n_bootstrap: int = 300,
                                 seed: int = 0) -> TimeDecomposition:
    """Shear viscosity (cP) by the time-decomposition method from :func:`viscosity_curves`."""
    return time_decomposition(curves.integrals_cp, curves.time_ps, std_fraction=std_fraction,
                              n_bootstrap=n_bootstrap, seed=seed, unit="cP")
