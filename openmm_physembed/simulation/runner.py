"""Checkpointed, resumable OpenMM runs that record arrays.

``run_checkpointed`` advances a Simulation to a target step count, saving a binary checkpoint
(positions, velocities, box, integrator RNG) and the recorded arrays at most every
``checkpoint_interval_s`` seconds. Restarted with the same directory it resumes from the last
checkpoint and returns exactly what an uninterrupted run returns; nothing already written is
recomputed. Records are plain ``.npz`` chunks, written before the checkpoint that covers them,
so a run killed at any instant leaves a consistent directory.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from ..errors import SimulationError
from ..io import read_json, save_npz
from ..jobs import JobDirectory

CHECKPOINT_FILE = "checkpoint.npz"
RUN_MANIFEST = "run.json"
Sampler = Callable[[object, object], Mapping[str, np.ndarray]]


class ArrayRecorder:
    """OpenMM reporter that keeps ``sample(simulation, state)`` every ``interval`` steps.

    ``include`` lists what the State must contain (``positions``, ``velocities``, ``forces``,
    ``energy``, ``parameterDerivatives``), as in OpenMM's reporter protocol.
    """

    def __init__(self, name: str, interval: int, sample: Sampler, include: tuple[str, ...] = ("positions",),
                 enforce_periodic_box: bool | None = False):
        if interval < 1:
            raise ValueError("recording interval must be >= 1 step")
        self.name = name
        self.interval = int(interval)
        self.sample = sample
        self.include = list(include)
        self.enforce_periodic_box = enforce_periodic_box
        self.steps: list[int] = []
        self.buffer: dict[str, list[np.ndarray]] = {}

    def describeNextReport(self, simulation):  # noqa: N802 - OpenMM's protocol
        steps = self.interval - simulation.currentStep % self.interval
        return {"steps": steps, "periodic": self.enforce_periodic_box, "include": self.include}

    def report(self, simulation, state):
        self.steps.append(int(simulation.currentStep))
        for key, value in self.sample(simulation, state).items():
            self.buffer.setdefault(key, []).append(np.asarray(value))

    def pop(self) -> dict[str, np.ndarray]:
        out = {key: np.stack(values) for key, values in self.buffer.items()}
        out["step"] = np.asarray(self.steps, dtype=np.int64)
        self.steps, self.buffer = [], {}
        return out


#: What :func:`state_recorder` can keep of each State: field -> (record key, what the State must include).
STATE_FIELDS = {
    "positions": ("positions_nm", "positions"),
    "box": ("box_nm", None),
    "potential_energy": ("potential_energy_kj_mol", "energy"),
    "kinetic_energy": ("kinetic_energy_kj_mol", "energy"),
    "volume": ("volume_nm3", None),
}


def state_sampler(fields, positions_dtype=np.float32, derivative_parameters=()) -> Sampler:
    """``sample(simulation, state)`` keeping the State quantities named in ``fields`` (keys of
    :data:`STATE_FIELDS`) in OpenMM units, plus ``dU_d<name>`` for each of ``derivative_parameters``.

    The one frame sampler of the package: every stage records its frames with it.
    """
    unknown = set(fields) - set(STATE_FIELDS)
    if unknown:
        raise SimulationError(f"unknown State field(s) {sorted(unknown)}; known: {', '.join(STATE_FIELDS)}")
    fields, derivative_parameters = tuple(fields), tuple(derivative_parameters)

    def sample(simulation, state) -> dict[str, np.ndarray]:
        from openmm import unit

        row = {}
        for name in fields:
            if name == "positions":
                row["positions_nm"] = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer).astype(
                    positions_dtype)
            elif name == "box":
                row["box_nm"] = np.asarray(state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer),
                                           dtype=np.float64)
            elif name == "potential_energy":
                row["potential_energy_kj_mol"] = np.float64(
                    state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole))
            elif name == "kinetic_energy":
                row["kinetic_energy_kj_mol"] = np.float64(
                    state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole))
            elif name == "volume":
                row["volume_nm3"] = np.float64(state.getPeriodicBoxVolume().value_in_unit(unit.nanometer**3))
        if derivative_parameters:
            derivatives = state.getEnergyParameterDerivatives()
            for name in derivative_parameters:
                row[f"dU_d{name}"] = np.float64(derivatives[name])
        return row

    return sample


def state_recorder(name: str, interval: int, fields, *, positions_dtype=np.float32, derivative_parameters=(),
                   enforce_periodic_box: bool | None = False) -> ArrayRecorder:
    """An :class:`ArrayRecorder` of :func:`state_sampler`, asking the State for exactly what it needs."""
    include = [STATE_FIELDS[f][1] for f in fields if f in STATE_FIELDS and STATE_FIELDS[f][1]]
    if derivative_parameters:
        include.append("parameterDerivatives")
    return ArrayRecorder(name, interval, state_sampler(fields, positions_dtype, derivative_parameters),
                         tuple(dict.fromkeys(include)), enforce_periodic_box=enforce_periodic_box)


positions_sampler = state_sampler(("positions",))


def run_checkpointed(
    simulation,
    n_steps: int,
    directory: str | Path,
    recorders: list[ArrayRecorder] = (),
    settings: Mapping | None = None,
    checkpoint_interval_s: float = 60.0,
    block_steps: int = 1000,
    progress: str | None = None,
    on_block: Callable[[object], bool] | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Run ``simulation`` until ``n_steps`` total steps, resumably.

    Parameters
    ----------
    simulation
        An ``openmm.app.Simulation`` whose context already holds the starting state. If the
        directory holds a checkpoint, that state replaces it.
    directory
        Where ``checkpoint.npz``, ``run.json`` and ``records/`` live.
    settings
        What defines the run (protocol, system); a restart with other settings is refused.
    on_block
        Called after every block with the simulation; returning True stops the run early
        (after a final checkpoint).
    progress
        tqdm description, or None for no progress bar.

    Returns
    -------
    ``{recorder name: {field: array stacked over all records, 'step': steps}}``.
    """
    directory = Path(directory)
    job = JobDirectory(directory, "MD run", dict(settings or {}), manifest=RUN_MANIFEST, error=SimulationError).open()
    _restore(simulation, directory)
    job.save_state(n_steps=int(n_steps))
    done = int(simulation.currentStep)
    _discard_records_after(directory, done, recorders)
    for recorder in recorders:
        simulation.reporters.append(recorder)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_steps, initial=min(done, n_steps), desc=progress, unit="step", dynamic_ncols=True,
                   mininterval=1.0)
    last_save = time.monotonic()
    stopped = False
    try:
        while simulation.currentStep < n_steps and not stopped:
            step_now = int(simulation.currentStep)
            todo = min(block_steps, n_steps - step_now)
            try:
                simulation.step(todo)
            except Exception as exc:  # OpenMMException and NaN/overflow errors from force plugins
                if type(exc).__name__ not in ("OpenMMException", "RuntimeError"):
                    raise
                raise SimulationError(
                    f"MD in {directory} stopped between steps {step_now} and {step_now + todo}: {str(exc).rstrip('.')}. "
                    f"The last checkpoint is kept; fix the cause and rerun to continue"
                ) from exc
            if bar is not None:
                bar.update(todo)
            if on_block is not None and on_block(simulation):
                stopped = True
            if time.monotonic() - last_save >= checkpoint_interval_s:
                _save(simulation, directory, recorders)
                last_save = time.monotonic()
        if int(simulation.currentStep) != done or not (directory / CHECKPOINT_FILE).is_file():
            _save(simulation, directory, recorders)  # a finished run reloaded stays untouched
        if stopped:
            job.save_state(n_steps=int(n_steps), stopped_early_at=int(simulation.currentStep))
        job.update(finished=True)
    finally:
        if bar is not None:
            bar.close()
        for recorder in recorders:
            if recorder in simulation.reporters:
                simulation.reporters.remove(recorder)
    return {recorder.name: load_records(directory, recorder.name) for recorder in recorders}


