"""Plain numpy CSO energy: the independent reference the OpenMM forces are tested against."""

from __future__ import annotations

import numpy as np

from ...units import BOHR_IN_NM
from .parameters import CSO_A2, CSO_A4_BOHR, CSOParameters


def cso_energy_reference(parameters: CSOParameters, positions_nm, *, a1: float, alpha: float = 1.0,
                         s6: float = 1.0, a2: float = CSO_A2, a4_bohr: float = CSO_A4_BOHR,
                         box_vectors_nm=None, cutoff_nm: float | None = None) -> float:
    """Plain numpy ``alpha * E_CSO`` over intermolecular pairs (kJ/mol), no long-range correction.

    Periodic (minimum image, orthorhombic or cutoff below half the box) when ``box_vectors_nm`` is
    given, then only pairs within ``cutoff_nm``. O(N^2) memory: for tests and small systems.
    """
    xyz = np.asarray(positions_nm, dtype=float)
    delta = xyz[:, None, :] - xyz[None, :, :]
    if box_vectors_nm is not None:
        box = np.asarray(box_vectors_nm, dtype=float)
        delta -= np.round(delta @ np.linalg.inv(box)) @ box
    r = np.linalg.norm(delta, axis=-1)
    c6, r0 = parameters.atom_c6(), parameters.atom_r0()
    a4_nm = a4_bohr * BOHR_IN_NM
    with np.errstate(over="ignore"):
        pair = -(s6 + a1 / (1.0 + np.exp((r - a2 * r0) / BOHR_IN_NM))) * c6 / (r**6 + a4_nm**6)
    mask = parameters.molecule_index[:, None] != parameters.molecule_index[None, :]
    if box_vectors_nm is not None and cutoff_nm is not None:
        mask &= r <= cutoff_nm
    return float(alpha * 0.5 * pair[mask].sum())

