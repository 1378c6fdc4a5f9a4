"""The one place that decides where independent jobs run.

Every function that runs independent work (labelling chunks, seeds, replicas, scan points)
accepts any :class:`concurrent.futures.Executor`; this helper makes one: a local process pool
by default, or a Dask ``distributed`` cluster when a scheduler address is given.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Callable, Iterator


class SerialExecutor(Executor):
    """Runs each job at submit time, in this process: for debugging and for one-job runs."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller through the future
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def make_executor(
    dask_scheduler: str | None = None, max_workers: int | None = None, serial: bool = False
) -> Iterator[Executor]:
    """Yield an Executor and shut it down afterwards.

    Parameters
    ----------
    dask_scheduler
        Address of a running Dask scheduler (``tcp://host:8786``). Jobs then run on that
        cluster through ``distributed.Client.get_executor()``.
    max_workers
        Size of the local process pool (default: :func:`default_workers`, half the cores).
    serial
        Run every job in this process, one after the other.
    """
    if dask_scheduler:
        try:
            from distributed import Client
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise RuntimeError(
                "a Dask scheduler was given but dask.distributed is not installed: "
                "pip install 'openmm_physembed[dask]'"
            ) from exc
        client = Client(dask_scheduler)
        try:
            yield client.get_executor()
        finally:
            client.close()
        return
    if serial:
        yield SerialExecutor()
        return
    workers = max_workers or default_workers()
    # spawn, not fork: forking a process that already runs OpenMM or torch thread pools can hang.
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=share_cores,
                             initargs=(threads,)) as pool:
        yield pool


def default_workers() -> int:
    """Half the cores: every worker's OpenMM CPU platform gets its own two cores.

    OpenMM 8.6.1's CPU platform falls into a slow mode (a CustomNonbondedForce ~12x slower) when
    its threads must share a core (see :func:`share_cores`), and MD is what most pools run.
    Pools of torch-only or xTB jobs may pass ``max_workers`` = cores.
    """
    from .simulation.platforms import MIN_CPU_THREADS

    return max(1, (os.cpu_count() or 1) // MIN_CPU_THREADS)


def share_cores(threads: int) -> None:
    """Process-pool initializer: each worker's torch uses ``threads`` threads and its OpenMM CPU
    platform ``max(MIN_CPU_THREADS, threads)`` (2).

    Why share: by default every worker starts one thread per core, and OpenMM's CPU thread pool
    synchronises on every force evaluation, so oversubscribed workers wait for descheduled
    threads (seen here: two NPT workers on 2 cores ran at 3 and 15 steps/s instead of ~20 each).
    Why never one OpenMM thread: with a single thread, OpenMM 8.6.1's CPU platform evaluates a
    CustomNonbondedForce ~12x slower once a second CustomNonbondedForce of the System (the CSO
    long-range correction) has been evaluated (225 vs 19 ms for the 1050-atom EMC CSO term;
    two threads: 19 ms either way). Thread counts the user set in the environment are kept.
    """
    from .simulation.platforms import MIN_CPU_THREADS

    os.environ.setdefault("OPENMM_CPU_THREADS", str(max(MIN_CPU_THREADS, threads)))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
