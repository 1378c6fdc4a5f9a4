"""Bond-stretch scans: where does a trained model stop following its reference along one bond?

A collapse report names the bond that broke; this module shows why. Starting from a structure
(typically the last intact frame before a collapse), one bond is stretched by moving the smaller
side of the molecule (a terminal H, a methyl group) along the bond axis, and each model's energy
is compared with GFN2-xTB at the same geometries. A model that follows the reference up to the
end of its training range and then bends over (or falls) lets the bond break at 800 K.

Energies are relative to the first point of each curve, in eV; lengths in Angstrom (the units of
the extxyz files and of the models).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BondScan:
    lengths_angstrom: np.ndarray
    energies_ev: dict  # curve name -> energies relative to the first point (NaN where xTB failed)

    def as_dict(self) -> dict:
        return {"lengths_angstrom": self.lengths_angstrom.tolist(),
                "energies_ev": {k: [None if not np.isfinite(e) else float(e) for e in v]
                                for k, v in self.energies_ev.items()}}


def moving_side(n_atoms: int, bonds: np.ndarray, i: int, j: int) -> np.ndarray:
    """Atoms on ``j``'s side of bond i-j (the bond cut), or on ``i``'s side if that side is smaller."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keep = [(a, b) for a, b in bonds if {int(a), int(b)} != {i, j}]
    rows = [a for a, b in keep] + [b for a, b in keep]
    cols = [b for a, b in keep] + [a for a, b in keep]
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_atoms, n_atoms))
    _, labels = connected_components(graph, directed=False)
    side_j = np.flatnonzero(labels == labels[j])
    side_i = np.flatnonzero(labels == labels[i])
    return side_j if len(side_j) <= len(side_i) else side_i


def stretched(positions_angstrom: np.ndarray, bonds: np.ndarray, i: int, j: int, length: float) -> np.ndarray:
    """Positions with bond i-j set to ``length`` by translating the smaller side along the bond."""
    x = np.array(positions_angstrom, dtype=float)
    side = moving_side(len(x), np.asarray(bonds), i, j)
    anchor, mover = (i, j) if j in side else (j, i)
    axis = x[mover] - x[anchor]
    current = np.linalg.norm(axis)
    x[side] += (length - current) * axis / current
    return x


def scan_bond(numbers, positions_angstrom, bonds, i: int, j: int, lengths_angstrom, model_paths: dict,
              xtb: bool = True, charge: int = 0) -> BondScan:
    """Energies along bond i-j for every model in ``model_paths`` (name -> file) and GFN2-xTB."""
    from ase import Atoms

    lengths = np.asarray(lengths_angstrom, dtype=float)
    frames = [stretched(positions_angstrom, bonds, i, j, r) for r in lengths]
    curves = {}
    for name, path in model_paths.items():
        calculator = _mace_calculator(path)
        energies = []
        for x in frames:
            atoms = Atoms(numbers=numbers, positions=x)
            atoms.calc = calculator
            energies.append(atoms.get_potential_energy())
        curves[name] = np.array(energies) - energies[0]
    if xtb:
        from ..labelling.xtb_python_backend import xtb_single_point

        energies = []
        for x in frames:
            try:
                energies.append(xtb_single_point(numbers, x, charge=charge)[0])
            except Exception:  # noqa: BLE001 - SCF failures at long stretch are part of the answer
                energies.append(np.nan)
        energies = np.array(energies)
        curves["GFN2-xTB"] = energies - energies[0]
    return BondScan(lengths, curves)


_CALCULATORS: dict = {}


def _mace_calculator(path):
    if str(path) not in _CALCULATORS:
        _CALCULATORS[str(path)] = _load_calculator(path)
    return _CALCULATORS[str(path)]


def _load_calculator(path):
    import warnings

    import torch  # noqa: F401  - before mace/e3nn
    from mace.calculators import MACECalculator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return MACECalculator(model_paths=str(path), device="cpu", default_dtype="float64")


def plot_scan(scan: BondScan, path, title: str = "", training_range_angstrom=None, r0_angstrom=None):
    from .plots import _pyplot, save_figure

    fig, ax = _pyplot().subplots(figsize=(5.5, 3.8))
    for name, energies in scan.energies_ev.items():
        style = dict(color="black", lw=2) if name == "GFN2-xTB" else dict(lw=1,
                                                                        ls="--" if name.startswith("baseline") else "-")
        ax.plot(scan.lengths_angstrom, energies, label=name, **style)
    if training_range_angstrom is not None:
        ax.axvspan(*training_range_angstrom, color="tab:green", alpha=0.12, label="augmented training range")
    if r0_angstrom is not None:
        ax.axvline(r0_angstrom + 0.5, color="tab:red", lw=0.8, ls=":", label="collapse (r0 + 0.5 A)")
    ax.set_xlabel("bond length (A)")
    ax.set_ylabel("energy (eV, relative)")
    return save_figure(fig, ax, path, title, legend_size=6)
