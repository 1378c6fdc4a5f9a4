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
    dask_scheduler: str | None = None, max_workers: int | None = None, serial: bool = False,
    gpu: bool | None = None,
) -> Iterator[Executor]:
    """Yield an Executor and shut it down afterwards.

    Parameters
    ----------
    dask_scheduler
        Address of a running Dask scheduler (``tcp://host:8786``). Jobs then run on that
        cluster through ``distributed.Client.get_executor()``.
    max_workers
        Size of the local process pool (default: :func:`default_workers`: one per GPU, else
        half the cores).
    serial
        Run every job in this process, one after the other.
    gpu
        Whether the jobs use the GPU (MD, training): ``None`` = yes when this machine has one
        (:func:`gpu_count`). Then worker k of the local pool sees only GPU k mod n
        (``CUDA_VISIBLE_DEVICES``), instead of every worker opening a CUDA context on GPU 0.
        ``False`` for CPU-only jobs (xTB labelling): the pool is sized by the cores.
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
    gpus = visible_gpus() if gpu is not False else []
    workers = max_workers or default_workers(gpu=bool(gpus))
    # spawn, not fork: forking a process that already runs OpenMM or torch thread pools can hang.
    context = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    next_worker = context.Value("i", 0)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(threads, gpus, next_worker)) as pool:
        yield pool


def default_workers(gpu: bool | None = None) -> int:
    """One worker per GPU on a GPU machine (``gpu`` None or True), else half the cores.

    GPU: more workers than GPUs would put several CUDA contexts (memory, time-slicing) on one
    device. CPU: every worker's OpenMM CPU platform gets its own two cores, since OpenMM 8.6.1's
    CPU platform falls into a slow mode (a CustomNonbondedForce ~12x slower) when its threads
    must share a core (see :func:`share_cores`), and MD is what most pools run. Pools of
    torch-only or xTB jobs may pass ``max_workers`` = cores.
    """
    from .workarounds import min_cpu_threads

    if gpu is not False:
        n_gpus = gpu_count()
        if n_gpus:
            return n_gpus
    return max(1, (os.cpu_count() or 1) // min_cpu_threads())


def gpu_count() -> int:
    """Number of CUDA devices this process may use (``CUDA_VISIBLE_DEVICES`` respected); 0 without."""
    from .torch_device import cuda_device_count

    return cuda_device_count()


def visible_gpus() -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` entries for the GPUs this process sees, one per GPU (empty: none)."""
    n = gpu_count()
    if not n:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [v.strip() for v in visible.split(",") if v.strip()][:n]
    return [str(k) for k in range(n)]


def gpu_for_worker(worker: int, gpus: list[str]) -> str | None:
    """The ``CUDA_VISIBLE_DEVICES`` value of pool worker ``worker`` (0, 1, ...): GPU k mod n."""
    return gpus[worker % len(gpus)] if gpus else None


def _init_worker(threads: int, gpus: list[str], next_worker) -> None:
    """Pool initializer: this worker's index, its GPU (before anything starts CUDA), its threads."""
    with next_worker.get_lock():
        worker = next_worker.value
        next_worker.value += 1
    device = gpu_for_worker(worker, gpus)
    if device is not None:
        # Each worker sees one GPU, as its device 0: torch's "cuda" and OpenMM's default
        # DeviceIndex then both mean this worker's GPU, and training subprocesses inherit it.
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    share_cores(threads)


def share_cores(threads: int) -> None:
    """Process-pool initializer: each worker's torch uses ``threads`` threads and its OpenMM CPU
    platform ``max(min_cpu_threads(), threads)`` (2 with OpenMM 8.6.1).

    Why share: by default every worker starts one thread per core, and OpenMM's CPU thread pool
    synchronises on every force evaluation, so oversubscribed workers wait for descheduled
    threads (seen here: two NPT workers on 2 cores ran at 3 and 15 steps/s instead of ~20 each).
    Why never one OpenMM thread: :data:`openmm_physembed.workarounds.CPU_SINGLE_THREAD`. Thread
    counts the user set in the environment are kept.
    """
    from .workarounds import min_cpu_threads

    os.environ.setdefault("OPENMM_CPU_THREADS", str(max(min_cpu_threads(), threads)))
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
