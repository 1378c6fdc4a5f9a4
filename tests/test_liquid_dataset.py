"""Liquid datasets (GAFF NPT frames + rigid-volume scans, periodic GFN2-xTB labels) and the
paper's Fig. 5 check on them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from openmm_physembed.chem.box import build_box
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import PropertyError, SamplingError
from openmm_physembed.sampling.liquid_frames import (
    LiquidFramesProtocol,
    check_molecules_whole,
    rigid_volume_scan,
)
from openmm_physembed.simulation.dynamics import Dynamics


@pytest.fixture(scope="module")
def dmc_box():
    # 6 DMC: 72 atoms, ~0.97 nm: the smallest box the tests below need.
    return build_box([Molecule.from_any("dmc")], counts=[6], density_g_cm3=1.0, seed=3)


def _gaff_energies_by_term(box, positions_nm, box_nm):
    """GAFF energy (kJ/mol) of every force class, Reference platform."""
    import openmm

    system = box.create_system(nonbonded_cutoff_nm=0.4)
    for index, force in enumerate(system.getForces()):
        force.setForceGroup(index)
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("Reference"))
    context.setPeriodicBoxVectors(*box_nm)
    context.setPositions(positions_nm)
    return {type(force).__name__: context.getState(getEnergy=True, groups={i}).getPotentialEnergy()._value
            for i, force in enumerate(system.getForces())}


def test_rigid_volume_scan_keeps_molecules_and_scales_centres(dmc_box):
    box = dmc_box
    masses = np.array([a.mass for a in box.structure.atoms])
    molecule_index = box.molecule_index()
    factors = [0.95, 1.0, 1.07]
    scans = rigid_volume_scan(box.positions_nm, box.box_vectors_nm, molecule_index, masses, factors)

    def centres(positions):
        return np.array([np.average(positions[molecule_index == m], axis=0, weights=masses[molecule_index == m])
                         for m in range(box.n_molecules)])

    reference = centres(box.positions_nm)
    for factor, (positions, box_nm) in zip(factors, scans):
        np.testing.assert_allclose(box_nm, box.box_vectors_nm * factor, rtol=1e-14)
        np.testing.assert_allclose(centres(positions), reference * factor, atol=1e-12)
        for m in range(box.n_molecules):  # each molecule moved by one translation
            shift = positions[molecule_index == m] - box.positions_nm[molecule_index == m]
            np.testing.assert_allclose(shift, np.broadcast_to(shift[0], shift.shape), atol=1e-12)
    np.testing.assert_allclose(scans[1][0], box.positions_nm, atol=1e-15)

    # Independent check through GAFF: bonded terms see only intramolecular geometry, so they do not
    # change; the nonbonded term (intermolecular) does.
    before = _gaff_energies_by_term(box, box.positions_nm, box.box_vectors_nm)
    after = _gaff_energies_by_term(box, *scans[2])
    for term in ("HarmonicBondForce", "HarmonicAngleForce", "PeriodicTorsionForce"):
        assert after[term] == pytest.approx(before[term], rel=1e-9, abs=1e-9), term
    assert abs(after["NonbondedForce"] - before["NonbondedForce"]) > 1.0


def test_wrapped_molecule_is_refused(dmc_box):
    bonds = np.array([(b.atom1.idx, b.atom2.idx) for b in dmc_box.structure.bonds])
    positions = dmc_box.positions_nm.copy()
    check_molecules_whole(positions, bonds, "frame")
    positions[bonds[0, 0]] += dmc_box.box_vectors_nm[0]  # as a wrapped coordinate would be
    with pytest.raises(SamplingError, match="wrapped"):
        check_molecules_whole(positions, bonds, "frame")


@pytest.mark.parametrize("kwargs, match", [
    ({"n_test": 0}, "at least 1"), ({"n_train_scanned": 99}, "n_train_scanned"),
    ({"scan_factors": (0.5, 1.0)}, "scale the box edge"), ({"equilibration_ps": 300.0}, "shorter"),
])
def test_protocol_errors(kwargs, match):
    with pytest.raises(SamplingError, match=match):
        LiquidFramesProtocol(**kwargs)


def test_liquid_dataset_end_to_end_and_resume(tmp_path):
    """5 EMC at low packing density (75 atoms, 1.13 nm): GAFF NPT, split, scans, tblite labels."""
    pytest.importorskip("tblite")
    from ase.io import read

    from openmm_physembed.labelling.liquid_dataset import make_liquid_dataset

    box = build_box([Molecule.from_any("emc")], counts=[5], density_g_cm3=0.6, seed=2)
    protocol = LiquidFramesProtocol(Dynamics(pressure_bar=1.0, seed=5), npt_ps=1.0, equilibration_ps=0.2, n_train=2,
                                    n_validation=1, n_test=1, n_train_scanned=1, scan_factors=(0.98, 1.0, 1.03))
    dataset = make_liquid_dataset(box, tmp_path, protocol, executor=None, progress=False)
    assert dataset.sizes == {"train": 2 + 2, "valid": 1, "test_scan": 3}
    assert dataset.n_computed == 8

    train = read(dataset.train_path, ":")
    test = read(dataset.test_scan_path, ":")
    assert sorted(a.info["config_type"] for a in train) == ["gaff_npt"] * 2 + ["rigid_volume_scan"] * 2
    assert sorted(a.info["scale_factor"] for a in test) == [0.98, 1.0, 1.03]
    assert len({a.info["source_step"] for a in test}) == 1
    assert not {a.info["source_step"] for a in test} & {a.info["source_step"] for a in train}
    for atoms in train + test:
        # Units: ASE's masses over the cell volume (A^3) give the GAFF density the NPT recorded.
        density = atoms.get_masses().sum() / atoms.get_volume() * 1.66053906660
        assert density == pytest.approx(atoms.info["gaff_density_g_cm3"] / atoms.info["scale_factor"] ** 3,
                                        rel=1e-5)
        assert atoms.arrays["REF_forces"].shape == (75, 3)
        assert atoms.info["REF_stress"].shape == (6,)
        assert np.all(np.isfinite(atoms.info["REF_stress"]))

    again = make_liquid_dataset(box, tmp_path, protocol, executor=None, progress=False)
    assert again.label_seconds == 0.0 and again.n_computed == 0  # everything came from the cache
    assert again.sizes == dataset.sizes
    assert (tmp_path / "density_coverage.png").is_file() and (tmp_path / "train.e0s.json").is_file()

    # The cpu-liquid preset trains on it (stress in the loss, SWA for the last quarter), and the
    # stress error mace reports is the one its final model gives on the validation box.
    from mace.calculators import MACECalculator

    from openmm_physembed.training.mace_train import train_mace

    [model] = train_mace(dataset.train_path, dataset.valid_path, tmp_path / "model", preset="cpu-liquid",
                         overrides={"max_num_epochs": 4, "batch_size": 2}, device="cpu")
    assert model.model_path.name.endswith("_stagetwo.model")
    calculator = MACECalculator(model_paths=str(model.model_path), device="cpu", default_dtype="float64")
    errors = []
    for atoms in read(dataset.valid_path, ":"):
        reference = atoms.info["REF_stress"]
        atoms.calc = calculator
        errors.append(atoms.get_stress(voigt=False) - voigt_to_matrix(reference))
    expected = 1e3 * np.sqrt(np.mean(np.square(errors)))  # meV/A^3 over the 9 tensor elements
    assert model.valid_stress_rmse_mev_per_angstrom3 == pytest.approx(expected, rel=0.02, abs=0.05)


def voigt_to_matrix(voigt):
    xx, yy, zz, yz, xz, xy = voigt
    return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])


@pytest.fixture(scope="module")
def scan_model(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("mace")
    pytest.importorskip("openmmtorch")
    from openmm_physembed.testing import make_random_mace_model

    return make_random_mace_model(tmp_path_factory.mktemp("scan_model") / "tiny.model", atomic_numbers=(1, 6, 8),
                                  r_max_angstrom=4.0, num_channels=8, max_L=1, correlation=2, dtype="float64")


@pytest.fixture(scope="module")
def scan_set(scan_model, tmp_path_factory):
    """``scan_set(seed)``: a 6-DMC box packed with ``seed`` and a labelled scan set of it whose labels
    are mace-torch's own (MACECalculator) for a random model; ``topology.pdb`` beside it."""
    import ase
    from mace.calculators import MACECalculator

    from openmm_physembed.io import write_extxyz

    calculator = MACECalculator(model_paths=str(scan_model), device="cpu", default_dtype="float64")
    made = {}

    def make(seed: int = 3):
        if seed in made:
            return made[seed]
        directory = tmp_path_factory.mktemp(f"scan_seed{seed}")
        box = build_box([Molecule.from_any("dmc")], counts=[6], density_g_cm3=1.0, seed=seed)
        masses = np.array([a.mass for a in box.structure.atoms])
        rng = np.random.default_rng(0)
        sources = [box.positions_nm,  # and the same molecules each shifted a little: a second source frame
                   box.positions_nm + rng.normal(0, 0.01, (box.n_molecules, 3))[box.molecule_index()]]
        structures = []
        for step, positions in enumerate(sources):
            for factor, (p, b) in zip((0.97, 1.0, 1.04), rigid_volume_scan(positions, box.box_vectors_nm,
                                                                           box.molecule_index(), masses,
                                                                           (0.97, 1.0, 1.04))):
                atoms = ase.Atoms([a.element.symbol for a in box.topology.atoms()], positions=p * 10, cell=b * 10,
                                  pbc=True)
                atoms.calc = calculator
                atoms.info.update({"REF_energy": atoms.get_potential_energy(), "scale_factor": factor,
                                   "source_step": step})
                atoms.arrays["REF_forces"] = atoms.get_forces()
                atoms.calc = None
                structures.append(atoms)
        write_extxyz(directory / "test_scan.extxyz", structures)
        box.write_pdb(directory / "topology.pdb")
        made[seed] = (box, directory, structures)
        return made[seed]

    return make


