"""A single molecule: elements, bonds, charge, one 3D geometry.

Built from SMILES (RDKit ETKDG embedding with a fixed seed, so the same input always gives the
same geometry), from SDF/MOL/MOL2/PDB files, or by name from :mod:`.library`. Positions are in
nm like everything at the API.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import MoleculeError
from . import library

# Elements GAFF (and the AM1-BCC charge model) can type.
GAFF_ELEMENTS = frozenset({"H", "C", "N", "O", "F", "P", "S", "Cl", "Br", "I"})


@dataclass
class Molecule:
    """One molecule with explicit hydrogens and a 3D geometry.

    Attributes
    ----------
    rdmol
        RDKit molecule with explicit H and one conformer (Angstrom, RDKit's convention).
    name
        Short label used in file names and reports.
    charge
        Net charge in e.
    multiplicity
        Spin multiplicity (1 for every closed-shell molecule this toolkit supports).
    """

    rdmol: object
    name: str
    charge: int = 0
    multiplicity: int = 1
    source: str = field(default="", repr=False)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_smiles(
        cls, smiles: str, name: str | None = None, charge: int | None = None, seed: int = 42
    ) -> "Molecule":
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        mol = Chem.MolFromSmiles(smiles) if smiles and smiles.strip() else None
        if mol is None:
            raise MoleculeError(f"invalid SMILES {smiles!r}: RDKit could not parse it")
        mol = Chem.AddHs(mol)
        _embed(mol, seed, smiles)
        return cls._checked(mol, name or _safe_name(smiles), charge, source=f"smiles:{smiles}")

    @classmethod
    def from_name(cls, name: str, charge: int | None = None, seed: int = 42) -> "Molecule":
        key = library.canonical_name(name)
        if key is None:
            raise MoleculeError(
                f"unknown molecule name {name!r}; known: {', '.join(library.known_names())} "
                "(or give a SMILES string or a structure file)"
            )
        return cls.from_smiles(library.MOLECULE_SMILES[key], name=key, charge=charge, seed=seed)

    @classmethod
    def from_file(cls, path: str | Path, name: str | None = None, charge: int | None = None) -> "Molecule":
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        path = Path(path)
        if not path.is_file():
            raise MoleculeError(f"structure file {str(path)!r} does not exist")
        suffix = path.suffix.lower()
        readers = {
            ".sdf": lambda p: Chem.MolFromMolFile(str(p), removeHs=False),
            ".mol": lambda p: Chem.MolFromMolFile(str(p), removeHs=False),
            ".mol2": lambda p: Chem.MolFromMol2File(str(p), removeHs=False),
            ".pdb": lambda p: Chem.MolFromPDBFile(str(p), removeHs=False),
        }
        if suffix not in readers:
            raise MoleculeError(f"{str(path)!r}: unsupported format {suffix!r}; use .sdf, .mol, .mol2 or .pdb")
        mol = readers[suffix](path)
        if mol is None:
            raise MoleculeError(f"{str(path)!r}: RDKit could not read this {suffix} file")
        if mol.GetNumConformers() == 0:
            raise MoleculeError(f"{str(path)!r} has no 3D coordinates")
        if any(a.GetAtomicNum() == 1 for a in mol.GetAtoms()) is False and mol.GetNumAtoms() > 1:
            raise MoleculeError(f"{str(path)!r} has no explicit hydrogens; add them (e.g. with obabel -h)")
        return cls._checked(mol, name or _safe_name(path.stem), charge, source=f"file:{path}")

    @classmethod
    def from_any(cls, spec: str, charge: int | None = None, seed: int = 42) -> "Molecule":
        """A library name, a structure file path, or a SMILES string (tried in that order)."""
        if library.canonical_name(spec) is not None:
            return cls.from_name(spec, charge=charge, seed=seed)
        if Path(spec).suffix.lower() in {".sdf", ".mol", ".mol2", ".pdb"}:
            return cls.from_file(spec, charge=charge)
        from rdkit import Chem, RDLogger

        RDLogger.DisableLog("rdApp.*")
        if not spec.strip() or Chem.MolFromSmiles(spec) is None:  # a mistyped name, most likely
            raise MoleculeError(f"{spec!r} is neither a library molecule ({', '.join(library.known_names())}), "
                                "a structure file (.sdf, .mol, .mol2, .pdb) nor a SMILES that RDKit can parse")
        return cls.from_smiles(spec, charge=charge, seed=seed)

    @classmethod
    def _checked(cls, mol, name: str, charge: int | None, source: str) -> "Molecule":
        from rdkit import Chem
        from rdkit.Chem import Descriptors

        label = source.split(":", 1)[-1]
        bad = sorted({a.GetSymbol() for a in mol.GetAtoms()} - GAFF_ELEMENTS)
        if bad:
            raise MoleculeError(
                f"{label!r} contains {', '.join(bad)}: GAFF supports only {', '.join(sorted(GAFF_ELEMENTS))}"
            )
        if Descriptors.NumRadicalElectrons(mol) > 0:
            raise MoleculeError(
                f"{label!r} is a radical ({Descriptors.NumRadicalElectrons(mol)} unpaired electrons); "
                "only closed-shell molecules are supported"
            )
        formal = Chem.GetFormalCharge(mol)
        if charge is None:
            if formal != 0:
                raise MoleculeError(
                    f"{label!r} carries a net formal charge of {formal:+d}; confirm it with "
                    f"--charge {formal} (charge={formal} in Python)"
                )
            charge = 0
        elif charge != formal:
            raise MoleculeError(
                f"{label!r}: --charge {charge} disagrees with the formal charges in the structure ({formal:+d})"
            )
        if sum(a.GetAtomicNum() for a in mol.GetAtoms()) % 2 != (charge % 2):
            raise MoleculeError(f"{label!r} with charge {charge} has an odd number of electrons")
        return cls(rdmol=mol, name=name, charge=int(charge), multiplicity=1, source=source)

    # ------------------------------------------------------------------ views
    @property
    def n_atoms(self) -> int:
        return self.rdmol.GetNumAtoms()

    @property
    def symbols(self) -> list[str]:
        return [a.GetSymbol() for a in self.rdmol.GetAtoms()]

    @property
    def atomic_numbers(self) -> np.ndarray:
        return np.array([a.GetAtomicNum() for a in self.rdmol.GetAtoms()], dtype=int)

    @property
    def masses_amu(self) -> np.ndarray:
        return np.array([a.GetMass() for a in self.rdmol.GetAtoms()], dtype=float)

    @property
    def mass_amu(self) -> float:
        return float(self.masses_amu.sum())

    @property
    def bonds(self) -> list[tuple[int, int]]:
        return sorted(
            (min(b.GetBeginAtomIdx(), b.GetEndAtomIdx()), max(b.GetBeginAtomIdx(), b.GetEndAtomIdx()))
            for b in self.rdmol.GetBonds()
        )

    @property
    def positions_nm(self) -> np.ndarray:
        return self.rdmol.GetConformer().GetPositions() * 0.1

    @property
    def smiles(self) -> str:
        from rdkit import Chem

        return Chem.MolToSmiles(Chem.RemoveHs(self.rdmol))

    @property
    def formula(self) -> str:
        from rdkit.Chem.rdMolDescriptors import CalcMolFormula

        return CalcMolFormula(self.rdmol)

    def ring_bonds(self) -> set[tuple[int, int]]:
        return {
            (min(b.GetBeginAtomIdx(), b.GetEndAtomIdx()), max(b.GetBeginAtomIdx(), b.GetEndAtomIdx()))
            for b in self.rdmol.GetBonds()
            if b.IsInRing()
        }

    def identity_hash(self) -> str:
        """Hash of what parameters depend on: ordered elements, bonds (with orders), charge."""
        payload = {
            "symbols": self.symbols,
            "bonds": [
                (b.GetBeginAtomIdx(), b.GetEndAtomIdx(), str(b.GetBondType())) for b in self.rdmol.GetBonds()
            ],
            "formal": [a.GetFormalCharge() for a in self.rdmol.GetAtoms()],
            "charge": self.charge,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def with_positions(self, positions_nm: np.ndarray) -> "Molecule":
        """A copy with another geometry (same atoms, same order)."""
        from rdkit import Chem
        from rdkit.Geometry import Point3D

        positions = np.asarray(positions_nm, dtype=float).reshape(self.n_atoms, 3) * 10.0
        mol = Chem.Mol(self.rdmol)
        conf = mol.GetConformer()
        for i, xyz in enumerate(positions):
            conf.SetAtomPosition(i, Point3D(*map(float, xyz)))
        return Molecule(mol, self.name, self.charge, self.multiplicity, self.source)

    def write_sdf(self, path: str | Path) -> Path:
        from rdkit import Chem

        path = Path(path)
        writer = Chem.SDWriter(str(path))
        writer.SetKekulize(True)
        writer.write(self.rdmol)
        writer.close()
        return path

    def to_ase(self):
        """ASE Atoms in Angstrom (for the xTB/MACE adapters and extxyz I/O)."""
        import ase

        return ase.Atoms(symbols=self.symbols, positions=self.positions_nm * 10.0)


def _embed(mol, seed: int, smiles: str) -> None:
    from rdkit.Chem import AllChem

    params = AllChem.ETKDGv3()
    params.randomSeed = int(seed)
    if AllChem.EmbedMolecule(mol, params) != 0:
        params.useRandomCoords = True
        if AllChem.EmbedMolecule(mol, params) != 0:
            raise MoleculeError(f"RDKit could not embed {smiles!r} in 3D")
    AllChem.MMFFOptimizeMolecule(mol, maxIters=2000)


def _safe_name(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "_" for c in text).strip("_")
    if len(cleaned) <= 24:
        return cleaned or "molecule"
    return cleaned[:16] + "_" + hashlib.sha1(text.encode()).hexdigest()[:6]
