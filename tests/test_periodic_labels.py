"""Periodic GFN2-xTB labels (tblite): stress and forces against finite differences of the energy,
the sign mace-torch reads, the large-box limit against xtb-python's molecule labels, E0s, SCF
retries, resume, executors and bad input.

Every tblite single point here takes ~0.01-0.1 s of CPU: two water molecules in a ~7 A triclinic
cell, or a small molecule in a 20-30 A box.
"""

import json

import ase
import numpy as np
import pytest
from ase.build import molecule
from ase.geometry import cellpar_to_cell
from ase.stress import voigt_6_to_full_3x3_stress

from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import LabellingError
from openmm_physembed.executors import SerialExecutor, make_executor
from openmm_physembed.io import read_extxyz, write_extxyz
from openmm_physembed.labelling import labeller
from openmm_physembed.labelling.labeller import compute_e0s, label_structures, read_e0s
from openmm_physembed.labelling.tblite_backend import tblite_single_point
from openmm_physembed.units import BOHR_IN_ANGSTROM, HARTREE_IN_EV

VOIGT = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]
# Exact in the 2019 SI. (tblite's docstring quotes an older k_B in hartree/K, 1e-6 smaller:
# enough to move a dissociated molecule's energy at 1000 K by 2e-8 hartree.)
BOLTZMANN_EV_PER_K = 1.380649e-23 / 1.602176634e-19


def water_pair(cellpar=(6.5, 7.0, 7.5, 80.0, 95.0, 105.0), seed=0):
    """Two rattled waters in a triclinic cell: every stress component is non-zero."""
    water = molecule("H2O")
    atoms = ase.Atoms(cell=cellpar_to_cell(cellpar), pbc=True)
    first = water.copy()
    first.positions += [1.0, 1.2, 1.1]
    second = water.copy()
    second.rotate(90, "x")
    second.positions += [3.6, 3.0, 3.4]
    atoms += first
    atoms += second
    atoms.positions += np.random.default_rng(seed).normal(0.0, 0.05, atoms.positions.shape)
    return atoms


def in_box(atoms, length, seed=None):
    """A molecule centred in a cubic periodic box (optionally rattled)."""
    boxed = atoms.copy()
    if seed is not None:
        boxed.positions += np.random.default_rng(seed).normal(0.0, 0.03, boxed.positions.shape)
    boxed.positions += length / 2 - boxed.positions.mean(axis=0)
    boxed.cell = np.eye(3) * length
    boxed.pbc = True
    return boxed


def scaled_water(scale):
    """Water with every distance to the centroid scaled; x3.7 does not converge at 300 K."""
    atoms = ase.Atoms("OH2", positions=[[0.0, 0.0, 0.119], [0.0, 0.763, -0.477], [0.0, -0.763, -0.477]])
    atoms.positions = (atoms.positions - atoms.positions.mean(axis=0)) * scale
    return atoms


def direct_tblite(atoms, temperature=300.0):
    """The reference: tblite called by hand, in its own units (bohr, hartree, kT in hartree)."""
    from tblite.interface import Calculator

    calc = Calculator("GFN2-xTB", atoms.numbers, atoms.positions / BOHR_IN_ANGSTROM, 0.0, 0,
                      np.asarray(atoms.cell) / BOHR_IN_ANGSTROM, np.asarray(atoms.pbc))
    calc.set("verbosity", 0)
    calc.set("temperature", temperature * BOLTZMANN_EV_PER_K / HARTREE_IN_EV)
    result = calc.singlepoint()
    return result.get("energy"), result.get("gradient")


def energy(atoms, positions=None, cell=None):
    positions = atoms.positions if positions is None else positions
    cell = atoms.cell[:] if cell is None else cell
    return tblite_single_point(atoms.numbers, positions, cell_angstrom=cell)[0]


