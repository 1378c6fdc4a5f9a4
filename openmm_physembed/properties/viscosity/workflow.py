"""Green-Kubo shear viscosity of any periodic OpenMM System, resumable, on any Executor.

Published workflow (Hu, Hou & Jiang): equilibrate the liquid by 1 ns NPT, take three random
configurations from that trajectory, run 5 ns NVT from each, and integrate the autocorrelation
of the pressure tensor. Here:

1. :func:`run_npt_frames` (or any source of positions + box vectors, e.g. the frames of
   :func:`openmm_physembed.sampling.reference_md.run_liquid_npt`) gives equilibrated states;
2. :func:`run_viscosity` draws ``n_replicas`` of them and runs one NVT job per state through an
   Executor (:func:`run_viscosity_replica`); a :class:`PressureTensorReporter` samples the
   pressure tensor every ``sample_interval`` steps and :func:`run_checkpointed` streams it to disk;
3. :func:`analyze_viscosity` turns the stored series into two estimates in cP, STACIE and time
   decomposition (:mod:`.greenkubo`), written to ``viscosity.json``.

The thermostat defaults to Nose-Hoover (deterministic, no stochastic damping of momentum
correlations; LAMMPS' ``fix nvt``, which the paper's MACE runs used, is the same family).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ...errors import PropertyError
from ...io import write_json
from ...simulation.dynamics import Dynamics
from ...simulation.engine import MDEngine
from ...simulation.liquid_setup import LiquidSetup
from ...simulation.npt import run_npt_md
from ...simulation.runner import CHECKPOINT_FILE, ArrayRecorder, state_recorder
from ...units import BAR_IN_KJ_PER_MOL_NM3, BOLTZMANN_KJ_PER_MOL_K
from ..estimates import Estimate
from .greenkubo import (
    GreenKuboCurves,
    PressureSeries,
    StacieEstimate,
    TimeDecomposition,
    viscosity_curves,
    viscosity_stacie,
    viscosity_time_decomposition,
)
from .pressure import (
    PressureTensorProvider,
    create_pressure_provider,
    energy_discontinuities,
    tensor_to_voigt,
)


@dataclass(frozen=True)
class ViscosityProtocol:
    """NVT production runs; defaults are the published protocol (3 x 5 ns at 1 fs).

    The thermostat defaults to Nose-Hoover (``dynamics.friction_per_ps`` is its collision
    frequency); ``dynamics.pressure_bar`` must stay None (constant volume).
    """

    dynamics: Dynamics = Dynamics(temperature_K=298.15, thermostat="nose-hoover")
    n_steps: int = 5_000_000  # production steps per replica
    equilibration_steps: int = 10_000  # NVT steps before sampling (new velocities, same box)
    sample_interval: int = 5  # steps between pressure-tensor samples
    n_replicas: int = 3
    pressure_provider: str = "auto"  # exact MACE virial when there is MACE, else finite differences
    pressure_options: dict = field(default_factory=dict)
    checkpoint_interval_s: float = 60.0

    def __post_init__(self):
        if self.dynamics.pressure_bar is not None:
            raise PropertyError("Green-Kubo runs are NVT: give Dynamics without pressure_bar")
        if self.sample_interval < 1 or self.n_steps < self.sample_interval or self.n_replicas < 1:
            raise PropertyError("need sample_interval >= 1, n_steps >= sample_interval and n_replicas >= 1")

    @property
    def sample_interval_ps(self) -> float:
        return self.dynamics.ps(self.sample_interval)

    @property
    def production_ps(self) -> float:
        return self.dynamics.ps(self.n_steps)


@dataclass(frozen=True)
class GreenKuboAnalysis:
    """How the stored pressure series become estimates (see :mod:`.greenkubo`)."""

    stacie_model: str = "lorentz"
    # Time-decomposition segments (None: shortest run / n_segments). Each curve's spread grows like
    # sqrt(t / segment), so the 40% cutoff lands near segment/20: 10 segments of a 5 ns run put it
    # near 25 ps, past the plateau of liquids around 1 cP, and still give 150 curves from 3 runs.
    segment_ps: float | None = None
    n_segments: int = 10
    max_lag_ps: float | None = None  # running-integral length; None: half a segment
    std_fraction: float = 0.4  # time-decomposition cutoff: spread > this fraction of the mean
    n_bootstrap: int = 300
    discard_ps: float = 0.0  # production time dropped at the start of each replica
    seed: int = 0


class PressureTensorReporter(ArrayRecorder):
    """OpenMM reporter: the pressure tensor (bar) every ``interval`` steps, for :func:`run_checkpointed`.

    Records per sample: ``pressure_bar`` (xx, yy, zz, xy, xz, yz), ``kinetic_energy_kj_mol`` (from
    the same velocities), ``pressure_seconds`` (cost of the provider call) and ``wall_s``
    (monotonic clock), so the sampling cost can be reported from the records alone.
    """

    def __init__(self, provider: PressureTensorProvider, interval: int, name: str = "pressure"):
        self.provider = provider
        super().__init__(name, interval, self._sample, include=tuple(provider.state_include))

    def _sample(self, simulation, state) -> dict[str, np.ndarray]:
        from openmm import unit

        start = time.monotonic()
        kinetic = self.provider.kinetic_bar(simulation.context, state)
        tensor = self.provider.virial_bar(simulation.context, state)
        if self.provider.include_kinetic:
            tensor = tensor + kinetic
        elapsed = time.monotonic() - start
        volume = state.getPeriodicBoxVolume().value_in_unit(unit.nanometer**3)
        return {
            "pressure_bar": tensor_to_voigt(tensor),
            "kinetic_energy_kj_mol": np.float64(0.5 * np.trace(kinetic) * volume * BAR_IN_KJ_PER_MOL_NM3),
            "pressure_seconds": np.float64(elapsed),
            "wall_s": np.float64(start),
        }


def sampling_cost_fraction(records: dict) -> float:
    """Share of wall time spent in the pressure tensor: median call / median interval between samples."""
    seconds = np.asarray(records.get("pressure_seconds", []), dtype=float)
    wall = np.asarray(records.get("wall_s", []), dtype=float)
    if len(wall) < 3:
        return float("nan")
    intervals = np.diff(wall)
    intervals = intervals[intervals > 0]
    return float(np.median(seconds) / np.median(intervals)) if len(intervals) else float("nan")


@dataclass(frozen=True)
class ReplicaRun:
    """One NVT replica: its pressure series and what is worth reporting about it."""

    replica: int
    frame_index: int
    series: PressureSeries = field(repr=False)
    mean_temperature_K: float
    sampling_cost_fraction: float
    mean_pressure_bar: tuple[float, ...]  # xx, yy, zz, xy, xz, yz over the production samples
    directory: Path | None = None

    def summary(self) -> dict:
        return {"replica": self.replica, "frame_index": self.frame_index, "volume_nm3": self.series.volume_nm3,
                "n_samples": len(self.series.pressure_bar), "duration_ps": self.series.duration_ps,
                "mean_temperature_K": self.mean_temperature_K,
                "sampling_cost_fraction": self.sampling_cost_fraction,
                "mean_pressure_bar": list(self.mean_pressure_bar)}


@dataclass(frozen=True)
class ViscosityTask:
    """A self-contained NVT replica job (pickles for process pools and Dask)."""

    setup: LiquidSetup
    positions_nm: np.ndarray = field(repr=False)
    box_vectors_nm: np.ndarray
    protocol: ViscosityProtocol
    out_dir: Path
    replica: int = 0
    frame_index: int = -1
    parameters: dict = field(default_factory=dict)
    discard_ps: float = 0.0
    progress: bool = False


def _degrees_of_freedom(system) -> int:
    import openmm

    removes_com = any(isinstance(f, openmm.CMMotionRemover) for f in system.getForces())
    return 3 * system.getNumParticles() - (3 if removes_com else 0)


def run_viscosity_replica(task: ViscosityTask) -> ReplicaRun:
    """Worker entry point: equilibrate, then sample the pressure tensor in NVT (resumable)."""
    protocol = task.protocol
    system = task.setup.system()
    provider = create_pressure_provider(protocol.pressure_provider, **dict(protocol.pressure_options))
    provider.prepare_system(system)
    out = Path(task.out_dir)
    equilibration_dir, production_dir = out / "equilibration", out / "production"
    settings = {"protocol": asdict(protocol), "replica": task.replica, "frame_index": task.frame_index,
                "provider": provider.describe(),
                "box_nm": np.asarray(task.box_vectors_nm, dtype=float).round(8).tolist()}
    label = f"replica {task.replica}"
    with MDEngine(system, task.setup.topology, task.positions_nm, protocol.dynamics,
                  box_vectors_nm=task.box_vectors_nm, parameters=task.parameters,
                  seed=protocol.dynamics.seed + 1000 * task.replica) as md:
        md.start([equilibration_dir, production_dir])
        if protocol.equilibration_steps > 0 and not (production_dir / CHECKPOINT_FILE).is_file():
            md.run(protocol.equilibration_steps, equilibration_dir, [], settings,
                   checkpoint_interval_s=protocol.checkpoint_interval_s,
                   progress=f"NVT equilibration {label}" if task.progress else None)
        reporter = PressureTensorReporter(provider, protocol.sample_interval)
        records = md.run(protocol.n_steps, production_dir, [reporter], settings, restart_step_count=True,
                         checkpoint_interval_s=protocol.checkpoint_interval_s,
                         block_steps=max(protocol.sample_interval,
                                         (1000 // protocol.sample_interval) * protocol.sample_interval),
                         progress=f"NVT Green-Kubo {label}" if task.progress else None)["pressure"]
    return replica_from_records(records, protocol, task, system)


def replica_from_records(records: dict, protocol: ViscosityProtocol, task: ViscosityTask, system=None) -> ReplicaRun:
    if len(records.get("step", [])) == 0:
        raise PropertyError(f"replica {task.replica} recorded no pressure samples in {task.out_dir}")
    box = np.asarray(task.box_vectors_nm, dtype=float)
    volume = float(abs(np.linalg.det(box)))
    skip = int(round(task.discard_ps / protocol.sample_interval_ps))
    pressure = np.asarray(records["pressure_bar"], dtype=float)[skip:]
    kinetic = np.asarray(records["kinetic_energy_kj_mol"], dtype=float)[skip:]
    if len(pressure) < 64:
        raise PropertyError(f"replica {task.replica} has only {len(pressure)} samples after discarding "
                            f"{task.discard_ps} ps; run longer")
    n_dof = _degrees_of_freedom(system) if system is not None else 3 * len(task.positions_nm)
    temperature = float(np.mean(2.0 * kinetic / (n_dof * BOLTZMANN_KJ_PER_MOL_K)))
    series = PressureSeries(pressure, protocol.sample_interval_ps, volume, protocol.dynamics.temperature_K)
    run = ReplicaRun(task.replica, task.frame_index, series, temperature, sampling_cost_fraction(records),
                     tuple(float(v) for v in pressure.mean(axis=0)), Path(task.out_dir))
    write_json(Path(task.out_dir) / "replica.json", run.summary())
    return run


@dataclass(frozen=True)
class ViscosityEstimates:
    """Both estimators on one set of pressure series (what :func:`analyze_viscosity` returns).

    An estimator that cannot work with the data (too short for a spectrum fit, too noisy for the
    time-decomposition window) is None, with the reason in ``failures``; the other one still counts.
    """

    stacie: StacieEstimate | None
    time_decomposition: TimeDecomposition | None
    curves: GreenKuboCurves = field(repr=False)
    failures: tuple[str, ...] = ()


def analyze_viscosity(series: list[PressureSeries], analysis: GreenKuboAnalysis = GreenKuboAnalysis()
                      ) -> ViscosityEstimates:
    """STACIE and time-decomposition viscosities (cP) from NVT pressure series (pure, no MD).

    Raises :class:`PropertyError` only when neither estimator can be made.
    """
    curves = viscosity_curves(series, analysis.segment_ps, analysis.max_lag_ps, analysis.n_segments)
    failures = []
    try:
        stacie = viscosity_stacie(series, analysis.stacie_model)
    except PropertyError as exc:
        stacie, failures = None, failures + [f"STACIE: {exc}"]
    try:
        td = viscosity_time_decomposition(curves, analysis.std_fraction, analysis.n_bootstrap, analysis.seed)
    except PropertyError as exc:
        td, failures = None, failures + [f"time decomposition: {exc}"]
    if stacie is None and td is None:
        raise PropertyError("no viscosity estimate could be made; " + "; ".join(failures))
    return ViscosityEstimates(stacie, td, curves, tuple(failures))


def _estimate_or_nan(details, method: str) -> Estimate:
    if details is None:
        return Estimate(float("nan"), float("nan"), float("nan"), "cP", f"{method} (failed)")
    return details.estimate


@dataclass(frozen=True)
class ViscosityResult:
    """Shear viscosity in cP by two estimators, with the runs behind it."""

    stacie: Estimate
    time_decomposition: Estimate
    temperature_K: float
    volume_nm3: float  # mean over replicas
    production_ps: float  # per replica, after discarding
    sample_interval_fs: float
    replicas: tuple[ReplicaRun, ...] = field(repr=False)
    details: ViscosityEstimates = field(repr=False)
    warnings: tuple[str, ...] = ()
    directory: Path | None = None

    @property
    def sampling_cost_fraction(self) -> float:
        return float(np.nanmean([r.sampling_cost_fraction for r in self.replicas]))

    def as_dict(self) -> dict:
        stacie, td = self.details.stacie, self.details.time_decomposition
        return {
            "viscosity_cP": {"stacie": self.stacie.as_dict(), "time_decomposition": self.time_decomposition.as_dict()},
            "temperature_K": self.temperature_K, "volume_nm3": self.volume_nm3,
            "production_ps_per_replica": self.production_ps, "sample_interval_fs": self.sample_interval_fs,
            "sampling_cost_fraction": self.sampling_cost_fraction,
            "stacie": None if stacie is None else {
                "model": stacie.model, "n_sequences": stacie.n_sequences,
                "corrtime_exp_ps": stacie.corrtime_exp, "corrtime_exp_std_ps": stacie.corrtime_exp_std,
                "cutoff_frequency_per_ps": stacie.cutoff_frequency,
                "recommended_simulation_time_ps": stacie.recommended_simulation_time,
                "recommended_block_time_ps": stacie.recommended_block_time},
            "time_decomposition": None if td is None else {
                "n_curves": td.n_curves, "segment_ps": self.details.curves.segment_ps,
                "cutoff_time_ps": td.cutoff_time, "power_b": td.power_b, "std_fraction": td.std_fraction,
                "fit_A_alpha_tau1_tau2": list(td.parameters)},
            "failures": list(self.details.failures),
            "replicas": [r.summary() for r in self.replicas],
            "warnings": list(self.warnings),
        }


def choose_start_frames(n_frames: int, n_replicas: int, seed: int) -> list[int]:
    """Distinct random frame indices (with replacement only when there are fewer frames than replicas)."""
    if n_frames < 1:
        raise PropertyError("no frames to start the NVT runs from")
    rng = np.random.default_rng(seed)
    return [int(i) for i in rng.choice(n_frames, size=n_replicas, replace=n_frames < n_replicas)]


def _frames(positions_nm, box_vectors_nm, n_atoms: int):
    positions = np.asarray(positions_nm, dtype=float)
    boxes = np.asarray(box_vectors_nm, dtype=float)
    if positions.ndim == 2:
        positions = positions[None]
    if boxes.ndim == 2:
        boxes = np.broadcast_to(boxes, (len(positions), 3, 3))
    if positions.shape[1:] != (n_atoms, 3) or boxes.shape != (len(positions), 3, 3):
        raise PropertyError(f"frames must be positions (n_frames, {n_atoms}, 3) nm and boxes (n_frames, 3, 3) nm; "
                            f"got {positions.shape} and {boxes.shape}")
    return positions, boxes


def run_viscosity(setup: LiquidSetup, positions_nm, box_vectors_nm, out_dir: str | Path,
                  protocol: ViscosityProtocol = ViscosityProtocol(),
                  analysis: GreenKuboAnalysis = GreenKuboAnalysis(), executor=None,
                  parameters: dict | None = None, progress: bool = True) -> ViscosityResult:
    """Run (or resume, or reload) the NVT replicas and estimate the shear viscosity.

    Parameters
    ----------
    setup
        The System (no constraints, no barostat), topology and masses; see :class:`LiquidSetup`.
    positions_nm, box_vectors_nm
        Equilibrated states to start from: ``(n_frames, n_atoms, 3)`` and ``(n_frames, 3, 3)``,
        or a single state (then every replica starts there with its own velocities).
    executor
        Any ``concurrent.futures.Executor`` (one job per replica); None runs them here.
    parameters
        Global parameter values to set in each Context (e.g. ``{'alpha': 0.05, 'a1': 0.6}``).
    """
    from ...executors import SerialExecutor

    positions, boxes = _frames(positions_nm, box_vectors_nm, len(setup.positions_nm))
    out = Path(out_dir)
    frames = choose_start_frames(len(positions), protocol.n_replicas, protocol.dynamics.seed)
    tasks = [ViscosityTask(setup, positions[f], boxes[f], protocol, out / f"replica_{r}", r, f,
                           dict(parameters or {}), analysis.discard_ps, progress)
             for r, f in enumerate(frames)]
    executor = executor or SerialExecutor()
    futures = [executor.submit(run_viscosity_replica, task) for task in tasks]
    replicas = tuple(future.result() for future in futures)
    from ...simulation.system_xml import deserialize_system

    # The XML alone (no MACE model load) is enough to find truncated cutoffs.
    classical = deserialize_system(setup.system_xml)
    result = viscosity_result(replicas, protocol, analysis, warnings=tuple(energy_discontinuities(classical)),
                              directory=out)
    write_json(out / "viscosity.json", {**result.as_dict(), "protocol": asdict(protocol),
                                        "analysis": asdict(analysis), "parameters": dict(parameters or {}),
                                        "start_frames": frames, "label": setup.label})
    return result


def viscosity_result(replicas: tuple[ReplicaRun, ...], protocol: ViscosityProtocol,
                     analysis: GreenKuboAnalysis = GreenKuboAnalysis(), warnings: tuple[str, ...] = (),
                     directory: Path | None = None) -> ViscosityResult:
    series = [r.series for r in replicas]
    details = analyze_viscosity(series, analysis)
    return ViscosityResult(
        stacie=_estimate_or_nan(details.stacie, "STACIE"),
        time_decomposition=_estimate_or_nan(details.time_decomposition, "time decomposition"),
        temperature_K=protocol.dynamics.temperature_K,
        volume_nm3=float(np.mean([s.volume_nm3 for s in series])),
        production_ps=float(min(s.duration_ps for s in series)),
        sample_interval_fs=protocol.sample_interval * protocol.dynamics.timestep_fs,
        replicas=tuple(replicas),
        details=details,
        warnings=warnings,
        directory=directory,
    )


def run_npt_frames(setup: LiquidSetup, out_dir: str | Path, protocol=None, frame_interval: int = 1000,
                   last_ps: float | None = None, parameters: dict | None = None, progress: bool = True):
    """NPT equilibration that keeps frames: ``(positions_nm, box_vectors_nm)`` of the last ``last_ps``.

    ``protocol`` is a :class:`~openmm_physembed.properties.density.NPTProtocol` (default: the
    published 1 ns at 1 fs, 298.15 K, 1 bar); ``last_ps`` defaults to its averaging window.
    """
    from ..density import NPTProtocol

    protocol = protocol or NPTProtocol()
    recorder = state_recorder("frames", frame_interval, ("positions", "box"), positions_dtype=np.float64,
                              enforce_periodic_box=True)
    run_dir = Path(out_dir) / "npt"
    records = run_npt_md(setup, protocol.dynamics, protocol.n_steps, run_dir, [recorder],
                         {"protocol": asdict(protocol), "frame_interval": frame_interval, "label": setup.label},
                         parameters=parameters, minimize_iterations=500 if protocol.minimize else 0,
                         progress="NPT equilibration" if progress else None)["frames"]
    if len(records["step"]) == 0:
        raise PropertyError(f"the NPT run in {run_dir} recorded no frames; lower frame_interval")
    time_ps = protocol.dynamics.ps(records["step"])
    window = protocol.average_last_ps if last_ps is None else last_ps
    keep = time_ps >= time_ps[-1] - window
    return records["positions_nm"][keep], records["box_nm"][keep]
