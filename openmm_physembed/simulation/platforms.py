"""Platform choice and the properties each Context gets: CUDA when a GPU is usable, else CPU
(Reference for tiny classical systems).

Nothing here changes a Platform's defaults (a Platform object is shared by every Context of the
process, the user's included). The project's choices travel as Context properties instead, as
openmmtools passes ``platform_properties`` to ``create_context``: CPU threads (see
:mod:`openmm_physembed.workarounds`) and the platform precision of GPU platforms
(:data:`GPU_PLATFORM_PRECISION`, overridable per call or with ``$PHYSEMBED_PLATFORM_PRECISION``).
``precision`` alone always means the MACE dtype (:mod:`openmm_physembed.potentials.mace_model`).
"""

from __future__ import annotations

import os
import warnings

from ..errors import SimulationError
from ..workarounds import min_cpu_threads

SMALL_SYSTEM_ATOMS = 200  # below this OpenMM's Reference platform outruns CPU (measured: 48k vs 5k steps/s, 20 atoms)
#: OpenMM's own default on CUDA/OpenCL is "single": positions and the integrator in float32, which
#: drifts in long runs; "mixed" integrates in float64 at nearly the cost of single.
GPU_PLATFORM_PRECISION = "mixed"
PLATFORM_PRECISIONS = ("single", "mixed", "double")
GPU_PLATFORMS = ("CUDA", "OpenCL")
PLATFORM_PRECISION_ENV = "PHYSEMBED_PLATFORM_PRECISION"
_OLD_PLATFORM_PRECISION_ENV = "PHYSEMBED_PRECISION"  # deprecated: "precision" is the MACE dtype


def available_platforms() -> list[str]:
    import openmm

    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def choose_platform(name: str | None = None, n_atoms: int | None = None, has_torch_force: bool = False, *,
                    precision: str | None = None):
    """The OpenMM Platform to use (its defaults untouched; see :func:`platform_properties`).

    ``name`` forces a platform (``CUDA``, ``OpenCL``, ``CPU``, ``Reference``); ``None`` picks CUDA
    if present, otherwise CPU, or Reference for classical systems under 200 atoms.
    ``precision`` is deprecated and changes nothing: the platform precision is a Context property,
    ``platform_properties(platform, platform_precision=...)``.
    """
    import openmm

    if precision is not None:
        warnings.warn("choose_platform(precision=) is deprecated and no longer changes the Platform's default; "
                      "pass platform_properties(platform, platform_precision=...) to the Context",
                      DeprecationWarning, stacklevel=2)
        resolve_platform_precision(precision)
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
    return openmm.Platform.getPlatformByName(chosen)


def resolve_platform_precision(platform_precision: str | None = None) -> str:
    """``platform_precision``, else ``$PHYSEMBED_PLATFORM_PRECISION``, else :data:`GPU_PLATFORM_PRECISION`."""
    if platform_precision is None:
        platform_precision = os.environ.get(PLATFORM_PRECISION_ENV)
    if platform_precision is None and os.environ.get(_OLD_PLATFORM_PRECISION_ENV):
        warnings.warn(f"${_OLD_PLATFORM_PRECISION_ENV} is deprecated (precision is the MACE dtype); "
                      f"set ${PLATFORM_PRECISION_ENV} instead", DeprecationWarning, stacklevel=3)
        platform_precision = os.environ[_OLD_PLATFORM_PRECISION_ENV]
    platform_precision = platform_precision or GPU_PLATFORM_PRECISION
    if platform_precision not in PLATFORM_PRECISIONS:
        raise SimulationError(f"platform precision must be one of {', '.join(PLATFORM_PRECISIONS)}, got "
                              f"{platform_precision!r} (argument or ${PLATFORM_PRECISION_ENV})")
    return platform_precision


def platform_precision_argument(platform_precision: str | None, precision: str | None, caller: str) -> str | None:
    """``platform_precision``, or the deprecated ``precision`` keyword with a warning."""
    if precision is None:
        return platform_precision
    warnings.warn(f"{caller}(precision=) is deprecated: precision is the MACE dtype; the OpenMM platform precision "
                  "is platform_precision=", DeprecationWarning, stacklevel=3)
    if platform_precision is not None and platform_precision != precision:
        raise SimulationError(f"platform_precision={platform_precision!r} and precision={precision!r} disagree; "
                              "give platform_precision only")
    return precision


def platform_properties(platform, platform_precision: str | None = None) -> dict[str, str]:
    """The properties a Context on ``platform`` gets from the project: at least
    :func:`~openmm_physembed.workarounds.min_cpu_threads` CPU threads (one is a trap,
    ``workarounds.CPU_SINGLE_THREAD``), and the ``Precision`` of a CUDA or OpenCL platform
    (:func:`resolve_platform_precision`; use ``double`` for CPU-vs-GPU parity checks)."""
    precision = resolve_platform_precision(platform_precision)  # checked on every platform, used on GPUs
    name = platform.getName()
    if name == "CPU":
        threads = int(platform.getPropertyDefaultValue("Threads"))
        return {"Threads": str(max(min_cpu_threads(), threads))}
    if name in GPU_PLATFORMS:
        return {"Precision": precision}
    return {}
