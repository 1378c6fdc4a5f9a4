"""Every constant of ``units.py`` against CODATA, as shipped by scipy.constants and openmm.unit.

``units.py`` states CODATA 2018; scipy 1.15+ ships CODATA 2022. The two editions differ by at most
1.4e-9 (relative) for the constants used here (bohr radius 6.8e-10, atomic mass constant 1.4e-9,
hartree 2.6e-13), so derived constants are compared with ``rel=1e-8``: far below any typo (a wrong
6th digit is 1e-6) and above the change of edition. Constants exact by definition since the 2019 SI
(N_A, e, k, the bar, the thermochemical calorie) are compared with ``rel=1e-15``.
"""

from __future__ import annotations

import pytest
from openmm import unit as u
from scipy import constants as sc

from openmm_physembed import units

CODATA = 1e-8  # relative: CODATA 2018 (units.py) vs 2022 (scipy) differ by < 1.5e-9 here
EXACT = 1e-15


def codata(name: str) -> float:
    return sc.physical_constants[name][0]


def in_units(quantity, unit) -> float:
    return quantity.value_in_unit(unit)


KJ_MOL = u.kilojoule_per_mole


# (constant name, value from scipy.constants, value from openmm.unit, relative tolerance)
CASES = [
    ("ANGSTROM_PER_NM", sc.nano / sc.angstrom, in_units(1 * u.nanometer, u.angstrom), EXACT),
    ("NM_PER_ANGSTROM", sc.angstrom / sc.nano, in_units(1 * u.angstrom, u.nanometer), EXACT),
    ("BOHR_IN_ANGSTROM", codata("Bohr radius") / sc.angstrom, in_units(1 * u.bohr, u.angstrom), CODATA),
    ("BOHR_IN_NM", codata("Bohr radius") / sc.nano, in_units(1 * u.bohr, u.nanometer), CODATA),
    ("AVOGADRO", sc.N_A, u.AVOGADRO_CONSTANT_NA.value_in_unit(u.mole**-1), EXACT),
    ("ELEMENTARY_CHARGE_C", sc.e, in_units(1 * u.elementary_charge, u.coulomb), EXACT),
    # The Faraday constant F = e N_A is 96 485.332 12... C/mol (exact): 1 eV per particle in kJ/mol.
    ("KJ_PER_MOL_PER_EV", codata("Faraday constant") / 1000.0,
     in_units(1 * u.elementary_charge * u.volt * u.AVOGADRO_CONSTANT_NA, KJ_MOL), 1e-12),
    ("EV_PER_KJ_PER_MOL", 1000.0 / codata("Faraday constant"),
     in_units(1 * u.kilojoule_per_mole / u.AVOGADRO_CONSTANT_NA, u.joule) / sc.e, 1e-12),
    ("HARTREE_IN_EV", codata("Hartree energy in eV"), in_units(1 * u.hartree, u.joule) / sc.e, CODATA),
    ("KJ_PER_MOL_PER_HARTREE", codata("Hartree energy") * sc.N_A / 1000.0,
     in_units(1 * u.hartree * u.AVOGADRO_CONSTANT_NA, KJ_MOL), CODATA),
    ("KCAL_IN_KJ", sc.calorie, in_units(1 * u.kilocalorie, u.kilojoule), EXACT),
    # D3's C6 unit, 1 Eh bohr^6, in kJ/mol nm^6 (5.7652e-5).
    ("C6_HARTREE_BOHR6_IN_KJ_MOL_NM6",
     codata("Hartree energy") * sc.N_A / 1000.0 * (codata("Bohr radius") / sc.nano) ** 6,
     in_units(1 * u.hartree * u.AVOGADRO_CONSTANT_NA * u.bohr**6, KJ_MOL * u.nanometer**6), CODATA),
    ("BOLTZMANN_KJ_PER_MOL_K", sc.R / 1000.0, in_units(u.MOLAR_GAS_CONSTANT_R, KJ_MOL / u.kelvin), EXACT),
    ("BOLTZMANN_J_PER_K", sc.k, in_units(u.BOLTZMANN_CONSTANT_kB, u.joule / u.kelvin), EXACT),
    ("BAR_IN_KJ_PER_MOL_NM3", sc.bar * sc.nano**3 * sc.N_A / 1000.0,
     in_units(1 * u.bar * u.nanometer**3 * u.AVOGADRO_CONSTANT_NA, KJ_MOL), 1e-12),
    # 1 u/nm^3 in g/cm^3: the atomic mass constant in grams over 1e-21 cm^3 (openmm's dalton is
    # 1 g/mol / N_A, which differs from the CODATA atomic mass constant by 3e-10).
    ("AMU_PER_NM3_IN_G_PER_CM3", codata("atomic mass constant") / sc.gram / (sc.nano / sc.centi) ** 3,
     in_units(1 * u.dalton / u.AVOGADRO_CONSTANT_NA / u.nanometer**3, u.gram / u.centimeter**3), CODATA),
    # 1 Pa s in cP: the poise is 1 g cm^-1 s^-1 = 0.1 Pa s, so 1 cP = 1e-3 Pa s.
    ("PA_S_IN_CP", 1.0 / (sc.centi * sc.gram / sc.centi), None, EXACT),
    ("PA_PER_BAR", sc.bar, in_units(1 * u.bar, u.pascal), EXACT),
    ("M3_PER_NM3", sc.nano**3, in_units(1 * u.nanometer**3, u.meter**3), EXACT),
    ("S_PER_PS", sc.pico, in_units(1 * u.picosecond, u.second), EXACT),
]


@pytest.mark.parametrize("name, from_scipy, from_openmm, rel", CASES, ids=[c[0] for c in CASES])
def test_constant_matches_codata(name, from_scipy, from_openmm, rel):
    value = getattr(units, name)
    assert value == pytest.approx(from_scipy, rel=rel, abs=0.0)
    if from_openmm is not None:
        assert value == pytest.approx(from_openmm, rel=max(rel, 1e-12), abs=0.0)


def test_every_constant_is_checked():
    constants = {name for name in vars(units) if name.isupper()}
    assert constants == {c[0] for c in CASES}


def test_gaff_bond_constant_conversion_against_openmm_units():
    # AMBER's E = k (r - r0)^2 in kcal/mol/A^2 is OpenMM's E = (2k)/2 (r - r0)^2: 2 x 300 kcal/mol/A^2.
    k_amber = 300.0
    expected = in_units(2 * k_amber * u.kilocalorie_per_mole / u.angstrom**2, KJ_MOL / u.nanometer**2)
    assert expected == pytest.approx(251_040.0)
    assert units.gaff_bond_k_to_openmm(k_amber) == pytest.approx(expected, rel=1e-14)
    assert units.openmm_bond_k_to_gaff(expected) == pytest.approx(k_amber, rel=1e-14)


def test_density_of_water_against_openmm_units():
    # 1000 water molecules (18.015 u) in 29.915 nm^3: 1.000 g/cm3 to 4 digits (0.99997 g/cm3 at 25 C).
    mass, volume = 1000 * 18.015, 29.915
    expected = in_units(mass * u.dalton / u.AVOGADRO_CONSTANT_NA / (volume * u.nanometer**3),
                        u.gram / u.centimeter**3)
    assert expected == pytest.approx(1.0000, abs=1e-4)
    assert units.density_g_cm3(mass, volume) == pytest.approx(expected, rel=CODATA)
