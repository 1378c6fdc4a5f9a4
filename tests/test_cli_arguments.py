"""Every subcommand refuses bad arguments with one line, before it writes anything.

Each case runs ``physembed ...`` in an empty working directory with its own GAFF cache; a case
passes when the command exits 2 with one line on stderr naming the problem, and the working
directory and the cache are still empty. A bad value that slipped through would start the
work (MD, training, labelling): an alarm fails such a case instead of letting it run.
"""

from __future__ import annotations

import argparse
import re
import signal

import numpy as np
import pytest

from openmm_physembed.checks import MD_SEED_MAX, SEED_MAX, check_seed, check_seeds
from openmm_physembed.cli import build_parser, main

# Inputs that exist, so that the one bad value of a case is the only thing wrong with it.
MODEL, FRAMES, TRAIN, VALID, DATASET, EMPTY_DIR = ("IN/model.model", "IN/frames.extxyz", "IN/train.extxyz",
                                                   "IN/valid.extxyz", "IN/dataset", "IN/empty")
CSO = ["--alpha", "-0.05", "--a1", "1.0"]
TRAIN_ARGS = ["train", "--train", TRAIN, "--valid", VALID, "-o", "out"]

# command -> [(arguments after the command, what the one line must say)]
CASES = {
    "gaff": [
        (["C1=CC("], "neither a library molecule"),
        (["nosuchmolecule"], r"'nosuchmolecule' is neither a library molecule \(.*paracetamol"),
        (["missing.sdf"], "structure file 'missing.sdf' does not exist"),
        (["ec", "--force-field", "gaff3"], "--force-field: invalid choice: 'gaff3'"),
        (["ec", "--charge", "one"], "--charge: invalid int value"),
    ],
    "box": [
        (["ec", "--density", "-1"], r"--density: must be a finite number > 0, got '-1'"),
        (["ec", "--counts", "0", "--density", "1"], r"--counts: must be a whole number > 0, got '0'"),
        (["ec", "--counts", "5", "--density", "1", "--seed", "-1"], r"--seed: seed must be a whole number in \[0, "),
        (["ec", "emc", "--counts", "5", "--density", "1"], r"counts \[5\] do not fit 2 components"),
        (["ec", "--mass-fractions", "1", "--density", "1"], "mass fractions together with the total"),
        (["ec", "--counts", "5"], "one of the arguments --density --box-edge is required"),
        (["C1=CC(", "--counts", "5", "--density", "1"], "neither a library molecule"),
    ],
    "reference-md": [
        (["ec", "--seed", "-1"], r"--seed: seed must be a whole number in \[0, 2147483647\], got '-1'"),
        (["ec", "--seed", str(MD_SEED_MAX + 1)], r"--seed: seed must be a whole number in \[0, 2147483647\]"),
        (["ec", "--temperature", "0"], "--temperature: must be a finite number > 0"),
        (["ec", "--timestep", "nan"], "--timestep: must be a finite number > 0, got 'nan'"),
        (["ec", "--steps", "0"], "--steps: must be a whole number > 0"),
        (["ec", "--steps", "1.5"], "--steps: must be a whole number > 0, got '1.5'"),
        (["ec", "--steps", "100", "--frame-interval", "10"], "the 50 frames requested"),
        (["ec", "--platform", "NoSuchPlatform"], "OpenMM platform 'NoSuchPlatform' is not available here"),
        (["nosuchmolecule"], "neither a library molecule"),
    ],
    "augment": [
        (["ec", "--frames", "missing.extxyz"], "--frames: no such file: 'missing.extxyz'"),
        (["ec", "--frames", EMPTY_DIR], "--frames: 'IN/empty' is not a file"),
        (["ec", "--frames", FRAMES, "--seed", "-1"], r"--seed: seed must be a whole number in \[0, 4294967295\]"),
        (["ec", "--frames", FRAMES, "--s-compression", "1.5"], r"s_compression=1.5 must lie in \(0, 1\]"),
        (["ec", "--frames", FRAMES, "--rotation-probability", "2"],
         r"--rotation-probability: must be a number in \[0, 1\]"),
        (["ec", "--frames", FRAMES, "--rotation-degrees", "30", "15"], "must satisfy 0 <= low <= high"),
        (["ec", "--frames", FRAMES, "--max-attempts", "0"], "--max-attempts: must be a whole number > 0"),
        (["ec", "--frames", FRAMES, "--typing", "opls"], "unknown bond typing source 'opls'"),
        (["nosuchmolecule", "--frames", FRAMES], "neither a library molecule"),
    ],
    "label": [
        (["missing.extxyz", "-o", "out.extxyz"], "no such file: 'missing.extxyz'"),
        ([FRAMES, "-o", "out.extxyz", "--electronic-temperature", "-300"],
         "--electronic-temperature: must be a finite"),
        ([FRAMES, "-o", "out.extxyz", "--retry-temperatures", "1000", "0"], "--retry-temperatures: must be a finite"),
        ([FRAMES, "-o", "out.extxyz", "--max-iterations", "0"], "--max-iterations: must be a whole number > 0"),
        ([FRAMES, "-o", "out.extxyz", "--multiplicity", "0"], "--multiplicity: must be a whole number > 0"),
        ([FRAMES, "-o", "out.extxyz", "--workers", "0"], "--workers: must be a whole number > 0"),
        ([FRAMES], "the following arguments are required: -o/--out"),
    ],
    "liquid-dataset": [
        (["--experiment", "EMC", "--seed", "-1"], "--seed: seed must be a whole number"),
        (["--experiment", "EMC", "--temperature", "-5"], "--temperature: must be a finite number > 0"),
        (["--experiment", "EMC", "--n-train", "0"], "--n-train: must be a whole number > 0"),
        (["--experiment", "EMC", "--pressure", "inf"], "--pressure: must be a finite number, got 'inf'"),
        (["--experiment", "EMC", "--n-molecules", "-10"], "--n-molecules: must be a whole number > 0"),
        (["--experiment", "NOSUCH"], "no experimental data for 'NOSUCH'"),
        (["--experiment", "EMC", "--npt-ps", "10", "--equilibration-ps", "20"], "shorter than npt_ps"),
        (["--experiment", "EMC", "--scan-factors", "0.5", "1.0"], r"must lie in \(0.8, 1.3\)"),
        (["--part", "EMC@warm"], "must be a number in K"),
        (["nosuchmolecule"], "neither a library molecule"),
    ],
    "train": [
        (["--train", "missing.extxyz", "--valid", VALID, "-o", "out"], "--train: no such file: 'missing.extxyz'"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--seeds", "-1"],
         r"--seeds: seed must be a whole number in \[0, 4294967295\], got '-1'"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--seeds", str(SEED_MAX + 1)],
         r"--seeds: seed must be a whole number in \[0, 4294967295\]"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--seeds", "1", "2", "1"],
         r"--seeds: seeds must be distinct, got \[1, 2, 1\]"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--preset", "huge"], "--preset: invalid choice: 'huge'"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--e0s", "missing.e0s.json"],
         "--e0s: no such file: 'missing.e0s.json'"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--e0s", "{1: "], "--e0s: is not a {Z: energy"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--device", "gpu"], "--device: must be cpu, cuda"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--threads-per-seed", "0"], "--threads-per-seed: must be"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--set", "novalue"], "--set expects KEY=VALUE"),
        (["--train", TRAIN, "--valid", VALID, "-o", "out", "--set", "seed=3"], "'seed' is set by train_mace itself"),
    ],
    "md": [
        (["missing.model", "ec"], "model: no such file: 'missing.model'"),
        ([MODEL, "ec", "--seed", "-1"], r"--seed: seed must be a whole number in \[0, 2147483647\], got '-1'"),
        ([MODEL, "ec", "--seed", str(MD_SEED_MAX + 1)], r"--seed: seed must be a whole number in \[0, 2147483647\]"),
        ([MODEL, "ec", "--steps", "0"], "--steps: must be a whole number > 0"),
        ([MODEL, "ec", "--temperature", "-1"], "--temperature: must be a finite number > 0"),
        ([MODEL, "ec", "--timestep", "0"], "--timestep: must be a finite number > 0"),
        ([MODEL, "ec", "--friction", "-1"], "--friction: must be a finite number >= 0"),
        ([MODEL, "ec", "--replicas", "0"], "--replicas: must be a whole number > 0"),
        ([MODEL, "ec", "--box", "-3"], "--box: must be a whole number > 0"),
        ([MODEL, "ec", "--dtype", "float16"], "--precision/--dtype: invalid choice: 'float16'"),
        ([MODEL, "C1=CC("], "neither a library molecule"),
    ],
    "density": [
        (["--experiment", "EMC", "--seed", "-1"], "--seed: seed must be a whole number"),
        (["--experiment", "EMC", "--temperature", "0"], "--temperature: must be a finite number > 0"),
        (["--experiment", "EMC", "--steps", "-10"], "--steps: must be a whole number > 0"),
        (["--experiment", "EMC", "--pressure", "nan"], "--pressure: must be a finite number"),
        (["--experiment", "EMC", "--model", "missing.model"], "--model: no such file: 'missing.model'"),
        (["--experiment", "EMC", "--correction", "missing.json"], "missing.json"),
        (["--experiment", "EMC", "--alpha", "-0.05"], "alpha was given without a1"),
        (["--experiment", "NOSUCH"], "no experimental data for 'NOSUCH'"),
        ([], "give component molecules or --experiment SYSTEM"),
        (["--experiment", "EMC", "--hydrogen-mass", "-1"], "positive number of amu"),
        (["--experiment", "EMC", "--cso-switch", "1.5"], "--cso-switch 1.5 nm must be shorter than --cso-cutoff 1.2"),
        (["--experiment", "EMC", "--n-molecules", "10"], "narrower than twice the CSO cutoff"),
        (["nosuchmolecule"], "neither a library molecule"),
    ],
    "fit-a1": [
        (["--experiment", "EMC", "--alpha", "-0.05", "--tolerance", "0"], "--tolerance: must be a finite number > 0"),
        (["--experiment", "EMC"], "fit-a1 needs --alpha"),
        (["--experiment", "EMC", "--alpha", "-0.05", "--method", "guess"], "--method: invalid choice: 'guess'"),
        (["--experiment", "EMC", "--alpha", "-0.05", "--max-simulations", "0"], "--max-simulations: must be"),
        (["--experiment", "EMC", "--alpha", "-0.05", "--a1-values", "0", "inf"], "--a1-values: must be a finite"),
        (["--experiment", "EMC", "--alpha", "-0.05", "--n-molecules", "10"], "narrower than twice the CSO cutoff"),
    ],
    "transfer": [
        (["DMC", "--alpha", "0"], "needs a CSO correction"),
        (["NOSUCH", *CSO], "NOSUCH"),
        (["DMC", *CSO, "--n-molecules", "0"], "--n-molecules: must be a whole number > 0"),
        (["DMC", *CSO, "--n-molecules", "10"], "narrower than twice the CSO cutoff"),
        (["DMC", *CSO, "--seed", str(MD_SEED_MAX + 1)], "--seed: seed must be a whole number"),
    ],
    "volume-scan": [
        (["--model", MODEL, "--dataset", "missing_dir", *CSO], "--dataset: no such directory: 'missing_dir'"),
        (["--model", MODEL, "--dataset", EMPTY_DIR, *CSO], "IN/empty has no test_scan.extxyz, topology.pdb"),
        (["--model", "missing.model", "--dataset", DATASET, *CSO], "--model: no such file: 'missing.model'"),
        (["--model", MODEL, "--dataset", DATASET], "needs a CSO correction"),
        (["--model", MODEL, "--dataset", DATASET, *CSO, "--platform", "NoSuchPlatform"], "is not available here"),
    ],
    "viscosity": [
        (["--experiment", "EMC", "--replicas", "0"], "--replicas: must be a whole number > 0"),
        (["--experiment", "EMC", "--pressure-provider", "nosuch"], "unknown pressure-tensor provider 'nosuch'"),
        (["--experiment", "EMC", "--frames", "missing.npz"], "--frames: no such file: 'missing.npz'"),
        (["--experiment", "EMC", "--frames", FRAMES], "cannot read frames from"),
        (["--experiment", "EMC", "--thermostat", "berendsen"], "--thermostat: invalid choice: 'berendsen'"),
        (["--experiment", "EMC", "--nvt-equilibration-steps", "-1"], "--nvt-equilibration-steps: must be"),
        (["--experiment", "EMC", "--seed", "-1"], "--seed: seed must be a whole number"),
        (["--experiment", "EMC", "--n-molecules", "10"], "narrower than twice the CSO cutoff"),
    ],
    "stability": [
        (["paracetamol", "--preset", "cpu", "--seeds", "-1"],  # the example of the issue
         r"--seeds: seed must be a whole number in \[0, 4294967295\], got '-1'"),
        (["paracetamol", "--seeds", "1", "1"], r"--seeds: seeds must be distinct, got \[1, 1\]"),
        (["paracetamol", "--seeds", str(SEED_MAX)], "training seeds up to 21474816 fit the test MD's seeds"),
        (["paracetamol", "--preset", "huge"], "--preset: invalid choice: 'huge'"),
        (["paracetamol", "--training-preset", "huge"], "--training-preset: invalid choice: 'huge'"),
        (["paracetamol", "--n-starts", "0"], "--n-starts: must be a whole number > 0"),
        (["paracetamol", "--temperature", "-800"], "--temperature: must be a finite number > 0"),
        (["paracetamol", "--test-ps", "0"], "--test-ps: must be a finite number > 0"),
        (["paracetamol", "--workers", "0"], "--workers: must be a whole number > 0"),
        (["paracetamol", "--platform", "NoSuchPlatform"], "is not available here"),
        (["nosuchmolecule"], "neither a library molecule"),
    ],
    "demo": [
        (["--molecule", "nosuchmolecule"], "neither a library molecule"),
        (["--molecule", "C1=CC("], "neither a library molecule"),
    ],
}

