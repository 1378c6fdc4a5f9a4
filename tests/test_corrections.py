"""No silent (alpha, a1): explicit values, a published pair (with a warning) or a fit file for this model.

All cheap: the choice is made (and refused) before any box, model or Context is built, so most
tests use stand-in model files whose bytes only feed the sha256.
"""

from __future__ import annotations

import functools
import json
import warnings

import numpy as np
import pytest

from openmm_physembed.cli import main
from openmm_physembed.errors import PhysEmbedError, PotentialError
from openmm_physembed.potentials.correction_choice import (
    PUBLISHED_CORRECTIONS,
    CSOCorrection,
    choose_correction,
    file_sha256,
)
from openmm_physembed.testing import linear_response_density_run


@pytest.fixture
def models(tmp_path):
    """Two stand-in model files with different bytes (different sha256)."""
    paths = []
    for name, content in (("ours.model", b"model one"), ("other.model", b"model two")):
        path = tmp_path / name
        path.write_bytes(content)
        paths.append(path)
    return paths


def fit_for(model_path, tmp_path, name="correction.json", **values) -> str:
    values = {"alpha": -0.05, "a1": 0.8, **values}
    sha = None if model_path is None else file_sha256(model_path)
    correction = CSOCorrection(source="fit-a1", model_sha256=sha,
                               model_file=None if model_path is None else model_path.name, liquid="EMC",
                               temperature_K=298.15, density_g_cm3=1.006, **values)
    return str(correction.write(tmp_path / name))


# ---------------------------------------------------------------------------------------------- the three ways
def test_explicit_values_and_no_default():
    chosen = choose_correction(alpha=-0.05, a1=1.07)
    assert (chosen.alpha, chosen.a1, chosen.s6, chosen.source) == (-0.05, 1.07, 1.0, "explicit")
    assert choose_correction({"alpha": 0.1, "a1": 0.5, "s6": 0.7}).s6 == 0.7
    with pytest.raises(PotentialError, match="no default: give alpha= and a1=.*mace-off23-small.*physembed fit-a1"):
        choose_correction()
    with pytest.raises(PotentialError, match="a1 was given without alpha"):
        choose_correction(a1=1.0)
    with pytest.raises(PotentialError, match="not both"):
        choose_correction("mace-off23-small", a1=1.0)
    with pytest.raises(PotentialError, match="neither a published correction"):
        choose_correction("mace-off24-medium")
    with pytest.raises(PotentialError, match="unknown keys"):
        choose_correction({"alpha": 0.1, "a2": 2.5})


@pytest.mark.parametrize("name", sorted(PUBLISHED_CORRECTIONS))
def test_published_corrections_warn_that_they_belong_to_one_model(name):
    published = PUBLISHED_CORRECTIONS[name]
    with pytest.warns(UserWarning, match=f"fitted for {published.model[:20]}.*wrong"):
        chosen = choose_correction(name.upper())
    assert (chosen.alpha, chosen.a1, chosen.s6) == (published.alpha, published.a1, published.s6)
    assert chosen.source == f"published:{name}"
    assert PUBLISHED_CORRECTIONS["mace-off23-small"].alpha == -0.05  # the paper's values
    assert PUBLISHED_CORRECTIONS["mace-ec-emc"].a1 == 0.6


def test_fit_file_round_trip_and_model_check(models, tmp_path):
    ours, other = models
    path = fit_for(ours, tmp_path, a1_stderr=0.02)
    stored = json.loads(open(path).read())
    assert stored["format"] == "physembed-cso-correction" and stored["version"] == 1
    assert stored["model_sha256"] == file_sha256(ours) and stored["liquid"] == "EMC"
    chosen = choose_correction(path, model_path=ours)
    assert (chosen.alpha, chosen.a1, chosen.a1_stderr, chosen.source) == (-0.05, 0.8, 0.02, path)
    assert CSOCorrection.from_file(path) == chosen

    with pytest.raises(PotentialError, match="fitted for model file 'ours.model'.*not for .*other.model.*"
                                             "--force-correction"):
        choose_correction(path, model_path=other)
    with pytest.raises(PotentialError, match="fitted for model file 'ours.model'.*without a MACE model"):
        choose_correction(path)  # e.g. a GAFF base
    with pytest.warns(UserWarning, match="used anyway"):
        assert choose_correction(path, model_path=other, force=True).a1 == 0.8

    gaff = fit_for(None, tmp_path, name="gaff.json")
    assert choose_correction(gaff).a1 == 0.8
    with pytest.raises(PotentialError, match="fitted for the GAFF base"):
        choose_correction(gaff, model_path=ours)


