"""NPT density, the fluctuation derivative, MBAR reweighting and the a1 fits, on toy argon."""

import numpy as np
import pytest

from openmm_physembed.errors import PropertyError
from openmm_physembed.properties.density.a1_fit import (
    fit_a1_reweighting,
    pooled_samples,
    scan_a1,
    solve_linear_fit,
    weighted_linear_fit,
)
from openmm_physembed.properties.density.estimators import (
    fluctuation_derivative,
    mbar_predict,
    production_window,
)
from openmm_physembed.properties.density.npt import NPTProtocol, run_density, run_npt
from openmm_physembed.properties.estimates import Estimate
from openmm_physembed.simulation.dynamics import Dynamics
from openmm_physembed.simulation.liquid_setup import LiquidSetup
from openmm_physembed.testing import argon_with_attraction, linear_response_density_run

# A barostat move every 5 steps, not OpenMM's 25: the 125-atom box volume then decorrelates within
# a few ps (30-90 effective samples per run instead of 3-30). With 3, the error bars themselves were
# off by a factor of 4 between runs and the finite-difference test failed at 3.2 sigma on CI.
# 100 K and 20 bar keep every a1 of the scan liquid. The extra attraction at a1 is LJ with
# eps' = eps (1 + 0.3 a1)^2, so its triple point is 83 K x 1.12 = 93 K at a1 = 0.2: at the former
# 85 K and 1 bar those runs were supercooled, and one froze (box below twice the cutoff, N_eff 3).
# 20 bar is well above the model's vapour pressure at 100 K (T* = 0.83: ~7 bar).
TEMPERATURE_K, PRESSURE_BAR = 100.0, 20.0
PROTOCOL = NPTProtocol(Dynamics(TEMPERATURE_K, 5.0, pressure_bar=PRESSURE_BAR, barostat_interval=5, platform="CPU"),
                       n_steps=30_000, report_interval=20, average_last_ps=120.0)


@pytest.fixture(scope="module")
def setup():
    system, topology, positions = argon_with_attraction(cutoff_nm=0.80)
    return LiquidSetup.from_system(system, topology, positions, label="argon")


@pytest.fixture(scope="module")
def scan(setup, tmp_path_factory):
    """The published scan at three a1 values; its runs serve the other tests too."""
    return scan_a1(setup, [0.0, 0.1, 0.2], target_density_g_cm3=1.35,
                   out_dir=tmp_path_factory.mktemp("scan"), protocol=PROTOCOL)


def test_density_is_liquid_argon_and_increases_with_a1(scan):
    densities = [run.density for run in scan.runs]
    # At a1 = 0 the model is the Lennard-Jones fluid (cut at 0.80 nm = 2.35 sigma, with the long-range
    # correction) at T* = kT/eps = 0.8348, P* = P sigma^3/eps = 0.04774. Equations of state of the full
    # LJ fluid there give rho* = 0.7872 (Thol et al., J. Phys. Chem. Ref. Data 2016, 45, 023101),
    # 0.7865 (Johnson, Zollweg & Gubbins, Mol. Phys. 1993, 78, 591), 0.7883 (Kolafa & Nezbeda 1994),
    # computed once with teqp 0.23: 1.3227, 1.3217 and 1.3245 g/cm3 for argon. At a1 the model is
    # again LJ, with eps' = eps (1 + 0.3 a1)^2 and sigma' = sigma (1 + 0.3 a1)^(-1/6), so the same
    # equation of state (Thol) gives 1.3782 at a1 = 0.1 and 1.4307 at a1 = 0.2. Their own
    # uncertainty, 0.003 g/cm3, covers the spread of the three equations and the cutoff/125-atom
    # difference. Measured when written: 1.3224 +/- 0.0047, 1.3751 +/- 0.0055, 1.4233 +/- 0.0037.
    # Allowed: 4 combined standard errors.
    reference, reference_err = (1.3227, 1.3782, 1.4307), 0.003
    for density, expected in zip(densities, reference):
        assert abs(density.value - expected) < 4 * np.hypot(density.stderr, reference_err), (density, expected)
    assert all(0 < d.stderr < 0.02 for d in densities)
    assert densities[0].value < densities[1].value < densities[2].value
    assert scan.n_simulations == 3 and scan.simulated_ps == pytest.approx(3 * 150.0)


