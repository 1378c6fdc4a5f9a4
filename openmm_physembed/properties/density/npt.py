"""NPT density of any (corrected) System, resumable, with per-frame dU/da1 stored.

Published protocol (Hu, Hou, Jiang): 1 ns NPT at 1 fs, density averaged over the last 200 ps;
here with Langevin middle integrator, Monte Carlo barostat at 1 bar, automatic equilibration
detection and the statistical inefficiency from pymbar.timeseries.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import PropertyError
from ..io import read_json, write_json
from ..simulation.molecules import add_molecule_definition
from ..simulation.runner import ArrayRecorder, run_checkpointed
from ..simulation.setup import langevin_integrator, make_simulation
from ..units import density_g_cm3
from .density_estimators import ProductionWindow, fluctuation_derivative, mean_estimate, production_window
from .estimates import Estimate


@dataclass(frozen=True)
class NPTProtocol:
    """Defaults are the published protocol."""

    temperature_K: float = 298.15
    pressure_bar: float = 1.0
    timestep_fs: float = 1.0
    n_steps: int = 1_000_000
    report_interval: int = 100
    average_last_ps: float = 200.0
    friction_per_ps: float = 1.0
    barostat_interval: int = 25
    minimize: bool = True
    seed: int = 2024
    platform: str | None = None

    @property
    def simulated_ps(self) -> float:
        return self.n_steps * self.timestep_fs * 1e-3


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


def _npt_sampler(derivative_names):
    def sample(simulation, state):
        row = {
            "volume_nm3": np.float64(state.getPeriodicBoxVolume()._value),
            "potential_energy_kj_mol": np.float64(state.getPotentialEnergy()._value),
        }
        if derivative_names:
            derivatives = state.getEnergyParameterDerivatives()
            for name in derivative_names:
                row[f"dU_d{name}"] = np.float64(derivatives[name])
        return row

    return sample


def run_npt(
    system,
    topology,
    positions_nm,
    out_dir: str | Path,
    protocol: NPTProtocol = NPTProtocol(),
    box_vectors_nm=None,
    parameters: dict | None = None,
    derivative_parameters: tuple[str, ...] | None = None,
    total_mass_amu: float | None = None,
    progress: bool = True,
) -> DensityResult:
    """Run (or resume, or reload) NPT and estimate the density.

    Parameters
    ----------
    system
        Any periodic OpenMM System without a barostat (one is added for the run and removed after). A MACE-only
        System gets a zero-energy bond force so the barostat scales whole molecules.
    parameters
        Global parameter values to set in the Context (e.g. ``{'a1': 0.6}``).
    derivative_parameters
        Parameters whose dU/dparam is stored per frame; default: every parameter the System
        registers for energy derivatives.
    """
    import openmm

    if not system.usesPeriodicBoundaryConditions():
        raise PropertyError("NPT density needs a periodic System (a liquid box)")
    if any(isinstance(f, (openmm.MonteCarloBarostat, openmm.MonteCarloFlexibleBarostat,
                          openmm.MonteCarloAnisotropicBarostat)) for f in system.getForces()):
        raise PropertyError("the System already has a barostat; pass it without one")
    # The barostat (and, for a MACE System, a molecule definition) go into the caller's System for
    # the length of the run only: a Context keeps references to the System's forces, so they may be
    # removed only once the Context is gone.
    added = [f for f in (add_molecule_definition(system, topology),) if f is not None]
    barostat = openmm.MonteCarloBarostat(protocol.pressure_bar, protocol.temperature_K,
                                         protocol.barostat_interval)
    system.addForce(barostat)
    added.append(barostat)
    try:
        return _run_npt_with_barostat(system, topology, positions_nm, Path(out_dir), protocol, box_vectors_nm,
                                      parameters, derivative_parameters, total_mass_amu, progress)
    finally:
        _remove_forces(system, len(added))


def _run_npt_with_barostat(system, topology, positions_nm, out_dir: Path, protocol: NPTProtocol, box_vectors_nm,
                           parameters, derivative_parameters, total_mass_amu, progress) -> DensityResult:
    if derivative_parameters is None:
        derivative_parameters = tuple(_registered_derivatives(system))
    parameters = dict(parameters or {})
    mass = total_mass_amu if total_mass_amu is not None else _system_mass(system)
    integrator = langevin_integrator(protocol.temperature_K, protocol.friction_per_ps, protocol.timestep_fs,
                                     protocol.seed)
    simulation = make_simulation(system, topology, positions_nm, integrator, protocol.platform,
                                 box_vectors_nm=box_vectors_nm)
    for name, value in parameters.items():
        simulation.context.setParameter(name, float(value))
    run_dir = out_dir / "npt"
    if not (run_dir / "checkpoint.npz").is_file():
        if protocol.minimize:
            simulation.minimizeEnergy(maxIterations=500)
        simulation.context.setVelocitiesToTemperature(protocol.temperature_K, protocol.seed)
    recorder = ArrayRecorder("npt", protocol.report_interval, _npt_sampler(derivative_parameters), ("energy",)
                             + (("parameterDerivatives",) if derivative_parameters else ()))
    settings = {"protocol": asdict(protocol), "parameters": parameters, "n_atoms": system.getNumParticles(),
                "derivatives": list(derivative_parameters)}
    label = ", ".join(f"{k}={v:g}" for k, v in parameters.items())
    try:
        records = run_checkpointed(simulation, protocol.n_steps, run_dir, [recorder], settings=settings,
                                   block_steps=min(1000, protocol.n_steps),
                                   progress=f"NPT {protocol.temperature_K:g} K {label}".strip() if progress
                                   else None)["npt"]
    finally:
        del simulation  # frees the Context before the caller's System loses the barostat
    result = density_result_from_records(records, protocol, parameters, derivative_parameters, mass, out_dir)
    write_json(out_dir / "density.json", {
        "density_g_cm3": result.density.as_dict(), "parameters": parameters,
        "protocol": asdict(protocol), "window": asdict(result.window), "total_mass_amu": mass,
        "derivatives": {p: _derivative_or_none(result, p) for p in derivative_parameters},
    })
    return result


def density_result_from_records(records, protocol: NPTProtocol, parameters, derivative_parameters, mass_amu,
                                directory=None) -> DensityResult:
    if len(records["step"]) == 0:
        raise PropertyError("the NPT run recorded no frames")
    volume = records["volume_nm3"]
    density = np.array([density_g_cm3(mass_amu, v) for v in volume])
    time_ps = records["step"] * protocol.timestep_fs * 1e-3
    window_start = int(np.searchsorted(time_ps, time_ps[-1] - protocol.average_last_ps, side="right"))
    window = production_window(density, window_start)
    return DensityResult(
        density=mean_estimate(density, window, "g/cm3", "NPT mean"),
        temperature_K=protocol.temperature_K,
        pressure_bar=protocol.pressure_bar,
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


def _remove_forces(system, count: int) -> None:
    """Remove the last ``count`` forces (the ones run_npt appended)."""
    for _ in range(count):
        system.removeForce(system.getNumForces() - 1)


def _registered_derivatives(system) -> list[str]:
    names = []
    for force in system.getForces():
        for getter in ("getNumEnergyParameterDerivatives",):
            if hasattr(force, getter):
                names += [force.getEnergyParameterDerivativeName(i) for i in range(getattr(force, getter)())]
    return sorted(set(names))


def _system_mass(system) -> float:
    return float(sum(system.getParticleMass(i)._value for i in range(system.getNumParticles())))


def load_density_result(out_dir: str | Path) -> dict:
    return read_json(Path(out_dir) / "density.json")
