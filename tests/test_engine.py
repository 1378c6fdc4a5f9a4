"""The MD engine, its Dynamics, the job directory and the peer-bug workarounds."""

import numpy as np
import openmm
import pytest

from openmm_physembed.errors import SamplingError, SimulationError
from openmm_physembed.jobs import JobDirectory
from openmm_physembed.simulation.dynamics import Dynamics
from openmm_physembed.simulation.engine import MDEngine, run_md
from openmm_physembed.simulation.runner import ArrayRecorder, positions_sampler
from openmm_physembed.testing import argon_with_attraction
from openmm_physembed.units import BOLTZMANN_KJ_PER_MOL_K


def _argon():
    return argon_with_attraction(n_per_side=3, edge_nm=1.9, cutoff_nm=0.9)


# ---------------------------------------------------------------------------------------------- Dynamics
def test_dynamics_builds_the_integrator_it_names():
    langevin = Dynamics(310.0, 2.0, friction_per_ps=5.0, seed=7).integrator()
    assert isinstance(langevin, openmm.LangevinMiddleIntegrator)
    assert langevin.getTemperature()._value == 310.0 and langevin.getFriction()._value == 5.0
    assert langevin.getStepSize()._value == pytest.approx(0.002) and langevin.getRandomNumberSeed() == 7
    assert Dynamics(thermostat="langevin", seed=7).integrator(seed=9).getRandomNumberSeed() == 9
    nose_hoover = Dynamics(250.0, thermostat="nose-hoover", friction_per_ps=2.0).integrator()
    assert isinstance(nose_hoover, openmm.NoseHooverIntegrator)
    assert nose_hoover.getCollisionFrequency()._value == 2.0 and nose_hoover.getTemperature()._value == 250.0
    assert isinstance(Dynamics(thermostat="verlet").integrator(), openmm.VerletIntegrator)
    assert Dynamics().barostat() is None
    barostat = Dynamics(320.0, pressure_bar=5.0, barostat_interval=7).barostat()
    assert (barostat.getDefaultPressure()._value, barostat.getDefaultTemperature()._value,
            barostat.getFrequency()) == (5.0, 320.0, 7)
    with pytest.raises(SimulationError, match="thermostat"):
        Dynamics(thermostat="berendsen")


# ---------------------------------------------------------------------------------------------- engine
def test_engine_adds_its_barostat_for_the_run_only_and_refuses_a_second(tmp_path):
    system, topology, positions = _argon()
    before = openmm.XmlSerializer.serialize(system)
    with MDEngine(system, topology, positions, Dynamics(120.0, 5.0, pressure_bar=1.0, platform="Reference")) as md:
        assert system.getNumForces() == 2
        assert md.context.getSystem().getForce(1).getDefaultPressure()._value == 1.0
    assert openmm.XmlSerializer.serialize(system) == before
    system.addForce(openmm.MonteCarloBarostat(1.0, 120.0))
    with pytest.raises(SimulationError, match="already has a barostat"):
        MDEngine(system, topology, positions, Dynamics(120.0, pressure_bar=1.0, platform="Reference"))


def _platform_defaults() -> dict[str, dict[str, str]]:
    platforms = (openmm.Platform.getPlatform(i) for i in range(openmm.Platform.getNumPlatforms()))
    return {p.getName(): {k: p.getPropertyDefaultValue(k) for k in p.getPropertyNames()} for p in platforms}


