"""The one place that decides which torch device and which MACE kernels this process can use.

Training, the TorchForce builder and the job pools all ask here, so "is there a GPU" and "is
cuEquivariance installed" have one answer per process. Nothing is imported until asked: torch
only when a device count is needed, cuEquivariance never (its presence is enough to decide).

>>> resolve_device("cuda:1"), resolve_device(None, default="cpu")
('cuda:1', 'cpu')
"""

from __future__ import annotations

import importlib.util
import os


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
