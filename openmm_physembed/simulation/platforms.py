"""Platform choice: CUDA when a GPU is usable, else CPU (Reference for tiny systems).

This is also the one place where platform defaults are set: CPU threads (see
:mod:`openmm_physembed.workarounds`), and the Precision of
GPU platforms (:data:`GPU_PRECISION`, overridable per call or with ``$PHYSEMBED_PRECISION``).
"""

from __future__ import annotations

import os

from ..errors import SimulationError
from ..workarounds import min_cpu_threads

SMALL_SYSTEM_ATOMS = 200  # below this OpenMM's Reference platform outruns CPU (measured: 48k vs 5k steps/s, 20 atoms)
#: OpenMM's own default on CUDA/OpenCL is "single": positions and the integrator in float32, which
#: drifts in long runs; "mixed" integrates in float64 at nearly the cost of single.
GPU_PRECISION = "mixed"
PRECISIONS = ("single", "mixed", "double")
GPU_PLATFORMS = ("CUDA", "OpenCL")


def available_platforms() -> list[str]:
    import openmm

    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def choose_platform(name: str | None = None, n_atoms: int | None = None, has_torch_force: bool = False,
                    precision: str | None = None):
    """The OpenMM Platform to use, with the project's defaults set on it.

    ``name`` forces a platform (``CUDA``, ``OpenCL``, ``CPU``, ``Reference``); ``None`` picks CUDA
    if present, otherwise CPU, or Reference for classical systems under 200 atoms.
    ``precision`` (``single``, ``mixed``, ``double``) becomes the default Precision of a CUDA or
    OpenCL platform; ``None`` takes ``$PHYSEMBED_PRECISION``, else :data:`GPU_PRECISION`. It is
    the platform's default, so every Context made on it afterwards gets it unless its own
    properties say otherwise; use ``double`` for CPU-vs-GPU parity checks.
    """
    import openmm

    if precision is None:
        precision = os.environ.get("PHYSEMBED_PRECISION") or GPU_PRECISION
    if precision not in PRECISIONS:
        raise SimulationError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r} "
                              "(argument or $PHYSEMBED_PRECISION)")
    names = available_platforms()
    if name:
        if name not in names:
            raise SimulationError(f"OpenMM platform {name!r} is not available here; available: {', '.join(names)}")
        chosen = name
    elif "CUDA" in names:
        chosen = "CUDA"
    elif n_atoms is not None and n_atoms < SMALL_SYSTEM_ATOMS and not has_torch_force:
        chosen = "Reference"
    else:
        chosen = "CPU" if "CPU" in names else "Reference"
    platform = openmm.Platform.getPlatformByName(chosen)
    if chosen == "CPU":
        # One thread is a trap (workarounds.CPU_SINGLE_THREAD).
        threads = int(platform.getPropertyDefaultValue("Threads"))
        platform.setPropertyDefaultValue("Threads", str(max(min_cpu_threads(), threads)))
    elif chosen in GPU_PLATFORMS:
        platform.setPropertyDefaultValue("Precision", precision)
    return platform