def test_building_the_toolkits_contexts_leaves_the_platform_defaults_unchanged(tmp_path):
    """A Platform is shared by every Context of the process, the user's included: the engine hands its
    CPU threads (and a GPU's precision) to its own Context as properties, and changes no default."""
    from openmm_physembed.simulation.platforms import available_platforms, choose_platform, platform_properties
    from openmm_physembed.workarounds import min_cpu_threads

    system, topology, positions = _argon()
    cpu = openmm.Platform.getPlatformByName("CPU")
    threads_before = cpu.getPropertyDefaultValue("Threads")
    try:
        cpu.setPropertyDefaultValue("Threads", "1")  # OPENMM_CPU_THREADS=1: the one-thread trap
        before = _platform_defaults()
        for name in available_platforms():
            platform_properties(choose_platform(name), "double")
        with MDEngine(system, topology, positions, Dynamics(120.0, 5.0, platform="CPU"),
                      platform_precision="double") as md:
            # The engine's own Context still gets the workaround's threads.
            assert md.context.getPlatform().getPropertyValue(md.context, "Threads") == str(min_cpu_threads())
            md.simulation.step(5)
        run_md(system, topology, positions, Dynamics(120.0, 5.0, platform="Reference"), 10, tmp_path / "ref")
        assert _platform_defaults() == before
        assert before["CPU"]["Threads"] == "1"
    finally:
        cpu.setPropertyDefaultValue("Threads", threads_before)


def test_old_precision_keyword_of_the_engine_still_works_with_a_warning():
    system, topology, positions = _argon()
    with pytest.warns(DeprecationWarning, match="platform_precision"):
        MDEngine(system, topology, positions, Dynamics(120.0, platform="Reference"), precision="double").close()
    with pytest.raises(SimulationError, match="platform precision must be one of"):
        MDEngine(system, topology, positions, Dynamics(120.0, platform="Reference"), platform_precision="half")


def test_run_md_extended_equals_one_uninterrupted_run(tmp_path):
    """A run extended to more steps continues from its checkpoint (Langevin RNG included): bitwise equal."""
    system, topology, positions = _argon()
    dynamics = Dynamics(120.0, 5.0, seed=3, platform="Reference")

    def run(directory, n_steps):
        return run_md(system, topology, positions, dynamics, n_steps, directory,
                      [ArrayRecorder("x", 20, positions_sampler)], {"case": "extend"}, block_steps=40)["x"]

    whole = run(tmp_path / "whole", 200)
    run(tmp_path / "parts", 120)
    extended = run(tmp_path / "parts", 200)
    np.testing.assert_array_equal(extended["step"], whole["step"])
    np.testing.assert_array_equal(extended["positions_nm"], whole["positions_nm"])
    with pytest.raises(SimulationError, match="changed: dynamics"):
        run_md(system, topology, positions, dynamics.with_changes(temperature_K=130.0), 200, tmp_path / "whole",
               settings={"case": "extend"})


def test_engine_thermostat_holds_its_temperature(tmp_path):
    """Langevin at 150 K: mean kinetic temperature within 4 standard errors of the target.

    Per frame, T fluctuates with relative std sqrt(2 / N_dof); frames 100 steps (0.5 ps) apart at
    friction 5/ps are about independent, so the standard error is T sqrt(2 / N_dof) / sqrt(frames).
    """
    system, topology, positions = _argon()
    n_dof = 3 * system.getNumParticles()  # no CMMotionRemover in this System
    dynamics = Dynamics(150.0, 5.0, friction_per_ps=5.0, seed=11, platform="Reference")

    def kinetic(simulation, state):
        return {"kinetic_kj_mol": np.float64(state.getKineticEnergy()._value)}

    records = run_md(system, topology, positions, dynamics, 20_000, tmp_path, [ArrayRecorder("k", 100, kinetic,
                     ("energy",))], minimize_iterations=50, block_steps=5000)["k"]
    temperature = 2 * records["kinetic_kj_mol"][20:] / (n_dof * BOLTZMANN_KJ_PER_MOL_K)
    stderr = 150.0 * np.sqrt(2.0 / n_dof) / np.sqrt(len(temperature))
    assert abs(temperature.mean() - 150.0) < 4 * stderr


