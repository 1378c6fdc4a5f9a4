"""The intermolecular CSO dispersion correction as an OpenMM force.

The physics-embedded top-down correction of the paper is ``E = E_MLFF + alpha * E_CSO`` with the
C6-only dispersion term of Schröder, Creon and Schwabe (J. Chem. Theory Comput. 11, 3163 (2015))
summed over *intermolecular* atom pairs only:

    E_CSO = - sum_{A<B, different molecules} [s6 + a1 / (1 + exp((R_AB - a2 R0_AB) / bohr))]
                                              C6_AB / (R_AB^6 + a4^6)

a2 = 2.5, a4 = 6.25 bohr; R0_AB = sqrt(3 Q_A Q_B) and C6_AB from D3 (:mod:`.d3`), C6 at each
atom's coordination number frozen at the molecule's reference geometry.

OpenMM implementation: one ``CustomNonbondedForce`` whose particles carry a class index
(class = element + frozen coordination number); C6 is a ``Discrete2DFunction`` table over class
pairs, and a2*R0 = b_A b_B is folded into a per-particle factor b (R0_AB = sqrt(3 Q_A Q_B) is
separable); ``alpha``, ``a1`` and ``s6`` are global parameters (change them in a live
Context with ``context.setParameter``), and ``alpha`` and ``a1`` are registered for energy
parameter derivatives (``state.getEnergyParameterDerivatives()['a1']``, which the density fit
uses). Every intramolecular pair is excluded. Periodic systems use a cutoff (default 1.2 nm)
with a long-range correction over the intermolecular pairs, carried by a separate one-pair force
(``CSOLongRangeCorrection``, see ``_long_range_force``): OpenMM's own correction would count every
pair, intramolecular ones included, and OpenMM 8.6.1's CPU platform re-integrates it on every
step; non-periodic ones use no cutoff, so clusters get the exact pair sum.

OpenMM's CPU and GPU platforms demand that every nonbonded force of a System share one exclusion
list. When the System already has a ``NonbondedForce`` or ``CustomNonbondedForce`` (a GAFF base),
the CSO force copies that force's exclusions, and a ``CustomBondForce`` in the same force group
cancels the intramolecular pairs the copy leaves in (1-5 and further) and restores any excluded
intermolecular pair, so the total is still the intermolecular sum.
"""

from .forces import (
    SIGMOID_EXPONENT_CAP,
    add_cso_correction,
    cso_forces,
    long_range_correction_kj_mol,
)
from .parameters import (
    CSO_A2,
    CSO_A4_BOHR,
    DEFAULT_CN_TOLERANCE,
    DEFAULT_CUTOFF_NM,
    DERIVATIVE_PARAMETERS,
    GLOBAL_PARAMETERS,
    CSOParameters,
    cso_parameters,
    length_nm,
    molecule_index_from_topology,
)
from .reference import cso_energy_reference

__all__ = [
    "CSO_A2", "CSO_A4_BOHR", "DEFAULT_CN_TOLERANCE", "DEFAULT_CUTOFF_NM", "DERIVATIVE_PARAMETERS",
    "GLOBAL_PARAMETERS", "SIGMOID_EXPONENT_CAP", "CSOParameters", "add_cso_correction", "cso_energy_reference",
    "cso_forces", "cso_parameters", "length_nm", "long_range_correction_kj_mol", "molecule_index_from_topology",
]
