"""Adapter to the ``dftd3`` package (s-dftd3): D3 coordination numbers, C6 and R0 for the CSO term.

Bohr and hartree live only in this module; everything it returns is in nm and kJ/mol.

What the CSO correction needs from D3 (Schröder, Creon, Schwabe, JCTC 11, 3163 (2015)):

- the coordination number of every atom (Grimme et al., JCP 132, 154104 (2010), eq. 15)
  ``CN_A = sum_B 1 / (1 + exp(-16 (4/3 (Rcov_A + Rcov_B) / R_AB - 1)))``, pairs within 40 bohr,
  Pyykkö-Atsumi covalent radii (s-dftd3 ``ncoord.f90``, ``data/covrad.f90``, ``cutoff.f90``);
- ``C6_AB``, the D3 reference C6 interpolated at (CN_A, CN_B);
- ``R0_AB = sqrt(3 Q_A Q_B)``, the Becke-Johnson radius, a function of the two elements only.

s-dftd3 exposes neither C6 nor R0, so both are read back from its pair energies, computed for
molecules placed far enough apart that their coordination numbers are those of the isolated
molecules (s-dftd3 counts CN pairs within 40 bohr only):

- rational damping with ``s6 = 1, s8 = 0, a1 = a2 = 0`` makes every pair energy exactly
  ``-C6 / R^6``, so ``C6 = -E_pair R^6``;
- CSO damping with ``s6 = 0, a1 = 1, a2 = 1, a3 = a4 = 0`` makes it ``-C6 / (1 + exp(R - R0)) / R^6``,
  so ``R0 = R - ln(C6 / (-E_pair R^6) - 1)``.

The coordination numbers themselves are computed here with s-dftd3's formula; the test suite checks
them against s-dftd3 through the C6 they imply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...errors import PotentialError
from ...units import (
    BOHR_IN_ANGSTROM,
    BOHR_IN_NM,
    C6_HARTREE_BOHR6_IN_KJ_MOL_NM6,
    KJ_PER_MOL_PER_HARTREE,
)

# Pyykkö & Atsumi, Chem. Eur. J. 15, 188 (2009), in Å, as tabulated by s-dftd3 (data/covrad.f90,
# metals already decreased by 10 %), H to Xe. D3 scales them by 4/3.
_COVALENT_RADII_ANGSTROM = (
    0.32, 0.46,
    1.20, 0.94, 0.77, 0.75, 0.71, 0.63, 0.64, 0.67,
    1.40, 1.25, 1.13, 1.04, 1.10, 1.02, 0.99, 0.96,
    1.76, 1.54,
    1.33, 1.22, 1.21, 1.10, 1.07, 1.04, 1.00, 0.99, 1.01, 1.09,
    1.12, 1.09, 1.15, 1.10, 1.14, 1.17,
    1.89, 1.67,
    1.47, 1.39, 1.32, 1.24, 1.15, 1.13, 1.13, 1.08, 1.15, 1.23,
    1.28, 1.26, 1.26, 1.23, 1.32, 1.31,
)
D3_CN_STEEPNESS = 16.0
D3_CN_CUTOFF_BOHR = 40.0  # s-dftd3's default CN cutoff (cutoff.f90, cn_default)
# Copies of molecules are laid out this far apart (bohr, between the nearest atoms), beyond the CN
# cutoff so every copy keeps the coordination numbers of the isolated molecule.
_ISOLATION_GAP_BOHR = D3_CN_CUTOFF_BOHR + 10.0


def d3_covalent_radius_bohr(atomic_number: int) -> float:
    """The D3 coordination-number radius, 4/3 of the Pyykkö-Atsumi covalent radius, in bohr."""
    if not 1 <= atomic_number <= len(_COVALENT_RADII_ANGSTROM):
        raise PotentialError(
            f"no D3 covalent radius tabulated here for atomic number {atomic_number}; "
            f"supported: 1-{len(_COVALENT_RADII_ANGSTROM)} (H to Xe)"
        )
    return 4.0 / 3.0 * _COVALENT_RADII_ANGSTROM[atomic_number - 1] / BOHR_IN_ANGSTROM


def coordination_numbers(atomic_numbers: Sequence[int], positions_nm: np.ndarray,
                         cutoff_bohr: float = D3_CN_CUTOFF_BOHR) -> np.ndarray:
    """D3 coordination numbers of an isolated (non-periodic) structure.

    ``CN_A = sum_{B != A, R_AB <= cutoff} 1 / (1 + exp(-k1 (Rcov_A + Rcov_B) / R_AB + k1))``, k1 = 16,
    Rcov the D3 radii (4/3 Pyykkö-Atsumi), Grimme et al., J. Chem. Phys. 132, 154104 (2010), eq. 15.
    """
    numbers = np.asarray(atomic_numbers, dtype=int)
    xyz = np.asarray(positions_nm, dtype=float) / BOHR_IN_NM
    rcov = np.array([d3_covalent_radius_bohr(int(z)) for z in numbers])
    r = np.linalg.norm(xyz[:, None, :] - xyz[None, :, :], axis=-1)
    np.fill_diagonal(r, np.inf)
    rc = rcov[:, None] + rcov[None, :]
    count = 1.0 / (1.0 + np.exp(-D3_CN_STEEPNESS * (rc / r - 1.0)))
    count[r > cutoff_bohr] = 0.0
    return count.sum(axis=1)


@dataclass(frozen=True)
class D3PairData:
    """C6 and R0 between every pair of atoms of a set of isolated molecules.

    Atoms are numbered by concatenating the molecules in the order given. Entry (i, j) is the value
    for atom i of its molecule interacting with atom j of *another copy* of its molecule, so the
    diagonal (an atom with its own image) is defined too.

    Attributes
    ----------
    c6_kj_mol_nm6
        D3 C6 at the isolated molecules' coordination numbers, kJ/mol nm^6.
    r0_nm
        Becke-Johnson radius sqrt(3 Q_A Q_B), nm.
    coordination_numbers
        D3 CN of every atom in its isolated molecule.
    atomic_numbers
        Element of every atom.
    """

    c6_kj_mol_nm6: np.ndarray
    r0_nm: np.ndarray
    coordination_numbers: np.ndarray
    atomic_numbers: np.ndarray


def isolated_pair_data(molecules: Sequence[tuple[Sequence[int], np.ndarray]]) -> D3PairData:
    """C6 and R0 for every atom pair of the given molecules, each at its isolated-molecule CNs.

    Parameters
    ----------
    molecules
        ``(atomic_numbers, positions_nm)`` of each molecule (its reference geometry).
    """
    from dftd3.interface import CSODampingParam, DispersionModel, RationalDampingParam

    if not molecules:
        raise PotentialError("no molecules given to compute D3 C6 coefficients for")
    numbers_list, xyz_list = [], []
    for numbers, positions in molecules:
        numbers = np.asarray(numbers, dtype=int)
        positions = np.asarray(positions, dtype=float).reshape(-1, 3)
        if len(numbers) != len(positions) or len(numbers) == 0:
            raise PotentialError(f"molecule with {len(numbers)} elements but {len(positions)} positions")
        for z in numbers:
            d3_covalent_radius_bohr(int(z))
        numbers_list.append(numbers)
        xyz_list.append(positions / BOHR_IN_NM)

    # Two copies of every molecule in a row along x, each copy beyond the CN cutoff of the others.
    layout_numbers, layout_xyz, offset = [], [], 0.0
    for _copy in range(2):
        for numbers, xyz in zip(numbers_list, xyz_list):
            shifted = xyz - xyz.min(axis=0)
            shifted[:, 0] += offset
            offset += np.ptp(xyz[:, 0]) + _ISOLATION_GAP_BOHR
            layout_numbers.append(numbers)
            layout_xyz.append(shifted)
    numbers_all = np.concatenate(layout_numbers)
    xyz_all = np.concatenate(layout_xyz)
    n = len(numbers_all) // 2

    model = DispersionModel(numbers_all, xyz_all)
    # Every pair must be summed however far apart; the CN cutoff stays at its default.
    model.set_realspace_cutoff(10.0 * offset, D3_CN_CUTOFF_BOHR, D3_CN_CUTOFF_BOHR)
    r = np.linalg.norm(xyz_all[:n, None, :] - xyz_all[None, n:, :], axis=-1)

    rational = RationalDampingParam(s6=1.0, s8=0.0, a1=0.0, a2=0.0, s9=0.0)
    # The pairwise matrix holds half of each pair energy in each of (i, j) and (j, i).
    pair_rational = 2.0 * model.get_pairwise_dispersion(rational)["additive pairwise energy"][:n, n:]
    c6 = -pair_rational * r**6

    cso = CSODampingParam(s6=0.0, a1=1.0, a2=1.0, a3=0.0, a4=0.0, s9=0.0)
    pair_cso = 2.0 * model.get_pairwise_dispersion(cso)["additive pairwise energy"][:n, n:]
    sigmoid = -pair_cso * r**6 / c6
    r0 = r - np.log(1.0 / sigmoid - 1.0)
    if not (np.all(np.isfinite(c6)) and np.all(c6 > 0) and np.all(np.isfinite(r0))):
        raise PotentialError("dftd3 returned non-positive C6 or undefined R0; check the element set")

    return D3PairData(
        c6_kj_mol_nm6=c6 * C6_HARTREE_BOHR6_IN_KJ_MOL_NM6,
        r0_nm=r0 * BOHR_IN_NM,
        coordination_numbers=np.concatenate(
            [coordination_numbers(z, xyz * BOHR_IN_NM) for z, xyz in zip(numbers_list, xyz_list)]
        ),
        atomic_numbers=numbers_all[:n].copy(),
    )


def cso_pairwise_energy_kj_mol(atomic_numbers: Sequence[int], positions_nm: np.ndarray, *, a1: float,
                               s6: float = 1.0, a2: float = 2.5, a4_bohr: float = 6.25,
                               box_vectors_nm: np.ndarray | None = None,
                               cutoff_nm: float | None = None,
                               cn_cutoff_bohr: float = D3_CN_CUTOFF_BOHR) -> np.ndarray:
    """s-dftd3's own CSO pair energies (kJ/mol), n x n, entry (i, j) = the whole i-j pair energy.

    s9 = 0 (no three-body term). Coordination numbers are those of the structure given (so for a
    cluster they include the neighbours' contributions). Periodic when ``box_vectors_nm`` is given,
    in which case (i, j) sums the pair over all lattice images within ``cutoff_nm``. A
    ``cn_cutoff_bohr`` shorter than the distance between molecules (and longer than any distance
    inside one) makes every CN that of the isolated molecule. This is the independent reference
    for the OpenMM force, not used by it.
    """
    from dftd3.interface import CSODampingParam, DispersionModel

    numbers = np.asarray(atomic_numbers, dtype=int)
    xyz = np.asarray(positions_nm, dtype=float) / BOHR_IN_NM
    if box_vectors_nm is None:
        model = DispersionModel(numbers, xyz)
        span = float(np.ptp(xyz, axis=0).max()) + 1.0
        model.set_realspace_cutoff(max(10.0 * span, 100.0), D3_CN_CUTOFF_BOHR, cn_cutoff_bohr)
    else:
        lattice = np.asarray(box_vectors_nm, dtype=float) / BOHR_IN_NM
        model = DispersionModel(numbers, xyz, lattice=lattice, periodic=np.array([True, True, True]))
        disp2 = (cutoff_nm if cutoff_nm is not None else 60.0 * BOHR_IN_NM) / BOHR_IN_NM
        model.set_realspace_cutoff(disp2, D3_CN_CUTOFF_BOHR, cn_cutoff_bohr)
    param = CSODampingParam(s6=s6, a1=a1, a2=a2, a3=0.0, a4=a4_bohr, s9=0.0)
    pair = model.get_pairwise_dispersion(param)["additive pairwise energy"]
    return 2.0 * pair * KJ_PER_MOL_PER_HARTREE
