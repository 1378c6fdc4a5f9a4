"""Building the liquid an NPT or NVT run needs: box + base potential (GAFF or MACE) + CSO.

The base is GAFF when no model file is given (cheap, for testing the workflow and for the
CPU benchmark), otherwise the MACE model through :class:`CorrectedMACESystem`. Either way the
intermolecular CSO term carries the global parameters ``alpha`` and ``a1``; ``alpha = 0``
turns the correction off without changing the System. Its values have no default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..chem.box import build_box
from ..chem.molecule import Molecule
from ..simulation.liquid_setup import LiquidSetup
from .experimental import ExperimentalLiquid


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

    def pack(self, charge_method: str = "bcc", cache_dir: str | Path | None = None):
        """The packed, GAFF-parameterised :class:`~openmm_physembed.chem.box.LiquidBox`."""
        molecules = [Molecule.from_any(c) for c in self.components]
        return build_box(molecules, counts=self.counts, mass_fractions=self.mass_fractions,
                         n_molecules=self.n_molecules, density_g_cm3=self.packing_density_g_cm3, seed=self.seed,
                         charge_method=charge_method, cache_dir=cache_dir)


def build_liquid_setup(spec: LiquidSpec, model_path: str | Path | None = None, alpha: float | None = None,
                       a1: float | None = None, s6: float | None = None, cso_cutoff_nm: float = 1.2,
                       cso_switch_nm: float | None = None, gaff_cutoff_nm: float = 1.0, charge_method: str = "bcc",
                       dtype: str | None = None, label: str | None = None, *, correction=None,
                       force_correction: bool = False) -> LiquidSetup:
    """Pack the box and build base + CSO; returns a picklable :class:`LiquidSetup`.

    The CSO term is always in the System, so that runs can switch it on by parameters; its values
    are the caller's choice and never a default: ``alpha`` and ``a1`` (``s6`` defaults to 1), or
    ``correction`` (a published name or a ``physembed fit-a1`` file, checked against
    ``model_path``; see :func:`~openmm_physembed.potentials.correction_choice.choose_correction`).
    Neither, or ``alpha = 0`` alone, builds it switched off (alpha = 0).
    ``cso_switch_nm`` switches the CSO smoothly off between it and the cutoff (continuous energy:
    better energy conservation and a pressure tensor free of cutoff-crossing noise). ``dtype``
    is the MACE precision (``"single"``/``"double"`` also accepted; default the model file's own).
    """
    from ..potentials.correction_choice import CSOCorrection, choose_correction

    if correction is None and a1 is None and not alpha and s6 is None:
        chosen = CSOCorrection(0.0, 0.0, 1.0, source="off")  # a1 has no effect at alpha = 0
    else:
        chosen = choose_correction(correction, alpha=alpha, a1=a1, s6=s6, model_path=model_path,
                                   force=force_correction)
    box = spec.pack(charge_method)
    label = label or "+".join(m.name for m in box.molecules)
    values = {"alpha": chosen.alpha, "a1": chosen.a1, "s6": chosen.s6}
    if model_path is None:
        from ..potentials.cso import add_cso_correction

        system = box.create_system(nonbonded_cutoff_nm=gaff_cutoff_nm)
        add_cso_correction(system, box.topology, box.positions_nm, cutoff_nm=cso_cutoff_nm,
                           switch_distance_nm=cso_switch_nm, **values)
    else:
        from ..potentials.corrected_system import CorrectedMACESystem

        corrected = CorrectedMACESystem(model_path, box.topology, box.positions_nm, cutoff_nm=cso_cutoff_nm,
                                        switch_distance_nm=cso_switch_nm, dtype=dtype, **values)
        return LiquidSetup.from_corrected(corrected, box.box_vectors_nm, label=label)
    return LiquidSetup.from_system(system, box.topology, box.positions_nm, box.box_vectors_nm, label=label)
