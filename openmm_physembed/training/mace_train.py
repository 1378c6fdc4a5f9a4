"""Train MACE models with mace-torch's own ``mace_run_train`` (run as a subprocess).

One run directory per seed, ``OUT/seed_<k>/``, which is mace-torch's ``--work_dir``:

- ``mace_seed<k>.model``: the trained ``ScaleShiftMACE`` (``torch.load(weights_only=False)``,
  ``mace.calculators.MACECalculator``); ``mace_seed<k>_stagetwo.model`` when SWA ran, which is
  then the returned model; ``*_compiled.model`` (TorchScript) beside it;
- ``checkpoints/``, ``results/`` (per-epoch metrics), ``logs/`` (mace's log);
- ``mace_stdout.log`` (everything the subprocess printed), ``job.json`` (settings, :mod:`openmm_physembed.jobs`),
  ``learning_curve.png`` + ``learning_curve.json``, and ``result.json`` once finished.

Resuming: every run passes ``--restart_latest``, so a killed run restarted with the same
command continues from its last checkpoint; a seed with ``result.json`` is not run again. A
run directory made with different settings is refused rather than mixed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..checks import check_seeds
from ..errors import TrainingError, tail
from ..io import read_json, write_json
from ..jobs import JobDirectory
from ..torch_device import cueq_available, resolve_device
from .presets import TrainingPreset, get_preset

# Options of mace_run_train (0.3.16) that are flags (store_true / store_false): given without a
# value when set to True, left out otherwise. Checked against mace's parser in the tests.
FLAG_OPTIONS = frozenset({
    "amsgrad", "distributed", "dry_run", "ema", "keep_checkpoints", "lbfgs", "pair_repulsion",
    "restart_latest", "save_all_checkpoints", "save_cpu", "swa", "wandb", "foundation_model_readout",
    "disallow_random_padding_pt",
})
# Set per run by train_mace; a preset or an override must not change them.
_MANAGED = ("name", "seed", "work_dir", "train_file", "valid_file", "E0s", "device", "restart_latest",
            "save_cpu", "enable_cueq")
# May differ between the first run and a resumed one without invalidating checkpoints. Not
# enable_cueq: mace converts the model to cuEquivariance *before* loading the latest checkpoint,
# with strict=False, so flipping it on resume silently restarts or half-loads (_keep_cueq_choice).
_RESUMABLE_CHANGES = ("device",)
TRAINING_MANIFEST = "job.json"


@dataclass(frozen=True)
class TrainedModel:
    """One trained seed; RMSEs are mace-torch's final validation error table (best checkpoint)."""

    seed: int
    model_path: Path
    log_path: Path
    valid_energy_rmse_mev_per_atom: float
    valid_forces_rmse_mev_per_angstrom: float
    learning_curve_png: Path
    run_dir: Path
    compiled_model_path: Path | None = None
    train_energy_rmse_mev_per_atom: float = float("nan")
    train_forces_rmse_mev_per_angstrom: float = float("nan")
    n_epochs: int = 0
    preset: str = ""
    # Presets with stress in the loss (meV/A^3, mace's "RMSE Stress" column); None otherwise.
    valid_stress_rmse_mev_per_angstrom3: float | None = None
    train_stress_rmse_mev_per_angstrom3: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {key: (str(value) if isinstance(value, Path) else value) for key, value in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "TrainedModel":
        paths = ("model_path", "log_path", "learning_curve_png", "run_dir", "compiled_model_path")
        return cls(**{key: (Path(value) if key in paths and value is not None else value)
                      for key, value in data.items()})


def train_mace(
    train_file: str | Path,
    valid_file: str | Path,
    out_dir: str | Path,
    preset: str | TrainingPreset = "paper",
    seeds: Sequence[int] = (0,),
    e0s: Mapping[int, float] | str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    device: str | None = None,
    executor: Executor | None = None,
    threads_per_seed: int | None = None,
    progress: bool = False,
) -> list[TrainedModel]:
    """Train one MACE model per seed with ``mace_run_train`` and collect the results.

    Parameters
    ----------
    train_file, valid_file
        Extended XYZ with ``REF_energy`` (eV) and ``REF_forces`` (eV/Angstrom), as written by
        :func:`~openmm_physembed.labelling.labeller.label_structures`.
    out_dir
        One ``seed_<k>`` run directory per seed is made here.
    preset
        A name in :data:`~openmm_physembed.training.presets.TRAINING_PRESETS` or a preset.
        Default ``"paper"``, the published single-molecule settings (GPU-sized), as
        ``StabilityProtocol()`` is the published protocol; name ``"quick"`` or ``"cpu"`` for a
        CPU-sized model.
    seeds
        Random seeds; each gives an independent model.
    e0s
        Isolated-atom energies (eV by atomic number), a ``*.e0s.json`` written by the labeller,
        or a mace keyword (``"average"``). Default: ``<train stem>.e0s.json`` beside the
        training file.
    overrides
        ``mace_run_train`` options replacing the preset's (``{"max_num_epochs": 5}``; ``None``
        as a value removes an option; ``True`` turns a flag on).
    device
        ``"cpu"`` or ``"cuda"``; default ``cuda`` when available. cuEquivariance kernels
        (``--enable_cueq True``) are used only on CUDA with ``cuequivariance_torch`` installed.
    executor
        Runs the seeds concurrently (each job starts one ``mace_run_train``); default: one
        after the other in this process.
    threads_per_seed
        ``OMP_NUM_THREADS`` of each training process (default: inherited).
    progress
        A progress bar per seed (epochs, with the latest validation force RMSE) when the seeds
        run in this process.
    """
    train_file, valid_file, out_dir = Path(train_file).resolve(), Path(valid_file).resolve(), Path(out_dir)
    for path, what in ((train_file, "training"), (valid_file, "validation")):
        if not path.is_file():
            raise TrainingError(f"{what} file {path} does not exist")
    seeds = list(check_seeds(seeds, TrainingError))  # numpy's range: mace_run_train calls np.random.seed
    preset = get_preset(preset)
    options = preset.with_overrides(overrides)
    for key in _MANAGED:
        if key in options:
            raise TrainingError(f"option {key!r} is set by train_mace itself; pass it as an argument instead")
    e0s_text = _e0s_argument(e0s, train_file, [train_file, valid_file],
                             str(options.get("energy_key", "REF_energy")))
    device = resolve_device(device or None)
    options.update(E0s=e0s_text, device=device, restart_latest=True, save_cpu=True)
    if device.startswith("cuda") and cueq_available():
        options["enable_cueq"] = True

    jobs = []
    for seed in seeds:
        jobs.append((seed, train_file, valid_file, (out_dir / f"seed_{seed}").resolve(), dict(options),
                     preset.name, threads_per_seed))
    if executor is None:
        return [_train_one_seed(*job, progress=progress) for job in jobs]
    futures = [executor.submit(_train_one_seed, *job) for job in jobs]
    if progress:
        _watch_pool(futures, [job[3] / "mace_stdout.log" for job in jobs], int(options.get("max_num_epochs", 0)),
                    f"train {preset.name} seeds {','.join(map(str, seeds))}")
    return [future.result() for future in futures]


def load_trained_models(out_dir: str | Path) -> list[TrainedModel]:
    """The finished seeds of an earlier :func:`train_mace` call, in seed order."""
    results = sorted(Path(out_dir).glob("seed_*/result.json"), key=lambda p: int(p.parent.name.split("_")[1]))
    return [TrainedModel.from_json(read_json(path)) for path in results]


def mace_command_line(options: Mapping[str, Any]) -> list[str]:
    """``mace_run_train`` arguments for an options dict (flags only when True)."""
    argv: list[str] = []
    for key, value in options.items():
        if key in FLAG_OPTIONS:
            if _truthy(value):
                argv.append(f"--{key}")
            continue
        if isinstance(value, bool):
            value = "True" if value else "False"
        elif isinstance(value, (dict, list, tuple)):
            value = repr(value)
        argv.append(f"--{key}={value}")
    return argv


# -- one seed ---------------------------------------------------------------------------------

def _train_one_seed(seed: int, train_file: Path, valid_file: Path, run_dir: Path, options: dict,
                    preset_name: str, threads: int | None, progress: bool = False) -> TrainedModel:
    name = f"mace_seed{seed}"
    options = {"name": name, "seed": seed, "work_dir": str(run_dir), "train_file": str(train_file),
               "valid_file": str(valid_file), **options}
    run_dir.mkdir(parents=True, exist_ok=True)
    options = _keep_cueq_choice(run_dir, options)
    job = _check_settings(run_dir, options)
    result_path = run_dir / "result.json"
    if result_path.is_file():
        finished = TrainedModel.from_json(read_json(result_path))
        if finished.model_path.is_file():
            job.finish(model=str(finished.model_path))
            return finished

    stdout_path = run_dir / "mace_stdout.log"
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    env.setdefault("MPLBACKEND", "Agg")
    command = [sys.executable, "-m", "mace.cli.run_train", *mace_command_line(options)]
    with open(stdout_path, "a") as log:
        log.write("\n$ " + " ".join(command) + "\n")
        log.flush()
        start = stdout_path.stat().st_size
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir, env=env)
        returncode = _watch_epochs(process, stdout_path, start, int(options.get("max_num_epochs", 0)),
                                   f"train {preset_name} seed {seed}" if progress else None)
    if returncode != 0:
        output = stdout_path.read_text(errors="replace")
        usage_errors = [line for line in output.splitlines() if "run_train.py: error:" in line]
        detail = usage_errors[-1] if usage_errors else "last lines:\n" + tail(output)
        raise TrainingError(f"mace_run_train failed for seed {seed} (exit {returncode}; full output in "
                            f"{stdout_path}): {detail}")
    trained = _collect(seed, run_dir, name, options, preset_name)
    job.finish(model=str(trained.model_path))
    return trained


