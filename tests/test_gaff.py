import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from openmm_physembed.chem import gaff as gaff_module
from openmm_physembed.chem.bond_typing import get_bond_typing
from openmm_physembed.chem.gaff import parameterize, read_bond_table
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import GAFFError
from openmm_physembed.units import KCAL_IN_KJ

# gaff.dat 1.81 values (kcal/mol/A^2, A), copied from /shared/reference/gaff_notes.md.
GAFF_DAT = {
    "c3-c3": (300.9, 1.5375),
    "c3-hc": (330.6, 1.0969),
    "ca-ca": (461.1, 1.3984),
    "ca-ha": (345.8, 1.0860),
    "ca-n": (384.2, 1.4121),
    "ca-oh": (384.0, 1.3637),
    "c-n": (427.6, 1.3789),
    "c-o": (637.7, 1.2183),
}


@pytest.fixture(scope="module")
def paracetamol_gaff():
    molecule = Molecule.from_name("paracetamol")
    return molecule, parameterize(molecule)


def test_paracetamol_has_the_ten_published_gaff_types(paracetamol_gaff):
    _, params = paracetamol_gaff
    assert sorted(set(params.atom_types)) == ["c", "c3", "ca", "ha", "hc", "hn", "ho", "n", "o", "oh"]
    assert params.atom_types[:3] == ("c3", "c", "o")  # atom order of the SMILES is kept
    assert sum(params.charges) == pytest.approx(0.0, abs=1e-4)


def test_bond_parameters_equal_gaff_dat(paracetamol_gaff):
    _, params = paracetamol_gaff
    seen = set()
    for bond in params.bonds:
        if bond.bond_type in GAFF_DAT:
            k, r0 = GAFF_DAT[bond.bond_type]
            assert bond.k_amber == pytest.approx(k, rel=1e-9)
            assert bond.r0 * 10 == pytest.approx(r0, rel=1e-9)
            # OpenMM's k is 2 x 418.4 x the AMBER value.
            assert bond.k == pytest.approx(2 * KCAL_IN_KJ * 100 * k, rel=1e-9)
            seen.add(bond.bond_type)
    assert seen == {"c3-hc", "ca-ca", "ca-ha", "ca-n", "ca-oh", "c-n", "c-o"}


def test_bond_table_parses_gaff_dat():
    table = read_bond_table("gaff")
    for name, (k, r0) in GAFF_DAT.items():
        assert table[name][0] == pytest.approx(2 * KCAL_IN_KJ * 100 * k)
        assert table[name][1] == pytest.approx(r0 / 10)
    assert len(table) > 800
    assert "ns-ns" not in table  # a GAFF2-only type
    assert any(name.startswith("ns-") or name.endswith("-ns") for name in read_bond_table("gaff2"))


def _sander_energy_kj_mol(params, tmp_path: Path) -> dict[str, float]:
    """Single-point energy terms from AMBER's own sander: an independent evaluation path."""
    (tmp_path / "sp.in").write_text(
        "single point\n &cntrl\n  imin=1, maxcyc=0, ntb=0, igb=0, cut=999.0, ntpr=1,\n /\n"
    )
    sander = Path(sys.prefix) / "bin" / "sander"
    subprocess.run([str(sander), "-O", "-i", "sp.in", "-p", str(params.prmtop_path), "-c",
                    str(params.inpcrd_path), "-o", "sp.out"], cwd=tmp_path, check=True, capture_output=True)
    text = (tmp_path / "sp.out").read_text().split("FINAL RESULTS")[1]
    terms = dict(re.findall(r"([0-9A-Z-]+ ?[A-Z]*)\s*=\s*(-?\d+\.\d+)", text))
    terms = {key.strip(): float(value) * KCAL_IN_KJ for key, value in terms.items()}
    return terms


@pytest.mark.parametrize("name", ["paracetamol", "ethyl_methyl_carbonate"])
def test_openmm_energy_matches_sander(name, tmp_path):
    import openmm
    from openmm import app

    molecule = Molecule.from_name(name)
    params = parameterize(molecule, charge_method="gasteiger" if name != "paracetamol" else "bcc")
    system = params.create_system()
    for index, force in enumerate(system.getForces()):
        force.setForceGroup(index)
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(app.AmberInpcrdFile(str(params.inpcrd_path)).getPositions())

    def group_energy(cls):
        groups = {i for i, f in enumerate(system.getForces()) if f.__class__.__name__ == cls}
        return context.getState(getEnergy=True, groups=groups).getPotentialEnergy()._value

    sander = _sander_energy_kj_mol(params, tmp_path)
    assert group_energy("HarmonicBondForce") == pytest.approx(sander["BOND"], abs=2e-3)
    assert group_energy("HarmonicAngleForce") == pytest.approx(sander["ANGLE"], abs=2e-3)
    assert group_energy("PeriodicTorsionForce") == pytest.approx(sander["DIHED"], abs=2e-3)
    nonbonded = sander["VDWAALS"] + sander["EEL"] + sander["1-4 VDW"] + sander["1-4 EEL"]
    # AMBER's Coulomb constant (18.2223^2) differs from OpenMM's CODATA value by 3.5e-5 relative.
    assert group_energy("NonbondedForce") == pytest.approx(nonbonded, rel=1e-4, abs=5e-3)
    assert np.isfinite(context.getState(getEnergy=True).getPotentialEnergy()._value)


def test_results_are_cached_on_disk(monkeypatch):
    molecule = Molecule.from_name("dimethyl_carbonate")
    first = parameterize(molecule, charge_method="gasteiger")

    def boom(*args, **kwargs):
        raise AssertionError("AmberTools ran again despite the cache")

    monkeypatch.setattr(gaff_module, "run_amber", boom)
    again = parameterize(molecule, charge_method="gasteiger")
    assert again == first
    assert again.prmtop_path.is_file()


def test_gaff2_typing_is_keyed_by_its_own_force_field():
    typing = get_bond_typing("gaff2", charge_method="gasteiger").type_molecule(Molecule.from_name("ec"))
    assert typing.source == "gaff2"
    assert all(b.k > 0 and 0.09 < b.r0 < 0.16 for b in typing.bonds)
    gaff1 = get_bond_typing("gaff", charge_method="gasteiger")
    assert gaff1.lookup("c3", "c3")[1] == pytest.approx(0.15375)


def test_sqm_failure_reports_the_log_tail(tmp_path):
    molecule = Molecule.from_name("ec")
    broken = Molecule(molecule.rdmol, "ec_cation", charge=1)  # odd electron count: sqm refuses
    with pytest.raises(GAFFError, match="antechamber failed for 'ec_cation'") as info:
        parameterize(broken, cache_dir=tmp_path)
    assert "sqm" in str(info.value).lower() or "electrons" in str(info.value).lower()
    assert not any((tmp_path / "gaff").glob("ec_cation*")), "no partial cache entry"


def test_unknown_force_field_or_charge_method():
    molecule = Molecule.from_name("ec")
    with pytest.raises(GAFFError, match="unknown force field"):
        parameterize(molecule, force_field="opls")
    with pytest.raises(GAFFError, match="unknown charge method"):
        parameterize(molecule, charge_method="resp")