# Packing seeds: the molecules' orientations decide whether a molecule guessed whole from lost bonds
# comes out right (with the old DC residue name seed 3 did, seeds 4 and 5 did not).
@pytest.mark.parametrize("seed", [3, 4, 5])
def test_volume_scan_without_correction_reproduces_mace_and_correction_adds_cso(scan_model, scan_set, seed):
    from openmm_physembed.potentials.corrected_system import CorrectedMACESystem
    from openmm_physembed.potentials.correction_choice import CSOCorrection
    from openmm_physembed.potentials.cso import (
        cso_energy_reference,
        cso_parameters,
        long_range_correction_kj_mol,
    )
    from openmm_physembed.properties.density.volume_scan import (
        evaluate_volume_scan,
        format_table,
    )
    from openmm_physembed.units import KJ_PER_MOL_PER_EV

    model = scan_model
    box, directory, structures = scan_set(seed)
    correction = CSOCorrection(alpha=0.5, a1=0.8, s6=1.0, source="explicit")
    result = evaluate_volume_scan(model, directory / "test_scan.extxyz", directory / "topology.pdb", correction,
                                  out_dir=directory / "out", platform="Reference")
    # Our TorchForce against mace-torch's calculator: the same numbers up to the extxyz text precision
    # (a unit slip would be off by factors of 10 or 96).
    assert result.force_rmse_mev_per_angstrom["uncorrected"] < 1e-3
    assert result.energy_rmse_mev_per_atom["uncorrected"] < 1e-3
    assert result.cso_cutoff_nm == pytest.approx(np.floor(0.45 * 0.97 * box.box_edge_nm * 100) / 100)

    # Corrected minus uncorrected energy change along each scan = alpha * numpy CSO (+ OpenMM's
    # long-range correction, which depends on the volume).
    parameters = cso_parameters(box.topology, box.positions_nm)
    system = CorrectedMACESystem(model, box.topology, box.positions_nm, alpha=0.5, a1=0.8,
                                 cutoff_nm=result.cso_cutoff_nm).system

    def cso_kj(atoms):
        positions, box_nm = atoms.positions / 10, atoms.cell.array / 10
        pair_sum = cso_energy_reference(parameters, positions, a1=0.8, alpha=0.5, box_vectors_nm=box_nm,
                                        cutoff_nm=result.cso_cutoff_nm)
        return pair_sum + long_range_correction_kj_mol(system, positions, box_nm, {"alpha": 0.5, "a1": 0.8})

    n_atoms = len(structures[0])
    expected = {}
    for atoms in structures:
        base = next(a for a in structures if a.info["source_step"] == atoms.info["source_step"]
                    and a.info["scale_factor"] == 1.0)
        delta = 1e3 * (cso_kj(atoms) - cso_kj(base)) / KJ_PER_MOL_PER_EV / n_atoms
        expected.setdefault(atoms.info["scale_factor"], []).append(delta)
    for row in result.table:
        measured = row["de_corrected_mev_per_atom"] - row["de_uncorrected_mev_per_atom"]
        assert measured == pytest.approx(np.mean(expected[row["factor"]]), abs=1e-6), row["factor"]
    assert result.table[0]["de_corrected_mev_per_atom"] != pytest.approx(result.table[0]["de_ref_mev_per_atom"])
    assert result.force_rmse_mev_per_angstrom["corrected"] > 0.1  # the CSO forces, alpha = 0.5
    assert "published < 0.8" in format_table(result)
    assert result.json_path.is_file() and result.plot_path.is_file()