def _collect(seed: int, run_dir: Path, name: str, options: Mapping[str, Any], preset_name: str) -> TrainedModel:
    from .plots import plot_learning_curve, read_mace_results

    stage_two = run_dir / f"{name}_stagetwo.model"
    model_path = stage_two if _truthy(options.get("swa")) and stage_two.is_file() else run_dir / f"{name}.model"
    if not model_path.is_file():
        raise TrainingError(f"mace_run_train finished for seed {seed} but wrote no {model_path.name}; "
                            f"see {run_dir / 'mace_stdout.log'}")
    compiled = model_path.with_name(model_path.stem + "_compiled.model")
    log_path = run_dir / "logs" / f"{name}_run-{seed}.log"
    tables = parse_error_tables(log_path.read_text(errors="replace"))
    if not tables:
        raise TrainingError(f"no error table found in {log_path}; did mace_run_train finish?")
    final = tables[-1]  # after SWA, the stage-two model's table comes last
    valid = _row(final, "valid")
    train = _row(final, "train")
    results_path = run_dir / "results" / f"{name}_run-{seed}_train.txt"
    curve = read_mace_results(results_path)
    png = plot_learning_curve(curve, run_dir / "learning_curve.png", title=f"{name} ({preset_name})")
    trained = TrainedModel(
        seed=seed, model_path=model_path, log_path=log_path,
        valid_energy_rmse_mev_per_atom=valid.get("energy", float("nan")),
        valid_forces_rmse_mev_per_angstrom=valid.get("forces", float("nan")),
        learning_curve_png=png, run_dir=run_dir, compiled_model_path=compiled if compiled.is_file() else None,
        train_energy_rmse_mev_per_atom=train.get("energy", float("nan")),
        train_forces_rmse_mev_per_angstrom=train.get("forces", float("nan")),
        n_epochs=int(max(curve["epoch"], default=-1)) + 1, preset=preset_name,
        valid_stress_rmse_mev_per_angstrom3=valid.get("stress"),
        train_stress_rmse_mev_per_angstrom3=train.get("stress"),
    )
    write_json(run_dir / "result.json", trained.to_json())
    return trained


