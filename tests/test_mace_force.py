"""MACE as an OpenMM TorchForce, checked against mace-torch's own ASE calculator.

Models are random-weight ``ScaleShiftMACE`` files from :func:`make_random_mace_model`: exactness
of the wrapper (units, neighbour list, periodic shifts, replicas, subsets) does not depend on
the weights being trained.
"""

from __future__ import annotations

import warnings

import numpy as np
import openmm
import pytest
import torch  # noqa: F401  - before anything that may import openmmtorch
from openmm import app, unit

from openmm_physembed.chem.box import build_box
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import PotentialError
from openmm_physembed.potentials.mace_force import add_mace_force, build_mace_module
from openmm_physembed.potentials.mace_model import MACEModelInfo, load_mace_model
from openmm_physembed.potentials.mace_module import (
    inline_forward,
    mace_virial,
    replica_grid,
)
from openmm_physembed.testing import make_random_mace_model
from openmm_physembed.units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV

KJ_NM_PER_EV_A = KJ_PER_MOL_PER_EV * ANGSTROM_PER_NM


# ---------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mace_models")


@pytest.fixture(scope="module")
def model64(model_dir):
    return make_random_mace_model(model_dir / "random64.model", dtype="float64", seed=0)


@pytest.fixture(scope="module")
def model32(model_dir):
    return make_random_mace_model(model_dir / "random32.model", dtype="float32", seed=1)


@pytest.fixture(scope="module")
def paracetamol():
    return Molecule.from_name("paracetamol")


@pytest.fixture(scope="module")
def ec_box():
    # 20 ethylene carbonate (200 atoms), edge 1.31 nm > 2 r_max = 1.0 nm.
    return build_box([Molecule.from_name("ec")], counts=[20], density_g_cm3=1.3, charge_method="gasteiger")


def molecule_topology(molecules):
    """Topology with one residue per molecule, elements and bonds."""
    top = app.Topology()
    chain = top.addChain()
    offset = 0
    for k, mol in enumerate(molecules):
        res = top.addResidue(f"M{k}", chain)
        atoms = [top.addAtom(s, app.Element.getBySymbol(s), res) for s in mol.symbols]
        for i, j in mol.bonds:
            top.addBond(atoms[i], atoms[j])
        offset += mol.n_atoms
    return top


def bare_system(topology, box_nm=None):
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    if box_nm is not None:
        system.setDefaultPeriodicBoxVectors(*(np.eye(3) * box_nm))
    return system


def openmm_energy_forces(system, positions_nm, platform="CPU"):
    context = openmm.Context(system, openmm.VerletIntegrator(0.0005), openmm.Platform.getPlatformByName(platform))
    context.setPositions(positions_nm)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
    forces = state.getForces(asNumpy=True).value_in_unit(unit.kilojoule_per_mole / unit.nanometer)
    return energy, np.asarray(forces)


def ase_reference(model_path, numbers, positions_nm, box_nm=None, dtype="float64"):
    """Energy (kJ/mol), forces (kJ/mol/nm), stress (eV/A^3) from mace-torch's MACECalculator."""
    import ase
    from mace.calculators import MACECalculator

    atoms = ase.Atoms(numbers=numbers, positions=np.asarray(positions_nm) * ANGSTROM_PER_NM)
    if box_nm is not None:
        atoms.cell = np.eye(3) * box_nm * ANGSTROM_PER_NM
        atoms.pbc = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atoms.calc = MACECalculator(model_paths=str(model_path), device="cpu", default_dtype=dtype)
        energy = atoms.get_potential_energy() * KJ_PER_MOL_PER_EV
        forces = atoms.get_forces() * KJ_NM_PER_EV_A
        stress = atoms.get_stress(voigt=False) if box_nm is not None else None
    return energy, forces, stress


def rel_force_error(forces, reference):
    return np.abs(forces - reference).max() / np.abs(reference).max()