def test_volume_scan_refuses_an_unlabelled_file(scan_model, scan_set, tmp_path):
    from openmm_physembed.io import write_extxyz
    from openmm_physembed.potentials.correction_choice import CSOCorrection
    from openmm_physembed.properties.density.volume_scan import evaluate_volume_scan

    model = scan_model
    _, directory, structures = scan_set()
    bare = [a.copy() for a in structures]
    for atoms in bare:
        atoms.info.pop("REF_energy")
    write_extxyz(tmp_path / "bare.extxyz", bare)
    with pytest.raises(PropertyError, match="liquid-dataset"):
        evaluate_volume_scan(model, tmp_path / "bare.extxyz", directory / "topology.pdb",
                             CSOCorrection(0.1, 0.5, 1.0, source="explicit"))


def test_volume_scan_refuses_a_topology_written_with_dc_residues(scan_model, scan_set, tmp_path):
    """topology.pdb as versions before issue 25 wrote it: DMC as residue DC (deoxycytidine), no CONECT
    records, so OpenMM's reader gives each molecule 1 of its 11 bonds. Refused, with the fix."""
    from openmm import app, unit

    from openmm_physembed.potentials.correction_choice import CSOCorrection
    from openmm_physembed.properties.density.volume_scan import evaluate_volume_scan

    box, directory, _ = scan_set()
    topology = app.PDBFile(str(directory / "topology.pdb")).topology
    for residue in topology.residues():
        residue.name = "DC"
    with open(tmp_path / "topology.pdb", "w") as handle:
        app.PDBFile.writeFile(topology, box.positions_nm * 10.0 * unit.angstrom, handle)
    assert "CONECT" not in (tmp_path / "topology.pdb").read_text()
    with pytest.raises(PropertyError, match=r"topology.pdb: residue 'DC' 1 \(12 atoms; one of 6 such residues\) "
                                            r"falls into 11 pieces.*regenerate it: rerun the same "
                                            r"`physembed liquid-dataset`") as error:
        evaluate_volume_scan(scan_model, directory / "test_scan.extxyz", tmp_path / "topology.pdb",
                             CSOCorrection(0.1, 0.5, 1.0, source="explicit"))
    assert "\n" not in str(error.value)


