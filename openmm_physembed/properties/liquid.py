"""Building the liquid an NPT or NVT run needs: box + base potential (GAFF or MACE) + CSO.

The base is GAFF when no model file is given (cheap, for testing the workflow and for the
CPU benchmark), otherwise the MACE model through :class:`CorrectedMACESystem`. Either way the
intermolecular CSO term carries the global parameters ``alpha`` and ``a1``; ``alpha = 0``
turns the correction off without changing the System.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..chem.box import build_box
from ..chem.molecule import Molecule
from .experimental import ExperimentalLiquid
from .tasks import LiquidSetup


@dataclass(frozen=True)
class LiquidSpec:
    """What liquid to build: components with counts or mass fractions, and a packing density."""

    components: tuple[str, ...]
    counts: tuple[int, ...] | None = None
    mass_fractions: tuple[float, ...] | None = None
    n_molecules: int | None = None
    packing_density_g_cm3: float = 1.0
    seed: int = 1

    @classmethod
    def from_experiment(cls, row: ExperimentalLiquid, n_molecules: int, seed: int = 1) -> "LiquidSpec":
        if len(row.components) == 1:
            return cls(row.components, counts=(n_molecules,), packing_density_g_cm3=row.density_g_cm3 or 1.0,
                       seed=seed)
        return cls(row.components, mass_fractions=row.mass_fractions, n_molecules=n_molecules,
                   packing_density_g_cm3=row.density_g_cm3 or 1.0, seed=seed)


def build_liquid_setup(spec: LiquidSpec, model_path: str | Path | None = None, alpha: float = 0.0,
                       a1: float = 1.0, s6: float = 1.0, cso_cutoff_nm: float = 1.2,
                       cso_switch_nm: float | None = None, gaff_cutoff_nm: float = 1.0, charge_method: str = "bcc", dtype: str = "float64",
                       label: str | None = None) -> LiquidSetup:
    """Pack the box and build base + CSO; returns a picklable :class:`LiquidSetup`.

    ``cso_switch_nm`` switches the CSO smoothly off between it and the cutoff (continuous energy:
    better energy conservation and a pressure tensor free of cutoff-crossing noise).
    """
    molecules: Sequence[Molecule] = [Molecule.from_any(c) for c in spec.components]
    box = build_box(molecules, counts=spec.counts, mass_fractions=spec.mass_fractions,
                    n_molecules=spec.n_molecules, density_g_cm3=spec.packing_density_g_cm3, seed=spec.seed,
                    charge_method=charge_method)
    label = label or "+".join(m.name for m in molecules)
    if model_path is None:
        from ..potentials.cso import add_cso_correction

        system = box.create_system(nonbonded_cutoff_nm=gaff_cutoff_nm)
        add_cso_correction(system, box.topology, box.positions_nm, alpha=alpha, a1=a1, s6=s6,
                           cutoff_nm=cso_cutoff_nm, switch_distance_nm=cso_switch_nm)
    else:
        from ..potentials.corrected import CorrectedMACESystem

        corrected = CorrectedMACESystem(model_path, box.topology, box.positions_nm, alpha=alpha, a1=a1, s6=s6,
                                        cutoff_nm=cso_cutoff_nm, switch_distance_nm=cso_switch_nm, dtype=dtype)
        return LiquidSetup.from_corrected(corrected, box.box_vectors_nm, label=label)
    return LiquidSetup.from_system(system, box.topology, box.positions_nm, box.box_vectors_nm, label=label)
