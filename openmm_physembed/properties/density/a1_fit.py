"""Fitting the CSO damping parameter a1 so that NPT density matches experiment.

Two methods:

* :func:`scan_a1` (published): densities at a list of a1 values, run in parallel on any
  Executor, a weighted linear fit rho(a1) and the a1 that hits the target with its uncertainty.
* :func:`fit_a1_reweighting` (fewer simulations): E_CSO is linear in a1, so every NPT run gives
  <rho> and d<rho>/da1 by the fluctuation formula, and MBAR over all runs so far predicts rho(a1)
  and its slope nearby. Newton steps on the MBAR curve choose the next a1; a new simulation is
  run only where the reweighted prediction has too few effective samples (< ``min_effective_samples``)
  or to confirm the final value.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import PropertyError
from ...io import write_json
from ...simulation.liquid_setup import LiquidSetup
from ..estimates import Estimate
from .estimators import ReweightingSamples, mbar_predict
from .npt import DensityResult, NPTProtocol
from .tasks import DensityTask, run_density_task


@dataclass(frozen=True)
class LinearFit:
    slope: Estimate
    intercept: Estimate
    covariance: np.ndarray = field(repr=False)

    def predict(self, x):
        return self.intercept.value + self.slope.value * np.asarray(x, dtype=float)


@dataclass(frozen=True)
class A1FitResult:
    """Outcome of either method; ``runs`` are every NPT simulation it needed, in order."""

    method: str
    a1: Estimate
    target_density_g_cm3: float
    final_density: Estimate | None  # density of a confirming run at the fitted a1 (reweighting)
    runs: tuple[DensityResult, ...] = field(repr=False)
    linear_fit: LinearFit | None = None
    history: tuple[dict, ...] = ()

    @property
    def n_simulations(self) -> int:
        return len(self.runs)

    @property
    def simulated_ps(self) -> float:
        return float(sum(r.simulated_ps for r in self.runs))

    def summary(self) -> dict:
        return {
            "method": self.method, "a1": self.a1.as_dict(), "target_density_g_cm3": self.target_density_g_cm3,
            "final_density": self.final_density.as_dict() if self.final_density else None,
            "n_simulations": self.n_simulations, "simulated_ps": self.simulated_ps,
            "runs": [{"a1": r.parameters.get("a1"), "density": r.density.as_dict()} for r in self.runs],
            "history": list(self.history),
        }


def weighted_linear_fit(x, y: list[Estimate]) -> LinearFit:
    """Weighted least squares y = intercept + slope * x with 1/sigma^2 weights."""
    x = np.asarray(x, dtype=float)
    values = np.array([e.value for e in y])
    sigma = np.array([e.stderr if e.stderr > 0 else np.nan for e in y])
    if np.any(~np.isfinite(sigma)):
        sigma = np.full_like(values, np.nanmean(sigma) if np.any(np.isfinite(sigma)) else 1.0)
    if len(np.unique(x)) < 2:
        raise PropertyError("a linear fit needs densities at two or more distinct a1 values")
    design = np.vstack([np.ones_like(x), x]).T
    weights = 1.0 / sigma**2
    normal = design.T @ (design * weights[:, None])
    covariance = np.linalg.inv(normal)
    intercept, slope = covariance @ (design.T @ (weights * values))
    unit = y[0].unit
    return LinearFit(Estimate(float(slope), float(np.sqrt(covariance[1, 1])), float(len(x)), f"{unit} per a1"),
                     Estimate(float(intercept), float(np.sqrt(covariance[0, 0])), float(len(x)), unit),
                     covariance)


def solve_linear_fit(fit: LinearFit, target: float, target_stderr: float = 0.0) -> Estimate:
    """a1 where the fitted line meets the target, with first-order error propagation."""
    b, m = fit.intercept.value, fit.slope.value
    if m == 0:
        raise PropertyError("density does not depend on a1 in this scan: cannot fit a1")
    a1 = (target - b) / m
    gradient = np.array([-1.0 / m, -(target - b) / m**2])  # d a1 / d(intercept, slope)
    variance = gradient @ fit.covariance @ gradient + (target_stderr / m) ** 2
    return Estimate(float(a1), float(np.sqrt(variance)), float("nan"), "", "linear scan")


def _task(setup: LiquidSetup, protocol: NPTProtocol, out_dir: Path, a1: float, fixed: dict) -> DensityTask:
    return DensityTask(setup, protocol, {**fixed, "a1": float(a1)}, Path(out_dir) / f"a1_{a1:+.5f}")


def scan_a1(setup: LiquidSetup, a1_values, target_density_g_cm3: float, out_dir: str | Path,
            protocol: NPTProtocol = NPTProtocol(), executor: Executor | None = None,
            fixed_parameters: dict | None = None) -> A1FitResult:
    """The published method: NPT at each a1 (in parallel), linear fit, solve for the target."""
    from ...executors import SerialExecutor

    a1_values = [float(a) for a in a1_values]
    tasks = [_task(setup, protocol, out_dir, a, fixed_parameters or {}) for a in a1_values]
    executor = executor or SerialExecutor()
    runs = list(executor.map(run_density_task, tasks))
    fit = weighted_linear_fit(a1_values, [r.density for r in runs])
    a1 = solve_linear_fit(fit, target_density_g_cm3)
    result = A1FitResult("scan", a1, target_density_g_cm3, None, tuple(runs), fit)
    write_json(Path(out_dir) / "scan.json", result.summary())
    return result


def pooled_samples(runs: list[DensityResult], parameter: str = "a1") -> ReweightingSamples:
    """Production frames of each run, thinned to roughly independent samples, pooled for MBAR."""
    rows = []
    for k, run in enumerate(runs):
        stride = max(1, int(np.floor(run.window.g)))
        take = slice(None, None, stride)
        rows.append(dict(
            run=np.full(len(run.production("density_g_cm3")[take]), k),
            u=run.production("potential_energy_kj_mol")[take],
            d=run.production(f"dU/d{parameter}")[take],
            v=run.production("volume_nm3")[take],
            a=run.production("density_g_cm3")[take],
        ))
    temperatures = {r.temperature_K for r in runs}
    pressures = {r.pressure_bar for r in runs}
    if len(temperatures) != 1 or len(pressures) != 1:
        raise PropertyError("reweighting needs runs at one temperature and pressure")
    return ReweightingSamples(
        parameter_of_run=np.array([r.parameters[parameter] for r in runs], dtype=float),
        run_of_frame=np.concatenate([r["run"] for r in rows]).astype(int),
        potential_energy_kj_mol=np.concatenate([r["u"] for r in rows]),
        du_dparam_kj_mol=np.concatenate([r["d"] for r in rows]),
        volume_nm3=np.concatenate([r["v"] for r in rows]),
        observable=np.concatenate([r["a"] for r in rows]),
        temperature_K=temperatures.pop(),
        pressure_bar=pressures.pop(),
        trusted=all(r.window.trusted for r in runs),
        note="; ".join(f"run at {parameter}={r.parameters[parameter]}: {r.window.note}"
                       for r in runs if not r.window.trusted),
    )


def fit_a1_reweighting(setup: LiquidSetup, target_density_g_cm3: float, out_dir: str | Path,
                       a1_initial: float = 1.0, protocol: NPTProtocol = NPTProtocol(),
                       tolerance_g_cm3: float = 0.002, min_effective_samples: float = 50.0,
                       max_simulations: int = 6, max_newton_steps: int = 20, max_step: float = 1.0,
                       fixed_parameters: dict | None = None, executor: Executor | None = None) -> A1FitResult:
    """Newton on the MBAR-reweighted density curve; simulate only where reweighting cannot reach.

    Stops when a confirming simulation at the predicted a1 lies within
    ``tolerance_g_cm3`` (plus two standard errors) of the target. Each Newton step is capped at
    ``max_step`` in a1, so a noisy slope from a short run cannot throw the search far away.
    """
    from ...executors import SerialExecutor

    executor = executor or SerialExecutor()
    out_dir = Path(out_dir)
    runs: list[DensityResult] = []
    history: list[dict] = []

    def simulate(a1: float) -> DensityResult:
        # One directory per simulation index: a killed fit rerun with the same command replays the
        # same deterministic sequence and reloads every finished run.
        index = len(runs)
        task = DensityTask(setup, protocol.with_changes(seed=protocol.dynamics.seed + index),
                           {**(fixed_parameters or {}), "a1": a1}, out_dir / f"run{index:02d}_a1_{a1:+.5f}")
        run = executor.submit(run_density_task, task).result()
        runs.append(run)
        history.append({"event": "simulation", "a1": a1, "density": run.density.value,
                        "stderr": run.density.stderr,
                        "slope_fluctuation": run.density_derivative("a1").value})
        return run

    a1 = float(a1_initial)
    simulate(a1)
    while True:
        samples = pooled_samples(runs)
        next_a1, trusted = a1, True
        for newton_step in range(max_newton_steps):
            prediction = mbar_predict(samples, [next_a1], unit="g/cm3")[0]
            if prediction.effective_samples < min_effective_samples:
                trusted = False
                history.append({"event": "extrapolation refused", "a1": next_a1,
                                "effective_samples": prediction.effective_samples})
                if newton_step > 0:
                    break  # reweighting cannot reach next_a1 with enough samples: simulate there
                # Too few samples even at the a1 just simulated (a short run): stopping here would
                # repeat that same a1. Its own density and slope still point the way, so take
                # one capped step from it and simulate there.
            slope = prediction.derivative.value
            if slope == 0 or not np.isfinite(slope):
                raise PropertyError("the density does not respond to a1 (zero slope): check alpha and the CSO force")
            step = float(np.clip((prediction.observable.value - target_density_g_cm3) / slope,
                                 -max_step, max_step))
            history.append({"event": "newton", "a1": next_a1, "predicted_density": prediction.observable.value,
                            "slope": slope, "effective_samples": prediction.effective_samples})
            next_a1 = next_a1 - step
            if not trusted or abs(step) < 1e-4 * max(1.0, abs(next_a1)):
                break
        if len(runs) >= max_simulations:
            raise PropertyError(
                f"a1 fit did not converge within {max_simulations} simulations (last a1 {next_a1:.4f}); "
                "raise max_simulations, lengthen the runs or loosen the tolerance"
            )
        a1 = float(next_a1)
        confirm = simulate(a1)
        off = abs(confirm.density.value - target_density_g_cm3)
        # A direct simulation decides, however its a1 was reached (trusted curve or a single step).
        if off <= tolerance_g_cm3 + 2 * confirm.density.stderr:
            # The density error maps onto a1 through the local slope, from the MBAR curve of all runs
            # (steadier than the confirming run's own fluctuation estimate).
            slope = mbar_predict(pooled_samples(runs), [a1])[0].derivative.value
            a1_err = confirm.density.stderr / abs(slope) if slope else float("nan")
            result = A1FitResult("reweighting", Estimate(a1, a1_err, float("nan"), "", "MBAR + Newton"),
                                 target_density_g_cm3, confirm.density, tuple(runs), None, tuple(history))
            write_json(out_dir / "fit_reweighting.json", result.summary())
            return result


def correction_from_fit(result: A1FitResult, alpha: float, *, model_path=None, s6: float = 1.0,
                        liquid: str | None = None, temperature_K: float | None = None,
                        pressure_bar: float | None = None, cso_cutoff_nm: float | None = None):
    """The :class:`~openmm_physembed.potentials.correction_choice.CSOCorrection` a fit found, tied to its model.

    ``model_path`` is the MACE model file the fit ran with (``None``: the GAFF base); its sha256 goes
    into the correction, so that ``correction.write(path)`` gives the file ``--correction PATH``
    accepts for that model only. The density reached is the reweighting fit's confirming run, or
    the scan's linear fit at the fitted a1 (``density_from`` says which).

    >>> correction_from_fit(fit, alpha=-0.05, model_path="m.model", liquid="EMC").write("correction.json")  # doctest: +SKIP
    """
    from pathlib import Path

    from ...potentials.correction_choice import CSOCorrection, file_sha256

    if result.final_density is not None:
        density, stderr, source = result.final_density.value, result.final_density.stderr, "confirming NPT run"
    elif result.linear_fit is not None:
        density, stderr, source = float(result.linear_fit.predict(result.a1.value)), None, "linear fit"
    else:  # pragma: no cover - both methods set one of them
        density, stderr, source = None, None, None
    runs = result.runs
    return CSOCorrection(
        alpha=float(alpha), a1=float(result.a1.value), s6=float(s6), source="fit-a1",
        model_sha256=None if model_path is None else file_sha256(model_path),
        model_file=None if model_path is None else Path(model_path).name,
        liquid=liquid,
        temperature_K=temperature_K if temperature_K is not None else (runs[0].temperature_K if runs else None),
        pressure_bar=pressure_bar if pressure_bar is not None else (runs[0].pressure_bar if runs else None),
        target_density_g_cm3=float(result.target_density_g_cm3), density_g_cm3=density,
        density_stderr_g_cm3=stderr, a1_stderr=float(result.a1.stderr), method=result.method, density_from=source,
        cso_cutoff_nm=cso_cutoff_nm,
    )