# -- several liquids at several temperatures in one dataset ------------------------------------

TINY_FRAMES = LiquidFramesProtocol(Dynamics(pressure_bar=1.0, seed=5), npt_ps=0.6, equilibration_ps=0.2, n_train=1,
                                   n_validation=1, n_test=1, n_train_scanned=1, scan_factors=(0.98, 1.0))


def _tiny_parts():
    # Gas-like packing keeps the boxes legal (>= 1 nm) at 24 and 36 atoms, so labels take ~1 s each;
    # water has no carbon, so the combined E0s must take C from the methanol part.
    from openmm_physembed.labelling.combined_dataset import LiquidDatasetPart
    from openmm_physembed.properties.liquid import LiquidSpec

    return [LiquidDatasetPart("water", 298.15, LiquidSpec(("O",), counts=(8,), packing_density_g_cm3=0.2, seed=2),
                              0.997),
            LiquidDatasetPart("methanol", 313.15, LiquidSpec(("CO",), counts=(6,), packing_density_g_cm3=0.3, seed=2))]


@pytest.fixture(scope="module")
def combined(tmp_path_factory):
    pytest.importorskip("tblite")
    from openmm_physembed.executors import SerialExecutor
    from openmm_physembed.labelling.combined_dataset import make_combined_liquid_dataset

    out = tmp_path_factory.mktemp("combined")
    dataset = make_combined_liquid_dataset(_tiny_parts(), out, TINY_FRAMES, executor=SerialExecutor(),
                                           progress=False, charge_method="gasteiger")
    return out, dataset


