"""The intermolecular CSO correction against s-dftd3, finite differences and analytic identities."""

from __future__ import annotations

import numpy as np
import pytest

try:  # before openmm: OpenMM loads its TorchForce plugin on import, which needs torch's libraries loaded
    import torch  # noqa: F401
except ImportError:  # pragma: no cover
    pass

openmm = pytest.importorskip("openmm")
pytest.importorskip("dftd3")

from openmm import app  # noqa: E402

from openmm_physembed.chem.molecule import Molecule  # noqa: E402
from openmm_physembed.errors import PotentialError  # noqa: E402
from openmm_physembed.potentials.cso import (  # noqa: E402
    add_cso_correction,
    cso_energy_reference,
    cso_forces,
    cso_parameters,
    d3,  # noqa: E402
    long_range_correction_kj_mol,
)
from openmm_physembed.testing import nve_energy_excursion  # noqa: E402
from openmm_physembed.units import BOHR_IN_NM  # noqa: E402

SOLVENTS = ("ec", "emc", "dmc", "ea")
RTOL = 1e-9  # the issue asks for 1e-6; frozen-CN classes reproduce s-dftd3 to ~1e-15


# ---------------------------------------------------------------------------------------------- helpers
def make_topology(molecules, box_edge_nm=None):
    topology = app.Topology()
    chain = topology.addChain()
    for molecule in molecules:
        residue = topology.addResidue(molecule.name[:3].upper(), chain)
        atoms = [topology.addAtom(f"{s}{k}", app.Element.getBySymbol(s), residue)
                 for k, s in enumerate(molecule.symbols)]
        for i, j in molecule.bonds:
            topology.addBond(atoms[i], atoms[j])
    if box_edge_nm is not None:
        topology.setPeriodicBoxVectors(np.eye(3) * box_edge_nm)
    return topology


def bare_system(topology):
    """A System with masses only, like a MACE base: no nonbonded force to share exclusions with."""
    system = openmm.System()
    for atom in topology.atoms():
        system.addParticle(atom.element.mass)
    if topology.getPeriodicBoxVectors() is not None:
        system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    return system


def context_for(system, positions, platform="Reference", box=None):
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName(platform))
    if box is not None:
        context.setPeriodicBoxVectors(*box)
    context.setPositions(positions)
    return context


def energy(context, groups=-1):
    return context.getState(getEnergy=True, groups=groups).getPotentialEnergy()._value


def rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    return q * np.sign(np.diag(r))


def max_intramolecular_distance_nm(molecules):
    return max(np.ptp(np.linalg.norm(m.positions_nm[:, None] - m.positions_nm[None], axis=-1)) for m in molecules)


