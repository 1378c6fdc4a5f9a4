"""Green-Kubo shear viscosity: NVT replicas, the pressure tensor, and the two estimators.

Modules: :mod:`.workflow` (NPT frames, NVT replicas on any Executor, :class:`ViscosityProtocol`,
:class:`ViscosityResult`), :mod:`.pressure` (pressure-tensor providers: exact MACE virial,
finite differences), :mod:`.greenkubo` (pure estimators: STACIE, time decomposition),
:mod:`.plots`, :mod:`.commands` (CLI).
"""

from .workflow import (
    GreenKuboAnalysis,
    PressureTensorReporter,
    ViscosityProtocol,
    ViscosityResult,
    analyze_viscosity,
    run_npt_frames,
    run_viscosity,
    run_viscosity_replica,
)

__all__ = ["GreenKuboAnalysis", "PressureTensorReporter", "ViscosityProtocol", "ViscosityResult", "analyze_viscosity",
           "run_npt_frames", "run_viscosity", "run_viscosity_replica"]
