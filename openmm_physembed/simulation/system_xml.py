"""System XML for Systems with plugin forces: serialised without the TorchForce, refused back with one.

While :data:`openmm_physembed.workarounds.TORCHFORCE_XML` is active, a System with a MACE
TorchForce travels as XML *without* its TorchForce plus the arguments that rebuild it
(:class:`~.liquid_setup.LiquidSetup` does this), and nothing here deserialises a TorchForce.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree

from ..errors import SimulationError


def is_torch_force(force) -> bool:
    """True for an openmm-torch TorchForce (the System hands plugin forces back as plain ``Force``)."""
    if type(force).__name__ == "TorchForce":
        return True
    module = sys.modules.get("openmmtorch")
    return bool(module is not None and module.TorchForce.isinstance(force))


def has_torch_force(system) -> bool:
    return any(is_torch_force(f) for f in system.getForces())


def serialize_without_torch_forces(system) -> tuple[str, list[int]]:
    """System XML with every TorchForce element removed, and the force groups those had."""
    import openmm

    root = ElementTree.fromstring(openmm.XmlSerializer.serialize(system))
    forces = root.find("Forces")
    groups = []
    for element in list(forces):
        if element.get("type") == "TorchForce":
            groups.append(int(element.get("forceGroup", "0")))
            forces.remove(element)
    return ElementTree.tostring(root, encoding="unicode"), groups


def deserialize_system(system_xml: str):
    import openmm

    from ..workarounds import TORCHFORCE_XML

    if 'type="TorchForce"' in system_xml and TORCHFORCE_XML.active():
        raise SimulationError(
            "this System XML contains a TorchForce, which openmm-torch 1.5 cannot deserialise (it crashes); "
            "rebuild the MACE force with add_mace_force instead"
        )
    return openmm.XmlSerializer.deserialize(system_xml)
