"""The GFN2-xTB core shared by the labeller and its backends: settings, results, spin, units.

The way in is :mod:`.labeller` (:func:`~.labeller.label_structures`,
:func:`~.labeller.compute_e0s`); it owns the table of backends. Each backend (:mod:`.xtb_python_backend`
for molecules, :mod:`.tblite_backend` for periodic cells with a stress) imports only this module, so
the labelling modules import one way: core <- backends <- labeller.

Positions (and cells) go in as Angstrom and are converted to bohr by :func:`to_bohr`; energies
(hartree), gradients (hartree/bohr) and strain derivatives (hartree) come back through
:func:`to_extxyz_units` as eV, eV/Angstrom and eV/Angstrom^3 (the extxyz convention mace-torch
reads), with the constants of :mod:`openmm_physembed.units`. No other module converts these.

Spin: xtb takes the number of unpaired electrons ``uhf = multiplicity - 1``. Free atoms (the
isolated-atom energies E0) use their Hund's-rule ground state (H 1, C 2, N 3, O 2, F 1, ...;
see :func:`ground_state_unpaired_electrons`). GFN2-xTB is not spin polarised, so for C, N and O
this is 2-4 mEh above the lowest-energy occupation xtb would find with ``uhf`` 0/1; the choice
only shifts each element's baseline by a constant, and the same table is used everywhere.

A backend raises :class:`SCFNotConverged` (through :func:`calculation_failure`) when the SCF
does not converge; the labeller then retries at the higher electronic temperatures of
:attr:`XTBSettings.retry_temperatures_K` (Fermi smearing makes near-degenerate, stretched
geometries converge) and records which temperature produced the label in a :class:`SinglePoint`.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Iterable, Sequence

import numpy as np

from ..errors import LabellingError
from ..units import (
    BOHR_IN_ANGSTROM,
    BOLTZMANN_KJ_PER_MOL_K,
    HARTREE_IN_EV,
    KJ_PER_MOL_PER_HARTREE,
)

METHOD = "GFN2-xTB"
# The backend of molecules, left out of the settings record (see XTBSettings.record); the labeller
# maps each backend name to its module.
DEFAULT_BACKEND = "xtb-python"
MAX_ATOMIC_NUMBER = 86  # GFN2-xTB is parametrised for H-Rn
DEFAULT_MAX_ITERATIONS = 250  # xtb's own default
DEFAULT_RETRY_TEMPERATURES_K = (1000.0, 3000.0)
EV_PER_ANGSTROM_PER_HARTREE_PER_BOHR = HARTREE_IN_EV / BOHR_IN_ANGSTROM
BOLTZMANN_HARTREE_PER_K = BOLTZMANN_KJ_PER_MOL_K / KJ_PER_MOL_PER_HARTREE  # tblite takes kT in hartree

# Unpaired electrons of each free atom in its Hund's-rule ground state, main groups by the
# occupancy of the open s/p shell: s1 -> 1, s2 -> 0, p1 -> 1, p2 -> 2, p3 -> 3, p4 -> 2,
# p5 -> 1, p6 -> 0. Transition metals are not in the table (see the function).
_P_BLOCK_UNPAIRED = (1, 2, 3, 2, 1, 0)
_MAIN_GROUP_ROWS = (  # (first s-block Z, first p-block Z) of each period from 2 on
    (3, 5), (11, 13), (19, 31), (37, 49), (55, 81),
)


class SCFNotConverged(LabellingError):
    """The xtb self-consistent charge iterations did not converge."""


@dataclass(frozen=True)
class XTBSettings:
    """How every single point of one labelling run is computed (E0s included)."""

    electronic_temperature_K: float = 300.0
    accuracy: float = 1.0
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    retry_temperatures_K: tuple[float, ...] = DEFAULT_RETRY_TEMPERATURES_K
    method: str = METHOD
    backend: str = DEFAULT_BACKEND  # a name in labeller.BACKENDS: "tblite" for periodic structures (and E0s)

    def __post_init__(self) -> None:
        if self.electronic_temperature_K <= 0:
            raise LabellingError(f"electronic temperature must be positive, got {self.electronic_temperature_K} K")
        if not 1e-4 <= self.accuracy <= 1e3:
            raise LabellingError(f"xtb accuracy must lie in [1e-4, 1000], got {self.accuracy}")
        if self.max_iterations < 1:
            raise LabellingError(f"max_iterations must be >= 1, got {self.max_iterations}")
        object.__setattr__(self, "retry_temperatures_K", tuple(float(t) for t in self.retry_temperatures_K))

    @property
    def temperatures_K(self) -> tuple[float, ...]:
        """The first attempt and the retries, in order."""
        return (float(self.electronic_temperature_K),) + self.retry_temperatures_K

    def record(self) -> dict:
        """The settings as hashed into cache keys and written to the JSON records.

        The backend is left out when it is the default: caches and files written before the
        choice existed keep their keys and bytes, so a rerun neither recomputes nor rewrites them.
        """
        record = asdict(self)
        if self.backend == DEFAULT_BACKEND:
            del record["backend"]
        return record


@dataclass(frozen=True)
class SinglePoint:
    """One converged GFN2-xTB label in the extxyz units."""

    energy_ev: float
    forces_ev_per_angstrom: np.ndarray  # (n_atoms, 3)
    electronic_temperature_K: float  # the temperature that converged
    attempts: int
    failures: tuple[str, ...] = ()  # messages of the attempts that did not converge
    stress_ev_per_angstrom3: np.ndarray | None = None  # (3, 3), (1/V) dE/dstrain; periodic only


def ground_state_unpaired_electrons(atomic_number: int) -> int:
    """Unpaired electrons of a free atom (Hund's rule) for main-group elements.

    Transition metals and lanthanides fall back to the lowest spin allowed by the electron count
    (0 or 1): their atomic ground states are not what a tight-binding atom reproduces anyway.
    """
    z = int(atomic_number)
    if z in (1,):
        return 1
    if z in (2, 10, 18, 36, 54, 86):
        return 0
    for s_start, p_start in _MAIN_GROUP_ROWS:
        if z in (s_start, s_start + 1):
            return 1 if z == s_start else 0
        if p_start <= z < p_start + 6:
            return _P_BLOCK_UNPAIRED[z - p_start]
    return z % 2


def electron_count(numbers: Sequence[int], charge: int) -> int:
    return int(np.sum(numbers)) - int(charge)


def check_spin(numbers: Sequence[int], charge: int, multiplicity: int, what: str) -> int:
    """Validate charge/multiplicity against the electron count; return ``uhf``."""
    if multiplicity < 1:
        raise LabellingError(f"{what}: multiplicity must be >= 1, got {multiplicity}")
    n_electrons = electron_count(numbers, charge)
    uhf = int(multiplicity) - 1
    if n_electrons < 0 or uhf > n_electrons or (n_electrons - uhf) % 2:
        raise LabellingError(
            f"{what}: charge {charge} and multiplicity {multiplicity} are impossible with "
            f"{n_electrons} electrons; pass the right --charge/--multiplicity (or info keys "
            "total_charge/multiplicity)"
        )
    return uhf


def check_elements(numbers: Iterable[int], what: str) -> None:
    bad = sorted({int(z) for z in numbers if not 1 <= int(z) <= MAX_ATOMIC_NUMBER})
    if bad:
        raise LabellingError(f"{what}: {METHOD} has no parameters for atomic numbers {bad} (H-Rn only)")


def to_bohr(angstrom: np.ndarray) -> np.ndarray:
    """Positions or lattice vectors (Angstrom) as the C-contiguous float64 bohr array xTB takes."""
    return np.ascontiguousarray(angstrom, dtype=np.float64) / BOHR_IN_ANGSTROM


def to_extxyz_units(
    energy_hartree: float,
    gradient_hartree_per_bohr: np.ndarray,
    strain_derivative_hartree: np.ndarray | None = None,
    volume_angstrom3: float | None = None,
) -> tuple[float, np.ndarray, np.ndarray | None]:
    """Energy, forces and stress in eV, eV/Angstrom and eV/Angstrom^3 from atomic units.

    ``F = -dE/dx`` and ``sigma = (1/V) dE/d(strain)``: ASE's stress convention, which is what
    mace-torch compares ``REF_stress`` with (its model stress is the strain derivative of the
    energy over the volume), so a compressed box has negative diagonal stress and positive
    pressure ``-trace(sigma)/3``.

    Raises
    ------
    LabellingError
        when a value is not finite (a failed calculation that did not say so).
    """
    gradient = np.asarray(gradient_hartree_per_bohr, dtype=np.float64)
    if not np.isfinite(energy_hartree) or not np.all(np.isfinite(gradient)):
        raise LabellingError("xTB returned a non-finite energy or gradient")
    stress = None
    if strain_derivative_hartree is not None:
        strain_derivative = np.asarray(strain_derivative_hartree, dtype=np.float64).reshape(3, 3)
        if not np.all(np.isfinite(strain_derivative)):
            raise LabellingError("xTB returned a non-finite virial")
        stress = strain_derivative * HARTREE_IN_EV / float(volume_angstrom3)
    return float(energy_hartree) * HARTREE_IN_EV, -gradient * EV_PER_ANGSTROM_PER_HARTREE_PER_BOHR, stress


def calculation_failure(exc: Exception, library: str, electronic_temperature_K: float, scf_marker: str) -> Exception:
    """The error to raise for a failed single point: :class:`SCFNotConverged` (retried) when the
    library's message contains ``scf_marker``, else :class:`LabellingError`; the message on one line."""
    message = " | ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    if scf_marker in message:
        return SCFNotConverged(f"SCF not converged at {electronic_temperature_K:g} K: {message}")
    return LabellingError(f"{library} failed: {message}")


def retry_at_higher_temperatures(
    compute, numbers: Sequence[int], positions_angstrom: np.ndarray, charge: int, uhf: int,
    settings: XTBSettings, cell_angstrom: np.ndarray | None = None,
) -> SinglePoint:
    """``compute`` (a backend's single point) at the settings' temperature, then at each retry temperature.

    ``compute(numbers, positions_angstrom, charge, uhf, electronic_temperature_K, accuracy,
    max_iterations, cell_angstrom)`` returns ``(energy_ev, forces_ev_per_angstrom, stress or None)``.

    Raises the last :class:`SCFNotConverged` (its message lists every attempt) when none
    converges; other xTB errors are not retried.
    """
    failures: list[str] = []
    for attempt, temperature in enumerate(settings.temperatures_K, start=1):
        try:
            energy, forces, stress = compute(numbers, positions_angstrom, charge, uhf, temperature,
                                             settings.accuracy, settings.max_iterations, cell_angstrom)
        except SCFNotConverged as exc:
            failures.append(str(exc))
            continue
        return SinglePoint(energy, forces, temperature, attempt, tuple(failures), stress)
    raise SCFNotConverged("; ".join(failures))


def limit_threads_in_worker(threads: int = 1) -> None:
    """Give xtb's (and tblite's) OpenMP one thread per worker process (parallelism comes from the executor).

    Only acts in a child process, before xtb's first OpenMP region: the parent's environment is
    the user's business.
    """
    import multiprocessing

    if multiprocessing.parent_process() is not None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
        os.environ.setdefault("OMP_STACKSIZE", "1G")  # xtb's recommendation for large molecules
