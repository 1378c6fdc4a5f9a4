"""openmm-ml plugin ``MLPotential('physembed-mace')`` against openmm-ml's own ``MLPotential('mace')``.

Same random ``ScaleShiftMACE`` file for both. openmm-ml converts eV to kJ/mol with 96.4853, we
with the CODATA value 96.48533212 (units.py), so its energies and forces are rescaled by the
ratio (3.3e-7) before comparing; after that they agree to round-off. Both report the
``interaction_energy`` (no isolated-atom energies) by default and the total with
``returnEnergyType='energy'``.
"""

from __future__ import annotations

import warnings
from importlib.metadata import entry_points

import numpy as np
import openmm
import pytest
import torch  # noqa: F401  - before anything that may import openmmtorch
from openmm import app, unit

from openmm_physembed.chem.box import build_box
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import PotentialError
from openmm_physembed.testing import make_random_mace_model, nve_energy_excursion
from openmm_physembed.units import KJ_PER_MOL_PER_EV

openmmml = pytest.importorskip("openmmml")
from openmmml import MLPotential  # noqa: E402

PEER_KJ_PER_MOL_PER_EV = 96.4853  # openmm-ml 1.8's macepotential.py
PEER_SCALE = KJ_PER_MOL_PER_EV / PEER_KJ_PER_MOL_PER_EV


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_random_mace_model(tmp_path_factory.mktemp("mlp") / "random.model", atomic_numbers=(1, 6, 7, 8),
                                  r_max_angstrom=4.0, num_channels=8, dtype="float64", seed=3)


@pytest.fixture(scope="module")
def paracetamol():
    molecule = Molecule.from_name("paracetamol")
    topology = app.Topology()
    residue = topology.addResidue("PAR", topology.addChain())
    atoms = [topology.addAtom(s, app.Element.getBySymbol(s), residue) for s in molecule.symbols]
    for i, j in molecule.bonds:
        topology.addBond(atoms[i], atoms[j])
    return topology, molecule.positions_nm


@pytest.fixture(scope="module")
def ec_box():
    # 20 ethylene carbonate, edge 1.31 nm > 2 r_max = 0.8 nm.
    return build_box([Molecule.from_name("ec")], counts=[20], density_g_cm3=1.3, charge_method="gasteiger")


def evaluate(system, positions_nm, box_nm=None, groups=None, platform="CPU"):
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName(platform))
    if box_nm is not None:
        context.setPeriodicBoxVectors(*box_nm)
    context.setPositions(positions_nm)
    kwargs = {} if groups is None else {"groups": groups}
    state = context.getState(getEnergy=True, getForces=True, **kwargs)
    return (state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole),
            state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer))