@pytest.fixture(scope="module")
def labelled_pair(tmp_path_factory):
    atoms = water_pair()
    result = label_structures([atoms], tmp_path_factory.mktemp("pair") / "pair.extxyz", periodic=True,
                              executor=SerialExecutor(), progress=False)
    return atoms, result.atoms()[0]


def test_stress_is_the_strain_derivative_of_the_energy(labelled_pair):
    """sigma_ij = (1/V) dE/d(epsilon_ij), central differences under symmetric strains.

    The strain moves cell and atoms together, r -> r (1 + epsilon). At h = 1e-4 the difference
    is converged (h = 1e-5 gives the same to 1e-8 eV/A^3); what remains, up to 2.4e-7 eV/A^3
    (8e-5 of the largest component, 3e-3 eV/A^3), is a floor between tblite's analytic strain
    derivative and its energy that tighter SCF accuracy does not move. The tolerance, 1e-6
    eV/A^3 (0.16 MPa), is four times that floor.
    """
    atoms, label = labelled_pair
    stress = voigt_6_to_full_3x3_stress(label.info["REF_stress"])
    volume, h = atoms.get_volume(), 1e-4
    for i, j in VOIGT:
        strain = np.zeros((3, 3))
        strain[i, j] += h / 2
        strain[j, i] += h / 2
        plus, minus = np.eye(3) + strain, np.eye(3) - strain
        derivative = (energy(atoms, atoms.positions @ plus, atoms.cell[:] @ plus)
                      - energy(atoms, atoms.positions @ minus, atoms.cell[:] @ minus)) / (2 * h)
        assert stress[i, j] == pytest.approx(derivative / volume, abs=1e-6), (i, j)
    assert np.abs(stress).max() > 1e-3  # a real test: the stress is not ~0


def test_forces_are_minus_the_energy_gradient(labelled_pair):
    """F = -dE/dx by central differences (h = 1e-4 A, converged: h = 1e-5 agrees to 3e-7 eV/A).

    The remaining floor between tblite's analytic gradient and its energy is up to 1e-5 eV/A
    (forces here reach 1.4 eV/A); tolerance 5e-5 eV/A. The last check moves every atom at once
    along a random direction, so a wrong atom or axis order cannot pass.
    """
    atoms, label = labelled_pair
    forces, h = label.arrays["REF_forces"], 1e-4
    for atom, axis in [(0, 0), (2, 1), (4, 2)]:
        plus, minus = atoms.positions.copy(), atoms.positions.copy()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        assert forces[atom, axis] == pytest.approx(-(energy(atoms, plus) - energy(atoms, minus)) / (2 * h),
                                                   abs=5e-5), (atom, axis)
    direction = np.random.default_rng(1).normal(size=atoms.positions.shape)
    direction /= np.linalg.norm(direction)
    slope = (energy(atoms, atoms.positions + h * direction) - energy(atoms, atoms.positions - h * direction)) / (2 * h)
    assert np.sum(forces * direction) == pytest.approx(-slope, abs=5e-5)