def test_fluctuation_derivative_matches_finite_difference(scan):
    low, high = scan.runs[0], scan.runs[2]
    finite_difference = (high.density.value - low.density.value) / 0.2
    fd_err = np.hypot(high.density.stderr, low.density.stderr) / 0.2
    # The response is nearly linear: the mean of the end-point derivatives estimates the chord slope.
    d_low, d_high = low.density_derivative("a1"), high.density_derivative("a1")
    fluct = 0.5 * (d_low.value + d_high.value)
    fluct_err = 0.5 * np.hypot(d_low.stderr, d_high.stderr)
    assert fluct > 0 and finite_difference > 0
    assert abs(fluct - finite_difference) < 3 * np.hypot(fd_err, fluct_err)


def test_mbar_predicts_an_unsampled_a1(scan):
    low, middle, high = scan.runs
    prediction = mbar_predict(pooled_samples([low, high]), [0.1], unit="g/cm3")[0]
    assert prediction.effective_samples > 10
    error = np.hypot(prediction.observable.stderr, middle.density.stderr)
    assert abs(prediction.observable.value - middle.density.value) < 3 * error
    # At a sampled state, reweighting must reproduce that run's own production mean closely.
    at_low = mbar_predict(pooled_samples([low, high]), [0.0])[0]
    assert abs(at_low.observable.value - low.density.value) < 3 * low.density.stderr


def test_scan_fit_matches_the_lennard_jones_equation_of_state(scan):
    # The same equation of state (see above) reaches 1.35 g/cm3 at a1 = 0.0484 (Thol 2016; JZG 0.0493,
    # Kolafa-Nezbeda 0.0451) and its chord from a1 = 0 to 0.2 has slope 0.540 g/cm3 per a1 (0.551,
    # 0.536). Reference uncertainties 0.003 (a1) and 0.01 (slope) cover that spread and the bias of a
    # straight line through a slightly concave response (+0.002 in a1). Measured when written:
    # slope 0.504 +/- 0.030, a1 0.0536 +/- 0.0064. Allowed: 4 combined standard errors.
    slope = scan.linear_fit.slope
    assert abs(slope.value - 0.540) < 4 * np.hypot(slope.stderr, 0.01)
    assert scan.a1.stderr > 0
    assert abs(scan.a1.value - 0.0484) < 4 * np.hypot(scan.a1.stderr, 0.003)


def test_scan_solves_a_synthetic_linear_response():
    rng = np.random.default_rng(3)
    a1 = np.linspace(0.0, 1.5, 6)
    true_slope, true_intercept, target = 0.062, 0.985, 1.006
    data = [Estimate(true_intercept + true_slope * a + rng.normal(0, 0.001), 0.001, 50, "g/cm3") for a in a1]
    fit = weighted_linear_fit(a1, data)
    solution = solve_linear_fit(fit, target)
    truth = (target - true_intercept) / true_slope
    assert abs(solution.value - truth) < 3 * solution.stderr
    assert solution.stderr < 0.05
    with pytest.raises(PropertyError, match="two or more"):
        weighted_linear_fit([0.5, 0.5], data[:2])


def test_fluctuation_derivative_of_a_known_gaussian_model():
    """A(x) = c + s x and dU/dlambda = -x with x ~ N(0, sigma^2): d<A>/dlambda = beta s sigma^2."""
    rng = np.random.default_rng(7)
    temperature = 300.0
    beta = 1.0 / (0.00831446261815324 * temperature)
    x = rng.normal(0.0, 2.0, 20_000)
    estimate = fluctuation_derivative(1.0 + 0.01 * x, -x, temperature)
    assert estimate.value == pytest.approx(beta * 0.01 * 4.0, rel=5 * estimate.stderr / estimate.value)


def test_production_window_and_bad_series():
    rng = np.random.default_rng(1)
    series = np.concatenate([np.linspace(0.8, 1.0, 200), 1.0 + 0.01 * rng.normal(size=800)])
    window = production_window(series, window_start=500)
    assert window.start >= 500 and window.equilibrated
    with pytest.raises(PropertyError, match="NaN"):
        production_window(np.array([1.0] * 20 + [np.nan]))


