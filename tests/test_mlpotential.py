"""openmm-ml plugin ``MLPotential('physembed-mace')`` against openmm-ml's own ``MLPotential('mace')``.

Same random ``ScaleShiftMACE`` file for both. openmm-ml converts eV to kJ/mol with 96.4853, we
with the CODATA value 96.48533212 (units.py), so its energies and forces are rescaled by the
ratio (3.3e-7) before comparing; after that they agree to round-off. Both report the
``interaction_energy`` (no isolated-atom energies) by default and the total with
``returnEnergyType='energy'``.
"""

from __future__ import annotations

import copy
import io
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
    from openmm_physembed.potentials.mace_force import add_mace_force
    from openmm_physembed.potentials.mace_model import load_mace_model

    topology, positions = paracetamol
    interaction, f_interaction = evaluate(create("physembed-mace", model, topology), positions)
    total, f_total = evaluate(create("physembed-mace", model, topology, returnEnergyType="energy"), positions)
    mace_model = load_mace_model(model)
    e0 = dict(zip(mace_model.atomic_numbers.tolist(), mace_model.atomic_energies_fn.atomic_energies.flatten().tolist()))
    e0_sum = sum(e0[a.element.atomic_number] for a in topology.atoms()) * KJ_PER_MOL_PER_EV
    assert total - interaction == pytest.approx(e0_sum, rel=1e-12)
    np.testing.assert_allclose(f_total, f_interaction, rtol=0, atol=1e-9)
    # add_mace_force's default is the interaction energy too; energy_type="energy" is the total.
    for energy_type, expected in ((None, interaction), ("energy", total)):
        system = openmm.System()
        for atom in topology.atoms():
            system.addParticle(atom.element.mass)
        add_mace_force(system, topology, model, precision="double", **({} if energy_type is None else
                                                                       {"energy_type": energy_type}))
        assert evaluate(system, positions)[0] == pytest.approx(expected, rel=1e-12)


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


# ---------------------------------------------------------------------------------------------- interpolation
# openmm-ml's TestMechanicalEmbedding (test/TestMechanicalEmbedding.py), on a smaller system: its
# alanine dipeptide (chain A of test/data/alanine-dipeptide/alanine-dipeptide-explicit.pdb, Angstrom)
# in a 2 nm TIP3P box (715 atoms instead of 2269), amber19, the dipeptide as the ML region.
ALANINE_DIPEPTIDE_PDB = """\
ATOM      1  H1  ACE A   1      15.908  11.969  16.089  1.00  0.00           H
ATOM      2  CH3 ACE A   1      15.377  12.899  15.886  1.00  0.00           C
ATOM      3  H2  ACE A   1      14.471  12.940  16.490  1.00  0.00           H
ATOM      4  H3  ACE A   1      15.112  12.945  14.830  1.00  0.00           H
ATOM      5  C   ACE A   1      16.244  14.114  16.225  1.00  0.00           C
ATOM      6  O   ACE A   1      17.382  13.964  16.665  1.00  0.00           O
ATOM      7  N   ALA A   2      15.699  15.314  16.018  1.00  0.00           N
ATOM      8  H   ALA A   2      14.759  15.386  15.655  1.00  0.00           H
ATOM      9  CA  ALA A   2      16.418  16.541  16.300  1.00  0.00           C
ATOM     10  HA  ALA A   2      16.683  16.572  17.357  1.00  0.00           H
ATOM     11  CB  ALA A   2      17.696  16.630  15.473  1.00  0.00           C
ATOM     12  HB1 ALA A   2      17.446  16.609  14.413  1.00  0.00           H
ATOM     13  HB2 ALA A   2      18.215  17.560  15.705  1.00  0.00           H
ATOM     14  HB3 ALA A   2      18.343  15.785  15.711  1.00  0.00           H
ATOM     15  C   ALA A   2      15.568  17.761  15.975  1.00  0.00           C
ATOM     16  O   ALA A   2      14.428  17.628  15.534  1.00  0.00           O
ATOM     17  N   NME A   3      16.126  18.953  16.194  1.00  0.00           N
ATOM     18  H   NME A   3      17.066  19.012  16.558  1.00  0.00           H
ATOM     19  C   NME A   3      15.420  20.190  15.926  1.00  0.00           C
ATOM     20  H1  NME A   3      14.425  19.965  15.540  1.00  0.00           H
ATOM     21  H2  NME A   3      15.330  20.766  16.847  1.00  0.00           H
ATOM     22  H3  NME A   3      15.972  20.771  15.187  1.00  0.00           H
TER
END
"""
LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)
ATOL_KJ = 0.01  # openmm-ml's tolerance


