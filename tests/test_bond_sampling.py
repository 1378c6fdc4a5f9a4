"""Self-adaptive bond-length sampling (issue 3): ranges, statistics, geometry, files, CLI.

Reference numbers: gaff.dat (GAFF 1.81) force constants as printed in the file (kcal/mol/A^2,
E = k (r - r0)^2; shared/reference/gaff_notes.md) and the paper's paracetamol stretch limits
(ca-oh +0.20 A, c-o +0.12 A, c3-hc +0.29 A above the mean).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from scipy import stats

from openmm_physembed.chem.bond_typing import BondTyping, get_bond_typing
from openmm_physembed.chem.gaff import BondParameter, read_bond_table
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import SamplingError
from openmm_physembed.io import read_extxyz
from openmm_physembed.sampling.bond_parameters import BondSamplingParameters
from openmm_physembed.sampling.bond_sampling import (
    apply_modification,
    augment_frames,
    bond_ranges,
    draw_modification,
    draw_rotation,
    plan_bonds,
)
from openmm_physembed.sampling.reference_md import GasPhaseMDProtocol, run_gas_phase_md

KCAL_A2_TO_OPENMM = 2 * 4.184 * 100  # E = k (r-r0)^2 in kcal/mol/A^2 -> E = k/2 (r-r0)^2 in kJ/mol/nm^2
GAFF_DAT_K = {  # gaff.dat, kcal/mol/A^2
    "c3-c3": 300.9, "c3-hc": 330.6, "ca-ca": 461.1, "ca-ha": 345.8, "ca-n": 384.2, "ca-oh": 384.0,
    "c-n": 427.6, "c-o": 637.7,
}
PROTOCOL = GasPhaseMDProtocol(n_steps=20_000, frame_interval=100, n_frames=50, charge_method="gasteiger")
DEFAULT = BondSamplingParameters()


@pytest.fixture(scope="module")
def source():
    return get_bond_typing("gaff", charge_method="gasteiger")


def _system(name, source, tmp_path_factory):
    molecule = Molecule.from_name(name)
    reference = run_gas_phase_md(molecule, tmp_path_factory.mktemp(f"ref_{name}"), PROTOCOL, progress=False)
    return molecule, source.type_molecule(molecule), reference


@pytest.fixture(scope="module")
def paracetamol(source, tmp_path_factory):
    return _system("paracetamol", source, tmp_path_factory)


@pytest.fixture(scope="module")
def ec(source, tmp_path_factory):
    return _system("ec", source, tmp_path_factory)


@pytest.fixture(scope="module")
def systems(paracetamol, ec):
    return {"paracetamol": paracetamol, "ec": ec}


def _lengths(positions, i, j):
    return np.linalg.norm(positions[..., j, :] - positions[..., i, :], axis=-1)


# -- ranges -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["paracetamol", "ec"])
def test_ranges_follow_the_formula_and_gaff_dat(systems, source, name):
    molecule, typing, reference = systems[name]
    frames = reference.positions_nm
    ranges = bond_ranges(typing, frames, DEFAULT, source, symbols=molecule.symbols)
    types = typing.atom_types
    k_ref = GAFF_DAT_K["c3-c3"] * KCAL_A2_TO_OPENMM  # used even though paracetamol has no c3-c3 bond
    assert set(ranges) == {"-".join(sorted((types[i], types[j]))) for i, j in molecule.bonds}
    for bond_type, r in ranges.items():
        members = [(i, j) for i, j in molecule.bonds if "-".join(sorted((types[i], types[j]))) == bond_type]
        lengths = np.concatenate([_lengths(frames, i, j) for i, j in members])
        assert r.n_samples == len(frames) * len(members)
        assert r.r_min == pytest.approx(lengths.min(), abs=1e-12)
        assert r.r_mean == pytest.approx(lengths.mean(), abs=1e-12)
        assert r.r_max == pytest.approx(lengths.max(), abs=1e-12)
        if bond_type in GAFF_DAT_K:
            assert r.k == pytest.approx(GAFF_DAT_K[bond_type] * KCAL_A2_TO_OPENMM, rel=1e-6)
        assert r.k == pytest.approx(read_bond_table("gaff")[bond_type][0], rel=1e-6)
        assert r.k_ref == pytest.approx(k_ref, rel=1e-9)
        has_h = any(molecule.symbols[a] == "H" for pair in members for a in pair)
        assert r.k_eff == pytest.approx(r.k * (0.8 if has_h else 1.0), rel=1e-12)
        assert r.compression == pytest.approx((0.95 * lengths.min(), lengths.min()), abs=1e-12)
        assert r.stretch == pytest.approx((lengths.max(), 0.025 * k_ref / r.k_eff + lengths.mean()), abs=1e-12)
        assert r.compression[0] < r.compression[1] <= r.r_mean <= r.stretch[0] < r.stretch[1]


def test_paracetamol_stretch_limits_match_the_paper(paracetamol, source):
    molecule, typing, reference = paracetamol
    ranges = bond_ranges(typing, reference.positions_nm, DEFAULT, source, symbols=molecule.symbols)
    above = {t: r.stretch_above_mean_angstrom for t, r in ranges.items()}
    # Paper: ca-oh +0.20, c-o +0.12, c3-hc +0.29 A. Formula: 0.25 x 300.9 / (384.0, 637.7, 0.8 x 330.6).
    assert above["ca-oh"] == pytest.approx(0.25 * 300.9 / 384.0, abs=2e-4) and round(above["ca-oh"], 2) == 0.20
    assert above["c-o"] == pytest.approx(0.25 * 300.9 / 637.7, abs=2e-4) and round(above["c-o"], 2) == 0.12
    assert above["c3-hc"] == pytest.approx(0.25 * 300.9 / (0.8 * 330.6), abs=2e-4)
    assert 0.28 <= above["c3-hc"] <= 0.29
    assert ranges["c-o"].stretch_angstrom[1] - ranges["c-o"].r_mean_angstrom == pytest.approx(above["c-o"])


def test_terminal_factor_applies_to_h_and_halogens_only(paracetamol, source):
    molecule, typing, reference = paracetamol
    ranges = bond_ranges(typing, reference.positions_nm, DEFAULT, source, symbols=molecule.symbols)
    ratios = {t: r.k_eff / r.k for t, r in ranges.items()}
    assert ratios == pytest.approx({"c-c3": 1, "c-n": 1, "c-o": 1, "c3-hc": 0.8, "ca-ca": 1, "ca-ha": 0.8,
                                    "ca-n": 1, "ca-oh": 1, "hn-n": 0.8, "ho-oh": 0.8})
    half = bond_ranges(typing, reference.positions_nm, BondSamplingParameters(terminal_k_factor=0.5), source,
                       symbols=molecule.symbols)
    assert half["c3-hc"].stretch_above_mean_angstrom == pytest.approx(0.25 * 300.9 / (0.5 * 330.6), abs=2e-4)
    assert half["c-o"].stretch_above_mean == pytest.approx(ranges["c-o"].stretch_above_mean)

    novec = Molecule.from_name("novec7000")  # C-F bonds are terminal, the ether C-O-C is not
    novec_typing = source.type_molecule(novec)
    novec_ranges = bond_ranges(novec_typing, novec.positions_nm, DEFAULT, source, symbols=novec.symbols)
    for bond_type, r in novec_ranges.items():
        expected = 0.8 if ("f" in bond_type.split("-") or "hc" in bond_type.split("-")
                           or "h1" in bond_type.split("-")) else 1.0
        assert r.k_eff / r.k == pytest.approx(expected), bond_type


# -- statistics of the draws -----------------------------------------------------------------------------

def test_bond_choice_follows_inverse_k_eff_and_segments_split_1_to_4(paracetamol, source):
    molecule, typing, reference = paracetamol
    ranges = bond_ranges(typing, reference.positions_nm, DEFAULT, source, symbols=molecule.symbols)
    plans = plan_bonds(typing, molecule.symbols, DEFAULT)
    rng = np.random.default_rng(12345)
    n = 40_000
    draws = [draw_modification(rng, plans, ranges, DEFAULT) for _ in range(n)]

    table = read_bond_table("gaff")
    k_eff = np.array([table[p.bond_type][0] * (0.8 if "H" in (molecule.symbols[p.atom1], molecule.symbols[p.atom2])
                                                else 1.0) for p in plans])
    expected = (1 / k_eff) / (1 / k_eff).sum()
    counts = np.bincount([d.bond_index for d in draws], minlength=len(plans))
    assert stats.chisquare(counts, expected * n).pvalue > 1e-3
    # The test has power: the same counts reject selection by 1/k (no terminal factor) and uniform selection.
    plain = (1 / np.array([p.k for p in plans]))
    assert stats.chisquare(counts, plain / plain.sum() * n).pvalue < 1e-6
    assert stats.chisquare(counts, np.full(len(plans), n / len(plans))).pvalue < 1e-6

    n_compression = sum(d.segment == "compression" for d in draws)
    assert stats.binomtest(n_compression, n, 0.2).pvalue > 1e-3
    assert stats.binomtest(n_compression, n, 0.25).pvalue < 1e-6

    # New lengths are uniform within the chosen segment (Kolmogorov-Smirnov on the unit interval).
    for segment in ("compression", "stretch"):
        u = []
        for d in draws:
            if d.segment == segment:
                low, high = ranges[plans[d.bond_index].bond_type].segment(segment)
                u.append((d.new_length - low) / (high - low))
        assert min(u) >= 0 and max(u) <= 1
        assert stats.kstest(u, "uniform").pvalue > 1e-3


def test_rotation_probability_and_angle_range(paracetamol):
    molecule, typing, _ = paracetamol
    plans = plan_bonds(typing, molecule.symbols, DEFAULT)
    methyl = next(p for p in plans if p.bond_type == "c3-hc")
    assert methyl.rotation_atoms == (11, 12, 13) and methyl.rotation_center == 0 and methyl.rotation_anchor == 1
    hydroxyl = next(p for p in plans if p.bond_type == "ho-oh")
    assert hydroxyl.rotation_atoms == (17,) and hydroxyl.rotation_anchor == 7
    # Aromatic CH and the amide NH have no single attaching bond: never rotated.
    assert not any(p.can_rotate for p in plans if p.bond_type in ("ca-ha", "hn-n"))
    assert not any(p.can_rotate for p in plans if not p.terminal)

    rng = np.random.default_rng(7)
    n = 20_000
    angles = [draw_rotation(rng, methyl, DEFAULT) for _ in range(n)]
    rotated = np.array([a for a in angles if a is not None])
    assert stats.binomtest(len(rotated), n, 0.8).pvalue > 1e-3
    assert np.all((np.abs(rotated) >= 15) & (np.abs(rotated) <= 30))
    assert stats.binomtest(int((rotated > 0).sum()), len(rotated), 0.5).pvalue > 1e-3
    assert stats.kstest((np.abs(rotated) - 15) / 15, "uniform").pvalue > 1e-3
    ca_ha = next(p for p in plans if p.bond_type == "ca-ha")
    assert all(draw_rotation(rng, ca_ha, DEFAULT) is None for _ in range(100))


def test_rotation_turns_the_methyl_group_about_the_attaching_bond(paracetamol):
    import ase

    molecule, typing, reference = paracetamol
    plans = plan_bonds(typing, molecule.symbols, DEFAULT)
    methyl = next(p for p in plans if p.bond_type == "c3-hc")
    before = reference.positions_nm[3].astype(float)
    new_length = 0.125
    after = apply_modification(before, methyl, new_length, rotation_degrees=-23.0)
    assert _lengths(after, methyl.atom1, methyl.atom2) == pytest.approx(new_length, abs=1e-12)
    a_before = ase.Atoms(molecule.symbols, positions=before * 10)
    a_after = ase.Atoms(molecule.symbols, positions=after * 10)
    for h in (11, 12, 13):  # dihedral O=C-C-H changes by the angle (ASE's own dihedral)
        change = (a_after.get_dihedral(2, 1, 0, h) - a_before.get_dihedral(2, 1, 0, h) + 180) % 360 - 180
        assert change == pytest.approx(-23.0, abs=1e-6)
    untouched = [a for a in range(molecule.n_atoms) if a not in (11, 12, 13)]
    np.testing.assert_allclose(after[untouched], before[untouched], atol=1e-15)
    for h in (12, 13):  # the other H-C bonds keep their length
        assert _lengths(after, 0, h) == pytest.approx(_lengths(before, 0, h), abs=1e-12)


# -- how atoms move --------------------------------------------------------------------------------------

def test_non_ring_bond_moves_the_smaller_side_rigidly(paracetamol):
    molecule, typing, reference = paracetamol
    plans = plan_bonds(typing, molecule.symbols, DEFAULT)
    ca_n = next(p for p in plans if p.bond_type == "ca-n")
    acetamide = {0, 1, 2, 3, 11, 12, 13, 14}  # CH3-C(=O)-NH: 8 atoms against the 12 of the phenol side
    assert set(ca_n.moved_with_1) | set(ca_n.moved_with_2) == acetamide
    before = reference.positions_nm[0].astype(float)
    old = _lengths(before, 3, 4)
    after = apply_modification(before, ca_n, old + 0.02, None)
    assert _lengths(after, 3, 4) == pytest.approx(old + 0.02, abs=1e-12)
    unit = (before[3] - before[4]) / old
    moving = sorted(acetamide)
    np.testing.assert_allclose(after[moving] - before[moving], np.tile(0.02 * unit, (8, 1)), atol=1e-12)
    fixed = [a for a in range(molecule.n_atoms) if a not in acetamide]
    np.testing.assert_allclose(after[fixed], before[fixed], atol=1e-15)


RING_CASES = [("paracetamol", bond) for bond in [(4, 5), (4, 10), (5, 6), (6, 7), (7, 9), (9, 10)]] + \
             [("ec", bond) for bond in [(1, 2), (1, 5), (2, 3), (3, 4), (4, 5)]]


@pytest.mark.parametrize("name, bond", RING_CASES)
@pytest.mark.parametrize("change", [-0.012, 0.025])
def test_ring_bonds_move_both_atoms_with_their_substituents(systems, name, bond, change):
    molecule, typing, reference = systems[name]
    assert bond in molecule.ring_bonds()  # RDKit's ring perception
    plans = plan_bonds(typing, molecule.symbols, DEFAULT)
    plan = next(p for p in plans if (p.atom1, p.atom2) == bond)
    assert plan.in_ring and plan.fraction_1 == 0.5
    i, j = bond
    # Independent expectation: RDKit ring membership; an atom's substituents are the non-ring atoms
    # reachable from it without crossing a ring atom.
    ring_atoms = {a.GetIdx() for a in molecule.rdmol.GetAtoms() if a.IsInRing()}

    def carried(atom):
        group, frontier = {atom}, [atom]
        while frontier:
            for nb in molecule.rdmol.GetAtomWithIdx(frontier.pop()).GetNeighbors():
                if nb.GetIdx() not in group and nb.GetIdx() not in ring_atoms:
                    group.add(nb.GetIdx())
                    frontier.append(nb.GetIdx())
        return group

    assert set(plan.moved_with_1) == carried(i) and set(plan.moved_with_2) == carried(j)
    before = reference.positions_nm[5].astype(float)
    old = _lengths(before, i, j)
    after = apply_modification(before, plan, old + change, None)
    assert _lengths(after, i, j) == pytest.approx(old + change, abs=1e-12)
    unit = (before[j] - before[i]) / old
    for group, sign in ((sorted(carried(i)), -0.5), (sorted(carried(j)), 0.5)):
        np.testing.assert_allclose(after[group] - before[group], np.tile(sign * change * unit, (len(group), 1)),
                                   atol=1e-12)
    still = [a for a in range(molecule.n_atoms) if a not in carried(i) | carried(j)]
    np.testing.assert_allclose(after[still], before[still], atol=1e-15)
    # Every bond keeps its length except the modified one and the ring bonds that join a moved ring
    # atom to the fixed rest of the ring (those absorb the change by design).
    for a, b in molecule.bonds:
        same_group = any({a, b} <= g for g in (carried(i), carried(j), set(still)))
        if same_group:
            assert _lengths(after, a, b) == pytest.approx(_lengths(before, a, b), abs=1e-12)
        else:
            assert (a, b) == bond or ((a, b) in molecule.ring_bonds() and {a, b} & {i, j})


def test_paracetamol_ring_bond_carries_the_acetamide_group(paracetamol):
    molecule, typing, _ = paracetamol
    plan = next(p for p in plan_bonds(typing, molecule.symbols) if (p.atom1, p.atom2) == (4, 5))
    assert plan.moved_with_1 == (0, 1, 2, 3, 4, 11, 12, 13, 14) and plan.moved_with_2 == (5, 15)


# -- the sampler -------------------------------------------------------------------------------------------

def _independent_clashes(molecule, typing, positions_nm, margin_angstrom=0.25):
    """Non-bonded pairs closer than (GAFF r0 of the type pair, else covalent radii) + margin, from scratch."""
    from ase.data import atomic_numbers, covalent_radii

    table = read_bond_table("gaff")
    bonded = set(molecule.bonds)
    types, symbols = typing.atom_types, molecule.symbols
    bad = []
    for i in range(molecule.n_atoms):
        for j in range(i + 1, molecule.n_atoms):
            if (i, j) in bonded:
                continue
            key = "-".join(sorted((types[i], types[j])))
            r_eq = table[key][1] * 10 if key in table else \
                covalent_radii[atomic_numbers[symbols[i]]] + covalent_radii[atomic_numbers[symbols[j]]]
            if np.linalg.norm(positions_nm[i] - positions_nm[j]) * 10 < r_eq + margin_angstrom:
                bad.append((i, j))
    return bad


@pytest.fixture(scope="module")
def augmented(paracetamol, source):
    molecule, typing, reference = paracetamol
    return augment_frames(molecule, reference.positions_nm, typing, DEFAULT, seed=11, source=source)


def test_augment_frames_split_records_and_geometry(paracetamol, augmented):
    molecule, typing, reference = paracetamol
    frames = reference.positions_nm
    result = augmented
    assert len(result.validation_frames) == 5 and len(result.train_frames) == 45 == len(result.records)
    assert sorted(result.validation_frames + result.train_frames) == list(range(50))
    assert result.positions_nm.shape == (45, molecule.n_atoms, 3)
    for record, positions in zip(result.records, result.positions_nm):
        (mod,) = record.modifications
        frame = frames[record.reference_frame]
        assert mod.old_length == pytest.approx(_lengths(frame, mod.atom1, mod.atom2), abs=1e-12)
        assert _lengths(positions, mod.atom1, mod.atom2) == pytest.approx(mod.new_length, abs=1e-12)
        low, high = result.ranges[mod.bond_type].segment(mod.segment)
        assert low <= mod.new_length <= high
        changed = set(np.nonzero(np.any(np.abs(positions - frame) > 1e-12, axis=1))[0])
        assert changed <= set(mod.moved_atoms) | set(mod.rotated_atoms)
        assert (mod.rotation_degrees is None) == (mod.rotated_atoms == ())
        if mod.rotation_degrees is not None:
            assert 15 <= abs(mod.rotation_degrees) <= 30
        assert _independent_clashes(molecule, typing, positions) == []
    # Not everything is the same bond or the same segment.
    assert len({r.modification.bond_type for r in result.records}) >= 5
    assert {r.modification.segment for r in result.records} == {"compression", "stretch"}


def test_augmentation_is_deterministic_for_a_seed(paracetamol, source, augmented):
    molecule, typing, reference = paracetamol
    again = augment_frames(molecule, reference.positions_nm, typing, DEFAULT, seed=11, source=source)
    np.testing.assert_array_equal(again.positions_nm, augmented.positions_nm)
    assert again.records == augmented.records and again.validation_frames == augmented.validation_frames
    other = augment_frames(molecule, reference.positions_nm, typing, DEFAULT, seed=12, source=source)
    assert other.records != augmented.records


def test_several_bonds_per_structure_keep_every_new_length(paracetamol, source):
    molecule, typing, reference = paracetamol
    parameters = BondSamplingParameters(bonds_per_structure=3, n_validation=2)
    result = augment_frames(molecule, reference.positions_nm, typing, parameters, seed=3, source=source)
    for record, positions in zip(result.records, result.positions_nm):
        assert len({(m.atom1, m.atom2) for m in record.modifications}) == 3
        for mod in record.modifications:
            assert _lengths(positions, mod.atom1, mod.atom2) == pytest.approx(mod.new_length, abs=1e-12)
        assert _independent_clashes(molecule, typing, positions) == []


# -- rejection and retry: a linear H-C#C-H whose every compression is a clash -------------------------

class _ToySource:
    """A typing source with made-up types and parameters (only ``lookup`` is used by the sampler)."""

    name = "toy"
    table = {"cx-cx": (500000.0, 0.120), "cx-hx": (300000.0, 0.106)}

    def lookup(self, type1, type2):
        return self.table.get("-".join(sorted((type1, type2))))


def _acetylene(margin_slack_angstrom):
    molecule = Molecule.from_smiles("C#C", name="acetylene")
    assert molecule.bonds == [(0, 1), (0, 2), (1, 3)]
    positions = np.array([[0, 0, 0], [0.120, 0, 0], [-0.106, 0, 0], [0.226, 0, 0]], dtype=float)
    typing = BondTyping("toy", ("cx", "cx", "hx", "hx"), (
        BondParameter(0, 1, "cx", "cx", 500000.0, 0.120),
        BondParameter(0, 2, "cx", "hx", 300000.0, 0.106),
        BondParameter(1, 3, "cx", "hx", 300000.0, 0.106),
    ))
    # Closest checked pair: H...C across the triple bond, 0.226 nm, threshold r0(cx-hx) + margin.
    margin = (0.226 - 0.106) * 10 - margin_slack_angstrom
    return molecule, typing, np.repeat(positions[None], 60, axis=0), margin


def test_rejected_modifications_are_retried_with_another_bond():
    molecule, typing, frames, margin = _acetylene(1e-9)
    parameters = BondSamplingParameters(clash_margin_angstrom=margin, n_validation=0, reference_bond_type="cx-cx")
    result = augment_frames(molecule, frames, typing, parameters, seed=5, source=_ToySource())
    rejections = [r for rec in result.records for r in rec.rejections]
    assert len(rejections) >= 5  # about 1 in 4 structures starts with a compression
    assert all(r.segment == "compression" for r in rejections)
    assert all(r.distance < r.threshold for r in rejections)
    for record in result.records:
        assert record.modification.segment == "stretch"
        assert (record.modification.atom1, record.modification.atom2) not in {(r.atom1, r.atom2)
                                                                              for r in record.rejections}
    assert result.rejected_attempts == len(rejections)


def test_sampling_error_names_the_frame_when_nothing_passes():
    molecule, typing, frames, margin = _acetylene(1e-9)
    only_compression = BondSamplingParameters(clash_margin_angstrom=margin, n_validation=0, stretch_weight=0,
                                              reference_bond_type="cx-cx")
    with pytest.raises(SamplingError, match=r"'acetylene' reference frame 0: .*every bond was tried, 3 rejected"):
        augment_frames(molecule, frames, typing, only_compression, seed=0, source=_ToySource())
    too_tight = BondSamplingParameters(clash_margin_angstrom=margin + 0.5, n_validation=0, max_attempts=2,
                                       reference_bond_type="cx-cx")
    with pytest.raises(SamplingError, match="max_attempts=2 reached.*unmodified frame already has"):
        augment_frames(molecule, frames, typing, too_tight, seed=0, source=_ToySource())


def test_bad_input_is_refused(paracetamol, source):
    molecule, typing, reference = paracetamol
    with pytest.raises(SamplingError, match="s_compression"):
        BondSamplingParameters(s_compression=1.5)
    with pytest.raises(SamplingError, match="expected"):
        augment_frames(molecule, reference.positions_nm[:, :5], typing, source=source)
    with pytest.raises(SamplingError, match="lower n_validation"):
        augment_frames(molecule, reference.positions_nm[:5], typing, source=source)
    with pytest.raises(SamplingError, match="does not match molecule"):
        augment_frames(Molecule.from_name("ec"), reference.positions_nm, typing, source=source)


# -- files and CLI -----------------------------------------------------------------------------------------

def test_run_augmentation_writes_the_training_files(paracetamol, source, tmp_path, monkeypatch):
    from openmm_physembed.sampling import augment as augment_module
    from openmm_physembed.sampling.augment import run_augmentation

    molecule, typing, reference = paracetamol
    out = tmp_path / "aug"
    result = run_augmentation(molecule, reference.frames_path, out, seed=4, typing_source=source)
    assert (result.n_train, result.n_valid, result.reused) == (45, 5, False)
    train, valid = read_extxyz(result.train_path), read_extxyz(result.valid_path)
    reference_atoms = read_extxyz(reference.frames_path)
    assert len(train) == 45 and len(valid) == 5
    for atoms in train + valid:
        assert atoms.info["molecule"] == "paracetamol" and atoms.info["smiles"] == molecule.smiles
        assert atoms.info["total_charge"] == 0 and atoms.info["multiplicity"] == 1
        assert atoms.get_chemical_symbols() == molecule.symbols
    assert {a.info["config_type"] for a in train} == {"bond_sampling"}
    assert {a.info["config_type"] for a in valid} == {"reference"}
    for atoms in valid:  # untouched frames
        np.testing.assert_allclose(atoms.positions, reference_atoms[atoms.info["reference_frame"]].positions,
                                   atol=1e-7)
    for atoms in train:
        i, j = map(int, atoms.info["bond_atoms"].split("-"))
        length = np.linalg.norm(atoms.positions[i] - atoms.positions[j])
        assert length == pytest.approx(atoms.info["new_length_angstrom"], abs=1e-6)
        assert atoms.info["segment"] in ("compression", "stretch")
        assert "gaff_energy_kj_mol" not in atoms.info  # a label of the old geometry
        assert list(atoms.arrays["gaff_type"]) == list(typing.atom_types)

    rows = list(csv.DictReader(result.records_csv_path.open()))
    assert len(rows) == 45 and rows[0]["bond_type"] == train[0].info["bond_type"]
    records = json.loads(result.records_json_path.read_text())
    assert len(records["structures"]) == 45 and len(records["validation_frames"]) == 5
    ranges = json.loads(result.ranges_path.read_text())
    assert ranges["ranges"]["c-o"]["stretch_above_mean_angstrom"] == pytest.approx(0.118, abs=1e-3)
    assert result.plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished augmentation was recomputed")

    monkeypatch.setattr(augment_module, "augment_frames", must_not_run)
    again = run_augmentation(molecule, reference.frames_path, out, seed=4, typing_source=source)
    assert again.reused and again.train_path == result.train_path
    with pytest.raises(SamplingError, match=r"different settings \(changed: seed\).*overwrite"):
        run_augmentation(molecule, reference.frames_path, out, seed=5, typing_source=source)
    monkeypatch.undo()
    replaced = run_augmentation(molecule, reference.frames_path, out, seed=5, typing_source=source, overwrite=True)
    assert not replaced.reused
    assert json.loads(replaced.manifest_path.read_text())["settings"]["seed"] == 5


def test_cli_augment(paracetamol, tmp_path, capsys):
    from openmm_physembed.cli import main

    molecule, _, reference = paracetamol
    with pytest.raises(SystemExit) as help_exit:
        main(["augment", "--help"])
    assert help_exit.value.code == 0 and "--n-validation" in capsys.readouterr().out
    args = ["augment", "paracetamol", "--frames", str(reference.frames_path), "-o", str(tmp_path / "cli"),
            "--charge-method", "gasteiger", "--n-validation", "10", "--seed", "2"]
    assert main(args) == 0
    assert "40 modified" in capsys.readouterr().out
    assert len(read_extxyz(tmp_path / "cli" / "valid.extxyz")) == 10
    assert main(args) == 0 and "already done" in capsys.readouterr().out
    assert main(["augment", "ec", "--frames", str(reference.frames_path), "-o", str(tmp_path / "bad"),
                 "--charge-method", "gasteiger"]) == 2
    assert "another order or composition" in capsys.readouterr().err