# ---------------------------------------------------------------- model fixture itself
def test_random_model_loads_everywhere(model64):
    info = MACEModelInfo.from_path(model64)
    assert info.atomic_numbers == (1, 6, 7, 8, 9)
    assert info.r_max_nm == pytest.approx(0.5)
    assert info.dtype == "float64" and info.heads == ("Default",)
    assert info.model_class == "ScaleShiftMACE"
    assert load_mace_model(model64).__class__.__name__ == "ScaleShiftMACE"


def test_compiled_model_file_and_non_model_file(tmp_path, model64, paracetamol):
    """A TorchScript export (mace-torch's NAME_compiled.model) gives the same energy as the pickle."""
    import copy

    from e3nn.util import jit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        jit.compile(copy.deepcopy(load_mace_model(model64))).save(str(tmp_path / "compiled.model"))
    x = torch.tensor(paracetamol.positions_nm)
    energies = [float(build_mace_module(p, paracetamol.atomic_numbers)(x)) for p in (model64, tmp_path / "compiled.model")]
    assert energies[0] == pytest.approx(energies[1], rel=1e-12)
    torch.save({"not": "a model"}, tmp_path / "dict.model")
    with pytest.raises(PotentialError, match="not a MACE model"):
        load_mace_model(tmp_path / "dict.model")


# ---------------------------------------------------------------- exactness vs MACECalculator
@pytest.mark.parametrize("dtype, tol", [("float64", 1e-6), ("float32", 1e-4)])
@pytest.mark.parametrize("neighbor_list", ["auto", "vesin"])
def test_gas_phase_matches_mace_calculator(paracetamol, model64, model32, dtype, tol, neighbor_list):
    model = model64 if dtype == "float64" else model32
    top = molecule_topology([paracetamol])
    system = bare_system(top)
    force = add_mace_force(system, top, model, dtype=dtype, neighbor_list=neighbor_list, energy_type="energy")
    assert not force.usesPeriodicBoundaryConditions()
    # Rotate and translate far from the origin: the module must not assume anything about placement.
    rotation = np.linalg.qr(np.random.default_rng(3).normal(size=(3, 3)))[0]
    positions = paracetamol.positions_nm @ rotation.T + np.array([3.0, -7.0, 11.0])
    energy, forces = openmm_energy_forces(system, positions)
    ref_e, ref_f, _ = ase_reference(model, paracetamol.atomic_numbers, positions, dtype=dtype)
    assert abs(energy - ref_e) / abs(ref_e) < tol
    assert rel_force_error(forces, ref_f) < tol
    # The energy is not dominated by the force-free E0 sum only: the interaction part also matches.
    assert np.abs(ref_f).max() > 1.0


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-6), ("float32", 1e-4)])
def test_periodic_box_matches_mace_calculator(ec_box, model64, model32, dtype, tol):
    model = model64 if dtype == "float64" else model32
    system = bare_system(ec_box.topology, ec_box.box_edge_nm)
    force = add_mace_force(system, ec_box.topology, model, dtype=dtype, energy_type="energy")
    assert force.usesPeriodicBoundaryConditions()
    # Unwrapped coordinates (atoms outside the box) as OpenMM keeps them during MD.
    positions = ec_box.positions_nm + np.array([0.37, -0.81, 1.9])
    energy, forces = openmm_energy_forces(system, positions)
    ref_e, ref_f, _ = ase_reference(model, [a.element.atomic_number for a in ec_box.topology.atoms()],
                                    positions, box_nm=ec_box.box_edge_nm, dtype=dtype)
    assert abs(energy - ref_e) / abs(ref_e) < tol
    assert rel_force_error(forces, ref_f) < tol
    # Periodicity matters here: the same coordinates without PBC give another energy.
    gas_e, _, _ = ase_reference(model, [a.element.atomic_number for a in ec_box.topology.atoms()], positions,
                                dtype=dtype)
    assert abs(gas_e - ref_e) > 1.0