# ---------------------------------------------------------------------------------------------- jobs
def test_job_directory_refuses_other_settings_and_resumes_the_same(tmp_path):
    job = JobDirectory(tmp_path, "test run", {"a": 1, "b": (1, 2), "path": "/x"}, ignore=("path",),
                       error=SamplingError).open()
    job.save_state(step=10)
    assert not job.finished and job.state == {"step": 10}
    again = JobDirectory(tmp_path, "test run", {"a": 1, "b": [1, 2], "path": "/moved"}, ignore=("path",)).open()
    assert again.state == {"step": 10} and again.read()["settings"]["path"] == "/moved"
    with pytest.raises(SamplingError, match=r"holds a test run with different settings \(changed: a, c\)"):
        JobDirectory(tmp_path, "test run", {"a": 2, "b": [1, 2], "c": 0}, ignore=("path",), error=SamplingError).open()
    again.finish(n=3)
    assert again.finished and again.summary == {"n": 3}
    fresh = JobDirectory(tmp_path, "test run", {"a": 2}).open(overwrite=True)
    assert not fresh.finished and fresh.state == {} and fresh.read()["settings"] == {"a": 2}
    taken_over = JobDirectory(tmp_path, "test run", {"a": 5}).open(compare=lambda: False)
    assert taken_over.read()["settings"] == {"a": 5}


# ---------------------------------------------------------------------------------------------- workarounds
def test_workarounds_follow_the_installed_versions(monkeypatch):
    from openmm_physembed import workarounds

    # The pinned stack is the affected one: every workaround is on, and two CPU threads are the floor.
    assert workarounds.installed_version("openmm") == "8.6.1"
    assert all(w.active() for w in workarounds.WORKAROUNDS)
    assert workarounds.min_cpu_threads() == 2
    fixed = workarounds.Workaround("openmm", "8.6.0", "p", "r")
    assert not fixed.active()  # a release past the last affected one switches it off
    monkeypatch.setattr(workarounds, "CPU_SINGLE_THREAD", fixed)
    assert workarounds.min_cpu_threads() == 1


# ---------------------------------------------------------------------------------------------- NPT runner
def test_npt_runner_records_states_that_a_fresh_context_reproduces(tmp_path):
    """run_npt_md on a LiquidSetup with the one frame sampler: each record is the State it claims."""
    from openmm import unit

    from openmm_physembed.simulation.liquid_setup import LiquidSetup
    from openmm_physembed.simulation.npt import run_npt_md
    from openmm_physembed.simulation.runner import state_recorder

    system, topology, positions = _argon()
    liquid = LiquidSetup.from_system(system, topology, positions, label="argon")
    recorder = state_recorder("frames", 50, ("positions", "box", "potential_energy", "kinetic_energy", "volume"),
                              positions_dtype=np.float64, derivative_parameters=("a1",))
    assert set(recorder.include) == {"positions", "energy", "parameterDerivatives"}
    dynamics = Dynamics(100.0, 5.0, pressure_bar=20.0, barostat_interval=5, platform="Reference")
    records = run_npt_md(liquid, dynamics, 500, tmp_path, [recorder], parameters={"a1": 0.1})["frames"]
    assert records["positions_nm"].dtype == np.float64 and len(records["step"]) == 10
    assert np.std(records["volume_nm3"]) > 0  # the barostat moved the box
    np.testing.assert_allclose(records["volume_nm3"], np.abs(np.linalg.det(records["box_nm"])), rtol=1e-12)
    context = openmm.Context(liquid.system(), openmm.VerletIntegrator(1e-3),
                             openmm.Platform.getPlatformByName("Reference"))
    context.setParameter("a1", 0.1)
    for k in (0, 9):
        context.setPeriodicBoxVectors(*records["box_nm"][k])
        context.setPositions(records["positions_nm"][k])
        state = context.getState(getEnergy=True, getParameterDerivatives=True)
        assert records["potential_energy_kj_mol"][k] == pytest.approx(
            state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole), rel=1e-9)
        assert records["dU_da1"][k] == pytest.approx(state.getEnergyParameterDerivatives()["a1"], rel=1e-9)
    assert np.all(records["kinetic_energy_kj_mol"] > 0)
    with pytest.raises(SimulationError, match="pressure_bar"):
        run_npt_md(liquid, Dynamics(100.0), 10, tmp_path / "nvt")
    with pytest.raises(SimulationError, match="unknown State field"):
        state_recorder("x", 10, ("velocity",))