SECONDS_PER_CASE = 60  # parsing and checking take about a second; work takes minutes


def subcommands() -> list[str]:
    (action,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return list(action.choices)


def test_every_subcommand_has_bad_argument_cases():
    assert sorted(CASES) == sorted(subcommands()), "add cases for a new subcommand to CASES"


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """An empty working directory with inputs that exist beside it (``IN``, a link outside it)."""
    inputs, work, cache = tmp_path / "inputs", tmp_path / "work", tmp_path / "cache"
    (inputs / "dataset").mkdir(parents=True)
    (inputs / "empty").mkdir()
    for name in ("model.model", "frames.extxyz", "train.extxyz", "valid.extxyz", "dataset/test_scan.extxyz",
                 "dataset/topology.pdb"):
        (inputs / name).write_text("not read: the bad value is refused first\n")
    work.mkdir()
    (work / "IN").symlink_to(inputs, target_is_directory=True)
    monkeypatch.chdir(work)
    monkeypatch.setenv("PHYSEMBED_CACHE", str(cache))
    before = sorted(p.relative_to(inputs) for p in inputs.rglob("*"))
    yield work
    assert sorted(p.relative_to(inputs) for p in inputs.rglob("*")) == before
    assert not cache.exists() or not any(cache.iterdir()), "the GAFF cache was written"


class _WorkStarted(Exception):
    pass


def _alarm(signum, frame):
    raise _WorkStarted(f"still running after {SECONDS_PER_CASE} s: the bad value did not stop the command")


@pytest.mark.parametrize("command, arguments, message",
                         [(c, a, m) for c, cases in CASES.items() for a, m in cases],
                         ids=[f"{c}:{' '.join(a)}" for c, cases in CASES.items() for a, _ in cases])
def test_bad_arguments_stop_the_command_with_one_line_before_anything_is_written(workdir, capsys, command,
                                                                                  arguments, message):
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(SECONDS_PER_CASE)
    try:
        code = main([command, *arguments])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    captured = capsys.readouterr()
    error = captured.err.strip()
    assert code == 2, (code, error, captured.out)
    assert len(error.splitlines()) == 1 and error.startswith("error: "), error
    assert re.search(message, error), error
    assert sorted(p.name for p in workdir.iterdir()) == ["IN"], "the command wrote into its working directory"


def test_parse_errors_name_the_command_and_its_help(capsys):
    assert main(["md", "missing.model", "ec"]) == 2
    assert capsys.readouterr().err == ("error: physembed md: argument model: no such file: 'missing.model' "
                                       "(see physembed md --help)\n")


def test_the_seed_ranges_are_those_of_numpy_and_openmm():
    """SEED_MAX is the largest seed numpy's legacy seeding takes (mace_run_train uses it) and
    MD_SEED_MAX the largest OpenMM's integrator takes; one more is refused by each."""
    import openmm

    np.random.seed(SEED_MAX)
    with pytest.raises(ValueError):
        np.random.seed(SEED_MAX + 1)
    integrator = openmm.LangevinMiddleIntegrator(300, 1, 0.001)
    integrator.setRandomNumberSeed(MD_SEED_MAX)
    assert integrator.getRandomNumberSeed() == MD_SEED_MAX
    with pytest.raises(OverflowError):
        integrator.setRandomNumberSeed(MD_SEED_MAX + 1)
    assert check_seed(SEED_MAX) == SEED_MAX and check_seed(np.int64(3)) == 3
    for bad in (-1, SEED_MAX + 1, 1.0, True, "1"):
        with pytest.raises(ValueError, match="seed must be a whole number"):
            check_seed(bad)
    with pytest.raises(ValueError, match=r"\[0, 2147483647\]"):
        check_seed(MD_SEED_MAX + 1, maximum=MD_SEED_MAX)
    assert check_seeds([3, 1]) == (3, 1)
    with pytest.raises(ValueError, match="at least one"):
        check_seeds([])


def test_library_entry_points_refuse_bad_seeds_at_once(tmp_path):
    from openmm_physembed.errors import StabilityError, TrainingError
    from openmm_physembed.stability.protocol import PRESETS, StabilityProtocol
    from openmm_physembed.training.mace_train import train_mace

    with pytest.raises(StabilityError, match=r"got -1"):
        StabilityProtocol(seeds=(-1,))
    with pytest.raises(StabilityError, match="distinct"):
        PRESETS["cpu"].with_changes(seeds=(0, 0))
    largest = (MD_SEED_MAX - 2024) // 100  # test MD seed = protocol seed + 100 x training seed
    assert StabilityProtocol(seeds=(largest,)).test_md_seed(largest) <= MD_SEED_MAX
    with pytest.raises(StabilityError, match=f"training seeds up to {largest} "):
        StabilityProtocol(seeds=(largest + 1,))
    for name in ("train.extxyz", "valid.extxyz"):
        (tmp_path / name).write_text("")
    for seeds, match in (([-1], "got -1"), ([SEED_MAX + 1], "got 4294967296"), ([2, 2], "distinct")):
        with pytest.raises(TrainingError, match=match):
            train_mace(tmp_path / "train.extxyz", tmp_path / "valid.extxyz", tmp_path / "out", seeds=seeds)
    assert not (tmp_path / "out").exists()