def is_complete(directory: str | Path) -> bool:
    """True when ``run_checkpointed`` finished (or was stopped by ``on_block``) in ``directory``."""
    manifest_path = Path(directory) / RUN_MANIFEST
    if not manifest_path.is_file() or not (Path(directory) / CHECKPOINT_FILE).is_file():
        return False
    state = read_json(manifest_path).get("state", {})
    return "stopped_early_at" in state or _checkpoint_step(Path(directory)) >= state.get("n_steps", float("inf"))


def load_records(directory: str | Path, name: str) -> dict[str, np.ndarray]:
    """All records of one recorder, concatenated in step order."""
    files = sorted((Path(directory) / "records" / name).glob("*.npz"))
    parts = [dict(np.load(f)) for f in files]
    parts = [p for p in parts if len(p.get("step", [])) > 0]
    if not parts:
        return {"step": np.zeros(0, dtype=np.int64)}
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _save(simulation, directory: Path, recorders) -> None:
    step = int(simulation.currentStep)
    for recorder in recorders:
        chunk = recorder.pop()
        if len(chunk["step"]):
            save_npz(directory / "records" / recorder.name / f"{step:014d}.npz", **chunk)
    # One file, renamed into place: the binary checkpoint (exact continuation, RNG included)
    # and a portable XML state (binary checkpoints only load on the same platform and hardware).
    state_xml = _state_xml(simulation)
    save_npz(
        directory / CHECKPOINT_FILE,
        checkpoint=np.frombuffer(simulation.context.createCheckpoint(), dtype=np.uint8),
        state_xml=np.array(state_xml),
        step=np.array(step),
    )


def _state_xml(simulation) -> str:
    import openmm

    state = simulation.context.getState(positions=True, velocities=True, parameters=True,
                                        integratorParameters=True)
    return openmm.XmlSerializer.serialize(state)


def _checkpoint_step(directory: Path) -> int:
    path = directory / CHECKPOINT_FILE
    return int(np.load(path)["step"]) if path.is_file() else 0


def _restore(simulation, directory: Path) -> None:
    import openmm

    path = directory / CHECKPOINT_FILE
    if not path.is_file():
        return
    saved = np.load(path)
    try:
        simulation.context.loadCheckpoint(saved["checkpoint"].tobytes())
    except Exception:  # noqa: BLE001 - another platform or GPU: continue from the portable state
        simulation.context.setState(openmm.XmlSerializer.deserialize(str(saved["state_xml"])))
    simulation.currentStep = int(saved["step"])
    simulation.context.setStepCount(simulation.currentStep)


def _discard_records_after(directory: Path, step: int, recorders) -> None:
    for recorder in recorders:
        for path in (directory / "records" / recorder.name).glob("*.npz"):
            if int(path.stem) > step:
                path.unlink()
