"""The one place that decides where independent jobs run.

Every function that runs independent work (labelling chunks, seeds, replicas, scan points)
accepts any :class:`concurrent.futures.Executor`; this helper makes one: a local process pool
by default, or a Dask ``distributed`` cluster when a scheduler address is given.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
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
        Size of the local process pool (default: number of CPU cores).
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
    workers = max_workers or os.cpu_count() or 1
    # spawn, not fork: forking a process that already runs OpenMM or torch thread pools can hang.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        yield pool
