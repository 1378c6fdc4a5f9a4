"""Pure estimators for NPT density and its dependence on a linear energy parameter.

All functions take numpy arrays and return :class:`Estimate` objects or arrays; none runs MD.
The parameter (``a1`` of the CSO correction) enters the energy linearly,
U(x; a1) = U(x; a1_run) + (a1 - a1_run) * dU/da1(x), which is what makes the fluctuation
derivative and exact MBAR reweighting possible from stored per-frame dU/da1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ...errors import PropertyError, PropertyWarning
from ...units import BAR_IN_KJ_PER_MOL_NM3, BOLTZMANN_KJ_PER_MOL_K
from ..estimates import Estimate
from ..pymbar_quiet import quiet_pymbar

quiet_pymbar()

#: Fewer samples than this and pymbar's statistical inefficiency is not trusted: its sum over the
#: correlation function runs at least to lag ``mintime`` = 3 before it may stop, which on a handful
#: of samples is mostly noise.
MIN_INEFFICIENCY_SAMPLES = 10
#: Fewer effectively independent samples than this and g is not trusted either. With the mean
#: taken from the series itself, pymbar's g cannot grow much past N / 3 however long the true
#: correlation time (a pure linear drift gives N / g = 2.9, half a sine period 4.5): there g is
#: bounded by the length of the run, not measured.
MIN_EFFECTIVE_SAMPLES = 5.0


@dataclass(frozen=True)
class ProductionWindow:
    """Which frames of a series are averaged: from ``start`` on, statistical inefficiency ``g``.

    ``equilibrated`` is False when pymbar places the end of equilibration so late that less than
    half of the requested averaging window would remain; the window is then kept as requested
    and the run should be lengthened. ``trusted`` is False when ``g`` could not be estimated
    (``note`` says why); it is then 1, and error bars built on it are too small.
    """

    start: int
    n_frames: int
    g: float
    equilibration_index: int
    equilibrated: bool = True
    trusted: bool = True
    note: str = ""

    @property
    def n_effective(self) -> float:
        return self.n_frames / self.g


def production_window(series: np.ndarray, window_start: int = 0) -> ProductionWindow:
    """Frames to average: from ``window_start`` (e.g. the last 200 ps), later if not yet equilibrated.

    Equilibration detection is pymbar's ``detect_equilibration`` (Chodera, JCTC 2016, 12, 1799),
    which maximises the effective number of uncorrelated samples after t0. On short stationary
    series it can pick a late t0 by chance; a t0 that would leave less than half of the window
    is reported (``equilibrated=False``) rather than used.

    Examples
    --------
    A ramp of 100 frames, then 400 stationary ones: averaging starts where the ramp ends, or at
    ``window_start`` if that is later.

    >>> rng = np.random.default_rng(0)
    >>> series = np.concatenate([np.linspace(0.8, 1.0, 100), 1.0 + 0.01 * rng.normal(size=400)])
    >>> window = production_window(series)
    >>> window.start, window.n_frames, window.equilibrated
    (95, 405, True)
    >>> production_window(series, window_start=250).start
    250
    """
    from pymbar import timeseries

    series = np.asarray(series, dtype=float)
    if len(series) < 10:
        raise PropertyError(f"only {len(series)} frames: too few to detect equilibration (need >= 10)")
    if not np.all(np.isfinite(series)):
        raise PropertyError("the series contains NaN or inf: the simulation blew up")
    window_start = int(np.clip(window_start, 0, len(series) - 5))
    t0, _, _ = timeseries.detect_equilibration(series, fast=False)
    t0 = int(t0)
    window_length = len(series) - window_start
    equilibrated = True
    start = window_start
    if t0 > window_start:
        if len(series) - t0 >= window_length / 2:
            start = t0
        else:
            equilibrated = False
    tail = series[start:]
    g, note = statistical_inefficiency_with_note(tail)
    return ProductionWindow(start, len(tail), g, t0, equilibrated, trusted=not note, note=note)


def statistical_inefficiency_with_note(x: np.ndarray, y: np.ndarray | None = None) -> tuple[float, str]:
    """Statistical inefficiency g >= 1 of ``x`` (or of ``x`` with ``y``), and why it is untrusted.

    Unlike pymbar's ``timeseries.statistical_inefficiency`` (g alone, which raises on degenerate
    input), this returns ``(g, note)`` and never raises, so a caller can flag its estimate.

    g = 1 + 2 sum_t (1 - t/N) C(t), the correlation function C summed until it first crosses
    zero after lag 3: pymbar's ``statistical_inefficiency`` (Chodera et al., JCTC 2007, 3, 26).
    The variance of a mean of N samples is Var(x) g / N.

    Returns
    -------
    g, note
        ``note`` is empty when g is trusted. When g cannot be estimated (a constant series,
        fewer than :data:`MIN_INEFFICIENCY_SAMPLES` samples, fewer than
        :data:`MIN_EFFECTIVE_SAMPLES` effectively independent ones, a failure inside pymbar) a :class:`PropertyWarning` is issued and
        ``note`` says why; g is then pymbar's value where it has one, else 1, so an error bar
        built on it is a lower bound and the caller must flag its estimate untrusted.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(statistical_inefficiency_with_note(rng.normal(size=10_000))[0], 1)
    1.0
    >>> with warnings.catch_warnings(record=True):
    ...     statistical_inefficiency_with_note(np.ones(50))
    (1.0, 'constant series of 50 samples: no statistical inefficiency')
    """
    from pymbar import timeseries
    from pymbar.utils import ParameterError

    x = np.asarray(x, dtype=float)
    n = len(x)
    g, note = 1.0, ""
    # Checked here, not left to pymbar: the mean of a constant series is not always exactly that
    # constant in floating point, and pymbar then sums a correlation function of round-off.
    if n == 0 or np.ptp(x) == 0 or (y is not None and np.ptp(np.asarray(y, dtype=float)) == 0):
        note = f"constant series of {n} samples: no statistical inefficiency"
    else:
        try:
            g = float(max(1.0, timeseries.statistical_inefficiency(x, y, mintime=3)))
        except ParameterError as exc:
            note = f"pymbar could not compute the statistical inefficiency of {n} samples ({exc})"
        else:
            if not np.isfinite(g):
                g, note = 1.0, f"statistical inefficiency of {n} samples is not finite (NaN or inf in the series?)"
            elif n < MIN_INEFFICIENCY_SAMPLES:
                note = f"only {n} samples: too few for a statistical inefficiency (need >= {MIN_INEFFICIENCY_SAMPLES})"
            elif n / g < MIN_EFFECTIVE_SAMPLES:
                note = (f"statistical inefficiency {g:.1f} of {n} samples leaves fewer than "
                        f"{MIN_EFFECTIVE_SAMPLES:.0f} independent samples: the series is not much longer "
                        "than its correlation time; run longer")
    if note:
        warnings.warn(note, PropertyWarning, stacklevel=2)
    return g, note


def statistical_inefficiency(x: np.ndarray, y: np.ndarray | None = None) -> tuple[float, str]:
    """Deprecated: pymbar's function of this name returns g alone; use :func:`statistical_inefficiency_with_note`."""
    warnings.warn("openmm_physembed's statistical_inefficiency returns (g, note), unlike pymbar's; it is now "
                  "statistical_inefficiency_with_note", DeprecationWarning, stacklevel=2)
    return statistical_inefficiency_with_note(x, y)


