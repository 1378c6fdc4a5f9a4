"""Plots of Green-Kubo viscosity results (matplotlib, Agg; each function returns the PNG path).

The functions read the result objects of :mod:`.greenkubo` / :mod:`.viscosity` and never
recompute an estimate. Each is self-contained, so other properties can add their own plots here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...plotting import pyplot as _pyplot
from ...plotting import save_figure as _save


def plot_autocorrelation(curves, path: str | Path, max_time_ps: float | None = None) -> Path:
    """Mean autocorrelation of the shear components (times V/kBT, cP/ps) with its standard error.

    ``curves`` is a :class:`~openmm_physembed.properties.viscosity.greenkubo.GreenKuboCurves`.
    """
    plt = _pyplot()
    t, acf, sem = curves.time_ps, curves.acf_mean_cp_per_ps, curves.acf_sem_cp_per_ps
    keep = t <= (max_time_ps if max_time_ps is not None else t[-1])
    fig, (ax, ax_log) = plt.subplots(1, 2, figsize=(9, 3.5))
    ax.plot(t[keep], acf[keep], color="tab:blue", lw=1)
    ax.fill_between(t[keep], (acf - 2 * sem)[keep], (acf + 2 * sem)[keep], color="tab:blue", alpha=0.2,
                    label="mean ± 2 s.e.")
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_xlabel("t (ps)")
    ax.set_ylabel(r"$\frac{V}{k_BT}\langle P'(0)P'(t)\rangle$ (cP/ps)")
    ax.legend(fontsize=7)
    positive = keep & (t > 0) & (acf > 0)
    ax_log.loglog(t[positive], acf[positive], color="tab:blue", lw=1)
    ax_log.set_xlabel("t (ps)")
    ax_log.set_title("log-log (positive part)", fontsize=8)
    return _save(fig, path)


def plot_running_integral(curves, time_decomposition, path: str | Path, stacie=None,
                          reference_cp: float | None = None, reference_label: str = "reference") -> Path:
    """Running integral eta(t): mean ± spread of the curves, the double-exponential fit, t_cut,
    the time-decomposition and STACIE estimates and an optional reference value."""
    plt = _pyplot()
    td = time_decomposition
    fig, ax = plt.subplots(figsize=(8.5, 4))
    ax.plot(td.time, td.mean, color="tab:blue", lw=1, label=f"mean of {td.n_curves} curves")
    ax.fill_between(td.time, td.mean - td.std, td.mean + td.std, color="tab:blue", alpha=0.15, label="± 1 s.d.")
    grid = np.linspace(0.0, td.time[-1], 400)
    ax.plot(grid, td.fitted(grid), color="tab:red", lw=1.2, label="double-exponential fit")
    ax.axvline(td.cutoff_time, color="tab:red", ls=":", lw=1, label=f"t_cut = {td.cutoff_time:.3g} ps")
    est = td.estimate
    ax.axhspan(est.value - est.stderr, est.value + est.stderr, color="tab:red", alpha=0.15,
               label=f"time decomposition {est.value:.3g} ± {est.stderr:.2g} {est.unit}")
    if stacie is not None:
        s = stacie.estimate
        ax.axhspan(s.value - s.stderr, s.value + s.stderr, color="tab:green", alpha=0.2,
                   label=f"STACIE {s.value:.3g} ± {s.stderr:.2g} {s.unit}")
    if reference_cp is not None:
        ax.axhline(reference_cp, color="k", ls="--", lw=1, label=f"{reference_label} {reference_cp:.3g}")
    # The spread of single curves grows like sqrt(t); keep the mean and the estimates readable.
    upper = np.nanmax([1.3 * np.nanmax(td.mean), 1.6 * (est.value + est.stderr)])
    if np.isfinite(upper) and upper > 0:
        ax.set_ylim(min(0.0, np.nanmin(td.mean)), upper)
    ax.set_xlabel("t (ps)")
    ax.set_ylabel(f"running integral ({est.unit})")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(fig, path)


def plot_stacie_spectrum(stacie, path: str | Path, time_unit_ps: float = 1.0, time_unit_str: str = "ps",
                         acint_unit_str: str = "cP") -> Path:
    """STACIE's spectrum with the fitted model and its cutoff (STACIE's own plotting routine).

    ``stacie`` is a :class:`~openmm_physembed.properties.viscosity.greenkubo.StacieEstimate` whose
    ``result`` is kept; times are in ps unless ``time_unit_ps`` says otherwise.
    """
    from stacie import UnitConfig, plot_fitted_spectrum

    plt = _pyplot()
    uc = UnitConfig(acint_symbol=r"\eta", acint_unit_str=acint_unit_str, acint_fmt=".3g",
                    time_unit=time_unit_ps, time_unit_str=time_unit_str,
                    freq_unit=1.0 / time_unit_ps, freq_unit_str=f"1/{time_unit_str}")
    fig, ax = plt.subplots(figsize=(7, 4))
    plot_fitted_spectrum(ax, uc, stacie.result)
    return _save(fig, path)


def plot_viscosity(result, out_dir: str | Path, reference_cp: float | None = None,
                   reference_label: str = "experiment") -> dict[str, Path]:
    """All three viscosity plots of a :class:`~openmm_physembed.properties.viscosity.workflow.ViscosityResult`."""
    out = Path(out_dir)
    d = result.details
    td = d.time_decomposition
    paths = {"autocorrelation": plot_autocorrelation(
        d.curves, out / "viscosity_acf.png", max_time_ps=3.0 * td.cutoff_time if td is not None else None)}
    if td is not None:
        paths["running_integral"] = plot_running_integral(d.curves, td, out / "viscosity_running_integral.png",
                                                          d.stacie, reference_cp, reference_label)
    if d.stacie is not None:
        paths["stacie_spectrum"] = plot_stacie_spectrum(d.stacie, out / "viscosity_stacie_spectrum.png")
    return paths
