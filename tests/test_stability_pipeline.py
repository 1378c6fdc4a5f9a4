"""The stability pipeline end to end on a tiny molecule, and its resume: a rerun redoes nothing."""

from __future__ import annotations

import json

import pytest

from openmm_physembed.errors import UsageError

pytest.importorskip("torch")  # always before openmmtorch
pytest.importorskip("mace")
pytest.importorskip("openmmtorch")
pytest.importorskip("xtb")

from dataclasses import replace  # noqa: E402

from openmm_physembed import Molecule, StabilityProtocol, run_stability  # noqa: E402
from openmm_physembed.executors import make_executor  # noqa: E402

TINY = StabilityProtocol(
    name="tiny", reference_ps=2.0, frame_interval=20, n_frames=8, n_validation=2, training_preset="quick",
    training_overrides={"max_num_epochs": 2, "num_channels": 8}, seeds=(0,), n_starts=2, test_ps=0.1,
    check_interval=10, charge_method="gasteiger", angles_per_structure=2, cover_every_type=True)
# The platform of the test MD is the protocol's, not a separate argument of run_stability.
TINY = replace(TINY, test_md=replace(TINY.test_md, platform="CPU"))


def test_pipeline_runs_end_to_end_and_a_rerun_redoes_nothing(tmp_path):
    molecule = Molecule.from_smiles("CCO", name="ethanol")
    out = tmp_path / "ethanol"
    first = run_stability(molecule, out, TINY, progress=False, log=lambda *_: None)

    report = json.loads(first.report_path.read_text())
    assert set(report["summary"]) == {"baseline", "augmented"}
    from openmm_physembed.io import read_extxyz

    bent = [atoms.info.get("bent_angles", "") for atoms in read_extxyz(out / "augmentation" / "train.extxyz")]
    assert all(1 <= len(b.split(";")) <= 2 for b in bent) and report["protocol"]["angles_per_structure"] == 2
    assert len(report["trajectories"]) == 2 * len(TINY.seeds) * TINY.n_starts
    for record in report["trajectories"]:
        assert record["stable"] == (record["collapse_step"] is None)
        if not record["stable"]:
            assert record["cause"] in ("bond", "overlap", "nan") and 0 < record["collapse_step"] <= TINY.test_steps
    for summary in report["summary"].values():
        assert summary["n_trajectories"] == TINY.n_starts
        assert 0.0 <= summary["mean_survival_ps"] <= TINY.test_ps + 1e-9
    assert all(p.is_file() and p.stat().st_size > 5_000 for p in first.plots.values())

    # Everything that finished is kept: same files, untouched, same report.
    finished = sorted(p for p in out.rglob("*") if p.is_file() and p.suffix in (".model", ".extxyz", ".npz"))
    assert any(p.suffix == ".model" for p in finished) and any(p.suffix == ".npz" for p in finished)
    stamps = {p: p.stat().st_mtime_ns for p in finished}
    # The rerun goes through an Executor (the pool path, with its checkpoint-following progress bar).
    lines = []
    with make_executor(serial=True) as executor:
        second = run_stability(molecule, out, TINY, executor, progress=True, log=lines.append)
    assert {p: p.stat().st_mtime_ns for p in finished} == stamps
    assert second.summaries == first.summaries
    assert second.wall_s < 0.5 * first.wall_s
    assert sum(line.strip().startswith("MD done:") for line in lines) == 2  # one per model
    # The report carries the survival statistics and an explanation for every collapse.
    assert set(report["comparison"]) >= {"rate_ratio", "p_value", "logrank", "model_level"}
    assert report["comparison"]["model_level"]["n_models"] == [len(TINY.seeds), len(TINY.seeds)]
    assert report["augmentation_coverage"]["unstretched_bond_types"] == []  # cover_every_type is on
    assert len(report["collapses"]) == sum(not r["stable"] for r in report["trajectories"])
    for arm, summary in report["summary"].items():
        exposure = sum(TINY.test_ps if r["stable"] else r["collapse_time_ps"]
                       for r in report["trajectories"] if r["arm"] == arm)
        assert summary["exposure_ps"] == pytest.approx(exposure) and summary["arm"] == arm
    assert all(e["arm"] in ("baseline", "augmented") for e in report["collapses"])
    # The replica MD ran on the protocol's platform (its manifest holds the Dynamics it ran with).
    from openmm_physembed.io import read_json

    for arm in ("baseline", "augmented"):
        manifest = read_json(out / "md" / arm / "seed_0" / "replica_run.json")
        assert manifest["settings"]["dynamics"]["platform"] == "CPU"