def mean_estimate(series: np.ndarray, window: ProductionWindow, unit: str, method: str = "") -> Estimate:
    """Mean of ``series`` over ``window`` with standard error sqrt(Var / (N / g)); flagged if ``window`` is.

    Examples
    --------
    The last four frames, g = 2: mean 2.5, sample standard deviation 1.2910, 2 independent samples.

    >>> estimate = mean_estimate(np.array([9.0, 9.0, 1.0, 2.0, 3.0, 4.0]), ProductionWindow(2, 4, 2.0, 0), "g/cm3")
    >>> estimate.value, round(estimate.stderr, 4), estimate.n_effective
    (2.5, 0.9129, 2.0)
    """
    tail = np.asarray(series, dtype=float)[window.start:]
    stderr = float(tail.std(ddof=1) / np.sqrt(max(window.n_effective, 1.0))) if len(tail) > 1 else float("nan")
    return Estimate(float(tail.mean()), stderr, float(window.n_effective), unit, method,
                    trusted=window.trusted, note=window.note)


def fluctuation_derivative(observable: np.ndarray, du_dlambda_kj_mol: np.ndarray, temperature_K: float,
                           unit: str = "", n_bootstrap: int = 200, seed: int = 0) -> Estimate:
    """d<A>/d(lambda) from one NPT run, for a parameter that enters the energy linearly.

    d<A>/dlambda = -beta ( <A dU/dlambda> - <A><dU/dlambda> )

    The standard error comes from a moving-block bootstrap with blocks of one statistical
    inefficiency of the product series, so correlation in time is respected.

    Examples
    --------
    A = 1 + s x and dU/dlambda = -x with x ~ N(0, sigma^2) give d<A>/dlambda = beta s sigma^2 exactly.

    >>> rng = np.random.default_rng(7)
    >>> x = rng.normal(0.0, 2.0, 20_000)
    >>> estimate = fluctuation_derivative(1.0 + 0.01 * x, -x, temperature_K=300.0)
    >>> exact = 0.01 * 2.0**2 / (BOLTZMANN_KJ_PER_MOL_K * 300.0)
    >>> round(exact, 5), abs(estimate.value - exact) < 3 * estimate.stderr
    (0.01604, True)
    """
    a = np.asarray(observable, dtype=float)
    d = np.asarray(du_dlambda_kj_mol, dtype=float)
    if a.shape != d.shape or len(a) < 10:
        raise PropertyError("observable and dU/dlambda must be equal-length series of >= 10 frames")
    beta = 1.0 / (BOLTZMANN_KJ_PER_MOL_K * temperature_K)

    def covariance_derivative(x, y):
        return -beta * (np.mean(x * y) - x.mean() * y.mean())

    value = covariance_derivative(a, d)
    inefficiencies = [statistical_inefficiency_with_note(a), statistical_inefficiency_with_note(d),
                      statistical_inefficiency_with_note((a - a.mean()) * (d - d.mean()))]
    g = max(g for g, _ in inefficiencies)
    note = "; ".join(dict.fromkeys(n for _, n in inefficiencies if n))
    block = max(1, int(np.ceil(g)))
    n = len(a)
    n_blocks = int(np.ceil(n / block))
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_bootstrap):
        starts = rng.integers(0, n - block + 1, size=n_blocks)
        index = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
        samples.append(covariance_derivative(a[index], d[index]))
    return Estimate(float(value), float(np.std(samples, ddof=1)), n / g, unit, "fluctuation",
                    trusted=not note, note=note)


