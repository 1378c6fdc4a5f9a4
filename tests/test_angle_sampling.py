"""Bond-angle bending on top of the bond-length sampling (sampling/angle_sampling.py).

Reference numbers: gaff.dat (GAFF 1.81) angle constants as printed in the file (kcal/mol/rad^2,
E = k (theta - theta0)^2); the gas constant from scipy.constants; the 800 K ensemble from GAFF MD.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import constants as scipy_constants

from openmm_physembed.chem.gaff import parameterize
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import SamplingError
from openmm_physembed.sampling.angle_sampling import (
    AngleSamplingParameters,
    angle_degrees,
    angle_ranges,
    gaff_angle_constants,
    plan_angles,
    set_angle,
)
from openmm_physembed.sampling.bond_sampling import augment_frames, terminal_atoms
from openmm_physembed.sampling.geometry import angle_values_deg, bond_angles, bond_lengths
from openmm_physembed.sampling.reference_md import GasPhaseMDProtocol, run_gas_phase_md
from openmm_physembed.simulation.dynamics import Dynamics

KCAL_RAD2_TO_OPENMM = 2 * 4.184  # E = k (theta-theta0)^2 in kcal/mol/rad^2 -> E = k/2 (...)^2 in kJ/mol/rad^2
GAFF_DAT_ANGLE_K = {"hc-c3-hc": 39.4, "c-c3-hc": 46.9, "c3-c-o": 67.4, "ca-ca-ha": 48.2, "ca-ca-ca": 66.6}
BENDS = AngleSamplingParameters(angles_per_structure=3, temperature_K=800.0)


@pytest.fixture(scope="module")
def paracetamol(tmp_path_factory):
    molecule = Molecule.from_name("paracetamol")
    params = parameterize(molecule, charge_method="gasteiger")
    frames = run_gas_phase_md(molecule, tmp_path_factory.mktemp("ref300"), GasPhaseMDProtocol(
        n_steps=20_000, frame_interval=100, n_frames=50, charge_method="gasteiger"), progress=False).positions_nm
    # The named step the sampler's callers use; its numbers are checked against gaff.dat below.
    return molecule, params, frames, gaff_angle_constants(molecule, charge_method="gasteiger")


def test_without_angle_constants_the_gaff_step_is_named_and_deprecated(paracetamol, monkeypatch):
    import warnings

    from openmm_physembed.sampling import bond_sampling

    molecule, _, frames, constants = paracetamol
    calls = []

    def gaff_step(target, *args, **kwargs):
        calls.append(target.name)
        return constants

    monkeypatch.setattr(bond_sampling, "gaff_angle_constants", gaff_step)
    with pytest.warns(DeprecationWarning, match="angle_constants=gaff_angle_constants"):
        implicit = augment_frames(molecule, frames, seed=5, angle_parameters=BENDS)
    explicit = augment_frames(molecule, frames, seed=5, angle_parameters=BENDS, angle_constants=constants)
    assert calls == ["paracetamol"]
    np.testing.assert_array_equal(implicit.positions_nm, explicit.positions_nm)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        augment_frames(molecule, frames, seed=5)  # bending off: nothing to parameterise
    assert calls == ["paracetamol"]


def _type(params, i, j, k):
    a, c = sorted((params.atom_types[i], params.atom_types[k]))
    return f"{a}-{params.atom_types[j]}-{c}"


def test_angle_constants_equal_gaff_dat(paracetamol):
    _, params, _, constants = paracetamol
    by_type = {}
    for atoms, k in constants.items():
        by_type.setdefault(_type(params, *atoms), set()).add(round(k, 6))
    for name, k_dat in GAFF_DAT_ANGLE_K.items():
        assert len(by_type[name]) == 1
        assert by_type[name].pop() == pytest.approx(k_dat * KCAL_RAD2_TO_OPENMM, rel=1e-3), name


def test_segments_reach_n_sigma_of_the_thermal_width_at_the_test_temperature(paracetamol):
    _, params, frames, constants = paracetamol
    ranges = angle_ranges(params.atom_types, frames, constants, BENDS)
    gas_constant = scipy_constants.R * 1e-3  # kJ/mol/K
    for name, r in ranges.items():
        sigma = np.degrees(np.sqrt(gas_constant * 800.0 / r.k))
        assert r.sigma_degrees == pytest.approx(sigma, rel=1e-6)
        assert r.closing == pytest.approx((min(r.theta_mean - 3 * sigma, r.theta_min), r.theta_min))
        assert r.opening == pytest.approx((r.theta_max, max(r.theta_mean + 3 * sigma, r.theta_max)))
    # hc-c3-hc from gaff.dat: sigma = 8.14 deg at 800 K, so it bends about 24 deg past its mean.
    k_dat = GAFF_DAT_ANGLE_K["hc-c3-hc"] * KCAL_RAD2_TO_OPENMM
    assert ranges["hc-c3-hc"].sigma_degrees == pytest.approx(np.degrees(np.sqrt(gas_constant * 800.0 / k_dat)),
                                                             rel=2e-3)


def test_set_angle_reaches_the_angle_keeps_every_bond_and_moves_only_one_side(paracetamol):
    molecule, params, frames, constants = paracetamol
    bonds = np.array(molecule.bonds)
    terminal = terminal_atoms(molecule.symbols, molecule.bonds, ("H", "F", "Cl", "Br", "I"))
    plans = plan_angles(params.atom_types, molecule.bonds, constants, terminal, 0.8)
    assert 0 < len(plans) < len(constants)  # ring-internal angles (ca-ca-ca) are not bent
    assert all(p.angle_type != "ca-ca-ca" for p in plans)
    rng = np.random.default_rng(1)
    for plan in plans:
        target = float(rng.uniform(85.0, 150.0))
        moved = set_angle(frames[0], plan, target)
        assert angle_degrees(moved, *plan.atoms) == pytest.approx(target, abs=1e-8)
        assert np.allclose(bond_lengths(moved, bonds), bond_lengths(frames[0], bonds), atol=1e-12)
        fixed = [n for n in range(molecule.n_atoms) if n not in plan.moved]
        assert np.array_equal(moved[fixed], frames[0][fixed])


def test_bends_add_to_the_same_bond_modifications_and_cover_the_800K_angles(paracetamol, tmp_path):
    molecule, params, frames, constants = paracetamol
    plain = augment_frames(molecule, frames, seed=5)
    bent = augment_frames(molecule, frames, seed=5, angle_parameters=BENDS, angle_constants=constants)
    assert [r.modifications for r in plain.records] == [r.modifications for r in bent.records]
    assert plain.validation_frames == bent.validation_frames and not any(r.bends for r in plain.records)
    for record in bent.records:
        assert 1 <= len(record.bends) <= 3
        assert len({b.atoms[1] for b in record.bends}) == len(record.bends)  # one bend per vertex
        for bend in record.bends:
            low, high = bent.angle_ranges[bend.angle_type].segment(bend.segment)
            assert low <= bend.new_degrees <= high

    # The 800 K ensemble (GAFF) against each training set: the bends must cut the angles it has
    # outside the training range, per frame, at least by half (measured: 5.9 -> 1.3 for paracetamol).
    hot = run_gas_phase_md(molecule, tmp_path / "hot", GasPhaseMDProtocol(
        Dynamics(800.0, seed=3), n_steps=50_000, frame_interval=100, n_frames=50, charge_method="gasteiger"),
        progress=False).all_positions_nm()
    angles = bond_angles(np.array(molecule.bonds))
    hot_values = angle_values_deg(hot, angles)

    def outside_per_frame(result):
        train = angle_values_deg(result.positions_nm, angles)
        return ((hot_values < train.min(0)) | (hot_values > train.max(0))).sum(axis=1).mean()

    assert outside_per_frame(bent) < 0.5 * outside_per_frame(plain)


def test_angle_sampling_is_off_by_default_and_checks_its_parameters():
    assert not AngleSamplingParameters().enabled
    with pytest.raises(SamplingError, match="angles_per_structure must be >= 0"):
        AngleSamplingParameters(angles_per_structure=-1)
    with pytest.raises(SamplingError, match="0 < min_degrees < max_degrees"):
        AngleSamplingParameters(min_degrees=120.0, max_degrees=100.0)