def test_compressed_box_has_positive_pressure_in_the_sign_mace_reads(tmp_path):
    """REF_stress is ASE's ``atoms.get_stress()``: (1/V) dE/d(strain), Voigt xx yy zz yz xz xy.

    mace-torch reads exactly that (its data loader fills REF_stress from ``atoms.get_stress()``
    when asked for the key "stress", and its model stress is dE/d(strain)/V), so a compressed
    box has a negative diagonal and positive pressure P = -trace/3. Checked against tblite's own
    ASE calculator (separate wrapper code for units, volume and Voigt order), against P = -dE/dV
    by finite differences of isotropic scaling, P > 0, and through mace-torch's own loader.
    """
    import torch  # before mace, as everywhere in the project
    from mace.data.utils import KeySpecification, load_from_xyz
    from mace.tools.torch_tools import voigt_to_matrix
    from tblite.ase import TBLite

    atoms = water_pair()
    atoms.set_cell(atoms.cell[:] * 0.9, scale_atoms=True)  # 1.4 g/cm3: squeezed
    result = label_structures([atoms], tmp_path / "squeezed.extxyz", periodic=True, executor=SerialExecutor(),
                              progress=False)
    label = result.atoms()[0]
    stress = np.asarray(label.info["REF_stress"])
    pressure = -stress[:3].mean()
    assert pressure > 0.01  # eV/A^3 (1.6 GPa)

    # mace-torch's default keys read REF_stress as the tensor we mean (not, e.g., a 3x3 misread)
    _, configs = load_from_xyz(str(result.out_path), key_specification=KeySpecification.from_defaults())
    read_by_mace = voigt_to_matrix(torch.tensor(configs[0].properties["stress"], dtype=torch.float64)).numpy()
    np.testing.assert_allclose(read_by_mace, voigt_6_to_full_3x3_stress(stress), rtol=0, atol=1e-15)

    reference = atoms.copy()
    reference.calc = TBLite(method="GFN2-xTB", electronic_temperature=300.0, accuracy=1.0, verbosity=0)
    np.testing.assert_allclose(stress, reference.get_stress(), rtol=0, atol=1e-9)

    h = 1e-4  # relative change of every length: V(1 +- h)^3
    dE = energy(atoms, atoms.positions * (1 + h), atoms.cell[:] * (1 + h)) - \
        energy(atoms, atoms.positions * (1 - h), atoms.cell[:] * (1 - h))
    dV = atoms.get_volume() * ((1 + h) ** 3 - (1 - h) ** 3)
    assert pressure == pytest.approx(-dE / dV, abs=1e-6)  # tolerance as in the strain test


@pytest.mark.parametrize("name", ["methane", "ec"])
def test_molecule_in_a_large_box_matches_the_non_periodic_labels(tmp_path, name):
    """A periodic molecule differs from the free one only by its interaction with its images.

    For a neutral molecule under tblite's (tin-foil) Ewald sum that interaction falls off as 1/V:
    the dipole term is -2 pi mu^2 / (3 V) (times e^2/4 pi eps0 = 14.4 eV A); EC's GFN2 dipole,
    ~1.15 e A, gives ~1.5e-3 eV at 30 A, methane has none (measured 3e-5 eV). So the labels at
    30 A must agree within that size, and the difference must shrink like 1/L^3 from 20 to 30 A
    (a units or sign slip would not). The non-periodic reference is the existing xtb-python path
    (tblite and xtb-python agree to 4e-7 eV on the free molecules).
    """
    base = molecule("CH4") if name == "methane" else Molecule.from_name("ec").to_ase()
    free = in_box(base, 20.0, seed=2)
    free.cell, free.pbc = np.zeros((3, 3)), False
    boxes = [in_box(free, 20.0), in_box(free, 30.0)]
    reference = label_structures([free], tmp_path / "free.extxyz", executor=SerialExecutor(),
                                 progress=False).atoms()[0]
    periodic = label_structures(boxes, tmp_path / "boxed.extxyz", periodic=True, executor=SerialExecutor(),
                                progress=False).atoms()
    energy_tolerance, force_tolerance = {"methane": (1e-4, 1e-4), "ec": (3e-3, 1e-2)}[name]
    d_energy = [abs(p.info["REF_energy"] - reference.info["REF_energy"]) for p in periodic]
    d_forces = [np.abs(p.arrays["REF_forces"] - reference.arrays["REF_forces"]).max() for p in periodic]
    assert d_energy[1] < energy_tolerance and d_forces[1] < force_tolerance
    volume_ratio = (20.0 / 30.0) ** 3
    assert d_energy[1] < 1.5 * volume_ratio * d_energy[0]
    assert d_forces[1] < 1.5 * volume_ratio * d_forces[0]


