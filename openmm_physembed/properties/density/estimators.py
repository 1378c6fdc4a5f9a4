"""Pure estimators for NPT density and its dependence on a linear energy parameter.

All functions take numpy arrays and return :class:`Estimate` objects or arrays; none runs MD.
The parameter (``a1`` of the CSO correction) enters the energy linearly,
U(x; a1) = U(x; a1_run) + (a1 - a1_run) * dU/da1(x), which is what makes the fluctuation
derivative and exact MBAR reweighting possible from stored per-frame dU/da1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import PropertyError
from ..units import BAR_IN_KJ_PER_MOL_NM3, BOLTZMANN_KJ_PER_MOL_K
from .estimates import Estimate
from .pymbar_quiet import quiet_pymbar

quiet_pymbar()


@dataclass(frozen=True)
class ProductionWindow:
    """Which frames of a series are averaged: from ``start`` on, statistical inefficiency ``g``.

    ``equilibrated`` is False when pymbar places the end of equilibration so late that less than
    half of the requested averaging window would remain; the window is then kept as requested
    and the run should be lengthened.
    """

    start: int
    n_frames: int
    g: float
    equilibration_index: int
    equilibrated: bool = True

    @property
    def n_effective(self) -> float:
        return self.n_frames / self.g


def production_window(series: np.ndarray, window_start: int = 0) -> ProductionWindow:
    """Frames to average: from ``window_start`` (e.g. the last 200 ps), later if not yet equilibrated.

    Equilibration detection is pymbar's ``detect_equilibration`` (Chodera, JCTC 2016, 12, 1799),
    which maximises the effective number of uncorrelated samples after t0. On short stationary
    series it can pick a late t0 by chance; a t0 that would leave less than half of the window
    is reported (``equilibrated=False``) rather than used.
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
    return ProductionWindow(start, len(tail), _statistical_inefficiency(tail), t0, equilibrated)


def _statistical_inefficiency(x: np.ndarray, y: np.ndarray | None = None) -> float:
    from pymbar import timeseries

    if np.ptp(x) == 0:
        return 1.0
    try:
        return float(max(1.0, timeseries.statistical_inefficiency(x, y, mintime=3)))
    except Exception:  # noqa: BLE001 - pymbar raises on degenerate series; treat as uncorrelated
        return 1.0


def mean_estimate(series: np.ndarray, window: ProductionWindow, unit: str, method: str = "") -> Estimate:
    tail = np.asarray(series, dtype=float)[window.start:]
    stderr = float(tail.std(ddof=1) / np.sqrt(max(window.n_effective, 1.0))) if len(tail) > 1 else float("nan")
    return Estimate(float(tail.mean()), stderr, float(window.n_effective), unit, method)


def fluctuation_derivative(observable: np.ndarray, du_dlambda_kj_mol: np.ndarray, temperature_K: float,
                           unit: str = "", n_bootstrap: int = 200, seed: int = 0) -> Estimate:
    """d<A>/d(lambda) from one NPT run, for a parameter that enters the energy linearly.

    d<A>/dlambda = -beta ( <A dU/dlambda> - <A><dU/dlambda> )

    The standard error comes from a moving-block bootstrap with blocks of one statistical
    inefficiency of the product series, so correlation in time is respected.
    """
    a = np.asarray(observable, dtype=float)
    d = np.asarray(du_dlambda_kj_mol, dtype=float)
    if a.shape != d.shape or len(a) < 10:
        raise PropertyError("observable and dU/dlambda must be equal-length series of >= 10 frames")
    beta = 1.0 / (BOLTZMANN_KJ_PER_MOL_K * temperature_K)

    def covariance_derivative(x, y):
        return -beta * (np.mean(x * y) - x.mean() * y.mean())

    value = covariance_derivative(a, d)
    g = max(_statistical_inefficiency(a), _statistical_inefficiency(d),
            _statistical_inefficiency((a - a.mean()) * (d - d.mean())))
    block = max(1, int(np.ceil(g)))
    n = len(a)
    n_blocks = int(np.ceil(n / block))
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(n_bootstrap):
        starts = rng.integers(0, n - block + 1, size=n_blocks)
        index = (starts[:, None] + np.arange(block)[None, :]).ravel()[:n]
        samples.append(covariance_derivative(a[index], d[index]))
    return Estimate(float(value), float(np.std(samples, ddof=1)), n / g, unit, "fluctuation")


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

    pymbar solves for the free energies f_k of the sampled states; every (decorrelated) frame
    is then reweighted to each requested parameter value. The Kish effective sample size
    (sum w)^2 / sum w^2 says how much data supports a prediction, and sets its standard error
    sqrt(Var_w(A) / ESS).
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
    f_k = mbar.f_k
    log_denominator = logsumexp(f_k[:, None] - u_sampled, b=counts[:, None], axis=0)
    beta = 1.0 / (BOLTZMANN_KJ_PER_MOL_K * samples.temperature_K)
    u_new = samples.reduced_potentials(parameters)
    a, d = samples.observable, samples.du_dparam_kj_mol
    out = []
    for parameter, u in zip(parameters, u_new):
        # MBAR weight of frame n at the new state: exp(-u(x_n)) / sum_k N_k exp(f_k - u_k(x_n)).
        log_w = -u - log_denominator
        w = np.exp(log_w - log_w.max())
        w /= w.sum()
        ess = float(1.0 / np.sum(w**2))
        mean_a, mean_d = float(np.sum(w * a)), float(np.sum(w * d))
        mean_err = float(np.sqrt(np.sum(w * (a - mean_a) ** 2) / max(ess, 1.0)))
        centred = (a - mean_a) * (d - mean_d)
        derivative = -beta * float(np.sum(w * centred))
        derivative_err = beta * float(np.sqrt(np.sum(w * (centred - np.sum(w * centred)) ** 2) / max(ess, 1.0)))
        out.append(ReweightedPrediction(
            float(parameter),
            Estimate(mean_a, mean_err, ess, unit, "MBAR"),
            Estimate(derivative, derivative_err, ess, f"{unit} per unit parameter", "MBAR covariance"),
            ess,
        ))
    return out