_EPOCH_LINE = re.compile(r"Epoch (\d+):.*?RMSE_F=\s*([0-9.]+)")


def _watch_epochs(process: subprocess.Popen, log_path: Path, start: int, total_epochs: int,
                  description: str | None, poll_s: float = 2.0) -> int:
    """Wait for ``process``; with a description, follow mace's "Epoch N: ... RMSE_F=" lines in a bar."""
    if description is None:
        return process.wait()
    from tqdm.auto import tqdm

    bar = tqdm(total=total_epochs or None, desc=description, unit="epoch", dynamic_ncols=True)
    try:
        while True:
            finished = process.poll() is not None
            latest = _last_epoch(log_path, start)
            if latest:
                epoch, rmse = latest
                bar.update(max(0, epoch + 1 - bar.n))
                bar.set_postfix_str(f"valid F RMSE {rmse} meV/A")
            if finished:
                return process.returncode
            time.sleep(poll_s)
    finally:
        bar.close()


def _last_epoch(log_path: Path, start: int = 0) -> tuple[int, str] | None:
    if not log_path.is_file():
        return None
    with open(log_path, errors="replace") as handle:
        handle.seek(start)
        matches = _EPOCH_LINE.findall(handle.read())
    return (int(matches[-1][0]), matches[-1][1]) if matches else None


def _watch_pool(futures, log_paths: list[Path], epochs: int, description: str, poll_s: float = 5.0) -> None:
    """One bar over the epochs of seeds training in other processes (read from their logs)."""
    from concurrent.futures import wait

    from tqdm.auto import tqdm

    starts = [p.stat().st_size if p.is_file() else 0 for p in log_paths]
    bar = tqdm(total=epochs * len(log_paths) or None, desc=description, unit="epoch", dynamic_ncols=True)
    try:
        while True:
            done, _ = wait(futures, timeout=poll_s)
            latest = [_last_epoch(p, s) for p, s in zip(log_paths, starts)]
            finished = sum(epochs if f in done else (e[0] + 1 if e else 0) for f, e in zip(futures, latest))
            bar.update(max(0, finished - bar.n))
            rmse = [e[1] for e in latest if e]
            if rmse:
                bar.set_postfix_str(f"valid F RMSE {'/'.join(rmse)} meV/A")
            if len(done) == len(futures):
                return
    finally:
        bar.close()


