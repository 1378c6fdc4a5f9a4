"""Workarounds for bugs of the peers this package runs on, each behind a version check.

Every entry names the distribution, the last version verified to have the problem, the problem,
and what the project does instead. A newer release switches the workaround off by itself
(:meth:`Workaround.active`); once the pinned versions have moved past an entry, delete it and the
branch that asks for it. The places that ask: the platform and pool setup (CPU threads), the
System serialiser and ``add_mace_force`` (TorchForce XML), ``import_openmmtorch`` (plugin load
order) and the cuEquivariance conversion (torch's default dtype).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Workaround:
    distribution: str  # the pip name of the peer
    affected_up_to: str  # the newest version verified to have the problem
    problem: str
    remedy: str

    def active(self) -> bool:
        """True when the installed version is one known to be affected (or older)."""
        installed = installed_version(self.distribution)
        return installed is None or _version(installed) <= _version(self.affected_up_to)


CPU_SINGLE_THREAD = Workaround(
    "openmm", "8.6.1",
    problem="With one CPU thread (or two threads sharing a core) a CustomNonbondedForce runs ~12x slower once "
            "a second CustomNonbondedForce of the System has been evaluated (225 vs 19 ms for the 1050-atom "
            "EMC CSO term; two threads: 19 ms either way).",
    remedy="CPU platforms and pool workers get at least two OpenMM threads (min_cpu_threads), pools one worker "
           "per two cores (executors.default_workers, share_cores).")

TORCHFORCE_XML = Workaround(
    "openmmtorch", "1.5",
    problem="Deserialising a System whose XML holds a TorchForce segfaults in TorchForceProxy (serialising "
            "works; the crash is in SerializationNode::getStringProperty against OpenMM 8.6.1). So does "
            "copy.deepcopy of a TorchForce, and a CustomCVForce with a TorchForce collective variable, which "
            "copies it through XML for its inner Context (openmm-ml's createMixedSystem(interpolate=True)).",
    remedy="Systems travel as XML without their TorchForce plus the add_mace_force arguments that rebuild it "
           "(simulation/liquid_setup.py); deserialize_system refuses XML with a TorchForce; a MACE force that "
           "will be copied (add_mace_force on an empty System, as openmm-ml's interpolation hands it) is an "
           "openmm.PythonForce running the same scripted module (potentials/mace_python_force.py).")

OPENMMTORCH_PLUGIN_ORDER = Workaround(
    "openmmtorch", "1.5",
    problem="The openmm-torch kernel plugins link against libraries that only `import torch` makes resolvable "
            "(e.g. libnvrtc). When openmm is imported before torch, OpenMM's plugin loader fails to open them, "
            "and a Context with a TorchForce fails with 'does not support all required kernels'.",
    remedy="potentials.mace_force.import_openmmtorch imports torch first and then loads the OpenMMTorch plugins "
           "that failed once more (reload_failed_torch_plugins).")

MACE_CUEQ_DEFAULT_DTYPE = Workaround(
    "mace-torch", "0.3.16",
    problem="mace.cli.convert_e3nn_cueq.run sets torch's process-wide default dtype to the model's and leaves "
            "it so, which changes every tensor created afterwards.",
    remedy="The conversion runs inside keep_torch_default_dtype(), which restores the previous default.")

WORKAROUNDS = (CPU_SINGLE_THREAD, TORCHFORCE_XML, OPENMMTORCH_PLUGIN_ORDER, MACE_CUEQ_DEFAULT_DTYPE)


def min_cpu_threads() -> int:
    """The fewest OpenMM CPU threads a Context may get (see :data:`CPU_SINGLE_THREAD`)."""
    return 2 if CPU_SINGLE_THREAD.active() else 1


_TORCH_PLUGINS_RELOADED = False


def reload_failed_torch_plugins() -> None:
    """Load the OpenMMTorch plugins OpenMM failed to open before torch was imported, once per process
    (see :data:`OPENMMTORCH_PLUGIN_ORDER`); call it after ``import torch``."""
    global _TORCH_PLUGINS_RELOADED
    if _TORCH_PLUGINS_RELOADED or not OPENMMTORCH_PLUGIN_ORDER.active():
        return
    import re

    import openmm

    _TORCH_PLUGINS_RELOADED = True
    for failure in openmm.Platform.getPluginLoadFailures():
        match = re.search(r"Error loading library (\S*OpenMMTorch\S*?):", failure)
        if match:
            try:
                openmm.Platform.loadPluginLibrary(match.group(1))
            except Exception:  # noqa: BLE001 - e.g. the OpenCL plugin without libOpenCL: not needed
                pass


@contextmanager
def keep_torch_default_dtype():
    """Restore torch's default dtype on exit (see :data:`MACE_CUEQ_DEFAULT_DTYPE`)."""
    if not MACE_CUEQ_DEFAULT_DTYPE.active():
        yield
        return
    import torch

    previous = torch.get_default_dtype()
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@lru_cache(maxsize=None)
def installed_version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _version(text: str):
    from packaging.version import Version

    return Version(text)
