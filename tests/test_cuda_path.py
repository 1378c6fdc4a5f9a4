"""The CUDA path's decisions, checked on a CPU-only machine.

No GPU here: what a GPU machine would see is faked (torch reporting a GPU, OpenMM listing a CUDA
platform, a GPU count), and the tests check what our code decides from it: where the MACE module
is built, which platform Precision a GPU Context gets, where virial inputs go (which GPU each pool
worker uses: ``test_executors.py``). ``benchmarks/gpu_check.py`` checks the same path on a real GPU.
"""

from __future__ import annotations

import numpy as np
import openmm
import pytest
import torch  # noqa: F401  - before anything that may import openmmtorch
from openmm import app, unit

from openmm_physembed.chem.molecule import Molecule
from openmm_physembed.errors import PotentialError, SimulationError
from openmm_physembed.potentials import mace_force
from openmm_physembed.potentials.mace_force import add_mace_force, build_mace_module
from openmm_physembed.potentials.mace_module import mace_virial, module_device
from openmm_physembed.simulation import platforms
from openmm_physembed.testing import make_random_mace_model


@pytest.fixture(scope="module")
def model64(tmp_path_factory):
    return make_random_mace_model(tmp_path_factory.mktemp("cuda_path") / "random64.model", dtype="float64", seed=3,
                                  num_channels=8, max_L=0)


@pytest.fixture(scope="module")
def water():
    return Molecule.from_smiles("O", name="water")


def water_system(mol):
    top = app.Topology()
    res = top.addResidue("W", top.addChain())
    for s in mol.symbols:
        top.addAtom(s, app.Element.getBySymbol(s), res)
    system = openmm.System()
    for atom in top.atoms():
        system.addParticle(atom.element.mass)
    return system, top


def cpu_energy(system, positions_nm):
    context = openmm.Context(system, openmm.VerletIntegrator(1e-3), openmm.Platform.getPlatformByName("CPU"))
    context.setPositions(positions_nm)
    return context.getState(getEnergy=True).getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


# ---------------------------------------------------------------- where the module is built
def test_module_is_built_on_the_cpu_when_torch_sees_a_gpu(monkeypatch, model64, water):
    """A GPU in torch's view must not put the module on CUDA: a CPU Context could not run it.

    Here there is no CUDA driver, so any tensor sent to "cuda" would raise; the CPU Context's
    energy must equal the module's own, evaluated directly on the CPU.
    """
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    system, top = water_system(water)
    add_mace_force(system, top, model64, dtype="float64")
    module = build_mace_module(model64, water.atomic_numbers)
    assert module_device(module).type == "cpu"
    expected = float(module(torch.as_tensor(water.positions_nm)).detach())
    assert cpu_energy(system, water.positions_nm) == pytest.approx(expected, rel=1e-12)


def test_cueq_is_off_by_default_and_explicit_cueq_needs_cuda(monkeypatch, model64, water):
    """Even with cuEquivariance installed the TorchForce path never converts (it cannot be scripted)."""
    def no_conversion(*_):
        raise AssertionError("converted to cuEquivariance by default")

    monkeypatch.setattr(mace_force, "cueq_available", lambda: True)
    monkeypatch.setattr(mace_force, "_to_cueq", no_conversion)
    build_mace_module(model64, water.atomic_numbers)
    with pytest.raises(PotentialError, match="needs a CUDA device"):
        build_mace_module(model64, water.atomic_numbers, use_cueq=True)


# ---------------------------------------------------------------- the virial's inputs
class _RecordingModule(torch.nn.Module):
    """Stands in for a MACE module on another device: records what ``virial`` receives."""

    def __init__(self, device):
        super().__init__()
        self.register_buffer("node_attrs", torch.zeros((1, 1), device=device))
        self.seen = []

    def virial(self, positions, boxvectors=None):
        self.seen.append((positions.device, positions.dtype, None if boxvectors is None else boxvectors.device))
        return torch.eye(3, dtype=torch.float64)


def test_virial_inputs_go_to_the_module_device_as_float64():
    module = _RecordingModule("meta")  # a device that is not the CPU, present on every machine
    virial = mace_virial(module, np.zeros((4, 3), dtype=np.float32), np.eye(3))
    assert module.seen == [(torch.device("meta"), torch.float64, torch.device("meta"))]
    np.testing.assert_array_equal(virial, np.eye(3))


# ---------------------------------------------------------------- GPU Context precision
class _FakePlatform:
    def __init__(self, name):
        self.name, self.defaults = name, {}

    def getName(self):
        return self.name

    def setPropertyDefaultValue(self, key, value):
        self.defaults[key] = value

    def getPropertyDefaultValue(self, key):
        return self.defaults.get(key, "2")


@pytest.fixture
def fake_gpu_platforms(monkeypatch):
    made = {}

    def by_name(name):
        return made.setdefault(name, _FakePlatform(name))

    monkeypatch.setattr(platforms, "available_platforms", lambda: ["Reference", "CPU", "CUDA", "OpenCL"])
    monkeypatch.setattr(openmm.Platform, "getPlatformByName", staticmethod(by_name))
    monkeypatch.delenv("PHYSEMBED_PRECISION", raising=False)
    monkeypatch.delenv("PHYSEMBED_PLATFORM_PRECISION", raising=False)
    return monkeypatch


def test_gpu_contexts_get_mixed_platform_precision_as_a_property(fake_gpu_platforms):
    """The platform precision travels as a Context property; the shared Platform keeps its defaults."""
    chosen = platforms.choose_platform()
    assert chosen.getName() == "CUDA"
    assert platforms.platform_properties(chosen) == {"Precision": "mixed"}
    assert platforms.platform_properties(platforms.choose_platform("OpenCL")) == {"Precision": "mixed"}
    assert platforms.platform_properties(chosen, "double") == {"Precision": "double"}
    fake_gpu_platforms.setenv("PHYSEMBED_PLATFORM_PRECISION", "single")
    assert platforms.platform_properties(chosen) == {"Precision": "single"}
    fake_gpu_platforms.delenv("PHYSEMBED_PLATFORM_PRECISION")
    fake_gpu_platforms.setenv("PHYSEMBED_PRECISION", "double")  # the old name, still read
    with pytest.warns(DeprecationWarning, match="PHYSEMBED_PLATFORM_PRECISION"):
        assert platforms.platform_properties(chosen) == {"Precision": "double"}
    fake_gpu_platforms.delenv("PHYSEMBED_PRECISION")
    assert "Precision" not in platforms.platform_properties(platforms.choose_platform("CPU"))
    with pytest.raises(SimulationError, match="platform precision must be one of"):
        platforms.platform_properties(chosen, "half")
    with pytest.warns(DeprecationWarning, match="no longer changes the Platform"):
        platforms.choose_platform("CUDA", precision="double")
    for name in ("CUDA", "OpenCL", "CPU"):
        assert openmm.Platform.getPlatformByName(name).defaults == {}
