"""The exact MACE pressure tensor equals a strain finite difference of the total energy.

Reference: central differences of the whole System's energy under the deformations
F = I +- delta e_a (x) e_b applied to box and positions, evaluated here through ``getState``.
(OpenMM's ``computeStressTensor`` cannot be the reference for a TorchForce: it calls the
autograd engine while Python holds the GIL, which torch refuses.)
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")  # always before openmmtorch
pytest.importorskip("mace")
pytest.importorskip("openmmtorch")
openmm = pytest.importorskip("openmm")

from openmm_physembed.errors import PropertyError  # noqa: E402
from openmm_physembed.properties.viscosity.pressure import (  # noqa: E402
    ExactMACEPressureTensor,
    FiniteDifferencePressureTensor,
    create_pressure_provider,
)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from openmm_physembed.testing import make_random_mace_model

    return make_random_mace_model(tmp_path_factory.mktemp("mace") / "tiny.model", atomic_numbers=(1, 6, 8),
                                  r_max_angstrom=3.5, num_channels=8, max_L=1, correlation=2, dtype="float64",
                                  interaction_scale_ev=0.3)


@pytest.fixture(scope="module")
def box():
    from openmm_physembed.chem.box import build_box
    from openmm_physembed.chem.molecule import Molecule

    return build_box([Molecule.from_name("dmc")], counts=(14,), box_edge_nm=1.6, charge_method="gasteiger", seed=5)


def corrected_system(model, box, alpha):
    from openmm_physembed import CorrectedMACESystem

    # Switched, so the CSO energy is continuous at the cutoff and finite differences converge.
    return CorrectedMACESystem(model, box.topology, box.positions_nm, alpha=alpha, a1=0.6, cutoff_nm=0.75,
                               switch_distance_nm=0.65)


def strain_difference_virial_bar(context, positions, box_vectors, delta=1e-4):
    """W_ab = -dU/dF_ab (1/V, bar) by central differences; upper triangle keeps the box reduced."""
    from openmm_physembed.units import BAR_IN_KJ_PER_MOL_NM3

    positions, box_vectors = np.asarray(positions, float), np.asarray(box_vectors, float)
    virial = np.zeros((3, 3))
    for a, b in [(0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2)]:
        energies = []
        for sign in (1.0, -1.0):
            deformation = np.eye(3)
            deformation[a, b] += sign * delta
            context.setPeriodicBoxVectors(*(box_vectors @ deformation.T))
            context.setPositions(positions @ deformation.T)
            energies.append(context.getState(getEnergy=True).getPotentialEnergy()._value)
        virial[a, b] = virial[b, a] = -(energies[0] - energies[1]) / (2 * delta)
    context.setPeriodicBoxVectors(*box_vectors)
    context.setPositions(positions)
    return virial / abs(np.linalg.det(box_vectors)) / BAR_IN_KJ_PER_MOL_NM3


def stress_pair(system, positions, box_vectors, provider_name="exact-mace"):
    """(fast, reference) virial tensors in bar for one configuration."""
    fast = create_pressure_provider(provider_name, include_kinetic=False)
    fast.prepare_system(system)
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("CPU"))
    context.setPeriodicBoxVectors(*box_vectors)
    context.setPositions(positions)
    reference = strain_difference_virial_bar(context, positions, box_vectors)
    state = context.getState(getPositions=True, getVelocities=True)
    return fast.compute_bar(context, state), reference


@pytest.mark.parametrize("alpha", [0.0, 1.0], ids=["mace-alone", "mace+cso"])
def test_exact_mace_pressure_equals_full_finite_difference(model, box, alpha):
    corrected = corrected_system(model, box, alpha)
    fast, reference = stress_pair(corrected.system, box.positions_nm, box.box_vectors_nm)
    scale = np.abs(reference).max()
    assert scale > 100.0  # bar: a real, non-trivial virial
    # MACE's strain derivative is exact and the reference's central difference O(delta^2) = 1e-8;
    # the CSO share is OpenMM's own difference at delta = 1e-3, whose O(delta^2) error grows with
    # the curvature of the switch: measured 1e-4 of the largest component.
    tolerance = 1e-6 if alpha == 0 else 3e-4
    np.testing.assert_allclose(fast, reference, atol=tolerance * scale)
    assert np.abs(fast - fast.T).max() < 1e-6 * scale  # symmetric


def test_cso_alone_finite_difference_equals_the_strain_reference(box):
    """The CSO share (OpenMM's computeStressTensor on the CSO group) against the getState reference."""
    from openmm_physembed.potentials.cso import add_cso_correction

    system = openmm.System()
    for atom in box.topology.atoms():
        system.addParticle(atom.element.mass)
    system.setDefaultPeriodicBoxVectors(*box.box_vectors_nm)
    add_cso_correction(system, box.topology, box.positions_nm, alpha=1.0, a1=0.6, cutoff_nm=0.75,
                       switch_distance_nm=0.65, force_group=3)
    auto = create_pressure_provider("auto", include_kinetic=False)
    auto.prepare_system(system)
    assert auto.describe()["chosen"]["provider"] == "finite-difference"
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName("CPU"))
    context.setPeriodicBoxVectors(*box.box_vectors_nm)
    context.setPositions(box.positions_nm)
    reference = strain_difference_virial_bar(context, box.positions_nm, box.box_vectors_nm)
    fast = auto.compute_bar(context, context.getState(getPositions=True, getVelocities=True))
    assert np.trace(reference) < 0  # dispersion pulls inwards
    np.testing.assert_allclose(fast, reference, atol=3e-4 * np.abs(reference).max())


