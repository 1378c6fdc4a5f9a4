"""How long a density job will take, from a short timing run of the same System on this machine.

A 1 ns NPT of 100+ molecules with MACE is hours on a GPU and weeks on a CPU; the user should
know which before committing to it. The timing run builds the job's own System (barostat
included), takes a few warm-up steps (TorchScript compiles on the first) and times a few more.
"""

from __future__ import annotations

import math
import time

# Shorter runs than this many timed steps are not worth estimating.
_MIN_STEPS_TO_ESTIMATE = 20_000


def time_npt_step(setup, protocol, parameters: dict | None = None, n_steps: int = 20,
                  warmup_steps: int = 3) -> tuple[float, str]:
    """``(wall seconds per NPT step, platform name)`` of ``setup`` (a :class:`~.tasks.LiquidSetup`)
    under ``protocol``."""
    from ...simulation.engine import MDEngine

    with MDEngine(setup.system(), setup.topology, setup.positions_nm, protocol.dynamics,
                  box_vectors_nm=setup.box_vectors_nm, parameters=parameters) as md:
        md.start(minimize_iterations=20)  # packmol contacts would make the first steps unrepresentative
        md.simulation.step(warmup_steps)
        started = time.perf_counter()
        md.simulation.step(n_steps)
        elapsed = time.perf_counter() - started
        return elapsed / n_steps, md.context.getPlatform().getName()


def format_hours(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def estimate_message(step_seconds: float, protocol, n_runs: int | tuple[int, int], workers: int = 1,
                     platform: str | None = None) -> str:
    """One line: ms/step, the wall time of one run and of ``n_runs`` (an int or a (min, max) range)."""
    per_run = step_seconds * protocol.n_steps
    low, high = (n_runs, n_runs) if isinstance(n_runs, int) else n_runs
    total = [per_run * math.ceil(n / max(1, workers)) for n in (low, high)]
    runs = f"{low}" if low == high else f"{low}-{high}"
    spread = format_hours(total[0]) if low == high else f"{format_hours(total[0])}-{format_hours(total[1])}"
    where = f" on {platform}" if platform else ""
    return (f"timing run: {1e3 * step_seconds:.1f} ms/step{where}, so {protocol.simulated_ps:g} ps per run takes "
            f"~{format_hours(per_run)}; {runs} run(s) with {workers} worker(s): ~{spread}")


def worth_estimating(protocol) -> bool:
    return protocol.n_steps >= _MIN_STEPS_TO_ESTIMATE