def test_two_parts_combine_into_one_dataset(combined):
    from openmm_physembed.io import read_extxyz, read_json

    out, dataset = combined
    per_part = {"train": 1 + 1, "valid": 1, "test_scan": 2}
    assert list(dataset.parts) == ["water_298.15K", "methanol_313.15K"]
    assert all(part.sizes == per_part for part in dataset.parts.values())
    assert dataset.sizes == {k: 2 * n for k, n in per_part.items()}
    assert dataset.n_computed == 2 * sum(per_part.values())

    for subset in ("train", "valid", "test_scan"):
        structures = read_extxyz(out / f"{subset}.extxyz")
        expected = [(name, a) for name, part in dataset.parts.items() for a in read_extxyz(part.paths[subset])]
        assert len(structures) == len(expected)
        for atoms, (name, source) in zip(structures, expected):
            system, temperature = {"water_298.15K": ("water", 298.15), "methanol_313.15K": ("methanol", 313.15)}[name]
            assert (atoms.info["part"], atoms.info["system"], atoms.info["temperature_K"]) == (name, system,
                                                                                           temperature)
            assert atoms.info["REF_energy"] == source.info["REF_energy"]
            np.testing.assert_array_equal(atoms.arrays["REF_forces"], source.arrays["REF_forces"])
            np.testing.assert_array_equal(atoms.info["REF_stress"], source.info["REF_stress"])

    manifest = read_json(dataset.manifest_path)
    assert [p["name"] for p in manifest["parts"]] == list(dataset.parts)
    assert [p["temperature_K"] for p in manifest["parts"]] == [298.15, 313.15]
    assert manifest["sizes"] == dataset.sizes
    for part in manifest["parts"]:  # what volume-scan needs, per part
        assert (out / part["topology"]).is_file() and (out / part["test_scan"]).is_file()
        assert part["sizes"] == per_part and part["npt_seconds"] > 0
    assert dataset.plot_path.is_file()


def test_combined_e0s_are_every_parts_own(combined):
    from openmm_physembed.labelling.labeller import read_e0s

    out, dataset = combined
    water, methanol = (read_e0s(part.out_dir / "train.e0s.json") for part in dataset.parts.values())
    assert sorted(water) == [1, 8] and sorted(methanol) == [1, 6, 8]
    assert {z: water[z] for z in (1, 8)} == {z: methanol[z] for z in (1, 8)}  # identical, not just close
    for name in ("train", "valid", "test_scan"):
        assert read_e0s(out / f"{name}.e0s.json") == methanol == dataset.e0s_ev


def test_rerunning_the_combined_dataset_recomputes_nothing(combined):
    from openmm_physembed.executors import SerialExecutor
    from openmm_physembed.labelling.combined_dataset import make_combined_liquid_dataset

    out, first = combined
    caches = sorted(out.glob("parts/*/.labelling/items/*.npz"))
    stamps = {p: p.stat().st_mtime_ns for p in [*caches, first.train_path, first.manifest_path]}
    again = make_combined_liquid_dataset(_tiny_parts(), out, TINY_FRAMES, executor=SerialExecutor(),
                                         progress=False, charge_method="gasteiger")
    assert again.n_computed == 0 and again.label_seconds == 0.0
    assert again.sizes == first.sizes
    assert sorted(out.glob("parts/*/.labelling/items/*.npz")) == caches
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps  # identical files are not rewritten