def test_module_variants_and_platforms_agree(paracetamol, model64):
    """Energy-only module (openmm-torch differentiates) == module returning forces, on both
    platforms, with TorchScript's graph-executor optimisation on and off."""
    from openmm_physembed.torch_device import torchscript_optimization

    top = molecule_topology([paracetamol])
    results = []
    variants = [(False, False, "Reference"), (False, False, "CPU"), (True, False, "CPU"), (False, True, "CPU"),
                (True, True, "Reference")]
    for return_forces, jit_optimize, platform in variants:
        system = bare_system(top)
        add_mace_force(system, top, model64, dtype="float64", return_forces=return_forces)
        with torchscript_optimization(jit_optimize):
            results.append(openmm_energy_forces(system, paracetamol.positions_nm, platform))
    for energy, forces in results[1:]:
        assert energy == pytest.approx(results[0][0], rel=1e-12)
        assert np.abs(forces - results[0][1]).max() < 1e-9


def test_atom_subset(paracetamol, model64):
    """MACE on paracetamol only, inside a System that also holds a nearby water: water feels nothing."""
    water = Molecule.from_smiles("O", name="water")
    top = molecule_topology([paracetamol, water])
    positions = np.vstack([paracetamol.positions_nm, water.positions_nm + paracetamol.positions_nm[0] + 0.25])
    system = bare_system(top)
    n = paracetamol.n_atoms
    add_mace_force(system, top, model64, atoms=range(n), dtype="float64", energy_type="energy")
    energy, forces = openmm_energy_forces(system, positions)
    ref_e, ref_f, _ = ase_reference(model64, paracetamol.atomic_numbers, positions[:n])
    assert abs(energy - ref_e) / abs(ref_e) < 1e-9
    assert rel_force_error(forces[:n], ref_f) < 1e-9
    assert np.all(forces[n:] == 0.0)
    # Sanity of the check: with the water included the energy changes (it is within the cutoff).
    full_e, _, _ = ase_reference(model64, list(paracetamol.atomic_numbers) + [8, 1, 1], positions)
    assert abs(full_e - ref_e - ase_reference(model64, [8, 1, 1], positions[n:])[0]) > 1e-3