def test_e0s_are_tblite_free_atoms_with_the_same_settings(tmp_path):
    tblite_e0s = compute_e0s(["H", "C"], electronic_temperature_K=500.0, backend="tblite")
    xtb_e0s = compute_e0s(["H", "C"], electronic_temperature_K=500.0)
    assert tblite_e0s == pytest.approx(xtb_e0s, abs=1e-6)  # two implementations of one method, eV

    result = label_structures([in_box(molecule("CH4"), 20.0, seed=3)], tmp_path / "m.extxyz", periodic=True,
                              electronic_temperature_K=500.0, executor=SerialExecutor(), progress=False)
    assert read_e0s(result.e0s_path) == pytest.approx(tblite_e0s, abs=1e-12)
    isolated = read_extxyz(result.isolated_atoms_path)
    assert {a.info["xtb_backend"] for a in isolated} == {"tblite"}
    assert {a.info["xtb_electronic_temperature_K"] for a in isolated + result.atoms()} == {500.0}
    assert json.loads(result.e0s_path.read_text())["settings"]["backend"] == "tblite"


def test_periodic_scf_failure_is_retried_then_skipped_and_recorded(tmp_path):
    # Dissociated water in a big box, real failures: x3.7 fails at 300 K and converges at 1000 K.
    frames = [in_box(scaled_water(1.0), 30.0), in_box(scaled_water(3.7), 30.0)]
    result = label_structures(frames, tmp_path / "w.extxyz", periodic=True, retry_temperatures_K=(1000.0,),
                              executor=SerialExecutor(), progress=False)
    assert result.n_labelled == 2 and result.retried == (1,) and result.n_skipped == 0
    labelled = result.atoms()
    assert [a.info["xtb_electronic_temperature_K"] for a in labelled] == [300.0, 1000.0]
    energy_hartree, _ = direct_tblite(frames[1], temperature=1000.0)
    assert abs(labelled[1].info["REF_energy"] / HARTREE_IN_EV - energy_hartree) < 1e-8

    no_retry = label_structures(frames, tmp_path / "n.extxyz", periodic=True, retry_temperatures_K=(),
                                executor=SerialExecutor(), progress=False)
    assert [s.index for s in no_retry.skipped] == [1] and no_retry.skipped[0].kind == "scf_not_converged"
    record = json.loads(no_retry.skipped_path.read_text())
    assert record["n_skipped"] == 1 and "300 K" in record["skipped"][0]["reason"]
    assert record["settings"]["backend"] == "tblite"


def test_interrupted_periodic_run_resumes_without_recomputing(tmp_path, monkeypatch):
    frames = [in_box(molecule("CH4"), 20.0, seed=seed) for seed in range(4)]
    out = tmp_path / "m.extxyz"
    real = labeller.single_point_with_retries
    calls = []

    def interrupted_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(labeller, "single_point_with_retries", interrupted_after_two)
    with pytest.raises(KeyboardInterrupt):
        label_structures(frames, out, periodic=True, executor=SerialExecutor(), chunk_size=1, progress=False)
    assert not out.exists()  # never half a file

    calls.clear()
    monkeypatch.setattr(labeller, "single_point_with_retries", lambda *a, **k: calls.append(1) or real(*a, **k))
    result = label_structures(frames, out, periodic=True, executor=SerialExecutor(), chunk_size=1, progress=False)
    assert len(calls) == 2 and result.n_computed == 2 and result.n_labelled == 4
    for frame, label in zip(frames, result.atoms()):
        energy_hartree, gradient = direct_tblite(frame)
        assert abs(label.info["REF_energy"] / HARTREE_IN_EV - energy_hartree) < 1e-8
        np.testing.assert_allclose(label.arrays["REF_forces"], -gradient * HARTREE_IN_EV / BOHR_IN_ANGSTROM,
                                   rtol=0, atol=1e-8)  # extxyz keeps 8 decimals
        np.testing.assert_allclose(label.cell[:], frame.cell[:], atol=1e-12)
        assert label.info["xtb_backend"] == "tblite" and len(label.info["REF_stress"]) == 6

    calls.clear()
    again = label_structures(frames, out, periodic=True, executor=SerialExecutor(), progress=False)
    assert len(calls) == 0 and again.n_computed == 0
    # same atoms in another cell, or labelled as a molecule: new work, not a stale cache hit
    wider = frames[0].copy()
    wider.cell = np.eye(3) * 21.0
    label_structures([wider], tmp_path / "wider.extxyz", periodic=True, work_dir=tmp_path / ".m.labelling",
                     executor=SerialExecutor(), progress=False)
    free = frames[0].copy()
    free.cell, free.pbc = np.zeros((3, 3)), False
    label_structures([free], tmp_path / "free.extxyz", work_dir=tmp_path / ".m.labelling",
                     executor=SerialExecutor(), progress=False)
    assert len(calls) == 2


