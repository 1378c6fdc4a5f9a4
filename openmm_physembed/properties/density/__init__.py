"""NPT density and the CSO a1 fit: runs, estimators, reweighting, transfer and the Fig. 5 check.

Modules: :mod:`.npt` (resumable NPT run, :class:`NPTProtocol`, :class:`DensityResult`),
:mod:`.estimators` (pure functions: production window, means, fluctuation derivative, MBAR),
:mod:`.a1_fit` (scan and reweighting fit), :mod:`.transfer` (Table 1), :mod:`.tasks` (Executor
jobs), :mod:`.volume_scan` (Fig. 5), :mod:`.wall_time`, :mod:`.plots`, :mod:`.commands` (CLI).
"""

from .npt import DensityResult, NPTProtocol, load_density_result, run_density, run_npt

__all__ = ["DensityResult", "NPTProtocol", "load_density_result", "run_density", "run_npt"]
