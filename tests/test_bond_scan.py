"""Bond-stretch geometry of the collapse diagnosis: only the smaller side moves, along the bond."""

from __future__ import annotations

import numpy as np
import pytest

from openmm_physembed import Molecule
from openmm_physembed.stability.bond_scan import moving_side, stretched


@pytest.fixture(scope="module")
def ethanol():
    return Molecule.from_smiles("CCO", name="ethanol")


def test_stretching_a_terminal_hydrogen_moves_only_that_hydrogen(ethanol):
    bonds = np.array(ethanol.bonds)
    x = 10 * ethanol.positions_nm
    i, j = next((a, b) for a, b in ethanol.bonds if {ethanol.symbols[a], ethanol.symbols[b]} == {"C", "H"})
    h = j if ethanol.symbols[j] == "H" else i
    assert list(moving_side(len(x), bonds, i, j)) == [h]
    y = stretched(x, bonds, i, j, 1.6)
    assert np.linalg.norm(y[i] - y[j]) == pytest.approx(1.6)
    moved = np.flatnonzero(np.linalg.norm(y - x, axis=1) > 1e-12)
    assert list(moved) == [h]
    # along the bond: the hydrogen's displacement is parallel to the C-H axis
    axis = (x[h] - x[i + j - h]) / np.linalg.norm(x[h] - x[i + j - h])
    shift = y[h] - x[h]
    assert np.linalg.norm(np.cross(axis, shift)) == pytest.approx(0.0, abs=1e-12)


def test_stretching_c_c_moves_the_smaller_fragment_rigidly(ethanol):
    bonds = np.array(ethanol.bonds)
    x = 10 * ethanol.positions_nm
    c = [k for k, s in enumerate(ethanol.symbols) if s == "C"]
    side = moving_side(len(x), bonds, c[0], c[1])
    # CH3 (4 atoms) vs CH2-OH (5 atoms): the methyl moves, as one body
    assert len(side) == 4 and sorted(ethanol.symbols[k] for k in side) == ["C", "H", "H", "H"]
    y = stretched(x, bonds, c[0], c[1], 2.0)
    d = y[side] - x[side]
    assert np.allclose(d, d[0]) and np.linalg.norm(d[0]) > 0.4
    assert np.linalg.norm(y[c[0]] - y[c[1]]) == pytest.approx(2.0)


def test_barrier_is_the_first_maximum_beyond_r0():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "diagnose", Path(__file__).parents[1] / "benchmarks" / "stability" / "diagnose_collapses.py")
    diagnose = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diagnose)
    r = np.linspace(1.0, 2.0, 11)
    assert diagnose.barrier(r, (1 - np.exp(-3 * (r - 1.1))) ** 2, 1.1)["at_angstrom"] is None
    bent = np.where(r < 1.5, (r - 1.1) ** 2, 0.16 - (r - 1.5))  # peaks at 1.5
    assert diagnose.barrier(r, bent, 1.1) == {"at_angstrom": pytest.approx(1.5), "height_ev": pytest.approx(0.16)}
