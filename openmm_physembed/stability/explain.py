"""Why did a trajectory collapse? Each collapse set against the bond lengths the model was trained on.

For every collapsed trajectory the report gets: the bond (GAFF types, r0) or atom pair that broke,
its length, the time; the same bond's range in each arm's training set (the stretch a model saw
before it had to extrapolate); and the *precursor*, the bond furthest outside its own training
range at the last check before the collapse (10 fs earlier by default), which is usually the bond
that started it when the collapse itself is reported on a neighbour.
"""

from __future__ import annotations

import numpy as np

from ..sampling.geometry import angle_values_deg, bond_angles, bond_lengths
from .report import record_arm


def training_bond_ranges(frames_nm: np.ndarray, bonds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shortest, longest) length of every bond over a training set's frames (nm)."""
    lengths = bond_lengths(np.asarray(frames_nm, dtype=float), bonds)
    return lengths.min(axis=0), lengths.max(axis=0)


def training_angle_ranges(frames: np.ndarray, angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(smallest, largest) value of every bonded angle over a training set's frames (degrees)."""
    values = angle_values_deg(frames, angles)
    return values.min(axis=0), values.max(axis=0)


def explain_collapse(record: dict, frames: tuple[np.ndarray, np.ndarray] | None, bonds: np.ndarray,
                     r0_nm: np.ndarray, bond_types: list[str], symbols: list[str],
                     training_ranges: dict[str, tuple[np.ndarray, np.ndarray]],
                     angle_ranges: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> dict:
    """One collapsed trajectory explained (lengths in Angstrom for reading).

    ``training_ranges`` and ``angle_ranges`` are keyed by arm; ``angle_ranges`` (arm -> (min, max)
    per :func:`bond_angles` entry, degrees) adds the bonded angle furthest outside its training
    range at the last intact check: bond-length sampling does not sample angles, so a collapse can
    start in a bend no training structure showed. ``record`` is a trajectory record of the report
    (its arm under ``"arm"``, or ``"method"`` in reports written before the rename).
    """
    arm = record_arm(record)
    entry = {"arm": arm, **{key: record.get(key) for key in ("seed", "start", "collapse_time_ps", "cause",
                                                            "description")}}
    own = training_ranges.get(arm)
    atoms = record.get("atoms")
    if record.get("cause") == "bond" and atoms is not None:
        index = _bond_index(bonds, atoms)
        if index is not None:
            entry["bond"] = {"atoms": f"{symbols[atoms[0]]}{atoms[0]}-{symbols[atoms[1]]}{atoms[1]}",
                             "gaff_types": bond_types[index], "r0_A": 10 * float(r0_nm[index]),
                             "length_A": 10 * float(record["distance_nm"]),
                             "training_range_A": {m: [10 * float(lo[index]), 10 * float(hi[index])]
                                                  for m, (lo, hi) in training_ranges.items()}}
    if frames is not None and own is not None:
        intact, _ = frames
        lengths = bond_lengths(intact, bonds)
        low, high = own
        beyond = np.maximum(lengths - high, low - lengths)  # > 0: outside what this arm trained on
        worst = int(np.argmax(beyond))
        i, j = bonds[worst]
        entry["precursor"] = {
            "atoms": f"{symbols[i]}{i}-{symbols[j]}{j}", "gaff_types": bond_types[worst],
            "length_A": 10 * float(lengths[worst]), "r0_A": 10 * float(r0_nm[worst]),
            "training_range_A": [10 * float(low[worst]), 10 * float(high[worst])],
            "beyond_training_A": 10 * float(beyond[worst]),
            "bonds_outside_training": int(np.sum(beyond > 0)),
        }
        entry["verdict"] = ("outside the training range before the collapse"
                            if beyond[worst] > 0 else "inside the training range at the last check")
        own_angles = (angle_ranges or {}).get(arm)
        if own_angles is not None:
            angles = bond_angles(bonds)
            values = angle_values_deg(intact, angles)
            low_a, high_a = own_angles
            beyond_a = np.maximum(values - high_a, low_a - values)
            k = int(np.argmax(beyond_a))
            i, j, m = angles[k]
            entry["angle_precursor"] = {
                "atoms": f"{symbols[i]}{i}-{symbols[j]}{j}-{symbols[m]}{m}", "angle_deg": float(values[k]),
                "training_range_deg": [float(low_a[k]), float(high_a[k])],
                "beyond_training_deg": float(beyond_a[k]), "angles_outside_training": int(np.sum(beyond_a > 0)),
            }
    return entry


def _bond_index(bonds: np.ndarray, atoms) -> int | None:
    a, b = int(atoms[0]), int(atoms[1])
    for k, (i, j) in enumerate(bonds):
        if {int(i), int(j)} == {a, b}:
            return k
    return None


def format_explanations(explanations: list[dict], arm: str = "augmented") -> str:
    """One console line per collapse of ``arm`` (explanations of old reports carry ``"method"``)."""
    lines = []
    for e in explanations:
        if record_arm(e) != arm:
            continue
        line = f"  {arm} seed {e['seed']} start {e['start']} at {e['collapse_time_ps']:.3f} ps: {e['description']}"
        bond = e.get("bond")
        if bond:
            ranges = ", ".join(f"{m} {lo:.2f}-{hi:.2f}" for m, (lo, hi) in bond["training_range_A"].items())
            line += f" [{bond['gaff_types']}; trained {ranges} A]"
        pre = e.get("precursor")
        if pre:
            line += (f"; at the last check: {pre['atoms']} ({pre['gaff_types']}) {pre['length_A']:.2f} A, "
                     f"{pre['beyond_training_A']:+.2f} A beyond its training range")
        angle = e.get("angle_precursor")
        if angle:
            line += (f"; angle {angle['atoms']} {angle['angle_deg']:.0f} deg (trained "
                     f"{angle['training_range_deg'][0]:.0f}-{angle['training_range_deg'][1]:.0f})")
        lines.append(line)
    return "\n".join(lines)
