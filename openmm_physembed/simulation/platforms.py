"""Platform choice: CUDA when a GPU is usable, else CPU (Reference for tiny systems)."""

from __future__ import annotations

from ..errors import SimulationError

MIN_CPU_THREADS = 2
SMALL_SYSTEM_ATOMS = 200  # below this OpenMM's Reference platform outruns CPU (measured: 48k vs 5k steps/s, 20 atoms)


def available_platforms() -> list[str]:
    import openmm

    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def choose_platform(name: str | None = None, n_atoms: int | None = None, has_torch_force: bool = False):
    """The OpenMM Platform to use.

    ``name`` forces a platform (``CUDA``, ``OpenCL``, ``CPU``, ``Reference``); ``None`` picks CUDA
    if present, otherwise CPU, or Reference for classical systems under 200 atoms.
    """
    import openmm

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
        # One thread is a trap in OpenMM 8.6.1: a CustomNonbondedForce then runs ~12x slower once a
        # second one (the CSO long-range correction) has been evaluated; see executors.share_cores.
        threads = int(platform.getPropertyDefaultValue("Threads"))
        platform.setPropertyDefaultValue("Threads", str(max(MIN_CPU_THREADS, threads)))
    return platform