@pytest.fixture(scope="module")
def amber19():
    return app.ForceField("amber19-all.xml", "amber19/tip3pfb.xml")


@pytest.fixture(scope="module")
def solvated_dipeptide(amber19):
    pdb = app.PDBFile(io.StringIO(ALANINE_DIPEPTIDE_PDB))
    modeller = app.Modeller(pdb.topology, pdb.positions)
    modeller.addSolvent(amber19, model="tip3p", boxSize=openmm.Vec3(2.0, 2.0, 2.0) * unit.nanometer)
    ml_atoms = [atom.index for atom in modeller.topology.atoms() if atom.residue.chain.index == 0]
    return modeller.topology, modeller.positions, ml_atoms


def dipeptide_topology(solvated_dipeptide, periodic):
    topology, positions, ml_atoms = solvated_dipeptide
    if not periodic:  # a System with no box at all (openmm-ml keeps the PDB's box and uses NoCutoff)
        topology = copy.deepcopy(topology)
        topology.setPeriodicBoxVectors(None)
    return topology, positions, ml_atoms


def topology_subset(topology, positions, atoms):
    modeller = app.Modeller(topology, positions)
    keep = set(atoms)
    modeller.delete([atom for atom in topology.atoms() if atom.index not in keep])
    return modeller.getTopology(), modeller.getPositions()


@pytest.fixture(scope="module")
def interpolated_dipeptide(model, amber19, solvated_dipeptide):
    """``periodic -> (topology, positions, ml_atoms, MM System, createMixedSystem(interpolate=True))``, built once."""
    built = {}

    def build(periodic):
        if periodic not in built:
            topology, positions, ml_atoms = dipeptide_topology(solvated_dipeptide, periodic)
            mm = amber19.createSystem(topology, nonbondedMethod=app.PME if periodic else app.NoCutoff)
            mixed = MLPotential("physembed-mace", modelPath=str(model)).createMixedSystem(
                topology, mm, ml_atoms, interpolate=True)
            built[periodic] = topology, positions, ml_atoms, mm, mixed
        return built[periodic]

    return build


def energy_kj(context):
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def make_context(system, positions, platform="CPU", lambda_interpolate=None):
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions)
    if lambda_interpolate is not None:
        context.setParameter("lambda_interpolate", lambda_interpolate)
    return context


def cv_force(system):
    (force,) = [f for f in system.getForces() if isinstance(f, openmm.CustomCVForce)]
    return force


