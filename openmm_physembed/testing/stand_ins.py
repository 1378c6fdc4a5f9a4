"""Exact stand-ins for expensive runs, so fits can be tested against known answers."""

from __future__ import annotations


def linear_response_density_run(task, *, temperature_K: float = 300.0, n_frames: int = 400):
    """An exact linear-response stand-in for an NPT density run (for a1-fit tests without MD).

    dU/da1 ~ N(mu0 - beta sigma^2 a1, sigma^2) is the Gaussian tilted by exp(-beta a1 dU/da1), and
    rho = 1.0 - 5e-4 (dU/da1 - mu0), so d<rho>/da1 = 5e-4 beta sigma^2 (0.02 at 300 K) exactly.
    Replaces ``a1_fit.run_density_task`` (bind ``temperature_K`` with functools.partial).
    """
    import numpy as np

    from ..properties.density.estimators import ProductionWindow
    from ..properties.density.npt import DensityResult
    from ..properties.estimates import Estimate

    a1 = task.parameters["a1"]
    beta = 1.0 / (0.0083144626 * temperature_K)
    sigma, mu0 = 10.0, -50.0
    rng = np.random.default_rng(int(1000 * a1) % 2**32)
    du = rng.normal(mu0 - beta * sigma**2 * a1, sigma, n_frames)
    rho = 1.0 - 5e-4 * (du - mu0)
    return DensityResult(
        Estimate(float(rho.mean()), float(rho.std(ddof=1) / np.sqrt(n_frames)), n_frames, "g/cm3"),
        temperature_K, 1.0, dict(task.parameters), ProductionWindow(0, n_frames, 1.0, 0, True),
        np.arange(n_frames) * 0.1, np.full(n_frames, 30.0), a1 * du, rho, {"a1": du}, 40.0, task.out_dir)
