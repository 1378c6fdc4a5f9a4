"""Named molecules the project uses, as SMILES.

Keys are lower-case with aliases; values are the SMILES the project was validated with.
"""

from __future__ import annotations

MOLECULE_SMILES: dict[str, str] = {
    "paracetamol": "CC(=O)Nc1ccc(O)cc1",
    # Novec 7000: methyl heptafluoropropyl ether, C4H3F7O.
    "novec7000": "COC(F)(F)C(F)(F)C(F)(F)F",
    # Ac-Ala3-NHMe, all L: the capped tri-alanine peptide C12H22N4O4.
    "ac-ala3-nhme": "CC(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)N[C@@H](C)C(=O)NC",
    # The paper names "Ac-Ala3-NHMe" but gives the formula C6H12N2O2, which is the capped single
    # alanine (alanine dipeptide, 22 atoms); both are here, the formula's molecule under this name.
    "ac-ala-nhme": "CC(=O)N[C@@H](C)C(=O)NC",
    "ethylene_carbonate": "O=C1OCCO1",
    "ethyl_methyl_carbonate": "CCOC(=O)OC",
    "dimethyl_carbonate": "COC(=O)OC",
    "ethyl_acetate": "CCOC(C)=O",
    "diethyl_carbonate": "CCOC(=O)OCC",
    "propylene_carbonate": "CC1COC(=O)O1",
    # Held out of the method's development (issue 28's prespecified stability run): an aryl
    # chloride with a carboxylic acid, and a tertiary amine with a nitrile.
    "chlorophenylacetic-acid": "OC(=O)Cc1ccc(Cl)cc1",
    "dimethylaminopropionitrile": "CN(C)CCC#N",
}

ALIASES: dict[str, str] = {
    "novec-7000": "novec7000",
    "novec_7000": "novec7000",
    "ec": "ethylene_carbonate",
    "emc": "ethyl_methyl_carbonate",
    "dmc": "dimethyl_carbonate",
    "ea": "ethyl_acetate",
    "dec": "diethyl_carbonate",
    "pc": "propylene_carbonate",
    "acala3nhme": "ac-ala3-nhme",
    "ac_ala3_nhme": "ac-ala3-nhme",
    "acetaminophen": "paracetamol",
    "alanine_dipeptide": "ac-ala-nhme",
}


def canonical_name(name: str) -> str | None:
    key = name.strip().lower().replace(" ", "_")
    key = ALIASES.get(key, key)
    return key if key in MOLECULE_SMILES else None


def known_names() -> list[str]:
    return sorted(MOLECULE_SMILES)