@dataclass(frozen=True)
class ReweightingSamples:
    """Decorrelated frames pooled from NPT runs at different values of one linear parameter."""

    parameter_of_run: np.ndarray  # (K,) parameter value each run was simulated at
    run_of_frame: np.ndarray  # (N,) which run each frame came from
    potential_energy_kj_mol: np.ndarray  # (N,) U(x) at its own run's parameter value
    du_dparam_kj_mol: np.ndarray  # (N,)
    volume_nm3: np.ndarray  # (N,)
    observable: np.ndarray  # (N,) e.g. density in g/cm3
    temperature_K: float
    pressure_bar: float
    # False when a run's statistical inefficiency (the thinning stride) could not be estimated, so
    # the frames may be correlated; every prediction from them is then flagged the same way.
    trusted: bool = True
    note: str = ""

    def reduced_potentials(self, parameters: np.ndarray) -> np.ndarray:
        """u_kn = beta (U(x_n; lambda_k) + P V_n) for each requested parameter value."""
        beta = 1.0 / (BOLTZMANN_KJ_PER_MOL_K * self.temperature_K)
        own = self.parameter_of_run[self.run_of_frame]
        base = self.potential_energy_kj_mol - own * self.du_dparam_kj_mol
        pv = self.pressure_bar * BAR_IN_KJ_PER_MOL_NM3 * self.volume_nm3
        return beta * (base[None, :] + np.asarray(parameters, float)[:, None] * self.du_dparam_kj_mol[None, :]
                       + pv[None, :])


@dataclass(frozen=True)
class ReweightedPrediction:
    parameter: float
    observable: Estimate
    derivative: Estimate  # d<A>/dlambda at that parameter, from the reweighted covariance
    effective_samples: float  # Kish effective sample size of the MBAR weights at that parameter