def test_md_progress_counts_collapsed_starts_as_covered(tmp_path):
    from openmm_physembed.io import write_json
    from openmm_physembed.simulation.dynamics import Dynamics
    from openmm_physembed.stability.pipeline import _md_progress
    from openmm_physembed.stability.replica_md import ReplicaMDSettings

    settings = ReplicaMDSettings(Dynamics(800.0, 1.0), n_steps=1000)
    jobs = [{"starts": [0] * 4, "settings": settings, "out_dir": str(tmp_path / "a")},
            {"starts": [0] * 4, "settings": settings, "out_dir": str(tmp_path / "b")},
            {"starts": [0] * 4, "settings": settings, "out_dir": str(tmp_path / "c")}]
    write_json(tmp_path / "a" / "replica_run.json", {"state": {"step": 500, "n_active": 3, "outcomes": {
        "1": {"stable": False}}}})
    finished = [{"stable": True}] * 3 + [{"stable": False}]
    covered, collapsed = _md_progress(jobs, [None, finished, None])
    # a: 3 running starts at 0.5 ps + 1 collapsed start counted whole; b: finished; c: not started.
    assert covered == pytest.approx(3 * 0.5 + 1.0 + 4 * 1.0)
    assert collapsed == 2


def test_md_platform_keyword_is_deprecated(tmp_path, monkeypatch):
    from openmm_physembed.sampling import reference_md

    class Stop(Exception):
        pass

    def stop_at_the_reference_md(*args, **kwargs):
        raise Stop

    monkeypatch.setattr(reference_md, "run_gas_phase_md", stop_at_the_reference_md)
    with pytest.warns(DeprecationWarning, match="test_md.platform"), pytest.raises(Stop):
        run_stability(Molecule.from_smiles("CCO", name="ethanol"), tmp_path, TINY, md_platform="Reference",
                      log=lambda *_: None)


def test_cli_overrides_replace_only_what_was_given_and_presets_come_from_the_table(capsys):
    from openmm_physembed.cli import build_parser
    from openmm_physembed.stability.commands import protocol_from_args
    from openmm_physembed.stability.protocol import PRESETS, get_protocol
    from openmm_physembed.training.presets import TRAINING_PRESETS

    parser = build_parser()
    plain = parser.parse_args(["stability", "paracetamol"])
    assert protocol_from_args(plain) == get_protocol("quick")  # nothing given: the preset itself
    args = parser.parse_args(["stability", "paracetamol", "--preset", "cpu", "--seeds", "3", "4", "--temperature",
                              "600", "--random-draw", "--platform", "CPU", "--training-preset", "small"])
    protocol = protocol_from_args(args)
    expected = replace(PRESETS["cpu"], seeds=(3, 4), cover_every_type=False, training_preset="small",
                       test_md=replace(PRESETS["cpu"].test_md, temperature_K=600.0, platform="CPU"))
    assert protocol == expected and protocol.seeds == (3, 4)
    assert protocol.n_starts == PRESETS["cpu"].n_starts and protocol.test_md.timestep_fs == 1.0
    # Every preset of the tables is a choice, and nothing else is.
    for name in PRESETS:
        assert protocol_from_args(parser.parse_args(["stability", "x", "--preset", name])) == PRESETS[name]
    for name in TRAINING_PRESETS:
        assert parser.parse_args(["stability", "x", "--training-preset", name]).training_preset == name
    for bad in (["--preset", "huge"], ["--training-preset", "huge"]):
        with pytest.raises((SystemExit, UsageError)):  # the package's parser raises UsageError (one line)
            parser.parse_args(["stability", "x", *bad])
    capsys.readouterr()
    with pytest.raises(SystemExit):
        parser.parse_args(["stability", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    # Which MACE preset each stability preset trains is named where the choices are explained.
    assert "quick: MACE preset 'cpu'" in text and "paper: MACE preset 'paper'" in text
    assert "one per CPU core, one on a GPU machine" in text  # the stability default of --workers


def test_library_defaults_are_the_published_protocol():
    import inspect

    from openmm_physembed.stability.protocol import PRESETS
    from openmm_physembed.training.mace_train import train_mace

    assert StabilityProtocol() == PRESETS["paper"]
    assert StabilityProtocol().training_preset == inspect.signature(train_mace).parameters["preset"].default == "paper"


def test_with_changes_is_deprecated_and_equals_replace():
    from openmm_physembed.stability.protocol import get_protocol

    quick = get_protocol("quick")
    with pytest.warns(DeprecationWarning, match="dataclasses.replace"):
        changed = quick.with_changes(temperature_K=500.0, n_starts=3, test_ps=None)
    assert changed == replace(quick, n_starts=3, test_md=replace(quick.test_md, temperature_K=500.0))
