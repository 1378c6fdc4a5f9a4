"""Checkpointed runs: a killed run, restarted, returns exactly what an uninterrupted run does."""

import numpy as np
import pytest

from openmm_physembed.chem.gaff import parameterize
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.simulation.dynamics import Dynamics
from openmm_physembed.simulation.runner import (
    ArrayRecorder,
    is_complete,
    positions_sampler,
    run_checkpointed,
)
from openmm_physembed.simulation.contexts import make_simulation


def _simulation():
    molecule = Molecule.from_name("ec")
    params = parameterize(molecule, charge_method="gasteiger")
    integrator = Dynamics(300.0, 1.0, seed=11).integrator()
    simulation = make_simulation(params.create_system(), params.topology, molecule.positions_nm, integrator,
                                 platform="Reference")
    simulation.context.setVelocitiesToTemperature(300.0, 11)
    return simulation


class Killed(Exception):
    pass


def test_resume_after_kill_is_bitwise_identical(tmp_path):
    settings = {"case": "resume"}
    reference = run_checkpointed(_simulation(), 3000, tmp_path / "a", [ArrayRecorder("x", 50, positions_sampler)],
                                 settings=settings, block_steps=500)["x"]

    blocks = {"n": 0}

    def kill_after_three_blocks(simulation):
        blocks["n"] += 1
        if blocks["n"] == 3:
            raise Killed

    with pytest.raises(Killed):
        run_checkpointed(_simulation(), 3000, tmp_path / "b", [ArrayRecorder("x", 50, positions_sampler)],
                         settings=settings, block_steps=500, checkpoint_interval_s=0.0,
                         on_block=kill_after_three_blocks)
    assert not is_complete(tmp_path / "b")
    resumed_simulation = _simulation()
    resumed = run_checkpointed(resumed_simulation, 3000, tmp_path / "b", [ArrayRecorder("x", 50, positions_sampler)],
                               settings=settings, block_steps=500)["x"]
    assert is_complete(tmp_path / "b")
    np.testing.assert_array_equal(resumed["step"], np.arange(50, 3001, 50))
    np.testing.assert_array_equal(resumed["positions_nm"], reference["positions_nm"])


def test_kill_between_checkpoints_loses_only_unsaved_steps(tmp_path):
    """Records written after the last checkpoint are discarded and recomputed, never duplicated."""
    settings = {"case": "partial"}

    def kill_at_once(simulation):
        raise Killed

    with pytest.raises(Killed):
        run_checkpointed(_simulation(), 2000, tmp_path, [ArrayRecorder("x", 100, positions_sampler)],
                         settings=settings, block_steps=500, checkpoint_interval_s=3600.0, on_block=kill_at_once)
    out = run_checkpointed(_simulation(), 2000, tmp_path, [ArrayRecorder("x", 100, positions_sampler)],
                           settings=settings, block_steps=500)["x"]
    np.testing.assert_array_equal(out["step"], np.arange(100, 2001, 100))