def test_rerun_reloads_finished_npt(scan, setup, monkeypatch):
    from openmm.app import Simulation

    def no_steps(self, steps):
        raise AssertionError("finished NPT ran again")

    monkeypatch.setattr(Simulation, "step", no_steps)
    first = scan.runs[0]
    again = run_density(setup, first.directory, PROTOCOL, parameters={"a1": 0.0}, progress=False)
    assert again.density == first.density


def test_npt_refuses_non_periodic_systems(tmp_path):
    import openmm

    system = openmm.System()
    system.addParticle(1.0)
    with pytest.raises(PropertyError, match="periodic"):
        run_density(LiquidSetup.from_system(system, None, np.zeros((1, 3)), np.eye(3)), tmp_path, PROTOCOL)
    with pytest.raises(PropertyError, match="periodic"), pytest.warns(DeprecationWarning, match="run_density"):
        run_npt(system, None, np.zeros((1, 3)), tmp_path, PROTOCOL)


def test_deprecated_run_npt_is_run_density_on_the_callers_system(setup, tmp_path):
    """The old signature (System, topology, positions) gives the very same run as the LiquidSetup one."""
    protocol = NPTProtocol(Dynamics(TEMPERATURE_K, 5.0, pressure_bar=PRESSURE_BAR, barostat_interval=5,
                                    platform="Reference"), n_steps=400, report_interval=20, average_last_ps=1.0)
    new = run_density(setup, tmp_path / "new", protocol, parameters={"a1": 0.1}, progress=False)
    with pytest.warns(DeprecationWarning, match="run_density"):
        old = run_npt(setup.system(), setup.topology, setup.positions_nm, tmp_path / "old", protocol,
                      box_vectors_nm=setup.box_vectors_nm, parameters={"a1": 0.1}, progress=False)
    assert len(new.volume_nm3) == 20 and np.std(new.volume_nm3) > 0
    np.testing.assert_array_equal(old.volume_nm3, new.volume_nm3)
    np.testing.assert_array_equal(old.derivatives_kj_mol["a1"], new.derivatives_kj_mol["a1"])
    assert old.density == new.density


@pytest.mark.slow
def test_reweighting_fit_reaches_target_with_few_simulations(setup, tmp_path):
    result = fit_a1_reweighting(setup, 1.40, tmp_path, a1_initial=0.0, protocol=PROTOCOL,
                                min_effective_samples=30, tolerance_g_cm3=0.004)
    assert abs(result.final_density.value - 1.40) < 0.004 + 2 * result.final_density.stderr
    assert result.n_simulations <= 5
    # The LJ equation of state (see test_density_is_liquid_argon...) reaches 1.40 g/cm3 at a1 = 0.1408
    # (Thol 2016; JZG 0.1397, Kolafa-Nezbeda 0.1380; reference uncertainty 0.004). The fit stops within
    # 0.004 g/cm3 of the target, i.e. 0.004 / 0.52 in a1, on top of 4 combined standard errors.
    assert abs(result.a1.value - 0.1408) < 0.004 / 0.52 + 4 * np.hypot(result.a1.stderr, 0.004)


