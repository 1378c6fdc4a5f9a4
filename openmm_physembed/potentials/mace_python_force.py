"""MACE as an ``openmm.PythonForce``: the copyable stand-in for a TorchForce.

While :data:`~openmm_physembed.workarounds.TORCHFORCE_XML` is active, a TorchForce that OpenMM
copies through XML (a ``CustomCVForce`` collective variable, ``copy.deepcopy``) crashes the
process, so :func:`.mace_force.add_mace_force` makes a force that will be copied a PythonForce
running the same scripted module. Delete this module with that workaround.
"""

from __future__ import annotations

import numpy as np


class MACEPythonComputation:
    """``openmm.PythonForce`` callback: (energy kJ/mol, forces kJ/mol/nm) of the modelled atoms.

    Runs a scripted module from :func:`.mace_force.build_mace_module` (built for the modelled
    atoms alone; the PythonForce's ``setParticles`` hands over their positions) through its
    ``energy_and_forces`` method, so the numbers are the TorchForce's. Pickles as the module's
    TorchScript bytes: OpenMM pickles the callback whenever it copies the force.
    """

    def __init__(self, module) -> None:
        self.module = module

    def __call__(self, state):
        import torch
        from openmm import unit

        from .mace_module import module_device

        device = module_device(self.module)
        positions = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        positions = torch.from_numpy(np.asarray(positions, dtype=np.float64))
        box = None
        if self.module.periodic:
            box = state.getPeriodicBoxVectors(asNumpy=True).value_in_unit(unit.nanometer)
            box = torch.from_numpy(np.asarray(box, dtype=np.float64)).to(device)
        energy, forces = self.module.energy_and_forces(positions.to(device), box)
        return float(energy), forces.detach().to("cpu", torch.float64).numpy()

    def __getstate__(self) -> dict:
        import io

        import torch

        from .mace_module import module_device

        buffer = io.BytesIO()
        torch.jit.save(self.module, buffer)
        return {"module": buffer.getvalue(), "device": str(module_device(self.module))}

    def __setstate__(self, state: dict) -> None:
        import io

        import torch
        import vesin_torch  # noqa: F401  - registers the neighbour-list class the module holds

        self.module = torch.jit.load(io.BytesIO(state["module"]), map_location=state["device"])


def add_mace_python_force(system, module, particles, periodic: bool, force_group: int):
    """Add ``module`` (built for ``particles`` alone) to ``system`` as a PythonForce named "MACE"."""
    import openmm

    force = openmm.PythonForce(MACEPythonComputation(module))
    force.setParticles(list(particles))
    force.setUsesPeriodicBoundaryConditions(bool(periodic))
    force.setForceGroup(int(force_group))
    force.setName("MACE")
    system.addForce(force)
    return force
