"""The labeller, the way in to GFN2-xTB labels: resumable, parallel, never half-written.

:func:`label_structures` labels a set of structures and :func:`compute_e0s` gives the
isolated-atom energies; nothing else in the package calls a backend directly. This module owns
:data:`BACKENDS`, the table from backend name to single-point function: molecules go to
xtb-python (:mod:`.xtb_python_backend`), periodic structures (``periodic=True``, every frame with
a cell and pbc ``T T T``) to tblite, which adds the stress (:mod:`.tblite_backend`). Both backends
import only the shared core, :mod:`.gfn2` (settings, results, spin, units).

Files written for ``out_path = DIR/NAME.extxyz``:

- ``DIR/NAME.extxyz``: every structure that converged, in input order, with every input
  ``info``/``arrays`` key kept plus ``REF_energy`` (eV, info), ``REF_forces`` (eV/Angstrom,
  arrays), ``total_charge``, ``multiplicity``, ``xtb_method``, ``xtb_electronic_temperature_K``
  (the temperature that converged) and ``source_index`` (position in the input). Periodic
  labels add ``REF_stress`` (eV/Angstrom^3, info, Voigt order xx yy zz yz xz xy as ASE's
  ``get_stress()``; ``(1/V) dE/d(strain)``, the sign mace-torch reads, negative under
  compression) and ``xtb_backend="tblite"``.
- ``DIR/NAME.e0s.json``: isolated-atom energies (eV) for every element present, same settings
  (same backend: free atoms without periodic boundaries).
- ``DIR/NAME.isolated_atoms.extxyz``: the same E0s as one-atom configurations with
  ``config_type="IsolatedAtom"`` and ``REF_energy`` (what mace-torch reads when E0s come
  from the data); kept out of the training file so that a train/validation split never moves
  them.
- ``DIR/NAME.skipped.json``: structures whose SCF did not converge at any temperature, with
  the reason; always written (an empty list means none).

Per-structure results are cached in ``work_dir`` (default ``DIR/.NAME.labelling``) under a
hash of the structure and the settings, as each finishes: a rerun of an interrupted run
computes only what is missing. Output files are written once, at the end, atomically.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from concurrent.futures import Executor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import LabellingError
from ..io import atomic_path, read_extxyz, read_json, write_extxyz, write_json
from . import tblite_backend, xtb_python_backend
from .gfn2 import (
    DEFAULT_BACKEND,
    DEFAULT_MAX_ITERATIONS,
    DEFAULT_RETRY_TEMPERATURES_K,
    METHOD,
    SCFNotConverged,
    SinglePoint,
    XTBSettings,
    check_elements,
    check_spin,
    ground_state_unpaired_electrons,
    limit_threads_in_worker,
    retry_at_higher_temperatures,
)

ENERGY_KEY = "REF_energy"
FORCES_KEY = "REF_forces"
STRESS_KEY = "REF_stress"
CACHE_VERSION = 1
PERIODIC_BACKEND = "tblite"

# Backend name (XTBSettings.backend) -> f(numbers, positions_angstrom, charge, uhf,
# electronic_temperature_K, accuracy, max_iterations, cell_angstrom) returning
# (energy_ev, forces_ev_per_angstrom, stress_ev_per_angstrom3 or None). A new backend is one module
# importing .gfn2 and one line here.
BACKENDS = {
    DEFAULT_BACKEND: xtb_python_backend.single_point,
    PERIODIC_BACKEND: tblite_backend.tblite_single_point,
}


@dataclass(frozen=True)
class SkippedStructure:
    index: int  # position in the input
    reason: str  # xtb's (or tblite's) messages, one per attempt
    kind: str  # "scf_not_converged" (every temperature tried) or "xtb_error" (not retried)


@dataclass(frozen=True)
class LabellingResult:
    """What :func:`label_structures` wrote and what it could not label."""

    out_path: Path
    e0s_path: Path
    isolated_atoms_path: Path
    skipped_path: Path
    n_input: int
    n_labelled: int
    e0s_ev: dict[int, float]
    skipped: tuple[SkippedStructure, ...] = ()
    retried: tuple[int, ...] = ()  # input indices labelled at a raised electronic temperature
    n_computed: int = 0  # single points run in this call (the rest came from the cache)
    settings: dict = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def atoms(self) -> list:
        return read_extxyz(self.out_path)


@dataclass(frozen=True)
class _Item:
    index: int
    key: str
    numbers: np.ndarray
    positions_angstrom: np.ndarray
    charge: int
    uhf: int
    cell_angstrom: np.ndarray | None = None  # rows are lattice vectors; periodic labels only


def label_structures(
    structures: str | Path | Sequence,
    out_path: str | Path,
    charge: int | None = None,
    multiplicity: int | None = None,
    electronic_temperature_K: float = 300.0,
    accuracy: float = 1.0,
    executor: Executor | None = None,
    work_dir: str | Path | None = None,
    retry_temperatures_K: Sequence[float] = DEFAULT_RETRY_TEMPERATURES_K,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    chunk_size: int | None = None,
    progress: bool = True,
    periodic: bool = False,
) -> LabellingResult:
    """GFN2-xTB energies and forces (and stresses) for every structure, as mace-torch training data.

    Parameters
    ----------
    structures
        An extended-XYZ file or a list of ``ase.Atoms`` (Angstrom): molecules (no periodic
        boundaries) unless ``periodic``.
    out_path
        Output extxyz; the E0s, isolated-atom and skipped files are written beside it (module
        docstring).
    charge, multiplicity
        Total charge (e) and spin multiplicity. ``None`` (default) takes each structure's
        ``info["total_charge"]`` / ``info["multiplicity"]`` (written by the reference MD), else
        0 and 1; a value given here overrides the info keys for every structure.
    electronic_temperature_K, accuracy, max_iterations
        xtb settings (xtb defaults 300 K, 1.0, 250), shared by the labels and the E0s.
    retry_temperatures_K
        Electronic temperatures tried, in order, when the SCF does not converge; a structure
        that fails at all of them is skipped and listed in ``NAME.skipped.json``.
    executor
        Any ``concurrent.futures.Executor``; default: a local process pool
        (:func:`~openmm_physembed.executors.make_executor`).
    work_dir
        Per-structure cache; default ``DIR/.NAME.labelling``.
    chunk_size
        Structures per submitted job (default: about four jobs per CPU core, at most 25).
    periodic
        Label periodic structures with tblite: every structure needs a cell and pbc in all three
        directions, and gets ``REF_stress`` besides energy and forces; the E0s are tblite's free
        atoms at the same settings. Default: molecules with xtb-python.
    """
    out_path = Path(out_path)
    if out_path.suffix not in (".xyz", ".extxyz"):
        raise LabellingError(f"output {out_path} must end in .extxyz or .xyz (mace-torch reads it with ASE)")
    settings = XTBSettings(electronic_temperature_K, accuracy, max_iterations, tuple(retry_temperatures_K),
                           backend=PERIODIC_BACKEND if periodic else DEFAULT_BACKEND)
    atoms_list = _read_structures(structures)
    items = [_make_item(i, atoms, charge, multiplicity, settings) for i, atoms in enumerate(atoms_list)]
    work_dir = Path(work_dir) if work_dir is not None else out_path.parent / f".{out_path.stem}.labelling"
    cache_dir = work_dir / "items"
    cache_dir.mkdir(parents=True, exist_ok=True)

    cached = {item.key for item in items if (cache_dir / f"{item.key}.npz").is_file()}
    todo = [item for item in items if item.key not in cached]
    # Duplicated structures share a cache key: compute each once.
    todo = list({item.key: item for item in todo}.values())
    n_computed = len(todo)
    if todo:
        _run_items(todo, settings, cache_dir, executor, chunk_size, progress)

    elements = sorted({int(z) for item in items for z in item.numbers})
    e0s = _cached_e0s(elements, settings, work_dir)

    labelled, skipped, retried = [], [], []
    for item, atoms in zip(items, atoms_list):
        record = _load_item(cache_dir / f"{item.key}.npz")
        if record["skipped"]:
            skipped.append(SkippedStructure(item.index, record["reason"], record["kind"]))
            continue
        if record["electronic_temperature_K"] != settings.electronic_temperature_K:
            retried.append(item.index)
        labelled.append(_labelled_atoms(atoms, item, record, settings))

    stem = out_path.with_suffix("")
    e0s_path = Path(f"{stem}.e0s.json")
    isolated_path = Path(f"{stem}.isolated_atoms.extxyz")
    skipped_path = Path(f"{stem}.skipped.json")
    settings_record = {**settings.record(), "charge": charge, "multiplicity": multiplicity}
    write_json(skipped_path, {
        "n_input": len(items), "n_skipped": len(skipped), "settings": settings_record,
        "skipped": [asdict(s) for s in skipped],
    })
    write_json(e0s_path, {
        "e0s_ev": {str(z): e for z, e in e0s.items()}, "method": METHOD, "settings": settings.record(),
        "spin": "Hund's-rule ground state of each free atom (uhf = unpaired electrons)",
    })
    write_extxyz(isolated_path, _isolated_atoms(e0s, settings))
    if not labelled:
        raise LabellingError(f"none of the {len(items)} structures converged; reasons in {skipped_path}")
    write_extxyz(out_path, labelled)
    return LabellingResult(out_path, e0s_path, isolated_path, skipped_path, len(items), len(labelled), e0s,
                           tuple(skipped), tuple(retried), n_computed, settings_record)


def read_e0s(path: str | Path) -> dict[int, float]:
    """E0s (eV by atomic number) from a ``NAME.e0s.json`` written by :func:`label_structures`."""
    data = read_json(path)
    table = data.get("e0s_ev", data)
    return {int(z): float(e) for z, e in table.items()}


# -- backends, retries and E0s ---------------------------------------------------------------

def backend_single_point(backend: str):
    """The single-point function of a backend name (:data:`BACKENDS`).

    Raises
    ------
    LabellingError
        for a name not in the table.
    """
    try:
        return BACKENDS[backend]
    except KeyError:
        raise LabellingError(f"unknown xTB backend {backend!r}; choose one of {', '.join(BACKENDS)}") from None


def single_point_with_retries(
    numbers: Sequence[int], positions_angstrom: np.ndarray, charge: int, uhf: int, settings: XTBSettings,
    cell_angstrom: np.ndarray | None = None,
) -> SinglePoint:
    """One structure's label with the settings' backend (:func:`~.gfn2.retry_at_higher_temperatures`).

    ``cell_angstrom`` (rows are lattice vectors) makes the structure periodic in all three
    directions (tblite backend only) and adds the stress to the result.
    """
    return retry_at_higher_temperatures(backend_single_point(settings.backend), numbers, positions_angstrom,
                                        charge, uhf, settings, cell_angstrom)


def isolated_atom_energy_ev(atomic_number: int, settings: XTBSettings = XTBSettings()) -> SinglePoint:
    """Energy of one free atom in its ground-state spin (:func:`~.gfn2.ground_state_unpaired_electrons`).

    Always without periodic boundaries, with the settings' backend: the E0s of periodic labels
    come from tblite at the same electronic temperature.
    """
    z = int(atomic_number)
    check_elements([z], f"isolated atom Z={z}")
    return retry_at_higher_temperatures(backend_single_point(settings.backend), [z], np.zeros((1, 3)), 0,
                                        ground_state_unpaired_electrons(z), settings)


def compute_e0s(
    elements: Iterable[int | str],
    electronic_temperature_K: float = 300.0,
    accuracy: float = 1.0,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
    retry_temperatures_K: Sequence[float] = DEFAULT_RETRY_TEMPERATURES_K,
    settings: XTBSettings | None = None,
    backend: str = DEFAULT_BACKEND,
) -> dict[int, float]:
    """Isolated-atom GFN2-xTB energies (eV) keyed by atomic number, for mace-torch's ``--E0s``.

    Parameters
    ----------
    elements
        Atomic numbers or symbols.
    backend
        ``"xtb-python"`` or ``"tblite"`` (what periodic labels use).
    settings
        Overrides the individual keyword arguments (used by :func:`label_structures` so the
        E0s are computed exactly like the labels).
    """
    settings = settings or XTBSettings(electronic_temperature_K, accuracy, max_iterations,
                                       tuple(retry_temperatures_K), backend=backend)
    backend_single_point(settings.backend)  # an unknown name fails before any atom is computed
    numbers = sorted({_atomic_number(e) for e in elements})
    e0s: dict[int, float] = {}
    for z in numbers:
        try:
            e0s[z] = isolated_atom_energy_ev(z, settings).energy_ev
        except SCFNotConverged as exc:
            raise LabellingError(f"isolated-atom energy of Z={z} did not converge ({exc}); "
                                 "raise the electronic temperature or the retry temperatures") from None
    return e0s


def _atomic_number(element: int | str) -> int:
    if isinstance(element, (int, np.integer)):
        return int(element)
    from ase.data import atomic_numbers

    try:
        return atomic_numbers[str(element)]
    except KeyError:
        raise LabellingError(f"unknown element {element!r}") from None


# -- work items -------------------------------------------------------------------------------

def _read_structures(structures) -> list:
    if isinstance(structures, (str, Path)):
        path = Path(structures)
        if not path.is_file():
            raise LabellingError(f"structure file {path} does not exist")
        try:
            atoms_list = read_extxyz(path)
        except Exception as exc:  # noqa: BLE001 - ASE raises many types for a bad file
            raise LabellingError(f"cannot read {path} as extended XYZ: {exc}") from None
    else:
        atoms_list = [atoms.copy() for atoms in structures]
    if not atoms_list:
        raise LabellingError("no structures to label")
    return atoms_list


def _make_item(index: int, atoms, charge, multiplicity, settings: XTBSettings) -> _Item:
    what = f"structure {index} ({atoms.get_chemical_formula()})"
    cell = None
    if settings.backend == PERIODIC_BACKEND:
        cell = tblite_backend.periodic_cell(atoms, what)
    elif np.any(atoms.pbc):
        raise LabellingError(f"{what} is periodic; xtb-python's {METHOD} handles molecules only "
                             "(label periodic structures with --periodic / periodic=True, or molecules with "
                             "pbc=False)")
    numbers = np.asarray(atoms.numbers, dtype=np.int32)
    check_elements(numbers, what)
    q = int(charge if charge is not None else atoms.info.get("total_charge", 0))
    mult = int(multiplicity if multiplicity is not None else atoms.info.get("multiplicity", 1))
    uhf = check_spin(numbers, q, mult, what)
    positions = np.asarray(atoms.positions, dtype=np.float64)
    if not np.all(np.isfinite(positions)):
        raise LabellingError(f"{what} has non-finite coordinates")
    digest = hashlib.sha256()
    digest.update(json.dumps({"v": CACHE_VERSION, "q": q, "uhf": uhf, **settings.record()},
                             sort_keys=True).encode())
    digest.update(numbers.tobytes())
    digest.update(np.ascontiguousarray(positions).tobytes())
    if cell is not None:
        digest.update(np.ascontiguousarray(cell).tobytes())
    return _Item(index, digest.hexdigest()[:32], numbers, positions, q, uhf, cell)


def _default_chunk_size(n_items: int) -> int:
    return max(1, min(25, math.ceil(n_items / (4 * (os.cpu_count() or 1)))))


def _run_items(items: list[_Item], settings: XTBSettings, cache_dir: Path, executor: Executor | None,
               chunk_size: int | None, progress: bool) -> None:
    from tqdm.auto import tqdm

    size = chunk_size or _default_chunk_size(len(items))
    chunks = [items[i:i + size] for i in range(0, len(items), size)]
    with tqdm(total=len(items), desc=f"{METHOD} labels", unit="structure", disable=not progress) as bar:
        if executor is None:
            from ..executors import SerialExecutor, make_executor

            if len(chunks) == 1:  # not worth starting a process pool
                _submit_and_collect(SerialExecutor(), chunks, settings, cache_dir, bar)
                return
            with make_executor(max_workers=min(len(chunks), os.cpu_count() or 1), gpu=False) as pool:
                _submit_and_collect(pool, chunks, settings, cache_dir, bar)
        else:
            _submit_and_collect(executor, chunks, settings, cache_dir, bar)


def _submit_and_collect(executor: Executor, chunks, settings, cache_dir: Path, bar) -> None:
    futures = [executor.submit(_label_chunk, chunk, settings, str(cache_dir)) for chunk in chunks]
    for future in as_completed(futures):
        # A worker on another machine may not share cache_dir: store what it returns here too.
        for key, record in future.result():
            path = cache_dir / f"{key}.npz"
            if not path.is_file():
                _save_item(path, record)
            bar.update(1)


def _label_chunk(chunk: list[_Item], settings: XTBSettings, cache_dir: str) -> list[tuple[str, dict]]:
    """Worker job: label each item and cache it as soon as it is done."""
    limit_threads_in_worker(1)
    results = []
    for item in chunk:
        record = _label_item(item, settings)
        path = Path(cache_dir) / f"{item.key}.npz"
        try:
            _save_item(path, record)
        except OSError:  # cache not reachable from this worker; the caller stores it
            pass
        results.append((item.key, record))
    return results


def _label_item(item: _Item, settings: XTBSettings) -> dict[str, Any]:
    try:
        point = single_point_with_retries(item.numbers, item.positions_angstrom, item.charge, item.uhf, settings,
                                          item.cell_angstrom)
    except SCFNotConverged as exc:
        return {"skipped": True, "reason": str(exc), "kind": "scf_not_converged"}
    except LabellingError as exc:  # any other xtb failure on this geometry: record, do not die
        return {"skipped": True, "reason": str(exc), "kind": "xtb_error"}
    record = {"skipped": False, "energy_ev": point.energy_ev, "forces_ev_per_angstrom": point.forces_ev_per_angstrom,
              "electronic_temperature_K": point.electronic_temperature_K, "attempts": point.attempts}
    if point.stress_ev_per_angstrom3 is not None:
        record["stress_ev_per_angstrom3"] = point.stress_ev_per_angstrom3
    return record


def _save_item(path: Path, record: dict[str, Any]) -> None:
    arrays = {"skipped": np.bool_(record["skipped"]), "reason": np.str_(record.get("reason", "")),
              "kind": np.str_(record.get("kind", ""))}
    if not record["skipped"]:
        arrays.update(energy_ev=np.float64(record["energy_ev"]),
                      forces_ev_per_angstrom=np.asarray(record["forces_ev_per_angstrom"], dtype=np.float64),
                      electronic_temperature_K=np.float64(record["electronic_temperature_K"]),
                      attempts=np.int64(record["attempts"]))
        if record.get("stress_ev_per_angstrom3") is not None:
            arrays["stress_ev_per_angstrom3"] = np.asarray(record["stress_ev_per_angstrom3"], dtype=np.float64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def _load_item(path: Path) -> dict[str, Any]:
    with np.load(path) as data:
        record = {"skipped": bool(data["skipped"]), "reason": str(data["reason"]), "kind": str(data["kind"])}
        if not record["skipped"]:
            record.update(energy_ev=float(data["energy_ev"]),
                          forces_ev_per_angstrom=np.array(data["forces_ev_per_angstrom"]),
                          electronic_temperature_K=float(data["electronic_temperature_K"]),
                          attempts=int(data["attempts"]))
            if "stress_ev_per_angstrom3" in data:
                record["stress_ev_per_angstrom3"] = np.array(data["stress_ev_per_angstrom3"])
    return record


# -- outputs ----------------------------------------------------------------------------------

def _labelled_atoms(atoms, item: _Item, record: dict, settings: XTBSettings):
    labelled = atoms.copy()
    labelled.calc = None
    labelled.info.update({
        ENERGY_KEY: record["energy_ev"],
        "total_charge": item.charge,
        "multiplicity": item.uhf + 1,
        "xtb_method": METHOD,
        "xtb_electronic_temperature_K": record["electronic_temperature_K"],
        "xtb_accuracy": settings.accuracy,
        "source_index": item.index,
    })
    labelled.arrays[FORCES_KEY] = record["forces_ev_per_angstrom"]
    if "stress_ev_per_angstrom3" in record:
        from ase.stress import full_3x3_to_voigt_6_stress

        # Voigt 6, as ASE's get_stress() returns it: what mace-torch reads (also as "stress").
        labelled.info[STRESS_KEY] = full_3x3_to_voigt_6_stress(record["stress_ev_per_angstrom3"])
    if settings.backend != DEFAULT_BACKEND:  # default left out: molecule outputs stay byte-identical
        labelled.info["xtb_backend"] = settings.backend
    return labelled


def _isolated_atoms(e0s: dict[int, float], settings: XTBSettings) -> list:
    import ase

    configs = []
    for z, energy in e0s.items():
        atoms = ase.Atoms(numbers=[z], positions=[[0.0, 0.0, 0.0]])
        atoms.info.update({"config_type": "IsolatedAtom", ENERGY_KEY: energy, "total_charge": 0,
                           "multiplicity": ground_state_unpaired_electrons(z) + 1, "xtb_method": METHOD,
                           "xtb_electronic_temperature_K": settings.electronic_temperature_K})
        if settings.backend != DEFAULT_BACKEND:
            atoms.info["xtb_backend"] = settings.backend
        atoms.arrays[FORCES_KEY] = np.zeros((1, 3))
        configs.append(atoms)
    return configs


def _cached_e0s(elements: list[int], settings: XTBSettings, work_dir: Path) -> dict[int, float]:
    path = work_dir / "e0s.json"
    wanted = {"settings": settings.record(), "elements": elements}
    if path.is_file():
        stored = read_json(path)
        if stored.get("settings") == json.loads(json.dumps(wanted["settings"])) and \
                set(map(int, stored["e0s_ev"])) >= set(elements):
            return {z: float(stored["e0s_ev"][str(z)]) for z in elements}
    e0s = compute_e0s(elements, settings=settings)
    write_json(path, {**wanted, "e0s_ev": {str(z): e for z, e in e0s.items()}})
    return e0s
