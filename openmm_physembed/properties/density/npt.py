"""NPT density of any (corrected) System, resumable, with per-frame dU/da1 stored.

Published protocol (Hu, Hou, Jiang): 1 ns NPT at 1 fs, density averaged over the last 200 ps;
here with Langevin middle integrator, Monte Carlo barostat at 1 bar, automatic equilibration
detection and the statistical inefficiency from pymbar.timeseries.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ...errors import PropertyError
from ...io import read_json, write_json
from ...simulation.dynamics import Dynamics
from ...simulation.liquid_setup import LiquidSetup
from ...simulation.npt import run_npt_md
from ...simulation.runner import state_recorder
from ...units import density_g_cm3
from ..estimates import Estimate
from .estimators import (
    ProductionWindow,
    fluctuation_derivative,
    mean_estimate,
    production_window,
)


@dataclass(frozen=True)
class NPTProtocol:
    """Defaults are the published protocol: 1 ns at 1 fs, 298.15 K, 1 bar, last 200 ps averaged."""

    dynamics: Dynamics = Dynamics(temperature_K=298.15, pressure_bar=1.0)
    n_steps: int = 1_000_000
    report_interval: int = 100
    average_last_ps: float = 200.0
    minimize: bool = True

    def __post_init__(self):
        if self.dynamics.pressure_bar is None or self.dynamics.thermostat == "verlet":
            raise PropertyError("an NPT protocol needs Dynamics with a pressure_bar and a thermostat")

    @property
    def simulated_ps(self) -> float:
        return self.dynamics.ps(self.n_steps)

    def with_changes(self, n_steps: int | None = None, **dynamics) -> "NPTProtocol":
        """A copy with other ``n_steps`` and/or Dynamics fields (``temperature_K=...``); None keeps a value."""
        return replace(self, n_steps=self.n_steps if n_steps is None else n_steps,
                       dynamics=self.dynamics.with_changes(**dynamics))


@dataclass(frozen=True)
class DensityResult:
    """One NPT run: density estimate plus the per-frame series behind it."""

    density: Estimate  # g/cm3
    temperature_K: float
    pressure_bar: float
    parameters: dict  # global parameter values of the run (e.g. {'a1': 0.6, 'alpha': 0.05})
    window: ProductionWindow
    time_ps: np.ndarray = field(repr=False)
    volume_nm3: np.ndarray = field(repr=False)
    potential_energy_kj_mol: np.ndarray = field(repr=False)
    density_g_cm3: np.ndarray = field(repr=False)
    derivatives_kj_mol: dict = field(repr=False)  # parameter name -> per-frame dU/dparam
    simulated_ps: float = 0.0
    directory: Path | None = None

    def production(self, name: str) -> np.ndarray:
        """Production frames of a stored series (``volume_nm3``, ``density_g_cm3``, ``dU/d<param>``)."""
        series = self.derivatives_kj_mol[name[len("dU/d"):]] if name.startswith("dU/d") else getattr(self, name)
        return np.asarray(series)[self.window.start:]

    def density_derivative(self, parameter: str = "a1") -> Estimate:
        """d<rho>/d(parameter) from this run alone (fluctuation formula), g/cm3 per unit parameter."""
        if parameter not in self.derivatives_kj_mol:
            raise PropertyError(f"this run stored no dU/d{parameter}; was the parameter registered for derivatives?")
        return fluctuation_derivative(self.production("density_g_cm3"), self.production(f"dU/d{parameter}"),
                                      self.temperature_K, unit="g/cm3")


def run_density(
    liquid: LiquidSetup,
    out_dir: str | Path,
    protocol: NPTProtocol = NPTProtocol(),
    *,
    system=None,
    parameters: dict | None = None,
    derivative_parameters: tuple[str, ...] | None = None,
    progress: bool = True,
) -> DensityResult:
    """Run (or resume, or reload) NPT of ``liquid`` and estimate the density.

    Parameters
    ----------
    liquid
        The liquid (any periodic System without a barostat: one is added for the run and removed
        after; a MACE-only System gets a zero-energy bond force so the barostat scales whole molecules).
    system
        A System of ``liquid`` already built in this process (default: ``liquid.system()``).
    parameters
        Global parameter values to set in the Context (e.g. ``{'a1': 0.6}``).
    derivative_parameters
        Parameters whose dU/dparam is stored per frame; default: every parameter the System
        registers for energy derivatives.
    """
    system = liquid.system() if system is None else system
    if not system.usesPeriodicBoundaryConditions():
        raise PropertyError("NPT density needs a periodic System (a liquid box)")
    out_dir = Path(out_dir)
    if derivative_parameters is None:
        derivative_parameters = tuple(_registered_derivatives(system))
    parameters = dict(parameters or {})
    mass = liquid.total_mass_amu
    recorder = state_recorder("npt", protocol.report_interval, ("volume", "potential_energy"),
                              derivative_parameters=derivative_parameters)
    settings = {"protocol": asdict(protocol), "derivatives": list(derivative_parameters)}
    label = ", ".join(f"{k}={v:g}" for k, v in parameters.items())
    records = run_npt_md(liquid, protocol.dynamics, protocol.n_steps, out_dir / "npt", [recorder], settings,
                         system=system, parameters=parameters, minimize_iterations=500 if protocol.minimize else 0,
                         progress=f"NPT {protocol.dynamics.temperature_K:g} K {label}".strip() if progress else None)
    result = density_result_from_records(records["npt"], protocol, parameters, derivative_parameters, mass, out_dir)
    write_json(out_dir / "density.json", {
        "density_g_cm3": result.density.as_dict(), "parameters": parameters,
        "protocol": asdict(protocol), "window": asdict(result.window), "total_mass_amu": mass,
        "derivatives": {p: _derivative_or_none(result, p) for p in derivative_parameters},
    })
    return result


def run_npt(system, topology, positions_nm, out_dir: str | Path, protocol: NPTProtocol = NPTProtocol(),
            box_vectors_nm=None, parameters: dict | None = None, derivative_parameters: tuple[str, ...] | None = None,
            total_mass_amu: float | None = None, progress: bool = True) -> DensityResult:
    """Deprecated: :func:`run_density` of ``LiquidSetup.in_process(system, topology, positions_nm, ...)``."""
    warnings.warn("run_npt(system, topology, positions_nm, ...) is deprecated; use run_density(liquid, out_dir, "
                  "protocol, system=...) with a LiquidSetup (LiquidSetup.in_process wraps a System you hold)",
                  DeprecationWarning, stacklevel=2)
    if not system.usesPeriodicBoundaryConditions():
        raise PropertyError("NPT density needs a periodic System (a liquid box)")
    liquid = LiquidSetup.in_process(system, topology, positions_nm, box_vectors_nm, total_mass_amu)
    return run_density(liquid, out_dir, protocol, system=system, parameters=parameters,
                       derivative_parameters=derivative_parameters, progress=progress)


def density_result_from_records(records, protocol: NPTProtocol, parameters, derivative_parameters, mass_amu,
                                directory=None) -> DensityResult:
    if len(records["step"]) == 0:
        raise PropertyError("the NPT run recorded no frames")
    volume = records["volume_nm3"]
    density = np.array([density_g_cm3(mass_amu, v) for v in volume])
    time_ps = protocol.dynamics.ps(records["step"])
    window_start = int(np.searchsorted(time_ps, time_ps[-1] - protocol.average_last_ps, side="right"))
    window = production_window(density, window_start)
    return DensityResult(
        density=mean_estimate(density, window, "g/cm3", "NPT mean"),
        temperature_K=protocol.dynamics.temperature_K,
        pressure_bar=protocol.dynamics.pressure_bar,
        parameters=dict(parameters),
        window=window,
        time_ps=time_ps,
        volume_nm3=volume,
        potential_energy_kj_mol=records["potential_energy_kj_mol"],
        density_g_cm3=density,
        derivatives_kj_mol={p: records[f"dU_d{p}"] for p in derivative_parameters},
        simulated_ps=protocol.simulated_ps,
        directory=Path(directory) if directory else None,
    )


def _derivative_or_none(result: DensityResult, parameter: str) -> dict | None:
    try:
        return result.density_derivative(parameter).as_dict()
    except PropertyError:  # too few production frames for a fluctuation estimate
        return None


def _registered_derivatives(system) -> list[str]:
    names = []
    for force in system.getForces():
        for getter in ("getNumEnergyParameterDerivatives",):
            if hasattr(force, getter):
                names += [force.getEnergyParameterDerivativeName(i) for i in range(getattr(force, getter)())]
    return sorted(set(names))


def load_density_result(out_dir: str | Path) -> dict:
    return read_json(Path(out_dir) / "density.json")