def test_parts_whose_e0s_differ_are_refused():
    from openmm_physembed.errors import LabellingError
    from openmm_physembed.labelling.combined_dataset import merge_e0s

    record = {"method": "GFN2-xTB", "settings": {"electronic_temperature_K": 300.0},
              "e0s_ev": {"1": -10.7, "8": -102.5}}
    merged = merge_e0s({"a": record, "b": {**record, "e0s_ev": {"1": -10.7, "6": -48.8}}})
    assert merged["e0s_ev"] == {"1": -10.7, "6": -48.8, "8": -102.5}
    with pytest.raises(LabellingError, match="E0 of Z=1 differs between parts a .* and b"):
        merge_e0s({"a": record, "b": {**record, "e0s_ev": {"1": -10.8}}})
    with pytest.raises(LabellingError, match="different settings"):
        merge_e0s({"a": record, "b": {**record, "settings": {"electronic_temperature_K": 1000.0}}})


def test_a_bad_part_is_refused_before_anything_is_written(tmp_path):
    from dataclasses import replace

    from openmm_physembed.errors import BoxError, LabellingError
    from openmm_physembed.labelling.combined_dataset import make_combined_liquid_dataset

    good, methanol = _tiny_parts()
    small = replace(methanol, spec=replace(methanol.spec, counts=(3,)))  # 0.8 nm: no legal GAFF cutoff
    for parts, error, match in [([good, small], BoxError, r"'methanol' at 313.15 K \(3 molecules\).*cutoff"),
                                ([good, good], LabellingError, "given twice"),
                                ([good, replace(methanol, temperature_K=-5.0)], LabellingError, "positive")]:
        with pytest.raises(error, match=match):
            make_combined_liquid_dataset(parts, tmp_path / "out", TINY_FRAMES, progress=False,
                                         charge_method="gasteiger")
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("parts, message", [
    (["EMC@298.15", "no-such-liquid@298.15"], "no experimental data for 'no-such-liquid'; known systems"),
    (["EMC@warm"], "must be a number in K"),
    (["EC@313.15"], r"dataset part 'EC' at 313.15 K \(8 molecules\): a 0.96 nm box"),
])
def test_cli_refuses_a_bad_part_in_one_line(tmp_path, capsys, parts, message):
    from openmm_physembed.cli import main

    argv = ["liquid-dataset", "--n-molecules", "8", "-o", str(tmp_path / "out")]
    for part in parts:
        argv += ["--part", part]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and re.search(message, error), error
    assert not (tmp_path / "out").exists()


def test_table1_parts_are_rows_of_the_experimental_table():
    from openmm_physembed.labelling.combined_dataset import TABLE1_DATASET_PARTS, check_dataset_parts
    from openmm_physembed.labelling.commands import dataset_parts_from_text
    from openmm_physembed.properties.experimental import parse_system_at_temperature

    for text in TABLE1_DATASET_PARTS:
        row, temperature = parse_system_at_temperature(text)  # exact row, or PropertyError
        assert row.density_g_cm3 is not None and row.temperature_K == temperature
    parts = dataset_parts_from_text(TABLE1_DATASET_PARTS, n_molecules=12)
    assert [p.name for p in parts] == ["EC_313.15K", "EMC_298.15K", "EC-EMC_5-5_298.15K", "EC-EMC_3-7_293.15K",
                                       "EC-EMC_3-7_298.15K", "EC-EMC_3-7_313.15K"]
    boxes = check_dataset_parts(parts)
    assert boxes["EC-EMC_3-7_298.15K"]["counts"] == (4, 8)  # the README's 160-atom box
    # A temperature without a table row keeps the composition and records no experimental density.
    [warm] = dataset_parts_from_text(["EMC@313.15"], n_molecules=12)
    assert (warm.temperature_K, warm.experimental_density_g_cm3) == (313.15, None)


def test_volume_scan_refuses_a_combined_scan_set(combined):
    from openmm_physembed.potentials.correction_choice import CSOCorrection
    from openmm_physembed.properties.density.volume_scan import evaluate_volume_scan

    out, dataset = combined
    with pytest.raises(PropertyError, match="mixes the scan sets of 2 liquids.*parts/water_298.15K"):
        evaluate_volume_scan("unused.model", dataset.test_scan_path, out / "topology.pdb",
                             CSOCorrection(0.1, 0.5, 1.0, source="explicit"))