@pytest.mark.parametrize("periodic", [False, True], ids=["no-box", "periodic"])
def test_interpolated_energy_is_linear_in_lambda(model, amber19, solvated_dipeptide, interpolated_dipeptide,
                                                 periodic):
    """E(lambda) = lambda (MM(all) - MM(ML region) + ML(ML region)) + (1 - lambda) MM(all), within 0.01 kJ/mol.

    As openmm-ml's testEmbedding (no box, NoCutoff) and testPeriodicShortRange (PME; the ML
    region's MM energy without images, MACE being short-ranged).
    """
    topology, positions, ml_atoms, mm, mixed = interpolated_dipeptide(periodic)
    topology_ml, positions_ml = topology_subset(topology, positions, ml_atoms)
    mm_ml = amber19.createSystem(topology_ml, nonbondedMethod=app.NoCutoff)
    ml_ml = MLPotential("physembed-mace", modelPath=str(model)).createSystem(topology_ml)

    (mace,) = [cv_force(mixed).getCollectiveVariable(k) for k in range(cv_force(mixed).getNumCollectiveVariables())
               if cv_force(mixed).getCollectiveVariable(k).getName() == "MACE"]
    assert mace.usesPeriodicBoundaryConditions() == periodic == mixed.usesPeriodicBoundaryConditions()
    mm_all = energy_kj(make_context(mm, positions))
    expected = mm_all - energy_kj(make_context(mm_ml, positions_ml)) + energy_kj(make_context(ml_ml, positions_ml))
    context = make_context(mixed, positions)
    errors = []
    for lambda_value in LAMBDAS:
        context.setParameter("lambda_interpolate", lambda_value)
        errors.append(energy_kj(context) - (lambda_value * expected + (1 - lambda_value) * mm_all))
    print(f"interpolation, periodic={periodic}: max |E - E_expected| = {np.abs(errors).max():.2e} kJ/mol")
    assert np.abs(errors).max() < ATOL_KJ
    assert abs(expected - mm_all) > 100 * ATOL_KJ  # the two end states are far apart


@pytest.mark.parametrize("periodic", [False, True], ids=["no-box", "periodic"])
def test_interpolated_forces_equal_finite_differences(interpolated_dipeptide, periodic):
    """Forces on the ML atoms at lambda = 0.5 are -dE/dx (central differences, h = 1e-4 nm, Reference platform).

    No box: the whole System (NoCutoff is smooth). Periodic: the CustomCVForce alone, which holds
    every interpolated term (MACE, the ML region's MM bonded terms, the changed exceptions); the
    rest is PME, whose real-space sum stops at the cutoff, so its energy jumps (by ~1e-2 kJ/mol,
    measured here) when a pair crosses the cutoff and finite differences of it test OpenMM's
    cutoff, not interpolation.
    """
    topology, positions, ml_atoms, mm, mixed = interpolated_dipeptide(periodic)
    system = copy.deepcopy(mixed)
    groups = -1
    if periodic:
        cv_force(system).setForceGroup(31)
        groups = {31}
    context = make_context(system, positions, platform="Reference", lambda_interpolate=0.5)
    x0 = np.array(positions.value_in_unit(unit.nanometer))
    forces = context.getState(getForces=True, groups=groups).getForces(asNumpy=True)._value[ml_atoms]

    def energy(x):
        context.setPositions(x)
        return context.getState(getEnergy=True, groups=groups).getPotentialEnergy()._value

    h = 1e-4
    numeric = np.zeros_like(forces)
    for k, atom in enumerate(ml_atoms):
        for d in range(3):
            step = np.zeros_like(x0)
            step[atom, d] = h
            numeric[k, d] = -(energy(x0 + step) - energy(x0 - step)) / (2 * h)
    error = np.abs(numeric - forces).max() / np.abs(forces).max()
    print(f"finite differences, periodic={periodic}: max error {error:.1e} of max |F| {np.abs(forces).max():.0f}")
    assert error < 1e-4


