import numpy as np
import pytest

from openmm_physembed.chem.box import (
    build_box,
    counts_from_mass_fractions,
    residue_names,
)
from openmm_physembed.chem.library import MOLECULE_SMILES
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import BoxError
from openmm_physembed.units import density_g_cm3


@pytest.fixture(scope="module")
def ec_emc():
    return Molecule.from_name("ec"), Molecule.from_name("emc")


def test_mass_ratio_mixture_box(ec_emc):
    box = build_box(ec_emc, mass_fractions=[3, 7], n_molecules=60, density_g_cm3=1.1, charge_method="gasteiger")
    ec, emc = ec_emc
    # 20 x 88.06 : 40 x 104.10 = 0.297 : 0.703 is the closest to 3:7 (19:41 gives 0.282).
    assert box.counts == (20, 40)
    assert box.mass_fractions[0] == pytest.approx(20 * ec.mass_amu / (20 * ec.mass_amu + 40 * emc.mass_amu))
    assert abs(box.mass_fractions[0] - 0.3) < 0.005
    assert box.n_atoms == 20 * 10 + 40 * 15
    assert box.density_g_cm3 == pytest.approx(1.1, rel=1e-9)
    # One residue per molecule, components contiguous and named.
    residues = list(box.topology.residues())
    assert len(residues) == 60
    assert [r.name for r in residues[:20]] == ["EC"] * 20 and residues[20].name == "EMC"
    assert all(len(list(r.atoms())) == (10 if i < 20 else 15) for i, r in enumerate(residues))
    index = box.molecule_index()
    assert index[0] == 0 and index[-1] == 59 and np.all(np.diff(index) >= 0)
    # Every atom inside the box, molecules intact (bonded atoms within 2 A in the packed coordinates).
    assert box.positions_nm.min() >= 0 and box.positions_nm.max() <= box.box_edge_nm
    for bond in box.topology.bonds():
        d = np.linalg.norm(box.positions_nm[bond[0].index] - box.positions_nm[bond[1].index])
        assert d < 0.2


def test_counts_box_and_system_energy_is_finite(ec_emc):
    import openmm

    box = build_box([ec_emc[0]], counts=[40], box_edge_nm=2.2, charge_method="gasteiger")
    assert box.density_g_cm3 == pytest.approx(density_g_cm3(40 * ec_emc[0].mass_amu, 2.2**3))
    system = box.create_system(nonbonded_cutoff_nm=1.0)
    assert system.usesPeriodicBoundaryConditions()
    assert system.getNumConstraints() == 0
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(box.positions_nm)
    energy = context.getState(getEnergy=True).getPotentialEnergy()._value
    assert np.isfinite(energy)
    # The box System is the single-molecule GAFF System repeated: its bonded energy is the sum of
    # each molecule's energy in the single-molecule System (an independent construction path).
    def bonded_energy(sys_, positions):
        for f in sys_.getForces():
            f.setForceGroup(1 if f.__class__.__name__ in ("HarmonicBondForce", "HarmonicAngleForce",
                                                          "PeriodicTorsionForce") else 0)
        ctx = openmm.Context(sys_, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("Reference"))
        ctx.setPositions(positions)
        return ctx.getState(getEnergy=True, groups={1}).getPotentialEnergy()._value

    single = box.parameters[0].create_system()
    n = ec_emc[0].n_atoms
    per_molecule = sum(bonded_energy(single, box.positions_nm[k * n:(k + 1) * n]) for k in range(40))
    assert bonded_energy(system, box.positions_nm) == pytest.approx(per_molecule, rel=1e-10)


def test_box_smaller_than_twice_the_cutoff_is_refused(ec_emc):
    box = build_box([ec_emc[0]], counts=[10], box_edge_nm=1.5, charge_method="gasteiger")
    with pytest.raises(BoxError, match="twice the cutoff"):
        box.create_system(nonbonded_cutoff_nm=1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(counts=[500], box_edge_nm=1.5), "impossible to pack"),
        (dict(counts=[5]), "exactly one of"),
        (dict(mass_fractions=[1.0]), "mass fractions together"),
        (dict(counts=[1], box_edge_nm=0.5), "does not fit"),
    ],
)
def test_impossible_boxes_are_refused(ec_emc, kwargs, message):
    with pytest.raises(BoxError, match=message):
        build_box([ec_emc[0]], charge_method="gasteiger", **kwargs)


def test_packmol_failure_is_reported(ec_emc):
    # 2.9 g/cm3 passes the density sanity limit but cannot be packed at a 2 A tolerance.
    with pytest.raises(BoxError, match="packmol could not pack"):
        build_box([ec_emc[0]], counts=[60], density_g_cm3=2.9, charge_method="gasteiger", packmol_loops=5)


