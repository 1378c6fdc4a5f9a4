"""Hydrogen mass repartitioning: OpenMM's convention, masses in the Context, energy conservation at 2 fs, the CLI."""

import json
import os

import numpy as np
import openmm
import pytest
from openmm import app, unit

from openmm_physembed.cli import main
from openmm_physembed.errors import SimulationError
from openmm_physembed.jobs import JobDirectory
from openmm_physembed.simulation.dynamics import Dynamics
from openmm_physembed.simulation.engine import MDEngine
from openmm_physembed.simulation.masses import particle_masses_amu, repartitioned_masses


@pytest.fixture(scope="module")
def emc_box():
    from openmm_physembed.chem.box import build_box
    from openmm_physembed.chem.molecule import Molecule

    return build_box([Molecule.from_name("emc")], counts=[12], density_g_cm3=1.0, charge_method="gasteiger", seed=1)


def _villin():
    """Villin headpiece without water and ions (OpenMM's own test structure): CH, CH2, CH3, NH, NH3+, OH."""
    pdb = app.PDBFile(os.path.join(os.path.dirname(app.__file__), "data", "test.pdb"))
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.deleteWater()
    modeller.delete([a for a in modeller.topology.atoms() if a.residue.name.upper() in ("CL", "NA")])
    return modeller.topology


@pytest.mark.parametrize("hydrogen_mass", [2.0, 3.0, 4.0])
def test_masses_are_openmms_own_repartitioning(hydrogen_mass):
    topology = _villin()
    forcefield = app.ForceField("amber14-all.xml")
    plain = forcefield.createSystem(topology)
    reference = particle_masses_amu(forcefield.createSystem(topology, hydrogenMass=hydrogen_mass * unit.amu))
    masses = repartitioned_masses(plain, topology, hydrogen_mass)
    np.testing.assert_allclose(masses, reference, rtol=0, atol=1e-12)
    n_h = sum(a.element is app.element.hydrogen for a in topology.atoms())
    assert np.count_nonzero(masses == hydrogen_mass) == n_h == 293
    assert masses.sum() == pytest.approx(particle_masses_amu(plain).sum(), abs=1e-9)


def test_emc_masses_by_hand(emc_box):
    """EMC, CH3-CH2-O-C(=O)-O-CH3, GAFF masses C 12.01, H 1.008, O 16.00: at 3 amu each H gains 1.992,
    each methyl C loses 3 x 1.992 (to 6.034), the CH2 carbon 2 x 1.992 (to 8.026); O and C=O keep theirs."""
    system = emc_box.create_system(nonbonded_cutoff_nm=0.6)
    before = particle_masses_amu(system)
    after = repartitioned_masses(system, emc_box.topology, 3.0)
    symbols = [a.element.symbol for a in emc_box.topology.atoms()]
    n_hydrogens = np.zeros(len(symbols), dtype=int)
    for a, b in emc_box.topology.bonds():
        n_hydrogens[a.index] += b.element.symbol == "H"
        n_hydrogens[b.index] += a.element.symbol == "H"
    expected = {"H": {0: 3.0}, "O": {0: 16.00}, "C": {0: 12.01, 2: 8.026, 3: 6.034}}
    for i, symbol in enumerate(symbols):
        assert after[i] == pytest.approx(expected[symbol][n_hydrogens[i]], abs=1e-9), (i, symbol)
    one = slice(0, 15)
    assert sorted(n_hydrogens[one][np.array(symbols[one]) == "C"]) == [0, 2, 3, 3]
    assert after[one].sum() == pytest.approx(4 * 12.01 + 8 * 1.008 + 3 * 16.00, abs=1e-9)
    assert after.sum() == pytest.approx(before.sum(), rel=1e-14)
    assert before.sum() == pytest.approx(emc_box.total_mass_amu, rel=1e-4)


def test_refuses_a_mass_that_empties_a_heavy_atom(emc_box):
    system = emc_box.create_system(nonbonded_cutoff_nm=0.6)
    # A methyl carbon (12.01) with three H (1.008) reaches zero at (12.01 + 3 x 1.008) / 3 = 5.011 amu.
    with pytest.raises(SimulationError, match=r"would leave atom C.* use less than 5\.011 amu"):
        repartitioned_masses(system, emc_box.topology, 5.5)
    assert repartitioned_masses(system, emc_box.topology, 5.0).min() > 0
    with pytest.raises(SimulationError, match="positive number of amu"):
        Dynamics(hydrogen_mass_amu=0.0)
    with pytest.raises(SimulationError, match="positive number of amu"):
        Dynamics(hydrogen_mass_amu=float("nan"))