def test_interpolated_nve_conserves_energy(model, amber19, solvated_dipeptide):
    """NVE at lambda = 0.5, periodic: velocity Verlet's energy error falls as dt^2 when every force is the exact
    gradient of the energy, so halving dt (0.5 -> 0.25 fs, 50 fs each) must cut the total energy's excursion ~4x
    (2.5-6.5, as the mixed-System test; measured 4.4), and the excursion stays under 1 % of the kinetic
    energy's (measured 0.09 % and 0.02 %). A wrong lambda factor on any force breaks both. The MM part uses a switched
    reaction-field cutoff so that it conserves energy too (PME's truncated real-space sum adds
    excursions that do not shrink with dt).
    """
    topology, positions, ml_atoms = dipeptide_topology(solvated_dipeptide, periodic=True)
    mm = amber19.createSystem(topology, nonbondedMethod=app.CutoffPeriodic, nonbondedCutoff=0.8 * unit.nanometer,
                              switchDistance=0.7 * unit.nanometer)
    mixed = MLPotential("physembed-mace", modelPath=str(model)).createMixedSystem(topology, mm, ml_atoms,
                                                                                  interpolate=True)
    excursions = {}
    for dt_fs, steps in ((0.5, 100), (0.25, 200)):
        integrator = openmm.VerletIntegrator(dt_fs * 1e-3)
        context = openmm.Context(mixed, integrator, openmm.Platform.getPlatformByName("CPU"))
        context.setPositions(positions)
        context.setParameter("lambda_interpolate", 0.5)
        if dt_fs == 0.5:  # both runs start from the same relaxed structure
            openmm.LocalEnergyMinimizer.minimize(context, 10.0, 50)
            positions = context.getState(getPositions=True).getPositions()
        context.setVelocitiesToTemperature(300.0, 1)
        excursions[dt_fs], kinetic_range = nve_energy_excursion(context, integrator, steps)
        print(f"NVE lambda=0.5, dt {dt_fs} fs: total {excursions[dt_fs]:.3f}, kinetic {kinetic_range:.0f} kJ/mol")
        assert excursions[dt_fs] < 0.01 * kinetic_range
    assert 2.5 < excursions[0.5] / excursions[0.25] < 6.5


def test_interpolation_refuses_the_correction(model, paracetamol):
    """The CSO term is for all-ML Systems (createSystem): in a mixed System the MM force field describes the
    ML/MM pairs, and in openmm-ml's CustomCVForce it would be scaled by lambda as if it were MACE. Refused,
    interpolating or not, in one line, before anything is built."""
    topology, positions = paracetamol
    mm = openmm.System()
    for atom in topology.atoms():
        mm.addParticle(atom.element.mass)
    potential = MLPotential("physembed-mace", modelPath=str(model))
    with pytest.raises(PotentialError, match="createMixedSystem") as error:
        potential.createMixedSystem(topology, mm, list(range(topology.getNumAtoms())), interpolate=True,
                                    correction={"alpha": 0.1, "a1": 1.0}, positions=positions)
    assert "\n" not in str(error.value)


# ---------------------------------------------------------------------------------------------- correction
def test_create_system_with_correction_equals_corrected_mace_system(model, ec_box, tmp_path):
    """A fit file for this model adds the same CSO forces as CorrectedMACESystem with its values."""
    from openmm_physembed.potentials.corrected_system import CorrectedMACESystem
    from openmm_physembed.potentials.correction_choice import CSOCorrection, file_sha256
    from openmm_physembed.potentials.cso import cso_forces

    box = ec_box
    reference = CorrectedMACESystem(model, box.topology, box.positions_nm, alpha=-2.0, a1=1.07, cutoff_nm=0.6)
    # Reference platform: the CPU platform runs the CSO's nonbonded kernels in single precision.
    expected = evaluate(reference.system, box.positions_nm, box.box_vectors_nm, platform="Reference")
    fit = CSOCorrection(-2.0, 1.07, 1.0, source="fit-a1", model_sha256=file_sha256(model), model_file=model.name)
    path = fit.write(tmp_path / "correction.json")
    system = create("physembed-mace", model, box.topology, precision="double",
                    correction=str(path), positions=box.positions_nm * unit.nanometer,  # OpenMM units
                    correctionCutoff=0.6 * unit.nanometer)
    assert [f.getName() for f in cso_forces(system)] == ["CSOCorrection", "CSOLongRangeCorrection"]
    energy, forces = evaluate(system, box.positions_nm, box.box_vectors_nm, platform="Reference")
    assert energy == pytest.approx(expected[0], rel=1e-9)
    np.testing.assert_allclose(forces, expected[1], rtol=0, atol=1e-6 * np.abs(expected[1]).max())


def test_published_correction_warns_and_other_models_fit_is_refused(model, paracetamol, tmp_path):
    from openmm_physembed.potentials.correction_choice import CSOCorrection
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