def test_mace_liquid_travels_to_workers_without_torchforce_xml(tmp_path):
    """A MACE + CSO liquid crosses process boundaries (TorchForce rebuilt, not deserialised)."""
    import openmm

    from openmm_physembed.chem.box import build_box
    from openmm_physembed.chem.molecule import Molecule
    from openmm_physembed.executors import make_executor
    from openmm_physembed.potentials.corrected_system import CorrectedMACESystem
    from openmm_physembed.properties.density.tasks import DensityTask, run_density_task
    from openmm_physembed.testing import make_random_mace_model

    model = make_random_mace_model(tmp_path / "m.model", atomic_numbers=(1, 6, 8), interaction_scale_ev=0.05)
    box = build_box([Molecule.from_name("ec")], counts=[12], box_edge_nm=1.4, charge_method="gasteiger")
    corrected = CorrectedMACESystem(model, box.topology, box.positions_nm, alpha=0.5, a1=1.0, cutoff_nm=0.6,
                                    dtype="float64")
    setup = LiquidSetup.from_corrected(corrected, box.box_vectors_nm, label="ec")
    assert 'type="TorchForce"' not in setup.system_xml

    def energy(system):
        context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("CPU"))
        context.setPositions(box.positions_nm)
        return context.getState(getEnergy=True).getPotentialEnergy()._value

    assert energy(setup.system()) == pytest.approx(energy(corrected.system), rel=1e-10)
    protocol = NPTProtocol(Dynamics(300.0, 0.5, pressure_bar=1.0, platform="CPU"), n_steps=60, report_interval=5,
                           average_last_ps=0.02, minimize=False)
    task = DensityTask(setup, protocol, {"a1": 1.0}, tmp_path / "npt")
    with make_executor(max_workers=1) as executor:
        result = executor.submit(run_density_task, task).result()
    assert np.all(np.isfinite(result.density_g_cm3)) and len(result.density_g_cm3) == 12
    assert "a1" in result.derivatives_kj_mol and np.all(result.derivatives_kj_mol["a1"] < 0)


def test_npt_on_the_callers_system_moves_the_box_and_leaves_the_system_as_it_was(setup, tmp_path):
    """The barostat lives in the caller's System for the run only; the box must really fluctuate."""
    system = setup.system()
    n_forces = system.getNumForces()
    protocol = NPTProtocol(Dynamics(TEMPERATURE_K, 5.0, pressure_bar=PRESSURE_BAR), n_steps=2000,
                           report_interval=20, average_last_ps=5.0)  # default platform: Reference for a small box
    for a1 in (0.0, 0.2):
        result = run_density(setup, tmp_path / f"a1_{a1}", protocol, system=system, parameters={"a1": a1},
                             progress=False)
        assert system.getNumForces() == n_forces
        assert np.std(result.volume_nm3[len(result.volume_nm3) // 2:]) > 1e-3 * np.mean(result.volume_nm3)


def test_reweighting_fit_steps_on_when_even_its_last_run_is_too_short_to_reweight(tmp_path, monkeypatch):
    """With fewer effective samples than the limit at every a1, each new simulation must still move by
    one capped Newton step (it once re-ran the same a1 until max_simulations) and the fit must stop
    on a direct run within tolerance."""
    from openmm_physembed.properties.density import a1_fit

    monkeypatch.setattr(a1_fit, "run_density_task", linear_response_density_run)
    true_a1, target = 2.5, 1.0 + 0.02 * 2.5
    result = fit_a1_reweighting(None, target, tmp_path, a1_initial=0.0, protocol=PROTOCOL,
                                tolerance_g_cm3=0.001, min_effective_samples=1e6, max_step=1.0)
    simulated = [event["a1"] for event in result.history if event["event"] == "simulation"]
    assert simulated[:3] == pytest.approx([0.0, 1.0, 2.0])
    assert result.n_simulations == 4 == len(simulated)
    assert abs(result.a1.value - true_a1) < max(3 * result.a1.stderr, 0.05)
    assert abs(result.final_density.value - target) <= 0.001 + 2 * result.final_density.stderr


def test_wall_time_estimate_arithmetic_and_timing_run(setup):
    from openmm_physembed.properties.density.wall_time import (
        estimate_message,
        time_npt_step,
        worth_estimating,
    )

    paper = NPTProtocol()  # 1 ns at 1 fs
    # 10 ms/step: 1e6 steps = 1e4 s = 2.8 h per run; 4 runs on 2 workers = 2 rounds = 5.6 h.
    assert estimate_message(0.01, paper, 4, workers=2).endswith("takes ~2.8 h; 4 run(s) with 2 worker(s): ~5.6 h")
    assert estimate_message(0.01, paper, (2, 6)).endswith("2-6 run(s) with 1 worker(s): ~5.6 h-16.7 h")
    assert estimate_message(2.0, paper, 1).endswith("~23.1 days")  # a CPU MACE liquid: weeks, say so
    assert worth_estimating(paper) and not worth_estimating(NPTProtocol(n_steps=1000))
    seconds, platform = time_npt_step(setup, PROTOCOL, {"a1": 0.1}, n_steps=5)
    assert seconds > 0 and platform == "CPU"