def test_exact_mace_splits_groups_as_the_system_has_them(model, box):
    corrected = corrected_system(model, box, 1.0)
    provider = ExactMACEPressureTensor(include_kinetic=False)
    provider.prepare_system(corrected.system)
    assert provider.mace_group == corrected.mace_force.getForceGroup()
    assert provider.rest is not None and provider.rest.force_groups == frozenset({corrected.cso_force_group})


def test_finite_difference_provider_refuses_a_torchforce(model, box):
    corrected = corrected_system(model, box, 0.5)
    with pytest.raises(PropertyError, match="exact-mace"):
        FiniteDifferencePressureTensor().prepare_system(corrected.system)


def test_auto_chooses_exact_mace_and_refuses_a_shared_group(model, box):
    corrected = corrected_system(model, box, 0.5)
    auto = create_pressure_provider("auto")
    auto.prepare_system(corrected.system)
    assert auto.describe()["chosen"]["provider"] == "exact-mace"
    shared = corrected_system(model, box, 0.5)
    for force in shared.cso_forces:
        force.setForceGroup(shared.mace_force.getForceGroup())
    with pytest.raises(PropertyError, match="force group of its own"):
        ExactMACEPressureTensor().prepare_system(shared.system)


def test_viscosity_replica_of_a_mace_liquid_samples_the_exact_tensor(model, box, tmp_path):
    """The Green-Kubo worker rebuilds MACE from its arguments and picks exact-mace by itself."""
    from openmm_physembed.io import read_json
    from openmm_physembed.properties.viscosity.workflow import (
        ViscosityProtocol,
        ViscosityTask,
        run_viscosity_replica,
    )
    from openmm_physembed.simulation.dynamics import Dynamics
    from openmm_physembed.simulation.liquid_setup import LiquidSetup

    setup = LiquidSetup.from_corrected(corrected_system(model, box, 0.5), label="dmc")
    protocol = ViscosityProtocol(Dynamics(300.0, 0.5, "langevin", friction_per_ps=10.0, platform="CPU"), n_steps=192,
                                 equilibration_steps=20, sample_interval=2, n_replicas=1)
    task = ViscosityTask(setup, setup.positions_nm, setup.box_vectors_nm, protocol, tmp_path, replica=0,
                         frame_index=0, parameters={"alpha": 0.5, "a1": 0.6})
    run = run_viscosity_replica(task)
    assert run.series.pressure_bar.shape == (96, 6)
    assert np.all(np.isfinite(run.series.pressure_bar)) and np.std(run.series.pressure_bar[:, 3]) > 1.0
    # Equipartition at the thermostat's 300 K: the kinetic temperature of 168 atoms fluctuates by
    # T sqrt(2 / (3N)) = 18.9 K, and 0.1 ps of production holds about one independent sample (Langevin
    # friction 10/ps relaxes the kinetic energy in 1 / (2 gamma) = 0.05 ps; the 10 fs of equilibration
    # leave the start-up dip in too: 288 K when written). Allowed: 3 standard errors (243-357 K).
    assert abs(run.mean_temperature_K - 300.0) < 3 * 300.0 * np.sqrt(2 / (3 * 168))
    assert read_json(tmp_path / "replica.json")["n_samples"] == 96
    settings = read_json(tmp_path / "production" / "run.json")["settings"]
    assert settings["provider"]["chosen"]["provider"] == "exact-mace"
