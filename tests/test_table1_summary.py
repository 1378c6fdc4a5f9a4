"""The Table 1 summary's arithmetic (benchmarks/liquid/table1_summary.py) against Monte Carlo."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

LIQUID = Path(__file__).resolve().parents[1] / "benchmarks" / "liquid"
sys.path.insert(0, str(LIQUID))

from table1_cpu import molecules_for_edge  # noqa: E402
from table1_summary import fit_confirmed, mae_with_error, percent_change  # noqa: E402


def test_mae_error_matches_monte_carlo_with_a_shared_parameter():
    """Rows with independent run errors plus one fitted parameter shared by all rows (a1)."""
    rng = np.random.default_rng(7)
    true_dev = np.array([0.020, 0.015, 0.030, 0.012, -0.025])  # a few SE from zero: the sign is known
    se = np.array([0.003, 0.004, 0.003, 0.002, 0.004])
    slopes = np.array([0.05, 0.04, 0.06, 0.05, 0.045])  # g/cm3 per unit a1
    a1_se = 0.08
    shared = rng.normal(0.0, a1_se, 20000)
    draws = true_dev + rng.normal(0.0, se, (20000, 5)) + slopes * shared[:, None]
    mc = np.mean(np.abs(draws), axis=1)
    mae, err = mae_with_error(true_dev, se, slopes, a1_se)
    assert mae == pytest.approx(np.mean(np.abs(true_dev)))
    # The Monte Carlo spread's own error is ~0.5 % at 20000 draws; first order holds to a few %.
    assert err == pytest.approx(np.std(mc), rel=0.05)
    # Without the shared term the error is too small by a wide margin: the term matters.
    _, err_independent = mae_with_error(true_dev, se)
    assert err_independent < 0.6 * np.std(mc)


def test_percent_change_error_matches_monte_carlo():
    rng = np.random.default_rng(3)
    before, after = (0.030, 0.002), (0.008, 0.0015)
    b = rng.normal(*before, 50000)
    a = rng.normal(*after, 50000)
    value, err = percent_change(before, after)
    assert value == pytest.approx(100 * (0.008 / 0.030 - 1))
    assert err == pytest.approx(np.std(100 * (a / b - 1)), rel=0.05)


def test_fit_confirmed_is_the_issues_test():
    assert fit_confirmed((1.099, 0.002), 1.095)  # 0.004 off, inside 0.005
    assert fit_confirmed((1.103, 0.002), 1.095)  # 0.008 off, inside 0.005 + 2 x 0.002
    assert not fit_confirmed((1.105, 0.002), 1.095)


def test_density_boxes_are_the_smallest_legal_ones():
    # EMC: 104.105 g/mol at 1.006 g/cm3 is 0.1718 nm3 per molecule; (1.25 nm)^3 = 1.953 nm3 -> 12 molecules
    assert molecules_for_edge("EMC", 1.006) == 12
    assert molecules_for_edge("EC", 1.321) == 18
    n = molecules_for_edge("EC:EMC 3:7", 1.095)
    assert 12 < n < 18


def test_plan_runs_without_work(tmp_path):
    result = subprocess.run([sys.executable, str(LIQUID / "table1_cpu.py"), "--plan", "--out", str(tmp_path / "run"),
                             "--results", str(tmp_path / "results")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "total" in result.stdout and "viscosity" in result.stdout
    assert not (tmp_path / "run").exists() and not (tmp_path / "results").exists()