def cluster(molecules, spacing_nm, seed=0):
    """Molecules at the vertices of a tetrahedron (or on a line for two), randomly rotated."""
    rng = np.random.default_rng(seed)
    corners = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], float) / np.sqrt(8) * spacing_nm
    blocks = []
    for k, molecule in enumerate(molecules):
        xyz = molecule.positions_nm - molecule.positions_nm.mean(axis=0)
        blocks.append(xyz @ rotation(rng).T + corners[k % 4] + (k // 4) * spacing_nm)
    return np.vstack(blocks)


def min_intermolecular_distance_nm(molecules, positions):
    index = np.repeat(np.arange(len(molecules)), [m.n_atoms for m in molecules])
    r = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    return r[index[:, None] != index[None, :]].min(), index


def contact_cluster(molecules, closest_nm, seed=0):
    """A cluster whose nearest intermolecular atoms are just beyond ``closest_nm`` (van der Waals contact)."""
    for spacing in np.arange(0.2, 3.0, 0.01):
        positions = cluster(molecules, spacing, seed)
        if min_intermolecular_distance_nm(molecules, positions)[0] > closest_nm:
            return positions
    raise AssertionError("could not place the cluster")


def dftd3_intermolecular_kj_mol(molecules, positions, a1, s6=1.0, cn_cutoff_bohr=d3.D3_CN_CUTOFF_BOHR):
    numbers = np.concatenate([m.atomic_numbers for m in molecules])
    pair = d3.cso_pairwise_energy_kj_mol(numbers, positions, a1=a1, s6=s6, cn_cutoff_bohr=cn_cutoff_bohr)
    index = np.repeat(np.arange(len(molecules)), [m.n_atoms for m in molecules])
    return 0.5 * pair[index[:, None] != index[None, :]].sum()


def isolated_cn_cluster(molecules, seed=0):
    """A cluster whose molecules sit beyond a CN cutoff that still spans every molecule.

    With s-dftd3's CN cutoff set between the largest intramolecular and the smallest intermolecular
    distance, its coordination numbers equal those of the isolated molecules (as frozen by the CSO
    force) exactly, while the nearest intermolecular pairs are close enough (~2.7 R0) for the a1
    sigmoid to matter.
    """
    cn_cutoff_nm = max_intramolecular_distance_nm(molecules) + 0.02
    for spacing in np.arange(1.0, 3.0, 0.05):
        positions = cluster(molecules, spacing, seed)
        if min_intermolecular_distance_nm(molecules, positions)[0] > cn_cutoff_nm + 0.01:
            return positions, cn_cutoff_nm / BOHR_IN_NM
    raise AssertionError("could not place the cluster")


@pytest.fixture(scope="module")
def solvents():
    return {name: Molecule.from_name(name) for name in SOLVENTS}


@pytest.fixture(scope="module")
def liquid_box():
    from openmm_physembed.chem.box import build_box

    molecules = [Molecule.from_name("ec"), Molecule.from_name("emc")]
    return build_box(molecules, counts=(25, 35), box_edge_nm=2.5, charge_method="gasteiger", seed=3)


# ---------------------------------------------------------------------------------------------- D3 adapter
def test_r0_equals_becke_johnson_radii(solvents):
    """R0 read back from s-dftd3 equals sqrt(3 Q_A Q_B) as tabulated (bohr, cso_notes.md)."""
    m = solvents["ec"]
    data = d3.isolated_pair_data([(m.atomic_numbers, m.positions_nm)])
    z = data.atomic_numbers
    expected = {(1, 1): 3.477, (6, 6): 5.378, (8, 8): 4.492, (1, 6): 4.324, (6, 8): 4.915, (1, 8): 3.952}
    for (za, zb), value in expected.items():
        r0 = data.r0_nm[np.ix_(z == za, z == zb)] / BOHR_IN_NM
        np.testing.assert_allclose(r0, value, atol=6e-4)
        assert np.ptp(r0) < 1e-9  # element pair only, not CN
    np.testing.assert_allclose(data.c6_kj_mol_nm6, data.c6_kj_mol_nm6.T, rtol=1e-12)


def test_coordination_numbers_are_the_ones_dftd3_uses():
    """Two environments with equal CN by our D3 formula give s-dftd3 equal C6, different CN different C6.

    An H atom with one C neighbour and one with one O neighbour at distances chosen to give the same
    CN under the D3 radii; a distant He probe reads C6(H, He) from s-dftd3. Wrong radii, steepness or
    unit constants would break the equality.
    """
    from dftd3.interface import DispersionModel, RationalDampingParam

    rc = {z: d3.d3_covalent_radius_bohr(z) for z in (1, 6, 8)}

    def c6_h_he(neighbour, distance_bohr):
        xyz = np.array([[0, 0, 0], [distance_bohr, 0, 0], [0, 100.0, 0]])
        model = DispersionModel(np.array([1, neighbour, 2]), xyz)
        model.set_realspace_cutoff(1000.0, 40.0, 40.0)
        pair = model.get_pairwise_dispersion(RationalDampingParam(s6=1, s8=0, a1=0, a2=0, s9=0))
        cn = d3.coordination_numbers([1, neighbour, 2], xyz * BOHR_IN_NM)[0]
        return cn, -2 * pair["additive pairwise energy"][0, 2] * 100.0**6

    for target in (0.3, 0.6, 0.9):
        x = 1.0 - np.log(1.0 / target - 1.0) / d3.D3_CN_STEEPNESS  # rcov_sum / r for this count
        cn_c, c6_c = c6_h_he(6, (rc[1] + rc[6]) / x)
        cn_o, c6_o = c6_h_he(8, (rc[1] + rc[8]) / x)
        _, c6_other = c6_h_he(8, (rc[1] + rc[6]) / x)
        assert cn_c == pytest.approx(target, abs=1e-12) and cn_o == pytest.approx(target, abs=1e-12)
        assert c6_o == pytest.approx(c6_c, rel=1e-12)
        assert abs(c6_other / c6_c - 1) > 1e-2


# ---------------------------------------------------------------------------------------------- vs s-dftd3
@pytest.mark.parametrize("name", SOLVENTS)
def test_dimer_energy_equals_dftd3_intermolecular_pair_sum(solvents, name):
    molecules = [solvents[name], solvents[name]]
    positions, cn_cutoff = isolated_cn_cluster(molecules, seed=1)
    topology = make_topology(molecules)
    for a1 in (0.6, 1.07):
        system = bare_system(topology)
        add_cso_correction(system, topology, positions, alpha=1.0, a1=a1)
        ours = energy(context_for(system, positions))
        reference = dftd3_intermolecular_kj_mol(molecules, positions, a1, cn_cutoff_bohr=cn_cutoff)
        assert ours == pytest.approx(reference, rel=RTOL)
        # The a1 sigmoid carries a visible share of the energy at these separations.
        no_a1 = dftd3_intermolecular_kj_mol(molecules, positions, 0.0, cn_cutoff_bohr=cn_cutoff)
        assert abs(reference / no_a1 - 1) > 1e-3


@pytest.mark.parametrize("names", [SOLVENTS, ("ec", "ec", "emc"), ("dmc", "ea", "ea", "emc", "ec")])
def test_cluster_energy_equals_dftd3_intermolecular_pair_sum(solvents, names):
    molecules = [solvents[n] for n in names]
    positions, cn_cutoff = isolated_cn_cluster(molecules, seed=2)
    topology = make_topology(molecules)
    system = bare_system(topology)
    add_cso_correction(system, topology, positions, alpha=1.0, a1=0.6)
    ours = energy(context_for(system, positions))
    assert ours == pytest.approx(dftd3_intermolecular_kj_mol(molecules, positions, 0.6, cn_cutoff_bohr=cn_cutoff),
                                 rel=RTOL)


def test_contact_dimer_is_close_to_dftd3_with_its_own_cns(solvents):
    """At contact s-dftd3's CNs include the neighbour; freezing them changes the energy by < 3e-4 (measured 5e-5)."""
    molecules = [solvents["emc"], solvents["ec"]]
    positions = contact_cluster(molecules, 0.25, seed=4)
    topology = make_topology(molecules)
    system = bare_system(topology)
    add_cso_correction(system, topology, positions, alpha=1.0, a1=1.07)
    ours = energy(context_for(system, positions))
    reference = dftd3_intermolecular_kj_mol(molecules, positions, 1.07)
    assert ours == pytest.approx(reference, rel=3e-4)


def test_set_parameter_in_live_context_gives_dftd3_for_new_values(solvents):
    molecules = [solvents[n] for n in ("ec", "emc", "dmc")]
    positions, cn_cutoff = isolated_cn_cluster(molecules, seed=5)
    topology = make_topology(molecules)
    system = bare_system(topology)
    add_cso_correction(system, topology, positions, alpha=1.0, a1=0.6)
    context = context_for(system, positions)
    results = {}
    for a1, s6 in ((1.07, 1.0), (-0.3, 1.0), (0.9, 0.7)):
        context.setParameter("a1", a1)
        context.setParameter("s6", s6)
        reference = dftd3_intermolecular_kj_mol(molecules, positions, a1, s6=s6, cn_cutoff_bohr=cn_cutoff)
        results[a1, s6] = (energy(context), reference)
        assert results[a1, s6][0] == pytest.approx(reference, rel=RTOL)
    # The a1 term alone (small at these separations) matches too.
    ours_a1 = results[1.07, 1.0][0] - results[-0.3, 1.0][0]
    assert ours_a1 == pytest.approx(results[1.07, 1.0][1] - results[-0.3, 1.0][1], rel=1e-6)


# ---------------------------------------------------------------------------------------------- force, exclusions
def test_forces_equal_finite_differences(solvents):
    molecules = [solvents["ea"], solvents["dmc"], solvents["ec"]]
    positions = contact_cluster(molecules, 0.25, seed=6)
    topology = make_topology(molecules)
    system = bare_system(topology)
    add_cso_correction(system, topology, positions, alpha=1.0, a1=1.07)
    context = context_for(system, positions)
    forces = context.getState(getForces=True).getForces(asNumpy=True)._value
    h = 1e-5
    rng = np.random.default_rng(0)
    for atom in rng.choice(len(positions), size=8, replace=False):
        for axis in range(3):
            shifted = positions.copy()
            shifted[atom, axis] += h
            context.setPositions(shifted)
            up = energy(context)
            shifted[atom, axis] -= 2 * h
            context.setPositions(shifted)
            down = energy(context)
            assert -(up - down) / (2 * h) == pytest.approx(forces[atom, axis], abs=1e-6 * np.abs(forces).max())
        context.setPositions(positions)


def test_intramolecular_pairs_contribute_exactly_zero(solvents):
    rng = np.random.default_rng(7)
    molecule = solvents["emc"]
    topology = make_topology([molecule])
    system = bare_system(topology)
    add_cso_correction(system, topology, molecule.positions_nm, alpha=1.0, a1=1.07)
    context = context_for(system, molecule.positions_nm)
    assert energy(context) == 0.0
    context.setPositions(molecule.positions_nm * 0.6 + rng.normal(scale=0.05, size=molecule.positions_nm.shape))
    assert energy(context) == 0.0

    # In a dimer, squeezing one molecule changes only the intermolecular distances it implies.
    molecules = [solvents["ec"], solvents["ea"]]
    positions = contact_cluster(molecules, 0.25, seed=8)
    topology = make_topology(molecules)
    system = bare_system(topology)
    add_cso_correction(system, topology, positions, alpha=1.0, a1=1.07)
    params = cso_parameters(topology, positions)
    context = context_for(system, positions)
    squeezed = positions.copy()
    n = molecules[0].n_atoms
    squeezed[:n] = squeezed[:n].mean(axis=0) + 0.5 * (squeezed[:n] - squeezed[:n].mean(axis=0))
    for xyz in (positions, squeezed):
        context.setPositions(xyz)
        assert energy(context) == pytest.approx(cso_energy_reference(params, xyz, a1=1.07), rel=1e-12)


def test_alpha_scales_energy_exactly_and_derivatives(solvents):
    molecules = [solvents[n] for n in SOLVENTS]
    positions = contact_cluster(molecules, 0.25, seed=9)
    topology = make_topology(molecules)
    system = bare_system(topology)
    add_cso_correction(system, topology, positions, alpha=1.0, a1=0.6)
    params = cso_parameters(topology, positions)
    context = context_for(system, positions)
    base = energy(context)
    for alpha in (0.05, -0.05, 3.0):
        context.setParameter("alpha", alpha)
        assert energy(context) == pytest.approx(alpha * base, rel=1e-13)
    context.setParameter("alpha", 0.05)
    derivatives = context.getState(getParameterDerivatives=True).getEnergyParameterDerivatives()
    # E is linear in a1 and alpha: the a1 derivative is the sigmoid part alone (s6 = 0, a1 = 1).
    analytic = cso_energy_reference(params, positions, alpha=0.05, a1=1.0, s6=0.0)
    assert derivatives["a1"] == pytest.approx(analytic, rel=1e-10)
    assert derivatives["alpha"] == pytest.approx(base, rel=1e-10)
    context.setParameter("a1", 0.6 + 1e-3)
    up = energy(context)
    context.setParameter("a1", 0.6 - 1e-3)
    down = energy(context)
    assert derivatives["a1"] == pytest.approx((up - down) / 2e-3, rel=1e-7)


def test_errors_name_the_fix(solvents):
    molecule = solvents["ec"]
    topology = make_topology([molecule, molecule], box_edge_nm=2.0)
    system = bare_system(topology)
    positions = np.vstack([molecule.positions_nm] * 2)
    values = {"alpha": 1.0, "a1": 0.6}
    with pytest.raises(PotentialError, match="positions_nm"):
        add_cso_correction(system, topology, None, **values)
    with pytest.raises(PotentialError, match="half the box"):
        add_cso_correction(system, topology, positions, cutoff_nm=1.2, **values)
    with pytest.raises(PotentialError, match="particles"):
        add_cso_correction(openmm.System(), topology, positions, **values)
    # No silent (alpha, a1): the error says the three ways to choose them.
    with pytest.raises(PotentialError, match="no default.*mace-off23-small.*fit-a1"):
        add_cso_correction(system, topology, positions, cutoff_nm=0.9)
    with pytest.raises(PotentialError, match="alpha was given without a1"):
        add_cso_correction(system, topology, positions, cutoff_nm=0.9, alpha=0.05)


# ---------------------------------------------------------------------------------------------- periodic boxes
def test_periodic_box_matches_reference_and_long_range_correction(liquid_box):
    box = liquid_box
    topology, positions, vectors = box.topology, box.positions_nm, box.box_vectors_nm
    system = bare_system(topology)
    force = add_cso_correction(system, topology, positions, alpha=1.0, a1=0.6, cutoff_nm=1.2)
    assert force.getNonbondedMethod() == openmm.CustomNonbondedForce.CutoffPeriodic
    assert [f.getName() for f in cso_forces(system)] == ["CSOCorrection", "CSOLongRangeCorrection"]
    params = cso_parameters(topology, positions)
    # Every copy of a molecule type shares its classes (one template per type).
    index = box.molecule_index()
    ec_atoms = [params.atom_class[index == m] for m in range(25)]
    assert all(np.array_equal(ec_atoms[0], c) for c in ec_atoms)

    lrc = long_range_correction_kj_mol(system, positions)
    context = context_for(system, positions, box=vectors)
    total = energy(context)
    short = cso_energy_reference(params, positions, a1=0.6, box_vectors_nm=vectors, cutoff_nm=1.2)
    assert total - lrc == pytest.approx(short, rel=1e-9)

    volume = np.prod(np.diag(vectors))
    expected = tail_by_quadrature(params, 1.2, None, alpha=1.0, a1=0.6, s6=1.0) / volume
    assert lrc == pytest.approx(expected, rel=1e-6)
    assert lrc < 0 and abs(lrc / total) > 0.01

    # The long-range correction's a1 and alpha derivatives are included too.
    derivatives = context.getState(getParameterDerivatives=True).getEnergyParameterDerivatives()
    context.setParameter("a1", 0.7)
    slope = (energy(context) - total) / 0.1
    assert derivatives["a1"] == pytest.approx(slope, rel=1e-6)
    assert derivatives["alpha"] == pytest.approx(total, rel=1e-9)
    context.setParameter("a1", 0.6)

    # The CPU platform (single-precision pair kernel) agrees.
    cpu = context_for(system, positions, platform="CPU", box=vectors)
    assert energy(cpu) == pytest.approx(total, rel=1e-5)


def tail_by_quadrature(params, cutoff_nm, switch_nm, *, alpha, a1, s6, pairs="intermolecular"):
    """V * E_tail (kJ/mol nm^3): 4 pi sum_pairs int w(r) r^2 E_pair(r) dr by scipy's quad, the pairs
    enumerated atom by atom; w = 1 - S on the switching interval (what the switched force leaves out).

    ``pairs="openmm"`` weighs the class pairs as OpenMM's own correction does: 2 pi N^2 / V *
    sum_{class pairs} count * integral / (N (N+1) / 2), count = n_a n_b or n_a (n_a + 1) / 2.
    """
    from scipy.integrate import quad

    a4 = 6.25 * BOHR_IN_NM
    cls, index = params.atom_class, params.molecule_index
    n = len(cls)
    k = params.n_classes
    count = np.zeros((k, k))
    if pairs == "intermolecular":
        i, j = np.triu_indices(n, 1)
        inter = index[i] != index[j]
        np.add.at(count, (np.minimum(cls[i], cls[j])[inter], np.maximum(cls[i], cls[j])[inter]), 1.0)
    else:
        per_class = np.bincount(cls, minlength=k).astype(float)
        count = np.triu(np.outer(per_class, per_class), 1) + np.diag(per_class * (per_class + 1) / 2)
        count *= n / (n + 1)

    def integral(c1, c2):
        c6, r0 = params.c6_kj_mol_nm6[c1, c2], params.r0_nm[c1, c2]

        def pair(r):
            sigmoid = 1.0 / (1.0 + np.exp(min((r - 2.5 * r0) / BOHR_IN_NM, 700.0)))
            return -alpha * (s6 + a1 * sigmoid) * c6 / (r**6 + a4**6)

        total = quad(lambda r: r**2 * pair(r), cutoff_nm, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0]
        if switch_nm is not None:
            def missing(r):
                t = (r - switch_nm) / (cutoff_nm - switch_nm)
                return (10 * t**3 - 15 * t**4 + 6 * t**5) * r**2 * pair(r)

            total += quad(missing, switch_nm, cutoff_nm, epsabs=0, epsrel=1e-12)[0]
        return total

    return 4 * np.pi * sum(count[a, b] * integral(a, b) for a, b in zip(*np.nonzero(count)))


@pytest.fixture(scope="module")
def dmc_box():
    # The 6-DMC box of the liquid-dataset tests (72 atoms, 0.965 nm) with the CSO cutoff the volume
    # scan gives it (0.45 of the smallest scanned edge): the box of issue 24, item 3.
    return small_box("dmc"), 0.42


def tail_system(box, cutoff_nm, switch_nm=None, **kwargs):
    system = bare_system(box.topology)
    add_cso_correction(system, box.topology, box.positions_nm, alpha=0.5, a1=0.8, cutoff_nm=cutoff_nm,
                       switch_distance_nm=switch_nm, **kwargs)
    return system


@pytest.mark.parametrize("switch_nm", [None, 0.35])
def test_long_range_correction_is_the_intermolecular_tail_integral(dmc_box, switch_nm):
    """The tail counts intermolecular pairs only, against quad over pairs enumerated one by one:
    at several (alpha, a1, s6) and as 1/V on a rescaled box."""
    box, cutoff = dmc_box
    system = tail_system(box, cutoff, switch_nm)
    params = cso_parameters(box.topology, box.positions_nm)
    for scale in (1.0, 1.07):
        vectors = np.asarray(box.box_vectors_nm) * scale
        positions = box.positions_nm * scale
        volume = np.prod(np.diag(vectors))
        for values in ({"alpha": 0.5, "a1": 0.8, "s6": 1.0}, {"alpha": 1.3, "a1": -0.4, "s6": 0.7}):
            expected = tail_by_quadrature(params, cutoff, switch_nm, **values) / volume
            assert long_range_correction_kj_mol(system, positions, vectors, values) == pytest.approx(expected, rel=1e-6)


def test_long_range_correction_of_the_six_dmc_box_against_openmms_all_pair_count(dmc_box):
    """Issue 24, item 3: OpenMM's own correction (every pair, N^2/2) gives -50.7 kJ/mol for this box,
    the intermolecular tail -42.1 kJ/mol."""
    box, cutoff = dmc_box
    ours = tail_system(box, cutoff)
    theirs = tail_system(box, cutoff, long_range_correction=False)
    next(f for f in cso_forces(theirs) if f.getName() == "CSOCorrection").setUseLongRangeCorrection(True)
    values = {"alpha": 0.5, "a1": 0.8}
    intermolecular = long_range_correction_kj_mol(ours, box.positions_nm, box.box_vectors_nm, values)
    all_pairs = long_range_correction_kj_mol(theirs, box.positions_nm, box.box_vectors_nm, values)
    params = cso_parameters(box.topology, box.positions_nm)
    volume = np.prod(np.diag(box.box_vectors_nm))
    # OpenMM integrates in single precision to a relative change of 1e-5.
    assert all_pairs == pytest.approx(
        tail_by_quadrature(params, cutoff, None, alpha=0.5, a1=0.8, s6=1.0, pairs="openmm") / volume, rel=1e-4)
    assert all_pairs == pytest.approx(-50.7, abs=0.05)
    assert intermolecular == pytest.approx(-42.1, abs=0.05)


def test_long_range_correction_parameter_derivatives_match_finite_differences(dmc_box):
    """dE_tail/da1, /dalpha, /ds6 that OpenMM reports for the correction force alone."""
    box, cutoff = dmc_box
    system = tail_system(box, cutoff, parameter_derivatives=("alpha", "a1", "s6"))
    tail = next(f for f in cso_forces(system) if f.getName() == "CSOLongRangeCorrection")
    tail.setForceGroup(31)
    context = context_for(system, box.positions_nm, box=box.box_vectors_nm)
    values = {"alpha": 0.5, "a1": 0.8, "s6": 1.0}
    derivatives = context.getState(getParameterDerivatives=True, groups={31}).getEnergyParameterDerivatives()
    # The tail is linear in each parameter, so a wide step is exact, and it keeps the noise of OpenMM's
    # single-precision re-integration at each setParameter (~1e-7 of E) far below the difference.
    for name, step in (("a1", 0.5), ("alpha", 0.25), ("s6", 0.5)):
        sides = []
        for sign in (1, -1):
            context.setParameter(name, values[name] + sign * step)
            sides.append(energy(context, {31}))
        context.setParameter(name, values[name])
        assert derivatives[name] == pytest.approx((sides[0] - sides[1]) / (2 * step), rel=1e-6)
    # The tail is linear in a1: dE/da1 = alpha B / V, B the sigmoid part of the quadrature.
    params = cso_parameters(box.topology, box.positions_nm)
    volume = np.prod(np.diag(box.box_vectors_nm))
    b_part = tail_by_quadrature(params, cutoff, None, alpha=0.5, a1=1.0, s6=0.0) / volume
    assert derivatives["a1"] == pytest.approx(b_part, rel=1e-6)


def test_no_long_range_correction_without_an_intermolecular_pair(solvents):
    molecule = solvents["dmc"]
    topology = make_topology([molecule], box_edge_nm=2.5)
    system = bare_system(topology)
    add_cso_correction(system, topology, molecule.positions_nm, alpha=0.5, a1=0.8, cutoff_nm=1.2)
    assert [f.getName() for f in cso_forces(system)] == ["CSOCorrection"]
    assert not cso_forces(system)[0].getUseLongRangeCorrection()


def test_frozen_cns_survive_wrapped_molecules_and_named_references(liquid_box):
    """Molecules split by the box are made whole before their CNs are taken; a per-residue reference
    geometry (the packed molecules are rigid copies of it) gives the same classes and C6."""
    box = liquid_box
    reference = cso_parameters(box.topology, box.positions_nm)
    # Put the first atom just below a face so the first (template) molecule wraps across the box.
    wrapped = (box.positions_nm - box.positions_nm[0] + box.box_edge_nm - 0.05) % box.box_edge_nm
    index = box.molecule_index()
    assert np.ptp(wrapped[index == 0], axis=0).max() > box.box_edge_nm / 2
    residues = list(box.topology.residues())
    by_name = {residues[0].name: box.molecules[0].positions_nm, residues[25].name: box.molecules[1].positions_nm}
    # packmol writes coordinates rounded to ~1e-5 A, so the packed copies match the named reference
    # geometry to ~1e-7 in CN; wrapping changes nothing beyond rounding.
    for other, tolerance in ((cso_parameters(box.topology, wrapped), 1e-9),
                             (cso_parameters(box.topology, reference_positions_nm=by_name), 1e-5)):
        # Class labels may permute between near-equal CNs; what each atom gets must not change.
        np.testing.assert_allclose(other.class_coordination_numbers[other.atom_class],
                                   reference.class_coordination_numbers[reference.atom_class], atol=tolerance)
        np.testing.assert_allclose(other.atom_c6(), reference.atom_c6(), rtol=tolerance)


def small_box(name, seed=3):
    """6 molecules in a box of ~1 nm: so small that a molecule's far hydrogens lie more than half a
    box edge from its first atom, where a minimum-image guess puts them a box vector away."""
    from openmm_physembed.chem.box import build_box

    return build_box([Molecule.from_name(name)], counts=[6], density_g_cm3=1.0, seed=seed, charge_method="gasteiger")


def write_pdb_as_before(box, path):
    """The box's PDB file as versions before issue 25 wrote it: dimethyl and diethyl carbonate
    were residue DC, a standard residue, so OpenMM wrote no CONECT records for their bonds."""
    from openmm import unit

    topology = app.PDBFile(str(box.write_pdb(path))).topology
    for residue in topology.residues():
        residue.name = "DC"
    with open(path, "w") as handle:
        app.PDBFile.writeFile(topology, box.positions_nm * 10.0 * unit.angstrom, handle)
    return path


@pytest.mark.parametrize("name, seed", [("dmc", 3), ("dmc", 4), ("dec", 3)])
def test_cso_parameters_of_a_box_read_back_from_its_pdb_are_the_boxes(name, seed, tmp_path):
    box = small_box(name, seed)
    topology = app.PDBFile(str(box.write_pdb(tmp_path / "box.pdb"))).topology
    assert topology.getPeriodicBoxVectors() is not None
    reference = cso_parameters(box.topology, box.positions_nm)
    again = cso_parameters(topology, box.positions_nm)
    np.testing.assert_array_equal(again.molecule_index, reference.molecule_index)
    np.testing.assert_allclose(again.class_coordination_numbers[again.atom_class],
                               reference.class_coordination_numbers[reference.atom_class], rtol=1e-12)
    np.testing.assert_allclose(again.atom_c6(), reference.atom_c6(), rtol=1e-12)


def test_a_molecule_in_pieces_is_refused_in_a_periodic_box(tmp_path):
    """Read back, the old file has 1 of each molecule's 11 bonds (OpenMM's DC template matched one
    by atom name): in the periodic box the CSO term refuses it rather than guess where the pieces go."""
    box = small_box("dmc")
    topology = app.PDBFile(str(write_pdb_as_before(box, tmp_path / "old.pdb"))).topology
    assert topology.getNumBonds() == 6 and topology.getPeriodicBoxVectors() is not None
    with pytest.raises(PotentialError, match=r"molecule 0 \(residue 'DC', 12 atoms; one of 6 such molecules\) "
                                             r"whole in the periodic box: .* 11 pieces.*'DC' is a residue name "
                                             r"OpenMM's PDB reader has its own template for") as error:
        cso_parameters(topology, box.positions_nm)
    assert "\n" not in str(error.value)
    # Without a box nothing is made whole, so the pieces cannot move: the same classes as the box's.
    topology.setPeriodicBoxVectors(None)
    np.testing.assert_allclose(cso_parameters(topology, box.positions_nm).atom_c6(),
                               cso_parameters(box.topology, box.positions_nm).atom_c6(), rtol=1e-12)


def test_periodic_box_is_close_to_dftd3_in_the_liquid(liquid_box):
    """s-dftd3 on the periodic box (liquid CNs, same 1.2 nm cutoff, intermolecular entries)."""
    box = liquid_box
    numbers = np.array([a.element.atomic_number for a in box.topology.atoms()])
    pair = d3.cso_pairwise_energy_kj_mol(numbers, box.positions_nm, a1=0.6, box_vectors_nm=box.box_vectors_nm,
                                         cutoff_nm=1.2)
    index = box.molecule_index()
    reference = 0.5 * pair[index[:, None] != index[None, :]].sum()
    params = cso_parameters(box.topology, box.positions_nm)
    ours = cso_energy_reference(params, box.positions_nm, a1=0.6, box_vectors_nm=box.box_vectors_nm, cutoff_nm=1.2)
    assert ours == pytest.approx(reference, rel=2e-3)


def test_gaff_base_shares_exclusions_and_cso_stays_intermolecular(liquid_box):
    """On a GAFF System the CSO copies the NonbondedForce's exclusions (CPU platform rule) and
    cancels the remaining intramolecular pairs; its own force group reads the intermolecular sum."""
    box = liquid_box
    system = box.create_system(nonbonded_cutoff_nm=1.0)
    groups_before = {f.getForceGroup() for f in system.getForces()}
    force = add_cso_correction(system, box.topology, box.positions_nm, alpha=0.05, a1=1.07, long_range_correction=False)
    group = force.getForceGroup()
    assert group not in groups_before
    assert {f.getForceGroup() for f in cso_forces(system)} == {group}
    assert len(cso_forces(system)) == 2
    params = cso_parameters(box.topology, box.positions_nm)
    reference = cso_energy_reference(params, box.positions_nm, alpha=0.05, a1=1.07,
                                     box_vectors_nm=box.box_vectors_nm, cutoff_nm=1.2)
    exact = context_for(system, box.positions_nm, box=box.box_vectors_nm)
    assert energy(exact, {group}) == pytest.approx(reference, rel=1e-9)
    cpu = context_for(system, box.positions_nm, platform="CPU", box=box.box_vectors_nm)
    assert energy(cpu, {group}) == pytest.approx(reference, rel=1e-5)
    derivative = cpu.getState(getParameterDerivatives=True).getEnergyParameterDerivatives()["a1"]
    assert derivative == pytest.approx(cso_energy_reference(params, box.positions_nm, alpha=0.05, a1=1.0, s6=0.0,
                                                            box_vectors_nm=box.box_vectors_nm, cutoff_nm=1.2),
                                       rel=1e-4)


def test_gaff_single_molecule_gets_zero(solvents):
    from openmm_physembed.chem.gaff import parameterize

    molecule = solvents["emc"]
    params = parameterize(molecule, charge_method="gasteiger")
    system = params.create_system()
    topology = params.topology
    force = add_cso_correction(system, topology, molecule.positions_nm, alpha=1.0, a1=1.07)
    assert force.getNonbondedMethod() == openmm.CustomNonbondedForce.NoCutoff
    context = context_for(system, molecule.positions_nm)
    assert abs(energy(context, {force.getForceGroup()})) < 1e-12


# ---------------------------------------------------------------------------------------------- CorrectedMACESystem
@pytest.fixture(scope="module")
def tiny_mace_model(tmp_path_factory):
    pytest.importorskip("torch")  # always before openmmtorch
    pytest.importorskip("mace")
    pytest.importorskip("openmmtorch")
    from openmm_physembed.testing import make_random_mace_model

    return make_random_mace_model(tmp_path_factory.mktemp("mace") / "tiny.model", atomic_numbers=(1, 6, 8),
                                  r_max_angstrom=4.0, num_channels=8, max_L=1, correlation=2, dtype="float64")


def test_corrected_mace_system_is_mace_plus_alpha_cso(solvents, tiny_mace_model):
    from openmm_physembed import CorrectedMACESystem
    from openmm_physembed.potentials.mace_force import add_mace_force

    molecules = [solvents["ec"], solvents["dmc"], solvents["ea"]]
    positions = contact_cluster(molecules, 0.25, seed=10)
    topology = make_topology(molecules)
    corrected = CorrectedMACESystem(tiny_mace_model, topology, positions, alpha=-0.05, a1=1.07)
    assert corrected.cso_force_group != corrected.mace_force.getForceGroup()
    assert corrected.cso_force.getNonbondedMethod() == openmm.CustomNonbondedForce.NoCutoff
    context = context_for(corrected.system, positions, platform="CPU")

    mace_only = bare_system(topology)
    add_mace_force(mace_only, topology, tiny_mace_model, dtype="float64")
    mace_energy = energy(context_for(mace_only, positions, platform="CPU"))
    assert energy(context, {corrected.mace_force.getForceGroup()}) == pytest.approx(mace_energy, rel=1e-12)

    params = cso_parameters(topology, positions)
    # The CPU platform's pair kernel agrees with double-precision numpy to ~1e-8.
    assert corrected.cso_energy_kj_mol(context) == pytest.approx(
        cso_energy_reference(params, positions, alpha=-0.05, a1=1.07), rel=1e-6)
    CorrectedMACESystem.set_a1(context, 0.6)
    corrected.set_alpha(context, 0.05)
    assert corrected.cso_energy_kj_mol(context) == pytest.approx(
        cso_energy_reference(params, positions, alpha=0.05, a1=0.6), rel=1e-6)
    derivatives = context.getState(getParameterDerivatives=True).getEnergyParameterDerivatives()
    assert derivatives["a1"] == pytest.approx(cso_energy_reference(params, positions, alpha=0.05, a1=1.0, s6=0.0),
                                              rel=1e-6)


def test_corrected_mace_system_refuses_a_missing_model(solvents, tmp_path):
    from openmm_physembed.potentials.corrected_system import CorrectedMACESystem

    molecule = solvents["ec"]
    with pytest.raises(PotentialError, match="does not exist.*physembed train"):
        CorrectedMACESystem(tmp_path / "MACE-OFF23_small.model", make_topology([molecule]), molecule.positions_nm,
                            correction="mace-off23-small")


def test_corrected_mace_system_conserves_energy_in_nve(tiny_mace_model):
    """NVE on a periodic EC box with a CSO strong enough to matter (alpha = -10: CSO forces ~0.7x the
    random MACE forces; repulsive, so the model's missing intermolecular repulsion cannot collapse it).

    Conservation is checked by its timestep scaling: velocity Verlet's energy error falls as dt^2
    when forces are the exact gradient of the energy, so halving dt must cut the energy excursion
    ~4x. A smooth switch (0.6-0.7 nm) keeps the cutoff from adding jumps of its own at this alpha.
    """
    from openmm_physembed.chem.box import build_box
    from openmm_physembed.potentials.corrected_system import CorrectedMACESystem

    box = build_box([Molecule.from_name("ec")], counts=(20,), box_edge_nm=1.5, charge_method="gasteiger", seed=2)
    corrected = CorrectedMACESystem(tiny_mace_model, box.topology, box.positions_nm, alpha=-10.0, a1=1.07,
                                    cutoff_nm=0.7, switch_distance_nm=0.6)
    excursions = {}
    for dt_fs, steps in ((0.5, 100), (0.25, 200)):
        integrator = openmm.VerletIntegrator(dt_fs * 1e-3)
        context = openmm.Context(corrected.system, integrator, openmm.Platform.getPlatformByName("CPU"))
        context.setPeriodicBoxVectors(*box.box_vectors_nm)
        context.setPositions(box.positions_nm)
        context.setVelocitiesToTemperature(300.0, 1)
        if dt_fs == 0.5:
            mace_f = context.getState(getForces=True, groups={0}).getForces(asNumpy=True)._value
            cso_f = context.getState(getForces=True, groups={corrected.cso_force_group}).getForces(asNumpy=True)._value
            assert np.sqrt((cso_f**2).mean()) > 0.3 * np.sqrt((mace_f**2).mean())
        excursions[dt_fs], kinetic_range = nve_energy_excursion(context, integrator, steps)
        assert excursions[dt_fs] < 0.01 * kinetic_range + 1.0
    assert 2.5 < excursions[0.5] / excursions[0.25] < 6.5
