"""One answer per process to "which torch device" and "is cuEquivariance installed"."""

from __future__ import annotations

import importlib.util

import pytest

from openmm_physembed import torch_device

torch = pytest.importorskip("torch")


def test_hidden_gpus_mean_cpu_even_when_torch_sees_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for mask in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mask)
        assert torch_device.cuda_device_count() == 0 and torch_device.default_device() == "cpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    assert torch_device.cuda_device_count() == 2 and torch_device.default_device() == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert torch_device.default_device() == "cpu"


def test_resolve_device_keeps_an_explicit_choice_and_applies_the_callers_default(monkeypatch):
    monkeypatch.setattr(torch_device, "default_device", lambda: "cuda")
    assert torch_device.resolve_device("cpu") == "cpu"
    assert torch_device.resolve_device(torch.device("cuda", 1)) == "cuda:1"
    assert torch_device.resolve_device(None) == "cuda"
    assert torch_device.resolve_device(None, default="cpu") == "cpu"


def test_cueq_needs_both_packages(monkeypatch):
    real = importlib.util.find_spec

    def without(missing):
        return lambda name, *args: None if name == missing else (real(name, *args) or object())

    monkeypatch.setattr(importlib.util, "find_spec", without("nothing"))
    assert torch_device.cueq_available()
    for missing in ("cuequivariance", "cuequivariance_torch"):
        monkeypatch.setattr(importlib.util, "find_spec", without(missing))
        assert not torch_device.cueq_available()


def test_every_stage_asks_the_same_helpers():
    from openmm_physembed import executors
    from openmm_physembed.potentials import mace_force
    from openmm_physembed.training import mace_train

    assert mace_force.cueq_available is torch_device.cueq_available is mace_train.cueq_available
    assert mace_train.resolve_device is torch_device.resolve_device
    # The TorchForce module is built on the CPU unless told: openmm-torch's CPU kernel never moves it.
    assert mace_force._resolve_device(None) == "cpu" and mace_force._resolve_device("cuda:0") == "cuda:0"
    assert executors.gpu_count() == torch_device.cuda_device_count()


def test_torchscript_optimization_is_scoped_and_restored_on_error():
    previous = torch._C._get_graph_executor_optimize()
    for enabled in (True, False):
        with pytest.raises(RuntimeError, match="inside"):
            with torch_device.torchscript_optimization(enabled):
                assert torch._C._get_graph_executor_optimize() is enabled
                raise RuntimeError("inside")
        assert torch._C._get_graph_executor_optimize() is previous