# ---------------------------------------------------------------- one default at every entry point
def _e0_sum_kj(model_path, numbers) -> float:
    model = load_mace_model(model_path)
    e0 = dict(zip(model.atomic_numbers.tolist(), model.atomic_energies_fn.atomic_energies.flatten().tolist()))
    return sum(e0[z] for z in numbers) * KJ_PER_MOL_PER_EV


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_one_model_file_gives_one_energy_through_every_entry_point(paracetamol, model64, model32, dtype):
    """add_mace_force, CorrectedMACESystem (correction off) and MLPotential('physembed-mace'), all with
    their defaults, give the same energy: the model file's own dtype and the interaction energy, i.e.
    MACECalculator's total minus the isolated-atom energies."""
    pytest.importorskip("openmmml")
    from openmmml import MLPotential

    from openmm_physembed.potentials.correction_choice import CSOCorrection
    from openmm_physembed.potentials.corrected_system import CorrectedMACESystem

    model = model64 if dtype == "float64" else model32
    top = molecule_topology([paracetamol])
    positions = paracetamol.positions_nm

    def energy(system):
        return openmm_energy_forces(system, positions)[0]

    plain = bare_system(top)
    add_mace_force(plain, top, model)
    corrected = CorrectedMACESystem(model, top, positions, correction=CSOCorrection(0.0, 0.0, 1.0, source="off"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openmm-ml's own import-time messages
        through_openmm_ml = MLPotential("physembed-mace", modelPath=str(model)).createSystem(top)
    energies = [energy(plain), energy(corrected.system), energy(through_openmm_ml)]
    assert energies[1] == pytest.approx(energies[0], rel=1e-12)
    assert energies[2] == pytest.approx(energies[0], rel=1e-12)

    ref_total, _, _ = ase_reference(model, paracetamol.atomic_numbers, positions)
    interaction = ref_total - _e0_sum_kj(model, paracetamol.atomic_numbers)
    tolerance = 1e-8 if dtype == "float64" else 1e-4  # the float32 model runs in float32, the reference in float64
    assert energies[0] == pytest.approx(interaction, rel=tolerance)
    # The check can fail: the other dtype and the total energy are measurably different numbers.
    other = bare_system(top)
    add_mace_force(other, top, model, dtype="float32" if dtype == "float64" else "float64")
    assert abs(energy(other) - energies[0]) > 1e-9 * abs(energies[0])
    total = bare_system(top)
    add_mace_force(total, top, model, energy_type="energy")
    assert energy(total) == pytest.approx(ref_total, rel=tolerance)


def test_adding_the_force_leaves_torchscript_alone_and_the_cpu_engine_scopes_it(paracetamol, model64):
    """add_mace_force changes no thread-global state; MDEngine switches TorchScript's optimisation off
    for a TorchForce on the CPU while it lives, and restores the caller's setting on close."""
    from openmm_physembed.simulation.dynamics import Dynamics
    from openmm_physembed.simulation.engine import MDEngine
    from openmm_physembed.torch_device import torchscript_optimization

    top = molecule_topology([paracetamol])
    with torchscript_optimization(True):
        system = bare_system(top)
        add_mace_force(system, top, model64)
        assert torch._C._get_graph_executor_optimize() is True
        with MDEngine(system, top, paracetamol.positions_nm, Dynamics(300.0, 0.5, platform="CPU")) as md:
            assert torch._C._get_graph_executor_optimize() is False
            md.context.getIntegrator().step(2)
        assert torch._C._get_graph_executor_optimize() is True
        with pytest.warns(DeprecationWarning, match="jit_optimize"):  # the old switch, still honoured
            add_mace_force(bare_system(top), top, model64, jit_optimize=False)
        assert torch._C._get_graph_executor_optimize() is False


# ---------------------------------------------------------------- batched replicas
@pytest.mark.parametrize("how", ["molecule", "residue", "ids"])
def test_replicas_are_independent(paracetamol, model64, how):
    """N overlapping copies in one Context: energy = sum of single-molecule energies, forces per copy."""
    n_rep, n = 5, paracetamol.n_atoms
    rng = np.random.default_rng(7)
    copies = []
    for _ in range(n_rep):
        rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        # Same centre within 0.1 nm: the copies overlap heavily, so any cross-copy edge would show.
        copies.append((paracetamol.positions_nm - paracetamol.positions_nm.mean(0)) @ rotation.T
                      + rng.normal(scale=0.1, size=3))
    positions = np.vstack(copies)
    top = molecule_topology([paracetamol] * n_rep)
    system = bare_system(top)
    replicas = np.repeat(np.arange(n_rep) * 3 + 1, n) if how == "ids" else how
    add_mace_force(system, top, model64, replicas=replicas, dtype="float64", energy_type="energy")
    energy, forces = openmm_energy_forces(system, positions)
    singles = [ase_reference(model64, paracetamol.atomic_numbers, c) for c in copies]
    assert abs(energy - sum(e for e, _, _ in singles)) / abs(energy) < 1e-9
    for k, (_, ref_f, _) in enumerate(singles):
        assert rel_force_error(forces[k * n:(k + 1) * n], ref_f) < 1e-9
    # Without replicas the overlapping copies interact strongly.
    system = bare_system(top)
    add_mace_force(system, top, model64, dtype="float64")
    assert abs(openmm_energy_forces(system, positions)[0] - energy) > 10.0


def test_replicas_in_periodic_box_equal_isolated_molecules(ec_box, model64):
    system = bare_system(ec_box.topology, ec_box.box_edge_nm)
    add_mace_force(system, ec_box.topology, model64, replicas="residue", dtype="float64", energy_type="energy")
    energy, forces = openmm_energy_forces(system, ec_box.positions_nm)
    index = ec_box.molecule_index()
    numbers = np.array([a.element.atomic_number for a in ec_box.topology.atoms()])
    total = 0.0
    for k in range(ec_box.n_molecules):
        sel = index == k
        e, f, _ = ase_reference(model64, numbers[sel], ec_box.positions_nm[sel])
        total += e
        assert rel_force_error(forces[sel], f) < 1e-9
    assert abs(energy - total) / abs(total) < 1e-9


def test_replica_grid_cells_are_distinct():
    cells = replica_grid(100)
    assert cells.shape == (100, 3) and len({tuple(c) for c in cells}) == 100 and cells.max() == 4


# ---------------------------------------------------------------- inside a CustomCVForce (openmm-ml's interpolation)
def _overlapping_copies(molecule, n_copies, seed=7):
    rng = np.random.default_rng(seed)
    centred = molecule.positions_nm - molecule.positions_nm.mean(0)
    return np.vstack([centred @ np.linalg.qr(rng.normal(size=(3, 3)))[0].T + rng.normal(scale=0.1, size=3)
                      for _ in range(n_copies)])


@pytest.mark.parametrize("case", ["subset", "periodic", "replicas"])
def test_force_from_an_empty_system_works_as_a_collective_variable(paracetamol, ec_box, model64, case):
    """openmm-ml's ``createMixedSystem(interpolate=True)`` adds MACE to an empty System, deep-copies the force
    into a ``CustomCVForce``, which copies it again through XML for its inner Context. Inside
    ``0.25 * mace`` it must give 0.25 x the energy and forces of add_mace_force on the System itself
    (the TorchForce): for an atom subset, in a periodic box (at two box sizes, so the box must
    reach the module) and with replicas.
    """
    import copy

    from openmm_physembed.workarounds import TORCHFORCE_XML

    options, boxes = {}, [None]
    if case == "subset":  # paracetamol modelled, a water next to it not
        water = Molecule.from_smiles("O", name="water")
        top = molecule_topology([paracetamol, water])
        positions = np.vstack([paracetamol.positions_nm, water.positions_nm + paracetamol.positions_nm[0] + 0.25])
        options["atoms"] = list(range(paracetamol.n_atoms))
    elif case == "periodic":
        top, positions = ec_box.topology, ec_box.positions_nm
        boxes = [np.eye(3) * ec_box.box_edge_nm, np.eye(3) * ec_box.box_edge_nm * 1.04]
    else:
        top, positions = molecule_topology([paracetamol] * 3), _overlapping_copies(paracetamol, 3)
        options["replicas"] = "molecule"

    def evaluate(system, box):
        context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("CPU"))
        if box is not None:
            context.setPeriodicBoxVectors(*box)
        context.setPositions(positions)
        state = context.getState(getEnergy=True, getForces=True)
        return state.getPotentialEnergy()._value, state.getForces(asNumpy=True)._value

    reference = bare_system(top, None if boxes[0] is None else ec_box.box_edge_nm)
    add_mace_force(reference, top, model64, dtype="float64", **options)
    empty = openmm.System()
    force = add_mace_force(empty, top, model64, dtype="float64", **options)
    assert isinstance(force, openmm.PythonForce) == TORCHFORCE_XML.active()
    assert force.usesPeriodicBoundaryConditions() == (case == "periodic")
    cv = openmm.CustomCVForce("0.25 * mace")
    cv.addCollectiveVariable("mace", copy.deepcopy(empty.getForce(0)))
    system = bare_system(top, None if boxes[0] is None else ec_box.box_edge_nm)
    system.addForce(cv)
    assert system.usesPeriodicBoundaryConditions() == (case == "periodic")
    energies = []
    for box in boxes:
        (energy, forces), (ref_energy, ref_forces) = evaluate(system, box), evaluate(reference, box)
        assert energy == pytest.approx(0.25 * ref_energy, rel=1e-12)
        assert np.abs(forces - 0.25 * ref_forces).max() < 1e-9 * np.abs(ref_forces).max()
        energies.append(energy)
    if case == "periodic":
        assert abs(energies[1] - energies[0]) > 1.0  # the box reached the module


# ---------------------------------------------------------------- virial
def test_virial_matches_mace_stress(ec_box, model64):
    numbers = [a.element.atomic_number for a in ec_box.topology.atoms()]
    module = build_mace_module(model64, numbers, periodic=True)
    virial = mace_virial(module, ec_box.positions_nm, np.eye(3) * ec_box.box_edge_nm)
    _, _, stress = ase_reference(model64, numbers, ec_box.positions_nm, box_nm=ec_box.box_edge_nm)
    volume_a3 = (ec_box.box_edge_nm * ANGSTROM_PER_NM) ** 3
    # mace-torch: stress = -virial / V (eV/A^3).
    reference = -stress * volume_a3 * KJ_PER_MOL_PER_EV
    assert np.abs(virial - reference).max() / np.abs(reference).max() < 1e-6
    assert np.abs(reference).max() > 1.0


# ---------------------------------------------------------------- errors
def test_unknown_element_is_named(tmp_path, paracetamol):
    model = make_random_mace_model(tmp_path / "cho.model", atomic_numbers=(1, 6, 8))
    top = molecule_topology([paracetamol])
    with pytest.raises(PotentialError, match=r"element\(s\) N; it knows H, C, O"):
        add_mace_force(bare_system(top), top, model)


def test_missing_and_unreadable_model_files(tmp_path, paracetamol):
    top = molecule_topology([paracetamol])
    with pytest.raises(PotentialError, match="does not exist"):
        add_mace_force(bare_system(top), top, tmp_path / "nope.model")
    junk = tmp_path / "junk.model"
    junk.write_text("not a model")
    with pytest.raises(PotentialError, match="cannot read MACE model"):
        add_mace_force(bare_system(top), top, junk)
    with pytest.raises(PotentialError, match="cannot read"):
        load_mace_model(junk)


def test_box_smaller_than_twice_the_cutoff(ec_box, model64):
    system = bare_system(ec_box.topology, 0.95)  # 2 r_max = 1.0 nm
    with pytest.raises(PotentialError, match="smaller than twice the MACE cutoff"):
        add_mace_force(system, ec_box.topology, model64)


def test_bad_replicas_and_atoms(paracetamol, model64):
    top = molecule_topology([paracetamol])
    with pytest.raises(PotentialError, match="replicas must be"):
        add_mace_force(bare_system(top), top, model64, replicas="chains")
    with pytest.raises(PotentialError, match="replica ids must be one per"):
        add_mace_force(bare_system(top), top, model64, replicas=[0, 1])
    with pytest.raises(PotentialError, match="atoms must be distinct"):
        add_mace_force(bare_system(top), top, model64, atoms=[0, 0, 1])
    # An empty System (openmm-ml's interpolation) is checked against the topology.
    with pytest.raises(PotentialError, match=rf"atoms must be distinct atom indices .* \[0, {paracetamol.n_atoms}\)"):
        add_mace_force(openmm.System(), top, model64, atoms=[0, paracetamol.n_atoms])
    with pytest.raises(PotentialError, match=f"topology has {paracetamol.n_atoms} atoms but the System 3 particles"):
        add_mace_force(bare_system(molecule_topology([Molecule.from_smiles("O", name="water")])), top, model64)


# ---------------------------------------------------------------- NVE energy conservation
def _nve_total_energy(system, positions, n_samples=80, stride=4, forces_module=None):
    integrator = openmm.VerletIntegrator(0.0005)  # 0.5 fs
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(positions)
    context.setVelocitiesToTemperature(300.0, 1)
    total, potential = [], []
    for _ in range(n_samples):
        state = context.getState(getEnergy=True)
        pe = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        ke = state.getKineticEnergy().value_in_unit(unit.kilojoule_per_mole)
        total.append(pe + ke)
        potential.append(pe)
        integrator.step(stride)
    return np.array(total), np.array(potential)


def test_nve_energy_conservation(paracetamol, model64):
    """Verlet, 0.5 fs, float64, 160 fs: total energy holds to < 2 % of the potential energy's swing.

    The bound catches a wrong force: the same run with forces scaled by 1.1 (energy unchanged)
    breaks it (measured: 0.5 % with the right forces, ~10 % with the wrong ones).
    """
    import openmmtorch

    top = molecule_topology([paracetamol])
    system = bare_system(top)
    add_mace_force(system, top, model64, dtype="float64")
    total, potential = _nve_total_energy(system, paracetamol.positions_nm)
    swing = np.ptp(potential)
    deviation = np.abs(total - total[0]).max()
    drift = np.polyfit(np.arange(len(total)) * 4 * 0.0005, total, 1)[0]
    print(f"NVE paracetamol: max |dE_tot| = {deviation:.3f} kJ/mol, drift {drift:.3f} kJ/mol/ps, "
          f"potential swing {swing:.1f} kJ/mol")
    assert swing > 20.0  # the molecule really moves on the MACE surface
    assert deviation < 0.02 * swing

    # Negative control: inconsistent forces (x1.1) through the same machinery.
    module = build_mace_module(model64, paracetamol.atomic_numbers, return_forces=True)

    class WrongForces(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, positions: torch.Tensor):
            energy, forces = self.inner(positions)
            return energy, 1.1 * forces

    wrong = openmmtorch.TorchForce(inline_forward(torch.jit.script(WrongForces(module))))
    wrong.setOutputsForces(True)
    system = bare_system(top)
    system.addForce(wrong)
    total, potential = _nve_total_energy(system, paracetamol.positions_nm)
    wrong_deviation = np.abs(total - total[0]).max()
    print(f"NVE with forces x1.1: max |dE_tot| = {wrong_deviation:.3f} kJ/mol, swing {np.ptp(potential):.1f} kJ/mol")
    assert wrong_deviation > 0.02 * np.ptp(potential)


# ---------------------------------------------------------------- import order and CLI
def test_torch_force_works_when_openmm_was_imported_before_torch(tmp_path, model64):
    """openmm first, torch later: the openmm-torch kernel plugin must still be found."""
    import subprocess
    import sys

    script = (
        "import openmm, numpy as np\n"
        "from openmm import app\n"
        "from openmm_physembed.potentials.mace_force import add_mace_force\n"
        "top = app.Topology(); res = top.addResidue('M', top.addChain())\n"
        "for s in 'OHH': top.addAtom(s, app.Element.getBySymbol(s), res)\n"
        "system = openmm.System(); [system.addParticle(1.0) for _ in range(3)]\n"
        f"add_mace_force(system, top, {str(model64)!r}, dtype='float64', energy_type='energy')\n"
        "c = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName('CPU'))\n"
        "c.setPositions(np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]]))\n"
        "print('ENERGY', c.getState(getEnergy=True).getPotentialEnergy()._value)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    energy = float(proc.stdout.split("ENERGY")[1])
    ref_e, _, _ = ase_reference(model64, [8, 1, 1], np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]]))
    assert energy == pytest.approx(ref_e, rel=1e-9)


def test_md_command_runs_and_resumes(tmp_path, model64):
    from openmm_physembed.cli import main
    from openmm_physembed.io import read_json

    out = tmp_path / "md"
    args = ["md", str(model64), "paracetamol", "--replicas", "2", "--interval", "5", "--dtype", "float64",
            "-o", str(out)]
    assert main(args + ["--steps", "10"]) == 0
    assert main(args + ["--steps", "20"]) == 0
    chunks = sorted((out / "records" / "frames").glob("*.npz"))
    steps = np.concatenate([np.load(c)["step"] for c in chunks])
    assert list(steps) == [5, 10, 15, 20]
    frame = np.load(chunks[-1])
    assert frame["positions_nm"].shape == (2, 40, 3) and np.all(np.isfinite(frame["potential_energy_kj_mol"]))
    assert read_json(out / "run.json")["state"]["n_steps"] == 20
    assert main(["md", str(tmp_path / "missing.model"), "paracetamol", "-o", str(tmp_path / "x")]) == 2
