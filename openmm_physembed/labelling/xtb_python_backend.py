"""The xtb-python backend of the labeller: GFN2-xTB single points of molecules.

xtb-python has no periodic boundaries (periodic cells go to :mod:`.tblite_backend`). The way in
is :mod:`.labeller`, which picks this backend for ``XTBSettings.backend == "xtb-python"`` (the
default) through its backend table; this module imports only the core, :mod:`.gfn2`, where the
units are converted.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import LabellingError
from .gfn2 import DEFAULT_MAX_ITERATIONS, METHOD, calculation_failure, to_bohr, to_extxyz_units


def xtb_single_point(
    numbers: Sequence[int],
    positions_angstrom: np.ndarray,
    charge: int = 0,
    uhf: int = 0,
    electronic_temperature_K: float = 300.0,
    accuracy: float = 1.0,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> tuple[float, np.ndarray]:
    """One GFN2-xTB single point of a molecule (no periodic boundaries).

    Returns
    -------
    energy_ev, forces_ev_per_angstrom
        ``E = E_h * HARTREE_IN_EV`` and ``F = -dE/dx * HARTREE_IN_EV / BOHR_IN_ANGSTROM``.

    Raises
    ------
    SCFNotConverged
        when the SCC iterations stop without convergence.
    LabellingError
        for any other xtb failure (message from xtb included).
    """
    from xtb.interface import Calculator, Param, XTBException
    from xtb.libxtb import VERBOSITY_MUTED

    numbers = np.ascontiguousarray(numbers, dtype=np.int32)
    positions_bohr = to_bohr(positions_angstrom)
    try:
        calc = Calculator(Param.GFN2xTB, numbers, positions_bohr, charge=float(charge), uhf=int(uhf))
        calc.set_verbosity(VERBOSITY_MUTED)
        calc.set_electronic_temperature(float(electronic_temperature_K))
        calc.set_accuracy(float(accuracy))
        calc.set_max_iterations(int(max_iterations))
        result = calc.singlepoint()
        energy_hartree = result.get_energy()
        gradient = result.get_gradient()
    except XTBException as exc:
        raise calculation_failure(exc, "xtb", electronic_temperature_K, scf_marker="converge") from None
    energy, forces, _ = to_extxyz_units(energy_hartree, gradient)
    return energy, forces


def single_point(
    numbers: Sequence[int],
    positions_angstrom: np.ndarray,
    charge: int = 0,
    uhf: int = 0,
    electronic_temperature_K: float = 300.0,
    accuracy: float = 1.0,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    cell_angstrom: np.ndarray | None = None,
) -> tuple[float, np.ndarray, None]:
    """:func:`xtb_single_point` in the form every backend of the labeller's table takes and returns.

    The stress is always ``None``: xtb-python has no periodic boundaries, so a cell is refused.
    """
    if cell_angstrom is not None:
        raise LabellingError(f"xtb-python's {METHOD} has no periodic boundaries; use the tblite backend")
    return (*xtb_single_point(numbers, positions_angstrom, charge, uhf, electronic_temperature_K, accuracy,
                              max_iterations), None)
