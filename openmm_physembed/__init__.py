"""openmm_physembed: stable, experimentally corrected MACE force fields for organic systems in OpenMM.

Importing the package does no work: every public name below is resolved on first use
(module ``__getattr__``), so ``import openmm_physembed`` does not load torch, OpenMM or RDKit.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # chem
    "Molecule": "openmm_physembed.chem.molecule",
    "parameterize": "openmm_physembed.chem.gaff",
    "build_box": "openmm_physembed.chem.box",
    "get_bond_typing": "openmm_physembed.chem.bond_typing",
    # sampling
    "run_gas_phase_md": "openmm_physembed.sampling.reference_md",
    "run_liquid_npt": "openmm_physembed.sampling.reference_md",
    "GasPhaseMDProtocol": "openmm_physembed.sampling.reference_md",
    "augment_frames": "openmm_physembed.sampling.bond_sampling",
    "BondSamplingParameters": "openmm_physembed.sampling.bond_parameters",
    "run_augmentation": "openmm_physembed.sampling.augment",
    # labelling / training
    "label_structures": "openmm_physembed.labelling.labeller",
    "make_liquid_dataset": "openmm_physembed.labelling.liquid_dataset",
    "make_combined_liquid_dataset": "openmm_physembed.labelling.combined_dataset",
    "LiquidDatasetPart": "openmm_physembed.labelling.combined_dataset",
    "compute_e0s": "openmm_physembed.labelling.labeller",
    "train_mace": "openmm_physembed.training.mace_train",
    # potentials
    "add_mace_force": "openmm_physembed.potentials.mace_force",
    "add_cso_correction": "openmm_physembed.potentials.cso",
    "CorrectedMACESystem": "openmm_physembed.potentials.corrected_system",
    # properties
    "LiquidSpec": "openmm_physembed.properties.liquid",
    "build_liquid_setup": "openmm_physembed.properties.liquid",
    "LiquidSetup": "openmm_physembed.simulation.liquid_setup",
    "NPTProtocol": "openmm_physembed.properties.density.npt",
    "run_npt": "openmm_physembed.properties.density.npt",
    "scan_a1": "openmm_physembed.properties.density.a1_fit",
    "fit_a1_reweighting": "openmm_physembed.properties.density.a1_fit",
    "ViscosityProtocol": "openmm_physembed.properties.viscosity.workflow",
    "run_viscosity": "openmm_physembed.properties.viscosity.workflow",
    "run_npt_frames": "openmm_physembed.properties.viscosity.workflow",
    "create_pressure_provider": "openmm_physembed.properties.viscosity.pressure",
    # stability
    "StabilityProtocol": "openmm_physembed.stability.protocol",
    "run_stability": "openmm_physembed.stability.pipeline",
    # execution
    "make_executor": "openmm_physembed.executors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'openmm_physembed' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
