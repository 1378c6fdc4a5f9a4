"""Batched high-temperature MD of many copies of one molecule with one MACE model.

All surviving replicas run in one OpenMM Context: one residue per replica and MACE edges only
within a residue (``add_mace_force(..., replicas="residue")``, as ``physembed md --replicas``),
so copies overlap in space without interacting. A copy is a residue by construction
(``copies_topology``), whatever the molecule's own bonds (a salt's two ions stay one replica). Every ``check_interval`` steps the collapse detector inspects each replica; a
collapsed replica is recorded and *removed*: the Context is rebuilt with the survivors, carrying
their positions and velocities, so one broken copy (NaN included) never stops the others.

The run checkpoints (survivors, positions, velocities, outcomes, the Context's own checkpoint for
an exact continuation) and a restarted run continues where it stopped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import StabilityError
from ..io import save_npz
from ..jobs import JobDirectory
from ..simulation.dynamics import Dynamics
from ..simulation.engine import MDEngine
from .collapse import CollapseCriteria, CollapseEvent, detect_collapse, nonbonded_pairs

COLLAPSE_FRAMES = "collapse_frames.npz"
MANIFEST = "replica_run.json"


@dataclass(frozen=True)
class ReplicaMDSettings:
    """The 800 K test MD (``dynamics.thermostat = "verlet"`` for deterministic tests) and the collapse check."""

    dynamics: Dynamics = Dynamics(temperature_K=800.0, timestep_fs=1.0, seed=0)
    n_steps: int = 100_000
    check_interval: int = 10
    dtype: str = "float32"
    bond_tolerance_nm: float = 0.05
    overlap_distance_nm: float = 0.06


@dataclass(frozen=True)
class ReplicaOutcome:
    start: int
    stable: bool
    collapse_step: int | None
    cause: str | None
    description: str | None
    atoms: tuple[int, int] | None
    distance_nm: float | None


def build_replica_engine(model_path, symbols, masses, bonds, positions_nm, settings: ReplicaMDSettings) -> MDEngine:
    """An :class:`MDEngine` of non-interacting copies of one molecule (``positions_nm``: (n_replicas, n_atoms, 3))
    under one MACE TorchForce; velocities are left to the caller."""
    import openmm

    from ..potentials.mace_force import add_mace_force
    from ..potentials.mace_md import copies_topology

    positions_nm = np.asarray(positions_nm, dtype=float)
    system = openmm.System()
    for _ in range(len(positions_nm)):
        for mass in masses:
            system.addParticle(float(mass))
    topology = copies_topology(symbols, bonds, len(positions_nm))
    add_mace_force(system, topology, str(model_path), dtype=settings.dtype, replicas="residue", periodic=False)
    return MDEngine(system, topology, positions_nm.reshape(-1, 3), settings.dynamics)


def build_replica_context(model_path, symbols, masses, bonds, n_replicas, settings: ReplicaMDSettings):
    """The OpenMM Context of :func:`build_replica_engine` with every copy at the origin (for timing)."""
    positions = np.zeros((n_replicas, len(symbols), 3))
    return build_replica_engine(model_path, symbols, masses, bonds, positions, settings).context


def run_replica_stability(
    model_path: str | Path,
    symbols: list[str],
    masses_amu: np.ndarray,
    bonds: np.ndarray,
    bond_lengths_nm: np.ndarray,
    start_positions_nm: np.ndarray,
    out_dir: str | Path,
    settings: ReplicaMDSettings = ReplicaMDSettings(),
    initial_velocities_nm_ps: np.ndarray | None = None,
    checkpoint_interval_s: float = 60.0,
    progress: str | None = None,
) -> list[ReplicaOutcome]:
    """Run every start structure as one replica until ``n_steps`` or collapse.

    Parameters
    ----------
    start_positions_nm
        (n_starts, n_atoms, 3) starting geometries.
    initial_velocities_nm_ps
        Optional (n_starts, n_atoms, 3); default: Maxwell-Boltzmann at the temperature, seeded.
    bonds, bond_lengths_nm
        Bonded pairs of the molecule and their equilibrium lengths (GAFF r0).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    starts = np.asarray(start_positions_nm, dtype=float)
    n_starts, n_atoms = starts.shape[:2]
    if n_atoms != len(symbols):
        raise StabilityError(f"start structures have {n_atoms} atoms, the molecule {len(symbols)}")
    bonds = np.asarray(bonds, dtype=int)
    criteria = CollapseCriteria(settings.bond_tolerance_nm, settings.overlap_distance_nm)
    pairs = nonbonded_pairs(n_atoms, bonds)
    state_path = out_dir / "replica_state.npz"
    frames_path = out_dir / COLLAPSE_FRAMES
    job = JobDirectory(out_dir, "stability MD run", {**asdict(settings), "model": str(model_path), "n_starts": n_starts},
                       manifest=MANIFEST, error=StabilityError)
    resuming = job.exists() and state_path.is_file()
    job.open(compare=resuming)

    outcomes: dict[int, ReplicaOutcome] = {}
    context_checkpoint = None
    if resuming:
        saved = np.load(state_path)
        active = [int(i) for i in saved["active"]]
        positions, velocities, step = saved["positions"], saved["velocities"], int(saved["step"])
        context_checkpoint = saved["checkpoint"].tobytes() if saved["checkpoint"].size else None
        outcomes = {int(k): ReplicaOutcome(**v) for k, v in job.state.get("outcomes", {}).items()}
    else:
        active = list(range(n_starts))
        positions = starts.copy()
        if initial_velocities_nm_ps is not None:
            velocities = np.asarray(initial_velocities_nm_ps, dtype=float).copy()
        else:
            velocities = _maxwell_boltzmann(masses_amu, n_starts, settings.dynamics.temperature_K,
                                            settings.dynamics.seed)
        step = 0
        for index, event in enumerate(detect_collapse(starts, bonds, bond_lengths_nm, criteria, pairs)):
            if event is not None:
                raise StabilityError(f"start structure {index} already violates the collapse criteria: "
                                     f"{event.describe(symbols)}")

    def save():
        save_npz(state_path, active=np.array(active, dtype=int), positions=positions, velocities=velocities,
                 step=np.array(step), checkpoint=np.frombuffer(context.createCheckpoint(), dtype=np.uint8)
                 if context is not None and active else np.zeros(0, np.uint8))
        job.save_state(step=step, n_active=len(active), outcomes={str(k): asdict(v) for k, v in outcomes.items()})

    engine = None

    def rebuild():
        # Survivors get a Context of their own size; the collapsed copies are gone from the System.
        nonlocal engine
        if engine is not None:
            engine.close()
        engine = None
        if not active:
            return None
        engine = build_replica_engine(model_path, symbols, masses_amu, bonds, positions[active], settings)
        engine.context.setVelocities(velocities[active].reshape(-1, 3))
        return engine.context

    context = rebuild()
    if context is not None and context_checkpoint is not None:
        try:
            context.loadCheckpoint(context_checkpoint)
        except Exception:  # noqa: BLE001 - other platform: positions/velocities already set
            pass

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=settings.n_steps, initial=step, desc=progress, unit="step", dynamic_ncols=True,
                   mininterval=1.0)
    last_save = time.monotonic()
    try:
        while active and step < settings.n_steps:
            # Checks fall on multiples of check_interval, also after a failed step cut an interval short.
            todo = min(settings.check_interval - step % settings.check_interval, settings.n_steps - step)
            failed = False
            first = context.getStepCount()
            try:
                context.getIntegrator().step(todo)
            except Exception:  # noqa: BLE001 - OpenMM stops at NaN coordinates ("Particle coordinate is NaN")
                failed = True
                todo = context.getStepCount() - first
            state = context.getState(getPositions=True, getVelocities=True)
            current = state.getPositions(asNumpy=True)._value.reshape(len(active), n_atoms, 3)
            current_v = state.getVelocities(asNumpy=True)._value.reshape(len(active), n_atoms, 3)
            events = detect_collapse(current, bonds, bond_lengths_nm, criteria, pairs)
            if failed and all(e is None for e in events):
                # The step failed without a visible culprit: redo the interval one step at a time.
                context.setPositions(positions[active].reshape(-1, 3))
                context.setVelocities(velocities[active].reshape(-1, 3))
                events, todo, current, current_v = _find_failure(context, bonds, bond_lengths_nm, criteria,
                                                                 pairs, len(active), n_atoms, todo)
            step += todo
            collapsed = [k for k, e in enumerate(events) if e is not None]
            if collapsed:
                _save_collapse_frames(frames_path, {active[k]: (positions[active[k]], current[k]) for k in collapsed})
            for k in collapsed:
                event: CollapseEvent = events[k]
                outcomes[active[k]] = ReplicaOutcome(active[k], False, step, event.cause,
                                                     event.describe(symbols), event.atoms, event.distance_nm)
            survivors = [k for k in range(len(active)) if k not in collapsed]
            for k in survivors:
                positions[active[k]] = current[k]
                velocities[active[k]] = current_v[k]
            if bar is not None:
                bar.update(todo)
                bar.set_postfix(collapsed=len(outcomes))
            if collapsed:
                active = [active[k] for k in survivors]
                context = rebuild()
                save()
                last_save = time.monotonic()
            elif time.monotonic() - last_save >= checkpoint_interval_s:
                save()
                last_save = time.monotonic()
        for index in active:
            outcomes[index] = ReplicaOutcome(index, True, None, None, None, None, None)
        active = []
        save()
        job.finish(n_collapsed=sum(not o.stable for o in outcomes.values()), step=step)
    finally:
        if engine is not None:
            engine.close()
        if bar is not None:
            bar.close()
    return [outcomes[i] for i in range(n_starts)]


