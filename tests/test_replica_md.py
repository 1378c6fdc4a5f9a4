"""Batched replica MD for the stability benchmark: independence, collapse removal, NaN, resume."""

import numpy as np
import pytest

from openmm_physembed.chem.gaff import parameterize
from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.simulation.dynamics import Dynamics
from openmm_physembed.stability import replica_md
from openmm_physembed.stability.replica_md import (
    ReplicaMDSettings,
    run_replica_stability,
)
from openmm_physembed.testing import make_random_mace_model


@pytest.fixture(scope="module")
def molecule_data(tmp_path_factory):
    molecule = Molecule.from_name("ethylene_carbonate")
    params = parameterize(molecule, charge_method="gasteiger")
    model = make_random_mace_model(tmp_path_factory.mktemp("model") / "m.model", atomic_numbers=(1, 6, 8),
                                   interaction_scale_ev=0.05)  # gentle: bonds survive 20 fs
    bonds = np.array([(b.atom1, b.atom2) for b in params.bonds])
    r0 = np.array([b.r0 for b in params.bonds])
    rng = np.random.default_rng(0)
    starts = molecule.positions_nm[None] + rng.normal(0, 0.002, size=(3, molecule.n_atoms, 3))
    return molecule, model, bonds, r0, starts


def _run(data, out, starts=None, velocities=None, n_steps=40, **kw):
    molecule, model, bonds, r0, default_starts = data
    settings = ReplicaMDSettings(Dynamics(800.0, 0.5, "verlet"), n_steps=n_steps, check_interval=10, dtype="float64",
                                 **kw)
    starts = default_starts if starts is None else starts
    if velocities is None:
        velocities = replica_md._maxwell_boltzmann(molecule.masses_amu, len(starts), 300.0, seed=1)
    outcomes = run_replica_stability(model, molecule.symbols, molecule.masses_amu, bonds, r0, starts, out,
                                     settings, initial_velocities_nm_ps=velocities)
    return outcomes, np.load(out / "replica_state.npz")["positions"]


def test_replica_alone_equals_replica_batched(molecule_data, tmp_path):
    molecule, *_, starts = molecule_data
    velocities = replica_md._maxwell_boltzmann(molecule.masses_amu, 3, 300.0, seed=1)
    batched, x_batched = _run(molecule_data, tmp_path / "batched", starts, velocities)
    alone, x_alone = _run(molecule_data, tmp_path / "alone", starts[1:2], velocities[1:2])
    assert all(o.stable for o in batched) and alone[0].stable
    moved = np.abs(x_batched[1] - starts[1]).max()
    assert moved > 1e-3  # the molecule really moved in 40 steps
    np.testing.assert_allclose(x_alone[0], x_batched[1], atol=1e-9)


def test_collapsed_replica_is_removed_and_others_continue(molecule_data, tmp_path):
    molecule, *_, starts = molecule_data
    velocities = replica_md._maxwell_boltzmann(molecule.masses_amu, 3, 300.0, seed=1)
    hydrogen = molecule.symbols.index("H")
    carbon = next(int(j) for i, j in molecule.bonds for i, j in [(i, j), (j, i)] if i == hydrogen)
    outward = starts[0, hydrogen] - starts[0, carbon]
    # 60 nm/ps along the bond: 0.3 A per 0.5 fs step, past the 0.5 A limit within the first 10 steps.
    velocities[0, hydrogen] = 60.0 * outward / np.linalg.norm(outward)
    velocities[2, 0] = np.nan  # a replica whose coordinates turn NaN
    outcomes, final = _run(molecule_data, tmp_path / "run", starts, velocities)
    assert not outcomes[0].stable and outcomes[0].cause == "bond" and outcomes[0].collapse_step == 10
    assert hydrogen in outcomes[0].atoms
    # OpenMM stops at the first step with a NaN coordinate; the check comes right then.
    assert not outcomes[2].stable and outcomes[2].cause == "nan" and outcomes[2].collapse_step == 1
    assert outcomes[1].stable and outcomes[1].collapse_step is None
    assert np.all(np.isfinite(final[1]))


def test_killed_run_resumes_to_the_same_result(molecule_data, tmp_path, monkeypatch):
    reference, x_reference = _run(molecule_data, tmp_path / "ref", n_steps=60)
    real = replica_md.detect_collapse
    calls = {"n": 0}

    def killing_detector(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:  # start check + 3 intervals done, killed in the 4th
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(replica_md, "detect_collapse", killing_detector)
    molecule, model, bonds, r0, starts = molecule_data
    settings = ReplicaMDSettings(Dynamics(800.0, 0.5, "verlet"), n_steps=60, check_interval=10, dtype="float64")
    velocities = replica_md._maxwell_boltzmann(molecule.masses_amu, 3, 300.0, seed=1)
    with pytest.raises(KeyboardInterrupt):
        run_replica_stability(model, molecule.symbols, molecule.masses_amu, bonds, r0, starts, tmp_path / "b",
                              settings, initial_velocities_nm_ps=velocities, checkpoint_interval_s=0.0)
    monkeypatch.setattr(replica_md, "detect_collapse", real)
    resumed, x_resumed = _run(molecule_data, tmp_path / "b", n_steps=60)
    assert resumed == reference
    np.testing.assert_allclose(x_resumed, x_reference, atol=1e-9)
