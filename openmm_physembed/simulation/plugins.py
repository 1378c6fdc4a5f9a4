"""Loading OpenMM plugins a serialized System may need before it is deserialized."""

from __future__ import annotations


def load_plugins_for(system_xml: str) -> None:
    """Import openmm-torch (torch first: its wheel links against torch's libraries) if needed."""
    if "TorchForce" in system_xml:
        import torch  # noqa: F401  - must precede openmmtorch
        import openmmtorch  # noqa: F401


def deserialize_system(system_xml: str):
    import openmm

    load_plugins_for(system_xml)
    return openmm.XmlSerializer.deserialize(system_xml)