def _kinetic_energy_in_context(system, topology, positions, hydrogen_mass):
    """KE the platform computes from set velocities, and 0.5 sum m v^2 with the System's masses during the run.

    Velocities are thermal for the System's own masses, so the KE of the repartitioned ones is about
    twice as large (3x on H, 1/2 on methyl C); the step is tiny (Verlet reports KE half a step
    shifted, which then moves nothing).
    """
    dynamics = Dynamics(300.0, 1e-6, thermostat="verlet", platform="CPU", hydrogen_mass_amu=hydrogen_mass)
    velocities = _velocities(particle_masses_amu(system))
    with MDEngine(system, topology, positions, dynamics) as md:
        md.context.setVelocities(velocities)
        kinetic = md.context.getState(getEnergy=True).getKineticEnergy()._value
        masses = particle_masses_amu(md.context.getSystem())
    return kinetic, 0.5 * np.sum(masses[:, None] * velocities**2), masses


def _velocities(masses_amu):
    return np.random.default_rng(0).normal(size=(len(masses_amu), 3)) / np.sqrt(masses_amu)[:, None]


@pytest.mark.parametrize("base", ["gaff", "mace"])
def test_the_context_integrates_with_the_repartitioned_masses(base, emc_box, tmp_path):
    if base == "gaff":
        system = emc_box.create_system(nonbonded_cutoff_nm=0.6)
    else:
        from openmm_physembed.potentials.corrected_system import CorrectedMACESystem
        from openmm_physembed.testing import make_random_mace_model

        model = make_random_mace_model(tmp_path / "m.model", atomic_numbers=(1, 6, 8), interaction_scale_ev=0.05)
        system = CorrectedMACESystem(model, emc_box.topology, emc_box.positions_nm, alpha=0.0, a1=0.0,
                                     cutoff_nm=0.6, dtype="float64").system
    own = particle_masses_amu(system)
    expected = repartitioned_masses(system, emc_box.topology, 3.0)
    kinetic, by_hand, masses = _kinetic_energy_in_context(system, emc_box.topology, emc_box.positions_nm, 3.0)
    np.testing.assert_array_equal(masses, expected)
    assert kinetic == pytest.approx(by_hand, rel=1e-4)
    plain = 0.5 * np.sum(own[:, None] * _velocities(own) ** 2)
    assert kinetic > 1.5 * plain
    np.testing.assert_array_equal(particle_masses_amu(system), own)  # the caller's System, as it was


def _energy_fluctuation(system, topology, positions, timestep_fs, hydrogen_mass):
    """std(E_total) / std(KE) over 1 ps of NVE sampled every 10 fs (0 for exact integration)."""
    dynamics = Dynamics(298.15, timestep_fs, thermostat="verlet", platform="CPU", hydrogen_mass_amu=hydrogen_mass)
    every = int(round(10 / timestep_fs))
    total, kinetic = [], []
    with MDEngine(system, topology, positions, dynamics) as md:
        md.context.setVelocitiesToTemperature(298.15, 1)
        for _ in range(100):
            md.simulation.step(every)
            state = md.context.getState(getEnergy=True)
            kinetic.append(state.getKineticEnergy()._value)
            total.append(kinetic[-1] + state.getPotentialEnergy()._value)
    return np.std(total) / np.std(kinetic)


def test_gaff_box_at_2_fs_conserves_energy_with_repartitioning_and_worse_without(emc_box):
    """Verlet's energy error grows with (omega dt)^2; heavier H slow the C-H stretch that dominates it.

    Measured when written (12 EMC, several velocity seeds and thread counts): std(E)/std(KE) =
    0.027-0.039 at 1 fs, 0.12-0.16 at 2 fs, 0.054-0.072 at 2 fs with 3 amu hydrogens (0.33-0.48 of the
    plain 2 fs value). Required: below 0.1, and below 0.7 of the plain 2 fs value; with the masses
    kept from the Context both came out 0.122.
    """
    system = emc_box.create_system(nonbonded_cutoff_nm=0.6, ewald_error_tolerance=1e-5)
    # A switched LJ cutoff and tight PME: otherwise cutoff crossings and PME error, not the time step,
    # set the energy noise floor.
    for force in system.getForces():
        if isinstance(force, openmm.NonbondedForce):
            force.setUseSwitchingFunction(True)
            force.setSwitchingDistance(0.5)
    with MDEngine(system, emc_box.topology, emc_box.positions_nm, Dynamics(298.15, 1.0, friction_per_ps=5.0,
                                                                           platform="CPU", seed=1)) as md:
        md.start(minimize_iterations=200)
        md.simulation.step(2000)
        positions = md.context.getState(getPositions=True).getPositions(asNumpy=True)._value
    plain = _energy_fluctuation(system, emc_box.topology, positions, 2.0, None)
    repartitioned = _energy_fluctuation(system, emc_box.topology, positions, 2.0, 3.0)
    assert repartitioned < 0.1 and repartitioned < 0.7 * plain, (repartitioned, plain)


