"""OpenMM forces: MACE as a TorchForce, the intermolecular CSO correction, CorrectedMACESystem."""