def _save_collapse_frames(path: Path, frames: dict[int, tuple[np.ndarray, np.ndarray]]) -> None:
    """Add (last intact check, first collapsed check) positions of collapsed starts to ``path``."""
    stored = dict(np.load(path)) if path.is_file() else {}
    for start, (intact, broken) in frames.items():
        stored[f"intact_{start}"] = np.asarray(intact, dtype=float)
        stored[f"collapsed_{start}"] = np.asarray(broken, dtype=float)
    save_npz(path, **stored)


def load_collapse_frames(out_dir: str | Path) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """start index -> (positions at the last intact check, positions when the collapse was seen), nm."""
    path = Path(out_dir) / COLLAPSE_FRAMES
    if not path.is_file():
        return {}
    stored = np.load(path)
    starts = sorted(int(k.split("_")[1]) for k in stored.files if k.startswith("collapsed_"))
    return {s: (stored[f"intact_{s}"], stored[f"collapsed_{s}"]) for s in starts}


def _find_failure(context, bonds, bond_lengths_nm, criteria, pairs, n_replicas, n_atoms, max_steps):
    """Advance one step at a time until a replica collapses or a step fails; blame NaN replicas."""
    for done in range(1, max_steps + 1):
        failed = False
        first = context.getStepCount()
        try:
            context.getIntegrator().step(1)
        except Exception:  # noqa: BLE001
            failed = True
            done -= 1 - (context.getStepCount() - first)
        state = context.getState(getPositions=True, getVelocities=True)
        x = state.getPositions(asNumpy=True)._value.reshape(n_replicas, n_atoms, 3)
        v = state.getVelocities(asNumpy=True)._value.reshape(n_replicas, n_atoms, 3)
        events = detect_collapse(x, bonds, bond_lengths_nm, criteria, pairs)
        if any(e is not None for e in events):
            return events, done, x, v
        if failed:
            raise StabilityError("an MD step failed with every replica intact; cannot attribute the failure")
    return events, max_steps, x, v


def _maxwell_boltzmann(masses_amu, n_replicas, temperature_K, seed) -> np.ndarray:
    from ..units import BOLTZMANN_KJ_PER_MOL_K

    rng = np.random.default_rng(seed)
    sigma = np.sqrt(BOLTZMANN_KJ_PER_MOL_K * temperature_K / np.asarray(masses_amu, dtype=float))  # nm/ps
    v = rng.normal(size=(n_replicas, len(masses_amu), 3)) * sigma[None, :, None]
    # No net drift per replica: a moving centre of mass would be kinetic energy the molecule cannot use.
    momentum = (v * np.asarray(masses_amu)[None, :, None]).sum(axis=1, keepdims=True)
    return v - momentum / np.sum(masses_amu)
