"""The one place that decides which torch device and which MACE kernels this process can use.

Training, the TorchForce builder and the job pools all ask here, so "is there a GPU" and "is
cuEquivariance installed" have one answer per process. Nothing is imported until asked: torch
only when a device count is needed, cuEquivariance never (its presence is enough to decide).
How TorchScript runs a scripted model (its graph-executor optimisation) is switched here too,
always scoped (:func:`torchscript_optimization`), never left changed behind the caller's back.

>>> resolve_device("cuda:1"), resolve_device(None, default="cpu")
('cuda:1', 'cpu')
"""

from __future__ import annotations

import importlib.util
import os
from contextlib import contextmanager


def cuda_device_count() -> int:
    """Number of CUDA devices this process may use (``CUDA_VISIBLE_DEVICES`` respected); 0 without."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    # An empty or -1 mask hides every GPU; asking torch would still initialise the CUDA driver.
    if visible is not None and visible.strip() in ("", "-1"):
        return 0
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def default_device() -> str:
    """``"cuda"`` where this process sees a CUDA device, else ``"cpu"``."""
    return "cuda" if cuda_device_count() else "cpu"


def resolve_device(device=None, default: str | None = None) -> str:
    """``device`` as a torch device string; when it is ``None``, ``default`` or :func:`default_device`.

    Parameters
    ----------
    device
        A torch device or its name (``"cpu"``, ``"cuda"``, ``"cuda:1"``), or ``None``.
    default
        What ``None`` means for this caller. A module that openmm-torch's CPU kernel will run
        must be built on the CPU whatever torch sees, so such callers pass ``"cpu"``.
    """
    if device is not None:
        return str(device)
    return default if default is not None else default_device()


def cueq_available() -> bool:
    """Whether cuEquivariance (``cuequivariance`` and ``cuequivariance_torch``) is installed.

    Only looked up, not imported: the import is slow and would pull torch into a process that
    may be about to fork workers.
    """
    return all(importlib.util.find_spec(name) is not None for name in ("cuequivariance", "cuequivariance_torch"))


def set_torchscript_optimization(enabled: bool) -> bool:
    """Switch TorchScript's graph-executor optimisation for the calling thread; returns the old value.

    With it on (PyTorch's default) the profiling executor rewrites the scripted MACE graph into
    differentiable subgraphs whose symbolic backward allocates and fills extra zero tensors; off,
    TorchScript runs the graph op by op and autograd differentiates it as in eager PyTorch. For
    MACE on the CPU, off is faster (measured here, 500-atom box, forward + backward: 668 ms on,
    635 ms off, 647 ms eager mace-torch; OpenMM steps 841 vs 716 ms). The setting is per thread
    (``torch::jit::setGraphExecutorOptimize``); OpenMM evaluates a TorchForce in the thread
    that calls ``step``/``getState``. Prefer :func:`torchscript_optimization`, which restores it.
    """
    import torch

    previous = bool(torch._C._get_graph_executor_optimize())
    torch._C._set_graph_executor_optimize(bool(enabled))
    return previous


@contextmanager
def torchscript_optimization(enabled: bool):
    """TorchScript's graph-executor optimisation ``enabled`` in this thread for the ``with`` block only.

    >>> with torchscript_optimization(False):          # doctest: +SKIP
    ...     simulation.step(1000)                       # a MACE TorchForce on the CPU platform
    """
    previous = set_torchscript_optimization(enabled)
    try:
        yield
    finally:
        set_torchscript_optimization(previous)
