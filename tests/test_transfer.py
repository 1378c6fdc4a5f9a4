"""Transfer table: a fitted (alpha, a1) applied to another liquid, without and with the correction."""

import json
from dataclasses import replace

import numpy as np
import pytest

from openmm_physembed.cli import main
from openmm_physembed.errors import PropertyError
from openmm_physembed.properties.density import NPTProtocol
from openmm_physembed.properties.density_commands import parse_transfer_case
from openmm_physembed.properties.liquid import LiquidSpec, build_liquid_setup
from openmm_physembed.properties.tasks import DensityTask, run_density_task
from openmm_physembed.properties.transfer import format_transfer_table, mean_absolute_errors, run_transfer

PROTOCOL = NPTProtocol(n_steps=600, timestep_fs=1.0, report_interval=20, average_last_ps=0.4, platform="Reference")


def test_cases_resolve_against_the_shipped_table():
    assert parse_transfer_case("EC").temperature_K == pytest.approx(313.15)
    assert parse_transfer_case("emc@298.15").density_g_cm3 == pytest.approx(1.006)
    for bad in ("EMC@400", "EMC@warm", "no-such-liquid"):
        with pytest.raises(PropertyError):
            parse_transfer_case(bad)


def test_cli_refuses_alpha_zero(capsys):
    assert main(["transfer", "DMC", "--alpha", "0"]) == 2
    assert "alpha" in capsys.readouterr().err


def test_transfer_runs_each_case_without_and_with_the_correction(tmp_path):
    case = parse_transfer_case("DMC")

    def make_setup(row):
        spec = LiquidSpec.from_experiment(row, n_molecules=20)
        return build_liquid_setup(spec, alpha=0.5, a1=1.0, cso_cutoff_nm=0.6, gaff_cutoff_nm=0.6,
                                  charge_method="gasteiger")

    rows = run_transfer([case], make_setup, alpha=0.5, a1=1.0, out_dir=tmp_path, protocol=PROTOCOL)
    (row,) = rows
    assert row.system == "DMC" and row.experiment_g_cm3 == pytest.approx(1.060)
    for estimate in (row.without_correction, row.with_correction):
        assert 0.6 < estimate.value < 1.6 and estimate.stderr > 0
    without, with_ = mean_absolute_errors(rows)
    assert without == pytest.approx(abs(row.without_correction.value - 1.060))
    assert with_ == pytest.approx(abs(row.with_correction.value - 1.060))
    assert "density MAE" in format_transfer_table(rows)
    stored = json.loads((tmp_path / "transfer.json").read_text())
    assert stored["alpha"] == 0.5 and stored["rows"][0]["with"]["value"] == pytest.approx(row.with_correction.value)

    # The runs really used alpha = 0 and alpha = 0.5: dU/da1 = alpha * dE_CSO/da1 with dE_CSO/da1 < 0.
    run_dir = tmp_path / "DMC_298.15K"
    setup = make_setup(case)
    protocol = replace(PROTOCOL, temperature_K=case.temperature_K)
    uncorrected = run_density_task(DensityTask(setup, protocol, {"alpha": 0.0, "a1": 1.0}, run_dir / "uncorrected"))
    corrected = run_density_task(DensityTask(setup, protocol, {"alpha": 0.5, "a1": 1.0}, run_dir / "corrected"))
    assert uncorrected.density.value == pytest.approx(row.without_correction.value)
    assert np.all(np.asarray(uncorrected.derivatives_kj_mol["a1"]) == 0.0)
    assert np.all(np.asarray(corrected.derivatives_kj_mol["a1"]) < -1.0)
