import numpy as np
import pytest

from openmm_physembed.chem.library import MOLECULE_SMILES
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import MoleculeError

FORMULAS = {
    "paracetamol": "C8H9NO2",
    "novec7000": "C4H3F7O",
    "ac-ala3-nhme": "C12H22N4O4",
    "ac-ala-nhme": "C6H12N2O2",  # the formula the paper gives for its peptide
    "ethylene_carbonate": "C3H4O3",
    "ethyl_methyl_carbonate": "C4H8O3",
    "dimethyl_carbonate": "C3H6O3",
    "ethyl_acetate": "C4H8O2",
    "diethyl_carbonate": "C5H10O3",
    "propylene_carbonate": "C4H6O3",
    "chlorophenylacetic-acid": "C8H7ClO2",
    "dimethylaminopropionitrile": "C5H10N2",
}


@pytest.mark.parametrize("name", sorted(MOLECULE_SMILES))
def test_library_molecules_have_published_formulas(name):
    molecule = Molecule.from_name(name)
    assert molecule.formula == FORMULAS[name]
    assert molecule.charge == 0
    # Embedded geometry is chemically sane: every bond between 0.9 and 1.7 A (C-F 1.35, C-H 1.09),
    # 1.8 A with chlorine (aryl C-Cl 1.75).
    lengths = [np.linalg.norm(molecule.positions_nm[i] - molecule.positions_nm[j]) for i, j in molecule.bonds]
    longest = 0.180 if "Cl" in molecule.symbols else 0.170
    assert 0.090 < min(lengths) and max(lengths) < longest


def test_embedding_is_deterministic_for_a_seed():
    a = Molecule.from_smiles("CCOC(=O)OC", seed=7).positions_nm
    b = Molecule.from_smiles("CCOC(=O)OC", seed=7).positions_nm
    c = Molecule.from_smiles("CCOC(=O)OC", seed=8).positions_nm
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_round_trip_through_files(tmp_path):
    molecule = Molecule.from_name("paracetamol")
    path = molecule.write_sdf(tmp_path / "p.sdf")
    again = Molecule.from_file(path)
    assert again.symbols == molecule.symbols
    assert again.bonds == molecule.bonds
    np.testing.assert_allclose(again.positions_nm, molecule.positions_nm, atol=1e-5)
    assert again.identity_hash() == molecule.identity_hash()


def test_pdb_file(tmp_path):
    from rdkit import Chem

    molecule = Molecule.from_name("ec")
    Chem.MolToPDBFile(molecule.rdmol, str(tmp_path / "ec.pdb"))
    again = Molecule.from_file(tmp_path / "ec.pdb")
    assert again.formula == "C3H4O3"


@pytest.mark.parametrize(
    "spec, message",
    [
        ("C1=CC", "invalid SMILES 'C1=CC'"),
        ("", "invalid SMILES"),
        ("[Fe](Cl)Cl", "contains Fe"),
        ("C[CH2]", "radical"),
        ("CC(=O)[O-]", "--charge -1"),
    ],
)
def test_bad_input_gives_one_clear_error(spec, message):
    with pytest.raises(MoleculeError, match=message.replace("(", r"\(").replace("[", r"\[")):
        Molecule.from_smiles(spec)


def test_explicit_charge_must_match_structure():
    assert Molecule.from_smiles("CC(=O)[O-]", charge=-1).charge == -1
    with pytest.raises(MoleculeError, match="disagrees"):
        Molecule.from_smiles("CC(=O)[O-]", charge=0)


def test_unknown_name_and_missing_file(tmp_path):
    with pytest.raises(MoleculeError, match="unknown molecule name"):
        Molecule.from_name("unobtainium")
    with pytest.raises(MoleculeError, match="does not exist"):
        Molecule.from_file(tmp_path / "nothing.sdf")
