"""The tblite backend of the labeller: periodic GFN2-xTB single points with energy, forces and stress.

xtb-python has no periodic boundaries; tblite (the maintained GFN2-xTB library, PyPI
``tblite``) does, with 3D Ewald sums for the electrostatics and a strain derivative of the
energy. The way in is :mod:`.labeller`, which picks this backend for ``XTBSettings.backend ==
"tblite"`` through its backend table; this module imports only the core, :mod:`.gfn2`, where the
units are converted.

tblite's result ``"virial"`` is the strain derivative ``dE/d(strain)`` in hartree (not the
mechanical virial ``-dE/d(strain)``; tblite's own ASE calculator divides it by the volume to get
ASE's stress, and the tests check it against finite differences of the energy), so the stress is
``virial / V`` with no sign change.

Cost, measured with tblite 0.8.0 on one core: 12-13 s of CPU for 50 waters (150 atoms) in an
11.4 A box at 1 g/cm^3; 0.01-0.1 s for a few atoms. The Ewald sums dominate, and a small cell
costs more per atom than a large one (more periodic images inside tblite's fixed cutoffs).

Only cells periodic in all three directions are accepted: tblite's Ewald sums are 3D and would
silently treat a slab (pbc ``T T F``) as a 3D crystal.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import LabellingError
from .gfn2 import (
    BOLTZMANN_HARTREE_PER_K,
    DEFAULT_MAX_ITERATIONS,
    METHOD,
    calculation_failure,
    to_bohr,
    to_extxyz_units,
)

# No two nuclei of a structure worth labelling are this close (the shortest bond, H2, is 0.74 A);
# a periodic image this close means the cell is too small for its contents, most often a cell
# written in nm where Angstrom was meant.
MIN_IMAGE_DISTANCE_ANGSTROM = 0.5
# Below this volume a cell is degenerate (coplanar lattice vectors): no Ewald sum exists.
MIN_CELL_VOLUME_ANGSTROM3 = 1e-6


def periodic_cell(atoms, what: str) -> np.ndarray:
    """The cell (rows are lattice vectors, Angstrom) of a structure to label periodically.

    Raises
    ------
    LabellingError
        when the structure has no cell or no periodic boundaries, is periodic in only some
        directions, has a degenerate cell, or a cell so small that an atom lies within
        ``MIN_IMAGE_DISTANCE_ANGSTROM`` of a periodic image of an atom (itself included).
    """
    pbc = np.asarray(atoms.pbc, dtype=bool)
    cell = np.asarray(atoms.cell[:], dtype=np.float64)
    if not pbc.any() or not np.any(cell):
        raise LabellingError(f"{what} has no periodic cell; periodic labelling needs extended XYZ frames with "
                             'Lattice="..." and pbc="T T T" (label molecules without --periodic)')
    if not pbc.all():
        raise LabellingError(f"{what} is periodic in {pbc.sum()} of 3 directions (pbc {pbc.tolist()}); tblite's "
                             "Ewald sums are 3D: set pbc T T T with a vacuum gap, or label without --periodic")
    if not np.all(np.isfinite(cell)) or abs(np.linalg.det(cell)) < MIN_CELL_VOLUME_ANGSTROM3:
        raise LabellingError(f"{what} has a degenerate cell (lattice vectors {cell.tolist()} A span no volume)")
    _check_image_distances(atoms, cell, what)
    return cell


def _check_image_distances(atoms, cell: np.ndarray, what: str) -> None:
    from ase.neighborlist import neighbor_list

    i, j, d, shifts = neighbor_list("ijdS", atoms, MIN_IMAGE_DISTANCE_ANGSTROM, self_interaction=False)
    through_boundary = np.any(shifts != 0, axis=1)
    if through_boundary.any():
        k = np.flatnonzero(through_boundary)[np.argmin(d[through_boundary])]
        widths = atoms.cell.volume / np.linalg.norm(np.cross(cell[[1, 2, 0]], cell[[2, 0, 1]]), axis=1)
        raise LabellingError(
            f"{what}: cell too small: atom {i[k]} is {d[k]:.2f} A from a periodic image of atom {j[k]} "
            f"(cell widths {', '.join(f'{w:.2f}' for w in widths)} A for {len(atoms)} atoms); the cell must be in "
            "Angstrom, not nm, and hold its atoms without overlap")


def tblite_single_point(
    numbers: Sequence[int],
    positions_angstrom: np.ndarray,
    charge: int = 0,
    uhf: int = 0,
    electronic_temperature_K: float = 300.0,
    accuracy: float = 1.0,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    cell_angstrom: np.ndarray | None = None,
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """One GFN2-xTB single point with tblite, periodic in 3D when a cell is given.

    Parameters
    ----------
    cell_angstrom
        Lattice vectors as rows (Angstrom), or ``None`` for a molecule (the E0s).

    Returns
    -------
    energy_ev, forces_ev_per_angstrom, stress_ev_per_angstrom3
        The stress is ``(1/V) dE/d(strain)`` as a (3, 3) array (ASE's and mace-torch's sign:
        negative diagonal under compression), ``None`` without a cell.

    Raises
    ------
    SCFNotConverged
        when the SCC iterations stop without convergence.
    LabellingError
        for any other tblite failure (message from tblite included).
    """
    from tblite.interface import Calculator

    numbers = np.ascontiguousarray(numbers, dtype=np.int32)
    lattice = None if cell_angstrom is None else to_bohr(np.reshape(cell_angstrom, (3, 3)))
    periodic = None if cell_angstrom is None else np.ones(3, dtype=bool)
    try:
        calc = Calculator(METHOD, numbers, to_bohr(positions_angstrom), float(charge), int(uhf), lattice, periodic)
        calc.set("verbosity", 0)
        calc.set("temperature", float(electronic_temperature_K) * BOLTZMANN_HARTREE_PER_K)
        calc.set("accuracy", float(accuracy))
        calc.set("max-iter", int(max_iterations))
        result = calc.singlepoint()
        energy_hartree = result.get("energy")
        gradient = result.get("gradient")
        virial = result.get("virial") if cell_angstrom is not None else None
    except (RuntimeError, ValueError) as exc:  # TBLiteRuntimeError / TBLiteValueError
        raise calculation_failure(exc, "tblite", electronic_temperature_K, scf_marker="not converged") from None
    volume = None if cell_angstrom is None else abs(float(np.linalg.det(np.reshape(cell_angstrom, (3, 3)))))
    return to_extxyz_units(energy_hartree, gradient, virial, volume)