def test_counts_from_mass_fractions_and_residue_names(ec_emc):
    assert counts_from_mass_fractions(ec_emc, [5, 5], 20) in {(11, 9), (10, 10)}
    assert residue_names([Molecule.from_name("emc"), Molecule.from_name("paracetamol"),
                          Molecule.from_name("ethyl_methyl_carbonate")]) == ["EMC", "PAR", "EM1"]


# Molecules whose old names were OpenMM residues: DC (deoxycytidine: dimethyl and diethyl
# carbonate), C (cytidine: methane by its SMILES), ALA, WAT (read back as HOH), ACE.
SMILES_ONLY = [("C", None), ("O", "water"), ("CC(N)C(=O)O", "alanine"), ("CC(=O)NC", "ace")]


def openmm_pdb_tables():
    """Residue names OpenMM's PDB writer and reader treat specially, read from OpenMM directly."""
    from openmm.app import PDBFile, Topology

    Topology().createStandardBonds()
    PDBFile._loadNameReplacementTables()
    return (set(PDBFile._standardResidues) | set(Topology._standardBonds)
            | set(PDBFile._residueNameReplacements) | set(PDBFile._residueNameReplacements.values()))


def test_residue_names_are_never_openmm_residues():
    molecules = [Molecule.from_name(name) for name in sorted(MOLECULE_SMILES)]
    by_molecule = dict(zip((m.name for m in molecules), residue_names(molecules)))
    assert by_molecule["dimethyl_carbonate"] == "DMC" and by_molecule["diethyl_carbonate"] == "DEC"
    tables = openmm_pdb_tables()
    assert {"DC", "C", "ALA", "WAT", "HOH", "ACE", "NME", "UNK", "DC3"} <= tables
    # Named as those tables' entries on purpose: each gets a digit, never a name in the tables.
    clashing = [Molecule.from_smiles("CCO", name=name) for name in ("dc", "dc", "dc", "ala", "hoh", "wat", "unk")]
    for group in (molecules, clashing, [Molecule.from_smiles(s, name=n) for s, n in SMILES_ONLY]):
        names = residue_names(group)
        assert len(set(names)) == len(names)
        assert not set(names) & tables, names
        assert all(1 <= len(n) <= 3 and n.isalnum() and n == n.upper() for n in names)
    assert residue_names(clashing) == ["DC1", "DC2", "DC4", "AL1", "HO1", "WA1", "UN1"]  # DC3 reads back as DC


BOX_CASES = ({name: [name] for name in sorted(MOLECULE_SMILES)} | {"dmc+dec": ["dmc", "dec"]}
             | {f"smiles:{smiles}": [(smiles, name)] for smiles, name in SMILES_ONLY})


@pytest.mark.parametrize("components", list(BOX_CASES.values()), ids=list(BOX_CASES))
def test_box_round_trips_through_its_pdb_with_every_bond(components, tmp_path):
    """What LiquidBox.write_pdb writes, OpenMM's PDB reader gives back: residues, names and bonds."""
    from openmm import app

    from openmm_physembed.chem.residues import check_residues_connected

    molecules = [Molecule.from_smiles(*c) if isinstance(c, tuple) else Molecule.from_name(c) for c in components]
    box = build_box(molecules, counts=[2] * len(molecules), box_edge_nm=3.0, charge_method="gasteiger")
    again = app.PDBFile(str(box.write_pdb(tmp_path / "box.pdb"))).topology

    def bonds(topology):
        return sorted(tuple(sorted((a.index, b.index))) for a, b in topology.bonds())

    assert [r.name for r in again.residues()] == [r.name for r in box.topology.residues()]
    assert [a.element for a in again.atoms()] == [a.element for a in box.topology.atoms()]
    assert bonds(again) == bonds(box.topology)
    assert len(bonds(again)) == sum(n * len(m.bonds) for m, n in zip(molecules, box.counts))
    check_residues_connected(again, "box.pdb", BoxError, fix="")


def test_write_pdb_refuses_a_box_whose_bonds_would_not_come_back(tmp_path):
    box = build_box([Molecule.from_name("dmc")], counts=[2], box_edge_nm=2.0, charge_method="gasteiger")
    for residue in box.topology.residues():
        residue.name = "DC"  # the name versions before issue 25 gave it: deoxycytidine to OpenMM
    with pytest.raises(BoxError, match=r"reads 2 bonds back .* not its 22; rename its residues \['DC'\]"):
        box.write_pdb(tmp_path / "box.pdb")
    assert not list(tmp_path.iterdir())  # nothing half-written