def test_bad_files_are_named(tmp_path, models):
    (tmp_path / "other.json").write_text(json.dumps({"alpha": 0.1, "a1": 1.0}))
    with pytest.raises(PotentialError, match="not a CSO correction file"):
        choose_correction(str(tmp_path / "other.json"))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(PotentialError, match="cannot read correction file"):
        choose_correction(str(tmp_path / "broken.json"))
    path = fit_for(models[0], tmp_path)
    with pytest.raises(PotentialError, match="does not exist"):
        choose_correction(path, model_path=tmp_path / "missing.model")


# ---------------------------------------------------------------------------------------------- callers
def test_api_callers_refuse_a_missing_choice(models):
    """CorrectedMACESystem and build_liquid_setup decide before loading a model or packing a box."""
    import openmm
    from openmm import app

    from openmm_physembed.potentials.corrected_system import CorrectedMACESystem
    from openmm_physembed.potentials.cso import add_cso_correction
    from openmm_physembed.properties.liquid import LiquidSpec, build_liquid_setup

    topology = app.Topology()
    residue = topology.addResidue("X", topology.addChain())
    topology.addAtom("C", app.Element.getBySymbol("C"), residue)
    with pytest.raises(PotentialError, match="no default"):
        CorrectedMACESystem(models[0], topology, np.zeros((1, 3)))
    system = openmm.System()
    system.addParticle(12.0)
    with pytest.raises(PotentialError, match="no default"):
        add_cso_correction(system, topology, np.zeros((1, 3)))
    with pytest.raises(PotentialError, match="alpha was given without a1"):
        build_liquid_setup(LiquidSpec(("emc",), (10,)), alpha=-0.05)


def test_cli_options(models, tmp_path, capsys):
    ours, other = models
    path = fit_for(ours, tmp_path)
    cases = [
        (["density", "--experiment", "EMC", "--alpha", "-0.05"], "alpha was given without a1"),
        (["density", "--experiment", "EMC", "--a1", "1.0"], "a1 was given without alpha"),
        (["viscosity", "--experiment", "EMC", "--model", str(other), "--correction", path], "fitted for model file"),
        (["transfer", "DMC"], "needs a CSO correction: give --correction FILE"),
        (["transfer", "DMC", "--correction", path], "fitted for model file 'ours.model'"),
        (["fit-a1", "--experiment", "EMC", "--alpha", "-0.05", "--a1", "1"], "--a1-initial"),
        (["fit-a1", "--experiment", "EMC"], "fit-a1 needs --alpha"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)


def test_fit_a1_writes_a_correction_file_the_other_commands_accept(models, tmp_path, monkeypatch, capsys):
    """``physembed fit-a1`` (NPT runs replaced by an exact linear-response stand-in) writes correction.json
    with alpha, a1, s6, the model's sha256, liquid, temperature and density reached."""
    from openmm_physembed.properties.density import a1_fit
    from openmm_physembed.properties.density import commands as density_commands

    ours, other = models
    monkeypatch.setattr(a1_fit, "run_density_task", functools.partial(linear_response_density_run, temperature_K=298.15))
    monkeypatch.setattr(density_commands, "liquid_setup_from_args", lambda args, spec, correction: None)
    out = tmp_path / "fit"
    target = 1.0 + 0.02 * 0.5  # a1 = 0.5
    assert main(["fit-a1", "--experiment", "EMC", "--model", str(ours), "--alpha", "-0.05", "--target", str(target),
                 "--a1-initial", "0", "--tolerance", "0.001", "--min-effective-samples", "1e6", "--serial",
                 "--skip-timing", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"--correction {out / 'correction.json'}" in printed
    stored = json.loads((out / "correction.json").read_text())
    assert stored["alpha"] == -0.05 and stored["s6"] == 1.0 and abs(stored["a1"] - 0.5) < 0.05
    assert stored["model_sha256"] == file_sha256(ours) and stored["model_file"] == "ours.model"
    assert stored["liquid"] == "EMC" and stored["temperature_K"] == 298.15 and stored["method"] == "reweighting"
    assert abs(stored["density_g_cm3"] - target) < 0.001 + 2 * stored["density_stderr_g_cm3"]
    assert stored["density_from"] == "confirming NPT run"

    chosen = choose_correction(str(out / "correction.json"), model_path=ours)
    assert chosen.a1 == stored["a1"]
    assert main(["density", "--experiment", "EMC", "--model", str(other), "--correction",
                 str(out / "correction.json")]) == 2
    assert "refit with `physembed fit-a1`" in capsys.readouterr().err


def test_cli_prints_published_correction_warning_as_one_line(capsys):
    """The toolkit's warnings reach the terminal as one line, like its errors."""
    from openmm_physembed import cli

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = cli._show_warning  # what cli.main installs; restored on exit
        choose_correction("mace-ec-emc")
    err = capsys.readouterr().err
    assert err.startswith("warning: correction 'mace-ec-emc'") and len(err.strip().splitlines()) == 1


def test_errors_are_package_errors():
    with pytest.raises(PhysEmbedError):
        choose_correction()
    with pytest.raises(ValueError):  # PotentialError is a ValueError too
        choose_correction()
