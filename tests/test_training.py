"""MACE training through mace_run_train: presets, real training of the quick preset, resume."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import TrainingError
from openmm_physembed.executors import SerialExecutor
from openmm_physembed.io import read_extxyz
from openmm_physembed.labelling.labeller import label_structures, read_e0s
from openmm_physembed.training import mace_train
from openmm_physembed.training.commands import parse_overrides
from openmm_physembed.training.mace_train import (
    FLAG_OPTIONS,
    load_trained_models,
    mace_command_line,
    parse_error_tables,
    train_mace,
)
from openmm_physembed.training.plots import read_mace_results
from openmm_physembed.training.presets import TRAINING_PRESETS


def mace_parser():
    from mace.tools import build_default_arg_parser

    return build_default_arg_parser()


def parse_with_mace(options):
    return mace_parser().parse_args(["--name", "x", *mace_command_line(options)])


def test_presets_are_valid_mace_options_with_the_paper_values():
    parser = mace_parser()
    dests = {action.dest for action in parser._actions}
    flags = {action.dest for action in parser._actions
             if type(action).__name__ in ("_StoreTrueAction", "_StoreFalseAction")}
    assert FLAG_OPTIONS - {"disallow_random_padding_pt"} == flags - {"allow_random_padding_pt"}
    for preset in TRAINING_PRESETS.values():
        assert set(preset.options) <= dests, preset.name

    paper = parse_with_mace(TRAINING_PRESETS["paper"].options)
    assert (paper.num_channels, paper.max_L, paper.energy_weight, paper.forces_weight) == (256, 3, 1.0, 100.0)
    assert (paper.batch_size, paper.optimizer, paper.lr, paper.swa) == (10, "adam", 0.01, False)
    assert paper.model == "ScaleShiftMACE" and paper.energy_key == "REF_energy" and paper.forces_key == "REF_forces"

    liquid = parse_with_mace(TRAINING_PRESETS["paper-liquid"].options)
    assert (liquid.num_channels, liquid.max_L, liquid.batch_size, liquid.lr) == (64, 2, 32, 0.01)
    assert (liquid.loss, liquid.energy_weight, liquid.forces_weight, liquid.stress_weight) == ("stress", 1.0, 100.0, 100.0)
    assert liquid.swa and (liquid.swa_energy_weight, liquid.swa_forces_weight, liquid.swa_stress_weight) == (100.0, 1.0, 1000.0)
    # mace-torch starts SWA ("Stage Two") at max_num_epochs // 4 * 3 when start_swa is not given: 75%
    assert liquid.start_swa is None
    assert liquid.compute_stress is True


def test_cpu_preset_is_the_measured_cheap_architecture():
    cpu = parse_with_mace(TRAINING_PRESETS["cpu"].options)
    assert (cpu.num_channels, cpu.max_L, cpu.correlation, cpu.max_num_epochs, cpu.ema) == (16, 0, 2, 200, True)


def test_epoch_lines_of_mace_logs_drive_the_progress_bar(tmp_path):
    from openmm_physembed.training.mace_train import _last_epoch

    log = tmp_path / "mace_stdout.log"
    log.write_text("2026-11-30 15:21:29.649 INFO: Epoch 42: head: Default, loss=0.22609611, "
                   "RMSE_E_per_atom=   18.91 meV, RMSE_F=  106.31 meV / A\n"
                   "2026-11-30 15:21:31.026 INFO: Epoch 43: head: Default, loss=0.22023808, "
                   "RMSE_E_per_atom=   19.91 meV, RMSE_F=  104.92 meV / A\n")
    assert _last_epoch(log) == (43, "104.92")
    assert _last_epoch(tmp_path / "missing.log") is None


def test_overrides_and_command_line():
    preset = TRAINING_PRESETS["quick"]
    options = preset.with_overrides({"max_num_epochs": 3, "--r-max": 4.0, "correlation": None, "swa": True})
    assert options["max_num_epochs"] == 3 and options["r_max"] == 4.0 and "correlation" not in options
    assert preset.options["max_num_epochs"] == 30  # the preset itself is unchanged
    args = parse_with_mace(options)
    assert args.max_num_epochs == 3 and args.r_max == 4.0 and args.swa is True and args.correlation == 3
    args = parse_with_mace({**options, "swa": False, "plot": False, "E0s": "{1: -10.5, 6: -48.25}"})
    assert args.swa is False and args.plot is False and args.E0s == "{1: -10.5, 6: -48.25}"
    assert parse_overrides(["max_num_epochs=5", "swa=True", "r_max=None", "scheduler=ExponentialLR"]) == {
        "max_num_epochs": 5, "swa": True, "r_max": None, "scheduler": "ExponentialLR"}
    with pytest.raises(TrainingError, match="KEY=VALUE"):
        parse_overrides(["max_num_epochs"])


LOG = textwrap.dedent("""\
    2026-01-01 00:00:00.000 INFO: Error-table on TRAIN and VALID:
    +---------------+---------------------+------------------+-------------------+
    |  config_type  | RMSE E / meV / atom | RMSE F / meV / A | relative F RMSE % |
    +---------------+---------------------+------------------+-------------------+
    | train_Default |          270.2      |        575.9     |         14.91     |
    | valid_Default |          270.9      |       1008.9     |         22.44     |
    +---------------+---------------------+------------------+-------------------+
    2026-01-01 00:00:01.000 INFO: Done
    """)


def test_parse_error_tables():
    tables = parse_error_tables(LOG + LOG.replace("270.9", "12.5"))
    assert len(tables) == 2
    assert tables[0]["valid_Default"] == {"energy": 270.9, "forces": 1008.9, "relative F RMSE %": 22.44}
    assert tables[1]["valid_Default"]["energy"] == 12.5 and tables[1]["train_Default"]["forces"] == 575.9


# -- real training on a tiny data set -----------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """GFN2-xTB-labelled rattled ethylene carbonate: 24 training, 6 validation, 2 unseen structures."""
    base = Molecule.from_name("ec").to_ase()
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(32):
        frame = base.copy()
        frame.positions += rng.normal(0.0, 0.04, frame.positions.shape)
        frames.append(frame)
    root = tmp_path_factory.mktemp("ec_data")
    train = label_structures(frames[:24], root / "train.extxyz", executor=SerialExecutor(), progress=False)
    valid = label_structures(frames[24:30], root / "valid.extxyz", executor=SerialExecutor(), progress=False)
    unseen = label_structures(frames[30:], root / "unseen.extxyz", executor=SerialExecutor(), progress=False)
    return root, train, valid, unseen


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    """The unmodified quick preset, two seeds trained side by side through an executor."""
    root, train, valid, _ = dataset
    out = tmp_path_factory.mktemp("models")
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:
        models = train_mace(train.out_path, valid.out_path, out, preset="quick", seeds=(0, 1), executor=pool,
                            threads_per_seed=1, device="cpu")
    return out, models, time.perf_counter() - start


def test_quick_preset_trains_and_the_model_predicts_unseen_structures(dataset, trained):
    import torch
    from mace.calculators import MACECalculator

    _, train, _, unseen = dataset
    _, models, seconds = trained
    print(f"quick preset, 2 seeds in parallel on 24 EC structures: {seconds:.1f} s")
    assert [m.seed for m in models] == [0, 1]
    e0s = read_e0s(train.e0s_path)
    for model in models:
        assert model.model_path.name == f"mace_seed{model.seed}.model"
        loaded = torch.load(model.model_path, weights_only=False, map_location="cpu")
        assert type(loaded).__name__ == "ScaleShiftMACE"
        assert loaded.atomic_numbers.tolist() == [1, 6, 8]
        # the isolated-atom energies we passed are the model's E0s
        np.testing.assert_allclose(loaded.atomic_energies_fn.atomic_energies.squeeze().numpy(),
                                   [e0s[1], e0s[6], e0s[8]], rtol=1e-12)
        calc = MACECalculator(model_paths=str(model.model_path), device="cpu", default_dtype="float64")
        for atoms in read_extxyz(unseen.out_path):
            reference = atoms.info["REF_energy"]
            atomization = reference - sum(e0s[int(z)] for z in atoms.numbers)
            atoms.calc = calc
            predicted = atoms.get_potential_energy()
            assert np.isfinite(predicted) and np.all(np.isfinite(atoms.get_forces()))
            # 30 epochs on 24 structures: within 0.2 eV/atom of xTB, and a few % of the atomization energy
            assert abs(predicted - reference) / len(atoms) < 0.2
            assert abs(predicted - reference) < 0.05 * abs(atomization)
    # different seeds give different models
    assert models[0].valid_forces_rmse_mev_per_angstrom != models[1].valid_forces_rmse_mev_per_angstrom


def test_reported_validation_rmse_matches_an_independent_evaluation(dataset, trained):
    from mace.calculators import MACECalculator

    _, _, valid, _ = dataset
    model = trained[1][0]
    calc = MACECalculator(model_paths=str(model.model_path), device="cpu", default_dtype="float64")
    energy_errors, force_errors = [], []
    for atoms in read_extxyz(valid.out_path):
        reference_e, reference_f = atoms.info["REF_energy"], atoms.arrays["REF_forces"]
        atoms.calc = calc
        energy_errors.append((atoms.get_potential_energy() - reference_e) / len(atoms))
        force_errors.append((atoms.get_forces() - reference_f).ravel())
    rmse_e = 1000 * np.sqrt(np.mean(np.square(energy_errors)))
    rmse_f = 1000 * np.sqrt(np.mean(np.square(np.concatenate(force_errors))))
    # mace prints one decimal
    assert model.valid_energy_rmse_mev_per_atom == pytest.approx(rmse_e, abs=0.051)
    assert model.valid_forces_rmse_mev_per_angstrom == pytest.approx(rmse_f, abs=0.051)


def test_learning_curve_and_training_progress(trained):
    for model in trained[1]:
        assert model.learning_curve_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert model.learning_curve_png.with_suffix(".json").is_file()
        curve = read_mace_results(model.run_dir / "results" / f"mace_seed{model.seed}_run-{model.seed}_train.txt")
        assert curve["epoch"].tolist() == list(range(30)) and model.n_epochs == 30
        assert np.all(np.isfinite(curve["train_loss"])) and np.all(np.isfinite(curve["valid_loss"]))
        # the model learns: force error well below where it started
        assert curve["valid_rmse_f_mev_per_angstrom"].min() < 0.5 * curve["valid_rmse_f_mev_per_angstrom"][0]
        assert model.log_path.is_file() and "Error-table on TRAIN and VALID" in model.log_path.read_text()


def test_finished_seeds_are_not_trained_again(dataset, trained, monkeypatch):
    _, train, valid, _ = dataset
    out, models, _ = trained

    def no_training(*args, **kwargs):
        raise AssertionError("a finished seed was trained again")

    monkeypatch.setattr(mace_train.subprocess, "run", no_training)
    again = train_mace(train.out_path, valid.out_path, out, preset="quick", seeds=(1, 0), device="cpu")
    assert [m.seed for m in again] == [1, 0]
    assert again[1] == models[0]
    assert load_trained_models(out) == models
    with pytest.raises(TrainingError, match="different settings"):
        train_mace(train.out_path, valid.out_path, out, preset="quick", seeds=(0,), device="cpu",
                   overrides={"max_num_epochs": 31})


def test_training_input_errors(dataset, tmp_path):
    _, train, valid, _ = dataset
    with pytest.raises(TrainingError, match="does not exist"):
        train_mace(tmp_path / "none.extxyz", valid.out_path, tmp_path, preset="quick")
    with pytest.raises(TrainingError, match="lack atomic numbers \\[8\\]"):
        train_mace(train.out_path, valid.out_path, tmp_path, preset="quick", e0s={1: -10.0, 6: -48.0}, device="cpu")
    with pytest.raises(TrainingError, match="set by train_mace"):
        train_mace(train.out_path, valid.out_path, tmp_path, preset="quick", overrides={"seed": 3}, device="cpu")
    with pytest.raises(TrainingError, match="unrecognized arguments: --not_an_option"):
        train_mace(train.out_path, valid.out_path, tmp_path / "bad", preset="quick", overrides={"not_an_option": 1},
                   device="cpu")
    with pytest.raises(TrainingError, match="unknown training preset"):
        train_mace(train.out_path, valid.out_path, tmp_path, preset="huge")


@pytest.mark.slow
def test_killed_training_resumes_from_its_checkpoint(dataset, tmp_path):
    _, train, valid, _ = dataset
    out = tmp_path / "models"
    script = (f"from openmm_physembed.training.mace_train import train_mace\n"
              f"train_mace({str(train.out_path)!r}, {str(valid.out_path)!r}, {str(out)!r}, preset='quick', "
              "device='cpu')\n")
    process = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    checkpoints = out / "seed_0" / "checkpoints"
    deadline = time.time() + 120
    while not any(checkpoints.glob("*epoch-[3-9]*.pt")) and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (out / "seed_0" / "result.json").exists()
    resumed_from = max(int(p.stem.split("epoch-")[1]) for p in checkpoints.glob("*.pt"))

    [model] = train_mace(train.out_path, valid.out_path, out, preset="quick", device="cpu")
    second_run = (out / "seed_0" / "mace_stdout.log").read_text().split("\n$ ")[-1]
    assert f"epoch-{resumed_from}.pt" in second_run and "Loading checkpoint" in second_run
    assert "Epoch 0:" not in second_run  # the second run started where the first stopped
    assert model.n_epochs == 30 and model.model_path.is_file()


@pytest.mark.slow
def test_swa_returns_the_stage_two_model(dataset, tmp_path):
    _, train, valid, _ = dataset
    [model] = train_mace(train.out_path, valid.out_path, tmp_path, preset="quick", device="cpu",
                         overrides={"max_num_epochs": 8, "swa": True, "swa_energy_weight": 100.0,
                                    "swa_forces_weight": 1.0})
    assert model.model_path.name == "mace_seed0_stagetwo.model"
    log = model.log_path.read_text()
    assert "Stage Two (after 6 epochs)" in log  # mace's default start: 8 // 4 * 3
    # the reported errors are those of the last (stage-two) table
    assert model.valid_energy_rmse_mev_per_atom == parse_error_tables(log)[-1]["valid_Default"]["energy"]


def test_a_resumed_run_keeps_its_cuequivariance_choice(tmp_path):
    """mace converts to cueq before loading the checkpoint (strict=False): a flip would half-load it."""
    from openmm_physembed.errors import TrainingError
    from openmm_physembed.training.mace_train import (
        _check_settings,
        _job,
        _keep_cueq_choice,
    )

    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "x_run-0_epoch-3.pt").write_bytes(b"")
    _check_settings(tmp_path, {"max_num_epochs": 5})  # started without cueq
    resumed = _keep_cueq_choice(tmp_path, {"max_num_epochs": 5, "device": "cuda", "enable_cueq": True})
    assert "enable_cueq" not in resumed
    with pytest.raises(TrainingError, match="changed: enable_cueq"):  # a started run refuses other settings
        _check_settings(tmp_path, {"max_num_epochs": 5, "enable_cueq": True})
    _check_settings(tmp_path, {"max_num_epochs": 5, "device": "cuda"})  # the device may change on resume
    _job(tmp_path, {"max_num_epochs": 5, "enable_cueq": True}).open(overwrite=True)  # started with cueq
    with pytest.raises(TrainingError, match="cuEquivariance"):
        _keep_cueq_choice(tmp_path, {"max_num_epochs": 5, "device": "cpu"})