def mbar_predict(samples: ReweightingSamples, parameters, unit: str = "") -> list[ReweightedPrediction]:
    """MBAR (Shirts & Chodera, JCP 2008, 129, 124105) predictions of <A> and d<A>/dlambda.

    pymbar solves for the free energies f_k of the sampled states and reweights every
    (decorrelated) frame to each requested parameter value. Values and standard errors are
    pymbar's: ``MBAR.compute_expectations`` for <A>, and ``compute_multiple_expectations`` of
    A, dU/dlambda and their product, whose asymptotic covariance is carried through

        d<A>/dlambda = -beta (<A dU/dlambda> - <A><dU/dlambda>)

    to first order (delta method). ``effective_samples`` is the Kish size (sum w)^2 / sum w^2 of
    the MBAR weights at that parameter: how much data supports a prediction.

    Examples
    --------
    Frames of x ~ N(0, 1) and N(1, 1) under U/kT = x^2/2 - lambda x, reweighted to lambda = 0.5,
    where <x> = 0.5 and d<x>/dlambda = 1 exactly:

    >>> from openmm_physembed.units import BOLTZMANN_KJ_PER_MOL_K
    >>> kt = BOLTZMANN_KJ_PER_MOL_K * 300.0
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(0.0, 1.0, 2000), rng.normal(1.0, 1.0, 2000)])
    >>> run = np.repeat([0, 1], 2000)
    >>> samples = ReweightingSamples(np.array([0.0, 1.0]), run, kt * (x**2 / 2 - run * x), -kt * x,
    ...                              np.zeros_like(x), x, 300.0, 0.0)
    >>> p = mbar_predict(samples, [0.5])[0]
    >>> abs(p.observable.value - 0.5) < 4 * p.observable.stderr, abs(p.derivative.value - 1) < 4 * p.derivative.stderr
    (True, True)
    """
    from pymbar import MBAR
    from scipy.special import logsumexp

    parameters = np.atleast_1d(np.asarray(parameters, dtype=float))
    n_runs = len(samples.parameter_of_run)
    counts = np.bincount(samples.run_of_frame, minlength=n_runs)
    u_sampled = samples.reduced_potentials(samples.parameter_of_run)
    # The default solver protocol returned f_k = 0 without complaint on well-separated states here;
    # "robust" (adaptive, then L-BFGS) converges on them.
    mbar = MBAR(u_sampled, counts, verbose=False, solver_protocol="robust")
    beta = 1.0 / (BOLTZMANN_KJ_PER_MOL_K * samples.temperature_K)
    u_new = samples.reduced_potentials(parameters)
    a, d = samples.observable, samples.du_dparam_kj_mol
    means = mbar.compute_expectations(a.copy(), u_kn=u_new)
    # Centred copies: the covariance is unchanged by the shift, and <A d> - <A><d> of small
    # numbers does not cancel away the digits that large uncentred products would.
    a_c, d_c = a - a.mean(), d - d.mean()
    constant = np.ptp(a) == 0 or np.ptp(d) == 0
    log_denominator = logsumexp(mbar.f_k[:, None] - u_sampled, b=counts[:, None], axis=0)
    trust = dict(trusted=samples.trusted, note=samples.note)
    out = []
    for k, (parameter, u) in enumerate(zip(parameters, u_new)):
        # MBAR weight of frame n at the new state: exp(-u(x_n)) / sum_k N_k exp(f_k - u_k(x_n)).
        log_w = -u - log_denominator
        w = np.exp(log_w - log_w.max())
        ess = float(np.sum(w) ** 2 / np.sum(w**2))
        if constant:  # no fluctuation, no covariance; pymbar cannot take the log of a zero observable
            derivative, derivative_err = 0.0, 0.0
        else:
            derivative, derivative_err = _mbar_covariance_derivative(mbar, a_c, d_c, u, beta)
        out.append(ReweightedPrediction(
            float(parameter),
            Estimate(float(means["mu"][k]), float(means["sigma"][k]), ess, unit, "MBAR", **trust),
            Estimate(derivative, derivative_err, ess, f"{unit} per unit parameter", "MBAR covariance", **trust),
            ess,
        ))
    return out


def _mbar_covariance_derivative(mbar, a_c: np.ndarray, d_c: np.ndarray, u_n: np.ndarray,
                                beta: float) -> tuple[float, float]:
    """-beta Cov(A, dU/dlambda) at the state of reduced potential ``u_n``, and its standard error."""
    observables = np.array([a_c, d_c, a_c * d_c])
    result = mbar.compute_multiple_expectations(observables, u_n, return_theta=True)
    mu, theta = result["mu"], result["Theta"]
    # pymbar's covariance of the three expectations, as it forms their own "sigma" from Theta.
    n = len(mu)
    covariance = theta[:n, :n] + theta[n:, n:] - theta[:n, n:] - theta[n:, :n]
    gradient = np.array([-mu[1], -mu[0], 1.0])  # of <A d> - <A><d> with respect to (<A>, <d>, <A d>)
    variance = float(gradient @ covariance @ gradient)
    # A negative variance means pymbar's covariance failed: a NaN error bar, not a clipped zero.
    stderr = beta * np.sqrt(variance) if variance >= 0 else float("nan")
    return float(-beta * (mu[2] - mu[0] * mu[1])), float(stderr)