# -- mace's error table -----------------------------------------------------------------------

_COLUMNS = {
    "RMSE E / meV / atom": "energy",
    "RMSE F / meV / A": "forces",
    "RMSE Stress (Virials) / meV / A (A^3)": "stress",
    "RMSE Stress / meV / A^3": "stress",
}


def parse_error_tables(log_text: str) -> list[dict[str, dict[str, float]]]:
    """Every "Error-table on TRAIN and VALID" of a mace log: {row name: {quantity: value}}.

    Quantities are ``energy`` (meV/atom), ``forces`` (meV/Angstrom) and ``stress`` when the
    table has them; other columns are kept under their header text.
    """
    tables = []
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        if "Error-table on TRAIN and VALID" not in line:
            continue
        header: list[str] | None = None
        rows: dict[str, dict[str, float]] = {}
        for row in lines[i + 1:]:
            if row.startswith("+"):
                continue
            if not row.startswith("|"):
                break
            cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
            if header is None:
                header = cells
                continue
            values = {}
            for title, cell in zip(header[1:], cells[1:]):
                try:
                    values[_COLUMNS.get(title, title)] = float(cell)
                except ValueError:
                    continue
            rows[cells[0]] = values
        tables.append(rows)
    return tables


def _row(table: Mapping[str, Mapping[str, float]], prefix: str) -> Mapping[str, float]:
    for name, values in table.items():
        if name.startswith(prefix):
            return values
    return {}


# -- helpers ----------------------------------------------------------------------------------

def _e0s_argument(e0s, train_file: Path, data_files: list[Path], energy_key: str) -> str:
    from ..labelling.labeller import read_e0s

    if e0s is None:
        candidate = train_file.with_suffix("").with_name(train_file.stem + ".e0s.json")
        if not candidate.is_file():
            raise TrainingError(f"no E0s given and no {candidate.name} beside {train_file}; pass e0s= (a dict, "
                                "the labeller's .e0s.json, or 'average')")
        e0s = candidate
    if isinstance(e0s, str) and not e0s.endswith(".json"):
        return e0s  # a mace keyword such as "average"
    if isinstance(e0s, (str, Path)):
        path = Path(e0s)
        if not path.is_file():
            raise TrainingError(f"E0s file {path} does not exist")
        e0s = read_e0s(path)
    table = {int(z): float(e) for z, e in dict(e0s).items()}
    missing = sorted(_elements(data_files) - set(table))
    if missing:
        raise TrainingError(f"E0s lack atomic numbers {missing} present in the data; "
                            "label with label_structures (it writes every element's E0)")
    return "{" + ", ".join(f"{z}: {e!r}" for z, e in sorted(table.items())) + "}"


def _elements(files: list[Path]) -> set[int]:
    from ..io import read_extxyz

    return {int(z) for path in files for atoms in read_extxyz(path) for z in atoms.numbers}


def _started(run_dir: Path) -> bool:
    return (run_dir / "result.json").is_file() or any((run_dir / "checkpoints").glob("*.pt"))


def _job(run_dir: Path, options: Mapping[str, Any]) -> JobDirectory:
    return JobDirectory(run_dir, "MACE training run", options, manifest=TRAINING_MANIFEST, ignore=_RESUMABLE_CHANGES,
                        error=TrainingError)


def _keep_cueq_choice(run_dir: Path, options: dict) -> dict:
    """A resumed run keeps the cuEquivariance choice its checkpoints were written with."""
    job = _job(run_dir, options)
    if not (job.exists() and _started(run_dir)):
        return options
    stored = bool(job.read().get("settings", {}).get("enable_cueq", False))
    if stored == bool(options.get("enable_cueq", False)):
        return options
    if stored and not (str(options.get("device", "")).startswith("cuda") and cueq_available()):
        raise TrainingError(f"{run_dir} was trained with cuEquivariance (CUDA); resume it where CUDA and "
                            "cuequivariance_torch are available, or train into a new directory")
    options = dict(options)
    if stored:
        options["enable_cueq"] = True
    else:
        options.pop("enable_cueq", None)
    return options


def _check_settings(run_dir: Path, options: Mapping[str, Any]) -> JobDirectory:
    """Refuse a started run with other settings; a run that never reached a checkpoint is taken over."""
    return _job(run_dir, options).open(compare=lambda: _started(run_dir))


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)
