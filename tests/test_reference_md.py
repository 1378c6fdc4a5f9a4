import numpy as np
import pytest

from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import SimulationError
from openmm_physembed.io import read_extxyz
from openmm_physembed.sampling.reference_md import GasPhaseMDProtocol, run_gas_phase_md

PROTOCOL = GasPhaseMDProtocol(n_steps=20_000, frame_interval=100, n_frames=50, charge_method="gasteiger")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    molecule = Molecule.from_name("paracetamol")
    out = tmp_path_factory.mktemp("ref")
    return molecule, out, run_gas_phase_md(molecule, out, PROTOCOL, progress=False)


def test_frame_count_and_spacing(reference):
    molecule, _, result = reference
    data = np.load(result.trajectory_path)
    assert len(data["step"]) == 200
    np.testing.assert_array_equal(data["step"], np.arange(100, 20_001, 100))
    assert data["positions_nm"].shape == (200, molecule.n_atoms, 3)
    assert len(result.selected) == 50 and len(set(result.selected)) == 50
    np.testing.assert_allclose(result.positions_nm, data["positions_nm"][list(result.selected)])


def test_frames_are_ase_readable_with_metadata(reference):
    molecule, _, result = reference
    frames = read_extxyz(result.frames_path)
    assert len(frames) == 50
    first = frames[0]
    assert first.get_chemical_symbols() == molecule.symbols
    np.testing.assert_allclose(first.positions, result.positions_nm[0] * 10.0, atol=1e-5)
    assert first.info["molecule"] == "paracetamol"
    assert first.info["total_charge"] == 0 and first.info["multiplicity"] == 1
    assert first.info["source_step"] % 100 == 0
    assert list(first.arrays["gaff_type"][:3]) == ["c3", "c", "o"]


def test_md_samples_300_K_bond_fluctuations(reference):
    molecule, _, result = reference
    positions = result.all_positions_nm()
    # Equipartition for a stiff bond: <(r - r0)^2> = kT / k.  For c-o (k = 533,650 kJ/mol/nm^2)
    # at 300 K, std(r) = sqrt(2.494 / 533650) = 0.00216 nm (a loose check on the temperature).
    c, o = 1, 2
    r = np.linalg.norm(positions[:, c] - positions[:, o], axis=1)
    assert 0.0015 < r.std() < 0.0030


def test_rerun_reuses_finished_work(reference, monkeypatch):
    molecule, out, result = reference
    from openmm.app import Simulation

    def no_steps(self, steps):
        raise AssertionError("a finished run was simulated again")

    monkeypatch.setattr(Simulation, "step", no_steps)
    again = run_gas_phase_md(molecule, out, PROTOCOL, progress=False)
    assert again.selected == result.selected


def test_changed_settings_are_refused(reference):
    molecule, out, _ = reference
    with pytest.raises(SimulationError, match="different settings"):
        run_gas_phase_md(molecule, out, GasPhaseMDProtocol(n_steps=20_000, seed=5, charge_method="gasteiger"),
                         progress=False)


def test_too_few_frames_is_refused(tmp_path):
    with pytest.raises(SimulationError, match="fewer than"):
        run_gas_phase_md(Molecule.from_name("ec"), tmp_path, GasPhaseMDProtocol(n_steps=1000, n_frames=50))