def test_process_pool_gives_the_serial_periodic_labels(tmp_path):
    frames = [in_box(molecule("CH4"), 20.0, seed=seed) for seed in range(4)]
    serial = label_structures(frames, tmp_path / "serial.extxyz", periodic=True, executor=SerialExecutor(),
                              progress=False)
    with make_executor(max_workers=2, gpu=False) as pool:
        pooled = label_structures(frames, tmp_path / "pool.extxyz", periodic=True, executor=pool, chunk_size=2,
                                  progress=False)
    for a, b in zip(serial.atoms(), pooled.atoms()):
        assert a.info["REF_energy"] == pytest.approx(b.info["REF_energy"], abs=1e-10)
        np.testing.assert_allclose(a.arrays["REF_forces"], b.arrays["REF_forces"], atol=1e-10)
        np.testing.assert_allclose(a.info["REF_stress"], b.info["REF_stress"], atol=1e-12)


def test_bad_periodic_input_is_refused_with_a_clear_message(tmp_path):
    out = tmp_path / "out.extxyz"
    with pytest.raises(LabellingError, match="structure 0 .* has no periodic cell"):
        label_structures([molecule("CH4")], out, periodic=True)
    slab = water_pair()
    slab.pbc = [True, True, False]
    with pytest.raises(LabellingError, match="periodic in 2 of 3 directions.*3D"):
        label_structures([slab], out, periodic=True)
    in_nm = water_pair()
    in_nm.set_cell(in_nm.cell[:] / 10)  # the cell written in nm, positions in Angstrom
    with pytest.raises(LabellingError, match="cell too small.*not nm"):
        label_structures([in_nm], out, periodic=True)
    flat = water_pair()
    flat.set_cell([flat.cell[0], flat.cell[1], flat.cell[0] + flat.cell[1]])
    with pytest.raises(LabellingError, match="degenerate cell"):
        label_structures([flat], out, periodic=True)
    with pytest.raises(LabellingError, match="--periodic"):  # the molecule path points to the periodic one
        label_structures([water_pair()], out)
    assert not out.exists()


def test_label_cli_periodic(tmp_path):
    from openmm_physembed.cli import main

    frame = in_box(molecule("CH4"), 20.0, seed=4)
    write_extxyz(tmp_path / "in.extxyz", [frame])
    assert main(["label", str(tmp_path / "in.extxyz"), "-o", str(tmp_path / "out.extxyz"), "--periodic",
                 "--serial", "--no-progress"]) == 0
    label = read_extxyz(tmp_path / "out.extxyz")[0]
    energy_hartree, _ = direct_tblite(frame)
    assert abs(label.info["REF_energy"] / HARTREE_IN_EV - energy_hartree) < 1e-8
    assert np.asarray(label.info["REF_stress"]).shape == (6,)

    write_extxyz(tmp_path / "molecule.extxyz", [molecule("CH4")])
    assert main(["label", str(tmp_path / "molecule.extxyz"), "-o", str(tmp_path / "x.extxyz"), "--periodic",
                 "--serial", "--no-progress"]) == 2
