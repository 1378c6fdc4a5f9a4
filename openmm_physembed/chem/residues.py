"""Residue names that survive a PDB file, and the check that a topology read back from one did.

OpenMM's PDB writer leaves out the CONECT records of bonds between its standard residues, and its
reader renames residue aliases (WAT -> HOH, DC5 -> DC) and gives every residue whose name has a
bond template (ALA, DC, HOH, ACE, NME, UNK ...) that template's bonds, matched by atom name. A
small molecule under such a name comes back with some of its bonds, or with bonds it never had:
dimethyl carbonate named DC (deoxycytidine) keeps 1 of its 11. So box residues are named outside
OpenMM's tables (:func:`is_openmm_residue_name`), and a topology read back from a file is checked
(:func:`check_residues_connected`) before anything relies on its bonds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import BoxError
from .graph import pieces_per_group


def openmm_residue_names() -> frozenset[str]:
    """Every residue name OpenMM's PDB writer or reader treats specially (upper case).

    Its standard residues (no CONECT records written), the residues it has bond templates for
    (including any added with ``Topology.loadBondDefinitions``), and the aliases it renames on
    reading together with their targets. Read from OpenMM itself, so a new release's tables count.
    """
    from openmm import Platform
    from openmm.app import PDBFile, Topology

    # OpenMM fills its template table on the first createStandardBonds(); an empty topology does it.
    Topology().createStandardBonds()
    try:
        PDBFile._loadNameReplacementTables()
        names = set(PDBFile._standardResidues) | set(Topology._standardBonds)
        for alias, name in PDBFile._residueNameReplacements.items():
            names |= {alias, name}
    except AttributeError as exc:  # the tables are private: a release may move them
        raise BoxError(
            f"OpenMM {Platform.getOpenMMVersion()} keeps its PDB residue tables elsewhere, so residue names "
            "that its PDB reader would replace cannot be avoided; install the OpenMM of constraints.txt"
        ) from exc
    return frozenset(name.upper() for name in names)


def is_openmm_residue_name(name: str) -> bool:
    """True when OpenMM's PDB writer or reader would not keep a residue of this name as written."""
    return name.strip().upper() in openmm_residue_names()


def fragment_cause(residue_name: str) -> str:
    """Why a residue most likely lost its bonds, for error messages."""
    if is_openmm_residue_name(residue_name):
        return (f"{residue_name!r} is a residue name OpenMM's PDB reader has its own template for (standard "
                "residues such as DC, ALA, HOH), which replaces the bonds of the file")
    return "its bonds were probably lost (a PDB file without CONECT records?)"


def check_residues_connected(topology, what: str, error: type[Exception], fix: str) -> None:
    """Refuse ``topology`` unless the bonds inside every residue join all of its atoms.

    ``what`` names the topology's source in the message, ``error`` is the caller's stage exception
    and ``fix`` tells what to do; the message is one line.
    """
    residues = list(topology.residues())
    groups = np.array([atom.residue.index for atom in topology.atoms()], dtype=np.int64)
    bonds = [(a.index, b.index) for a, b in topology.bonds()]
    pieces = pieces_per_group(len(groups), bonds, groups)
    broken = np.flatnonzero(pieces > 1)
    if len(broken) == 0:
        return
    first = residues[int(broken[0])]
    others = f"; one of {len(broken)} such residues" if len(broken) > 1 else ""
    raise error(
        f"{what}: residue {first.name!r} {first.id} ({len(list(first.atoms()))} atoms{others}) falls into "
        f"{int(pieces[broken[0]])} pieces by its bonds, not one molecule: {fragment_cause(first.name)}; {fix}"
    )


def read_pdb_topology(path: str | Path, error: type[Exception], fix: str):
    """OpenMM Topology of a PDB file, refused unless every residue comes back as one bonded molecule."""
    from openmm import app

    path = Path(path)
    if not path.is_file():
        raise error(f"{path} does not exist; {fix}")
    topology = app.PDBFile(str(path)).topology
    check_residues_connected(topology, str(path), error, fix)
    return topology