def test_a_manifest_from_before_the_option_still_resumes(tmp_path):
    """Adding ``hydrogen_mass_amu`` (None) to Dynamics must not orphan runs whose manifests lack it."""
    from dataclasses import asdict

    old = {k: v for k, v in asdict(Dynamics()).items() if k != "hydrogen_mass_amu"}
    JobDirectory(tmp_path, "MD run", {"dynamics": old, "runs": [{"a": 1}]}, error=SimulationError).open()
    JobDirectory(tmp_path, "MD run", {"dynamics": asdict(Dynamics()), "runs": [{"a": 1, "b": None}]},
                 error=SimulationError).open()
    with pytest.raises(SimulationError, match="changed: dynamics"):
        JobDirectory(tmp_path, "MD run", {"dynamics": asdict(Dynamics(hydrogen_mass_amu=3.0)), "runs": [{"a": 1}]},
                     error=SimulationError).open()


def test_cli_flag_reaches_the_context_and_the_density_uses_the_total_mass(tmp_path, monkeypatch, capsys):
    from openmm_physembed.properties.density import commands
    from openmm_physembed.properties.liquid import build_liquid_setup
    from openmm_physembed.simulation import engine
    from openmm_physembed.simulation.runner import load_records
    from openmm_physembed.units import density_g_cm3

    # The CLI's box needs 100 molecules for its 1.0 nm GAFF cutoff; the path from flag to Context is the same.
    small = {}

    def setup_from_args(args, spec, correction):
        from openmm_physembed.properties.liquid import LiquidSpec

        small["setup"] = build_liquid_setup(LiquidSpec(("emc",), (12,)), cso_cutoff_nm=0.6, gaff_cutoff_nm=0.6,
                                            charge_method="gasteiger")
        return small["setup"]

    seen = []

    def recording_make_simulation(system, *args, **kwargs):
        seen.append(particle_masses_amu(system))
        return make_simulation(system, *args, **kwargs)

    make_simulation = engine.make_simulation
    monkeypatch.setattr(commands, "liquid_setup_from_args", setup_from_args)
    monkeypatch.setattr(engine, "make_simulation", recording_make_simulation)
    out = tmp_path / "density"
    assert main(["density", "--experiment", "EMC", "--hydrogen-mass", "3", "--timestep", "2", "--steps", "40",
                 "--report-interval", "2", "--average-last-ps", "0.06", "--platform", "CPU", "-o", str(out)]) == 0
    setup = small["setup"]
    own = particle_masses_amu(setup.system())
    (masses,) = seen
    np.testing.assert_array_equal(masses, repartitioned_masses(setup.system(), setup.topology, 3.0))
    stored = json.loads((out / "density.json").read_text())
    assert stored["protocol"]["dynamics"]["hydrogen_mass_amu"] == 3.0
    assert stored["protocol"]["dynamics"]["timestep_fs"] == 2.0
    assert stored["total_mass_amu"] == pytest.approx(own.sum(), rel=1e-12)
    assert stored["total_mass_amu"] == pytest.approx(12 * (4 * 12.01 + 8 * 1.008 + 3 * 16.00), abs=1e-6)
    volumes = load_records(out / "npt", "npt")["volume_nm3"]
    window = stored["window"]["start"]
    mean = np.mean([density_g_cm3(own.sum(), v) for v in volumes[window:]])
    assert stored["density_g_cm3"]["value"] == pytest.approx(mean, rel=1e-12)
    assert "hydrogen mass 3 amu, 2 fs step" in capsys.readouterr().out
    assert main(["density", "--experiment", "EMC", "--hydrogen-mass", "8", "--steps", "40", "--platform", "CPU",
                 "-o", str(tmp_path / "too_heavy")]) == 2
    err = capsys.readouterr().err
    assert "would leave atom C" in err and len(err.strip().splitlines()) == 1
    assert main(["density", "--experiment", "EMC", "--hydrogen-mass", "-1", "-o", str(tmp_path / "negative")]) == 2
    err = capsys.readouterr().err
    assert "positive number of amu" in err and len(err.strip().splitlines()) == 1
