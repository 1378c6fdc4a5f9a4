"""The arithmetic of the Table 1 summary: MAE with its uncertainty, the fit's check, the small-box bias.

Pure functions of numbers (tested in tests/test_table1_summary.py against Monte Carlo), plus
``build_summary`` that reads a table1_cpu run directory into summary.json's shape.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def mae_with_error(deviations, stderrs, common_slopes=None, common_stderr: float = 0.0) -> tuple[float, float]:
    """Mean absolute deviation from experiment and its standard error.

    First order in the run errors: MAE = mean |d_i|, d(MAE)/d(d_i) = sign(d_i)/n, so independent
    run errors add as sqrt(sum se_i^2)/n. A parameter shared by every row (a1, fitted once, with
    ``common_stderr``) moves all d_i together by ``slope_i * delta``: its term is
    |mean(sign(d_i) slope_i)| * common_stderr, added in quadrature. Valid while |d_i| is a few
    se_i (the sign is known); near zero the MAE is biased upwards, which the note says.
    """
    d = np.asarray(deviations, dtype=float)
    se = np.asarray(stderrs, dtype=float)
    n = len(d)
    mae = float(np.mean(np.abs(d)))
    variance = float(np.sum(se**2)) / n**2
    if common_slopes is not None and common_stderr:
        slopes = np.asarray(common_slopes, dtype=float)
        variance += float(np.mean(np.sign(d) * slopes)) ** 2 * common_stderr**2
    return mae, math.sqrt(variance)


def percent_change(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    """100 (after/before - 1) with a delta-method error, before and after independent."""
    (b, sb), (a, sa) = before, after
    ratio = a / b
    return 100.0 * (ratio - 1.0), 100.0 * ratio * math.hypot(sa / a if a else 0.0, sb / b)


def difference(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, float]:
    return before[0] - after[0], math.hypot(before[1], after[1])


def fit_confirmed(confirm: tuple[float, float], target: float, tolerance: float = 0.005) -> bool:
    """The issue's test: the confirming run lies within tolerance + 2 standard errors of the target."""
    return abs(confirm[0] - target) <= tolerance + 2.0 * confirm[1]


def bias(small: tuple[float, float], large: tuple[float, float], tolerance: float = 0.005) -> dict:
    """Small-box minus large-box density; bounded when |difference| + 1.96 SE is below the fit tolerance."""
    diff, se = small[0] - large[0], math.hypot(small[1], large[1])
    upper = abs(diff) + 1.96 * se
    return {"small_minus_large_g_cm3": [diff, se], "upper_95_g_cm3": upper, "below_fit_tolerance": upper < tolerance}


# ---- reading a run ---------------------------------------------------------------------------------
def _read(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _density(directory: Path):
    d = _read(directory / "density.json")
    if d is None:
        return None, None
    e = d["density_g_cm3"]
    slope = (d.get("derivatives") or {}).get("a1")
    return [e["value"], e["stderr"], e["n_effective"]], (slope or {}).get("value")


def build_summary(run, rows, fit_row, smallbox_rows, published_mae) -> dict:
    """summary.json from a table1_cpu run directory (``run``: the Orchestrator); missing pieces are None."""
    from table1_cpu import row_tag

    out = run.out
    fit = _read(out / "fit" / "reweighting" / "fit_reweighting.json")
    correction = _read(out / "fit" / "correction.json")
    table, transfer = [], []
    for system, temperature, experiment, published_without, published_with in rows:
        without, _ = _density(run.density_dir("without", system, temperature))
        if (system, temperature) == fit_row:
            final = (fit or {}).get("final_density")
            with_, slope = ([final["value"], final["stderr"], final["n_effective"]] if final else None), None
        else:
            with_, slope = _density(run.density_dir("with", system, temperature))
            transfer.append((experiment, without, with_, slope))
        table.append({"system": system, "temperature_K": temperature, "without": without, "with": with_,
                      "experiment": experiment, "published_without": published_without,
                      "published_with": published_with, "fit_row": (system, temperature) == fit_row,
                      "n_molecules": run.n_molecules(system, experiment)})
    summary = {"machine": "2 CPU cores, no GPU", "rows": table, "published_mae_with_g_cm3": published_mae["with"],
               "published_mae_change_percent": published_mae["change_percent"]}
    if fit and correction:
        confirm = fit.get("final_density")
        summary["fit"] = {"alpha": correction["alpha"], "a1": fit["a1"]["value"], "a1_stderr": fit["a1"]["stderr"],
                          "n_runs": fit["n_simulations"],
                          "confirm": [confirm["value"], confirm["stderr"]] if confirm else None,
                          "target": fit["target_density_g_cm3"],
                          "confirmed": fit_confirmed((confirm["value"], confirm["stderr"]),
                                                     fit["target_density_g_cm3"]) if confirm else None}
    complete = [t for t in transfer if t[1] and t[2]]
    if complete:
        without = mae_with_error([w[0] - e for e, w, _, _ in complete], [w[1] for _, w, _, _ in complete])
        slopes = [s if s is not None else 0.0 for *_, s in complete]
        a1_se = summary.get("fit", {}).get("a1_stderr", 0.0)
        with_ = mae_with_error([c[0] - e for e, _, c, _ in complete], [c[1] for _, _, c, _ in complete],
                               slopes, a1_se)
        summary.update(mae_without=list(without), mae_with=list(with_),
                       mae_difference=list(difference(without, with_)),
                       mae_change_percent=list(percent_change(without, with_)),
                       mae_rows=[f"{t['system']} {t['temperature_K']:g} K" for t in table if not t["fit_row"]
                                 and t["without"] and t["with"]],
                       mae_missing_rows=[f"{t['system']} {t['temperature_K']:g} K" for t in table
                                         if not t["fit_row"] and not (t["without"] and t["with"])])
    model = _read(out / "model" / "seed_0" / "result.json")
    if model:
        summary["model"] = {k: model.get(k) for k in (
            "preset", "n_epochs", "valid_energy_rmse_mev_per_atom", "valid_forces_rmse_mev_per_angstrom",
            "valid_stress_rmse_mev_per_angstrom3", "train_forces_rmse_mev_per_angstrom", "options")}
    sizing = _read(run.results / "sizing.json")
    if sizing:
        summary["sizing"] = sizing["rows"]
    smallbox = {}
    for system, temperature in smallbox_rows:
        base = out / "smallbox" / row_tag(system, temperature)
        small, _ = _density(Path(f"{base}_small"))
        large, _ = _density(Path(f"{base}_large"))
        if small and large:
            smallbox[f"{system} {temperature:g} K"] = {"small": small, "large": large,
                                                      **bias(tuple(small[:2]), tuple(large[:2]))}
    summary["smallbox"] = smallbox or None
    hmr = _read(run.results / "hmr_check.json")
    summary["hmr"] = None if hmr is None else [b.get("comparison", {}).get("verdict") for b in hmr.get("boxes", {}).values()]
    fig5 = _read(out / "fig5" / "volume_scan.json")
    summary["fig5"] = None if fig5 is None else {
        k: fig5.get(k) for k in ("force_rmse_mev_per_angstrom", "force_rmse_change_mev_per_angstrom", "correction")}
    viscosity = {}
    for label in ("without", "with"):
        v = _read(out / "viscosity" / label / "viscosity.json")
        if v:
            viscosity[label] = v["viscosity_cP"]
    summary["viscosity_emc_298K"] = viscosity or None
    summary["wall_time_s"] = {stage: entry.get("wall_time_s") for stage, entry in run.state.items()}
    return summary
