"""MACE hyperparameter presets, expressed as ``mace_run_train`` options (mace-torch 0.3.16).

``paper`` and ``paper-liquid`` are the settings of the physical-embedding paper (Methods):

- single molecules (Novec7000, Ac-Ala3-NHMe, paracetamol): node features 256, max L 3,
  weighted energy/force loss 1/100, batch 10, Adam, learning rate 1e-2;
- EC/EMC liquid: node features 64, max L 2, energy/force/stress weights 1/100/100, SWA
  ("Stage Two" in mace-torch) from 75% of the epochs with weights 100/1/1000, batch 32, Adam,
  learning rate 1e-2.

What the paper does not state is mace-torch's default (r_max 5 Angstrom, 2 interactions,
correlation 3, 8 Bessel functions, AMSGrad variant of Adam, ReduceLROnPlateau), except the
number of epochs, which is our choice (``max_num_epochs`` below), and the model class:
``ScaleShiftMACE`` with the training set's mean interaction energy per atom as shift (with
``--model MACE`` mace-torch 0.3.16 also builds a ``ScaleShiftMACE`` but with zero shift, which
with isolated-atom E0s leaves several eV per atom for the network to learn first). Both save a
``ScaleShiftMACE``, the class openmm-ml and our TorchForce read ``interaction_energy`` from.

``quick`` is a small model for tests and demos: it trains in about 10-20 s on 20-30 small
molecules on 2 CPU cores.

The liquid presets need stress labels (``REF_stress``, eV/Angstrom^3) from a periodic
reference: ``physembed liquid-dataset`` (or ``physembed label --periodic``, GFN2-xTB through
tblite) makes them. ``cpu-liquid`` is ``paper-liquid``'s recipe (stress in the loss, SWA from 75 %
of the epochs with the paper's weights) with a model and an epoch count that train on the
default ``liquid-dataset`` (80 training boxes of 160 atoms) in about 15 minutes on 2 CPU cores
(25 s per epoch; max L 1 took 68 s per epoch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

# Options every preset shares: the data keys our labeller writes and the model class.
_COMMON: dict[str, Any] = {
    "model": "ScaleShiftMACE",
    "energy_key": "REF_energy",
    "forces_key": "REF_forces",
    "loss": "weighted",
    "optimizer": "adam",
    "lr": 0.01,
    "default_dtype": "float64",
    "r_max": 5.0,
    "num_interactions": 2,
    "error_table": "PerAtomRMSE",
    "eval_interval": 1,
    "plot": False,  # we draw our own learning curve
}


# The converged-on-a-CPU small model; the cpu preset is the same recipe with a cheaper architecture.
_SMALL: dict[str, Any] = {
    **_COMMON, "num_channels": 32, "max_L": 1, "correlation": 2, "energy_weight": 1.0, "forces_weight": 100.0,
    "batch_size": 5, "valid_batch_size": 10, "max_num_epochs": 150, "ema": True, "ema_decay": 0.99}


# The paper's liquid loss: E/F/stress 1/100/100, then SWA ("Stage Two") with 100/1/1000.
_LIQUID: dict[str, Any] = {
    **_COMMON, "loss": "stress", "stress_key": "REF_stress", "compute_stress": True, "energy_weight": 1.0,
    "forces_weight": 100.0, "stress_weight": 100.0, "swa": True, "swa_energy_weight": 100.0,
    "swa_forces_weight": 1.0, "swa_stress_weight": 1000.0, "error_table": "PerAtomRMSEstressvirials"}


@dataclass(frozen=True)
class TrainingPreset:
    """A named set of ``mace_run_train`` options (names without the leading ``--``)."""

    name: str
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    def with_overrides(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The options with ``overrides`` applied; an override of ``None`` removes an option."""
        options = dict(self.options)
        for key, value in (overrides or {}).items():
            key = key.lstrip("-").replace("-", "_")
            if value is None:
                options.pop(key, None)
            else:
                options[key] = value
        return options

    @property
    def uses_swa(self) -> bool:
        return bool(self.options.get("swa", False))


TRAINING_PRESETS: dict[str, TrainingPreset] = {
    "paper": TrainingPreset(
        "paper",
        "single molecules, paper Methods: 256 channels, max L 3, E/F weights 1/100, batch 10, Adam, lr 1e-2",
        {**_COMMON, "num_channels": 256, "max_L": 3, "correlation": 3, "energy_weight": 1.0,
         "forces_weight": 100.0, "batch_size": 10, "valid_batch_size": 10, "max_num_epochs": 1000},
    ),
    "paper-liquid": TrainingPreset(
        "paper-liquid",
        "liquids, paper Methods: 64 channels, max L 2, E/F/stress 1/100/100, batch 32, SWA from 75% "
        "of epochs with 100/1/1000, Adam, lr 1e-2 (needs REF_stress)",
        {**_LIQUID, "num_channels": 64, "max_L": 2, "correlation": 3, "batch_size": 32, "valid_batch_size": 32,
         "max_num_epochs": 1000},
        # start_swa is left to mace-torch, whose default is max_num_epochs // 4 * 3 (75%).
    ),
    "cpu-liquid": TrainingPreset(
        "cpu-liquid",
        "paper-liquid's recipe at CPU size (16 channels, max L 0, correlation 2, batch 4, 30 epochs, SWA from "
        "75%; ~15-20 min on 2 CPU cores for 80 160-atom boxes)",
        {**_LIQUID, "num_channels": 16, "max_L": 0, "correlation": 2, "batch_size": 4, "valid_batch_size": 10,
         "max_num_epochs": 30},
    ),
    "quick": TrainingPreset(
        "quick",
        "tiny model for tests and demos (16 channels, max L 1, correlation 2, 30 epochs; ~15 s on 2 CPU cores)",
        {**_COMMON, "num_channels": 16, "max_L": 1, "correlation": 2, "energy_weight": 1.0,
         "forces_weight": 100.0, "batch_size": 5, "valid_batch_size": 10, "max_num_epochs": 30},
    ),
    "small": TrainingPreset(
        "small",
        "small model trained to convergence on a CPU (32 channels, max L 1, correlation 2, 150 epochs, "
        "EMA; ~2 min for 50 small molecules on 2 CPU cores): the stability benchmark's quick preset",
        _SMALL,
    ),
    "cpu": TrainingPreset(
        "cpu",
        "invariant-feature MACE for CPU stability runs (16 channels, max L 0, correlation 2, 200 epochs, EMA; "
        "~3x cheaper per MD step than 'small', measured in benchmarks/results/stability_throughput.json)",
        {**_SMALL, "num_channels": 16, "max_L": 0, "max_num_epochs": 200},
    ),
}


def get_preset(preset: str | TrainingPreset) -> TrainingPreset:
    if isinstance(preset, TrainingPreset):
        return preset
    try:
        return TRAINING_PRESETS[preset]
    except KeyError:
        from ..errors import TrainingError

        raise TrainingError(f"unknown training preset {preset!r}; choose one of {sorted(TRAINING_PRESETS)}") from None
