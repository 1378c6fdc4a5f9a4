"""Every unit conversion constant of the project, in one place.

OpenMM units (nm, ps, kJ/mol, K, bar, amu) are used at every public boundary. Angstrom, eV,
bohr and hartree appear only inside the MACE, xTB and D3 adapters, which convert with the
constants below (CODATA 2018 where a library does not impose its own).
"""

from __future__ import annotations

ANGSTROM_PER_NM = 10.0
NM_PER_ANGSTROM = 0.1

BOHR_IN_ANGSTROM = 0.529177210903
BOHR_IN_NM = BOHR_IN_ANGSTROM * NM_PER_ANGSTROM

AVOGADRO = 6.02214076e23
ELEMENTARY_CHARGE_C = 1.602176634e-19
KJ_PER_MOL_PER_EV = ELEMENTARY_CHARGE_C * AVOGADRO / 1000.0  # 96.48533212...
EV_PER_KJ_PER_MOL = 1.0 / KJ_PER_MOL_PER_EV
HARTREE_IN_EV = 27.211386245988
KJ_PER_MOL_PER_HARTREE = HARTREE_IN_EV * KJ_PER_MOL_PER_EV  # 2625.4996...
KCAL_IN_KJ = 4.184
# Dispersion coefficients: 1 Eh bohr^6 in kJ/mol nm^6 (5.76526e-5).
C6_HARTREE_BOHR6_IN_KJ_MOL_NM6 = KJ_PER_MOL_PER_HARTREE * BOHR_IN_NM**6

BOLTZMANN_KJ_PER_MOL_K = 0.00831446261815324
BOLTZMANN_J_PER_K = 1.380649e-23

# 1 bar expressed in kJ/mol/nm^3 (pressure x volume = energy per mole).
BAR_IN_KJ_PER_MOL_NM3 = 1e5 * 1e-27 * AVOGADRO / 1000.0  # 0.0602214076
# 1 amu/nm^3 in g/cm^3.
AMU_PER_NM3_IN_G_PER_CM3 = 1.66053906660e-24 / 1e-21
# 1 cP = 1 mPa s.
PA_S_IN_CP = 1000.0
# SI factors for Green-Kubo transport coefficients (pressure in bar, time in ps, volume in nm^3).
PA_PER_BAR = 1e5
M3_PER_NM3 = 1e-27
S_PER_PS = 1e-12


def gaff_bond_k_to_openmm(k_kcal_per_mol_a2: float) -> float:
    """AMBER writes E = k (r - r0)^2 in kcal/mol/A^2; OpenMM uses E = k/2 (r - r0)^2 in kJ/mol/nm^2."""
    return 2.0 * k_kcal_per_mol_a2 * KCAL_IN_KJ * ANGSTROM_PER_NM**2


def openmm_bond_k_to_gaff(k_kj_per_mol_nm2: float) -> float:
    return k_kj_per_mol_nm2 / (2.0 * KCAL_IN_KJ * ANGSTROM_PER_NM**2)


def density_g_cm3(total_mass_amu: float, volume_nm3: float) -> float:
    return total_mass_amu / volume_nm3 * AMU_PER_NM3_IN_G_PER_CM3