def create(name, model, topology, **args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openmm-ml's torch.load and dtype messages
        return MLPotential(name, modelPath=str(model)).createSystem(topology, **args)


def assert_equal_to_peer(ours, peer, rel_energy, rel_force):
    (e_ours, f_ours), (e_peer, f_peer) = ours, peer
    assert e_ours == pytest.approx(e_peer * PEER_SCALE, rel=rel_energy)
    assert np.abs(f_ours - f_peer * PEER_SCALE).max() <= rel_force * np.abs(f_peer).max()


# ---------------------------------------------------------------------------------------------- registration
def test_entry_point_registers_physembed_mace():
    names = {ep.name: ep.value for ep in entry_points(group="openmmml.potentials")}
    assert names.get("physembed-mace") == "openmm_physembed.potentials.mlpotential:PhysEmbedMACEImplFactory"
    assert "physembed-mace" in MLPotential._implFactories


# ---------------------------------------------------------------------------------------------- vs openmm-ml
@pytest.mark.parametrize("precision, rel", [("double", 1e-10), ("single", 2e-5)])
@pytest.mark.parametrize("energy_type", ["interaction_energy", "energy"])
def test_gas_phase_equals_openmm_ml_mace(model, paracetamol, precision, rel, energy_type):
    topology, positions = paracetamol
    ours_system = create("physembed-mace", model, topology, precision=precision, returnEnergyType=energy_type)
    peer_system = create("mace", model, topology, precision=precision, returnEnergyType=energy_type, device="cpu")
    assert type(ours_system) is openmm.System
    assert [f.getName() for f in ours_system.getForces()] == ["MACE", "CMMotionRemover"]
    assert_equal_to_peer(evaluate(ours_system, positions), evaluate(peer_system, positions), rel, 10 * rel)


def test_energy_types_differ_by_the_isolated_atom_energies(model, paracetamol):
    from openmm_physembed.potentials.mace_force import add_mace_force, load_mace_model

    topology, positions = paracetamol
    interaction, f_interaction = evaluate(create("physembed-mace", model, topology), positions)
    total, f_total = evaluate(create("physembed-mace", model, topology, returnEnergyType="energy"), positions)
    mace_model = load_mace_model(model)
    e0 = dict(zip(mace_model.atomic_numbers.tolist(), mace_model.atomic_energies_fn.atomic_energies.flatten().tolist()))
    e0_sum = sum(e0[a.element.atomic_number] for a in topology.atoms()) * KJ_PER_MOL_PER_EV
    assert total - interaction == pytest.approx(e0_sum, rel=1e-12)
    np.testing.assert_allclose(f_total, f_interaction, rtol=0, atol=1e-9)
    # add_mace_force's default is the total energy, as mace-torch's MACECalculator reports it.
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    add_mace_force(system, topology, model, precision="double")
    assert evaluate(system, positions)[0] == pytest.approx(total, rel=1e-12)


def test_periodic_box_equals_openmm_ml_mace(model, ec_box):
    box = ec_box
    ours = create("physembed-mace", model, box.topology, precision="double")
    peer = create("mace", model, box.topology, precision="double", device="cpu")
    assert ours.usesPeriodicBoundaryConditions()
    # A zero-energy bond list so that a barostat moves molecules, not atoms (energy unchanged).
    assert "MoleculeDefinition" in [f.getName() for f in ours.getForces()]
    assert_equal_to_peer(evaluate(ours, box.positions_nm, box.box_vectors_nm),
                         evaluate(peer, box.positions_nm, box.box_vectors_nm), 1e-10, 1e-9)


def test_mixed_system_equals_openmm_ml_and_conserves_energy(model):
    """One EC molecule modelled by MACE in a GAFF EC box (mechanical embedding).

    The ML part equals openmm-ml's ``'mace'`` in the same mixed System (which, unlike ours, needs
    ``mlLongRange=False`` for a periodic box). NVE: velocity Verlet's energy error falls as dt^2
    when every force is the exact gradient, so halving dt must cut the excursion ~4x; the MM part
    uses a switched cutoff (reaction field) so that it conserves energy too.
    """
    box = build_box([Molecule.from_name("ec")], counts=[12], box_edge_nm=1.25, charge_method="gasteiger", seed=2)
    mm = box.create_system(nonbonded_cutoff_nm=0.6)
    for force in mm.getForces():
        if isinstance(force, openmm.NonbondedForce):
            force.setNonbondedMethod(openmm.NonbondedForce.CutoffPeriodic)
            force.setUseSwitchingFunction(True)
            force.setSwitchingDistance(0.5)
    ml_atoms = [a.index for a in box.topology.atoms() if a.residue.index == 0]
    ml_group = 20  # parmed spreads the GAFF terms over groups 0-11
    assert ml_group not in {f.getForceGroup() for f in mm.getForces()}
    ours = MLPotential("physembed-mace", modelPath=str(model)).createMixedSystem(box.topology, mm, ml_atoms,
                                                                                 forceGroup=ml_group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peer = MLPotential("mace", modelPath=str(model)).createMixedSystem(box.topology, mm, ml_atoms,
                                                                          forceGroup=ml_group, mlLongRange=False,
                                                                          device="cpu")
    assert type(ours) is openmm.System
    assert_equal_to_peer(evaluate(ours, box.positions_nm, box.box_vectors_nm, groups={ml_group}),
                         evaluate(peer, box.positions_nm, box.box_vectors_nm, groups={ml_group}), 1e-10, 1e-9)
    # Everything else (MM terms, ML/MM interactions) is the same System.
    mm_groups = set(range(32)) - {ml_group}
    assert evaluate(ours, box.positions_nm, box.box_vectors_nm, groups=mm_groups)[0] == pytest.approx(
        evaluate(peer, box.positions_nm, box.box_vectors_nm, groups=mm_groups)[0], rel=1e-12)

    excursions = {}
    for dt_fs, steps in ((0.5, 100), (0.25, 200)):
        integrator = openmm.VerletIntegrator(dt_fs * 1e-3)
        context = openmm.Context(ours, integrator, openmm.Platform.getPlatformByName("CPU"))
        context.setPeriodicBoxVectors(*box.box_vectors_nm)
        context.setPositions(box.positions_nm)
        openmm.LocalEnergyMinimizer.minimize(context, 10.0, 50)
        context.setVelocitiesToTemperature(300.0, 1)
        excursions[dt_fs], kinetic_range = nve_energy_excursion(context, integrator, steps)
        assert excursions[dt_fs] < 0.05 * kinetic_range
    assert 2.5 < excursions[0.5] / excursions[0.25] < 6.5


# ---------------------------------------------------------------------------------------------- correction
def test_create_system_with_correction_equals_corrected_mace_system(model, ec_box, tmp_path):
    """A fit file for this model adds the same CSO forces as CorrectedMACESystem with its values."""
    from openmm_physembed.potentials.corrected import CorrectedMACESystem
    from openmm_physembed.potentials.corrections import CSOCorrection, file_sha256
    from openmm_physembed.potentials.cso import cso_forces

    box = ec_box
    reference = CorrectedMACESystem(model, box.topology, box.positions_nm, alpha=-2.0, a1=1.07, cutoff_nm=0.6)
    expected = evaluate(reference.system, box.positions_nm, box.box_vectors_nm)
    fit = CSOCorrection(-2.0, 1.07, 1.0, source="fit-a1", model_sha256=file_sha256(model), model_file=model.name)
    path = fit.write(tmp_path / "correction.json")
    system = create("physembed-mace", model, box.topology, precision="double", returnEnergyType="energy",
                    correction=str(path), positions=box.positions_nm * unit.nanometer,  # OpenMM units
                    correctionCutoff=0.6 * unit.nanometer)
    assert [f.getName() for f in cso_forces(system)] == ["CSOCorrection", "CSOLongRangeCorrection"]
    energy, forces = evaluate(system, box.positions_nm, box.box_vectors_nm)
    assert energy == pytest.approx(expected[0], rel=1e-9)
    np.testing.assert_allclose(forces, expected[1], rtol=0, atol=1e-6 * np.abs(expected[1]).max())


def test_published_correction_warns_and_other_models_fit_is_refused(model, paracetamol, tmp_path):
    from openmm_physembed.potentials.corrections import CSOCorrection
    from openmm_physembed.potentials.cso import cso_forces

    topology, positions = paracetamol
    potential = MLPotential("physembed-mace", modelPath=str(model))
    assert not cso_forces(potential.createSystem(topology))  # no correction unless asked
    with pytest.warns(UserWarning, match="MACE-OFF23_small.model"):
        system = potential.createSystem(topology, correction="mace-off23-small", positions=positions)
    (cso,) = cso_forces(system)
    values = {cso.getGlobalParameterName(k): cso.getGlobalParameterDefaultValue(k)
              for k in range(cso.getNumGlobalParameters())}
    assert values == {"alpha": -0.05, "a1": 1.07, "s6": 1.0}  # the published pair
    other = CSOCorrection(-0.05, 1.07, source="fit-a1", model_sha256="0" * 64, model_file="other.model")
    path = other.write(tmp_path / "other.json")
    with pytest.raises(PotentialError, match="fitted for model file 'other.model'"):
        potential.createSystem(topology, correction=str(path), positions=positions)


def test_options_and_errors_name_the_fix(model, paracetamol, tmp_path):
    topology, positions = paracetamol
    with pytest.raises(PotentialError, match="needs modelPath"):
        MLPotential("physembed-mace")
    with pytest.raises(PotentialError, match="does not exist"):
        MLPotential("physembed-mace", modelPath=str(tmp_path / "missing.model"))
    potential = MLPotential("physembed-mace", modelPath=str(model))
    with pytest.raises(PotentialError, match="no option 'corection'"):
        potential.createSystem(topology, corection="mace-off23-small")
    with pytest.raises(PotentialError, match="needs positions"):
        potential.createSystem(topology, correction={"alpha": 0.1, "a1": 1.0})
    with pytest.raises(PotentialError, match="precision='mixed'"):
        potential.createSystem(topology, precision="mixed")
    with pytest.raises(PotentialError, match="returnEnergyType"):
        potential.createSystem(topology, returnEnergyType="free_energy")
    mm = openmm.System()
    for atom in topology.atoms():
        mm.addParticle(atom.element.mass)
    with pytest.raises(PotentialError, match="createMixedSystem"):
        potential.createMixedSystem(topology, mm, [0, 1, 2], correction={"alpha": 0.1, "a1": 1.0},
                                    positions=positions)
