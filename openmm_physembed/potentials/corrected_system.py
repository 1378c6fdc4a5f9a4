"""``CorrectedMACESystem``: a MACE model plus the intermolecular CSO correction in one OpenMM System.

``E = E_MACE + alpha * E_CSO`` (the paper's top-down correction). The MACE part is a TorchForce
(:func:`.mace_force.add_mace_force`), the CSO part the forces of :func:`.cso.add_cso_correction`
in a force group of their own, with ``alpha``, ``a1`` and ``s6`` as global parameters that a
live Context can change (``set_a1``, ``set_alpha``) and ``dE/da1``, ``dE/dalpha`` available from
``state.getEnergyParameterDerivatives()``.

Any MACE model file works, e.g. one trained with :func:`~openmm_physembed.train_mace` or a
foundation model such as MACE-OFF23(S) that the user downloaded; the toolkit never downloads.
(alpha, a1) have no default: each pair belongs to one model file (:mod:`.correction_choice`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import PotentialError
from .correction_choice import choose_correction
from .cso import (
    CSO_A2,
    CSO_A4_BOHR,
    DEFAULT_CUTOFF_NM,
    DERIVATIVE_PARAMETERS,
    add_cso_correction,
    cso_forces,
    length_nm,
)


class CorrectedMACESystem:
    """An OpenMM System with a MACE TorchForce and the intermolecular CSO correction.

    Parameters
    ----------
    model_path
        MACE model file (``torch.save``'d model as ``mace_run_train`` writes, or a foundation
        model file such as ``MACE-OFF23_small.model``).
    topology
        OpenMM Topology: elements, bonds/residues (molecules) and, for liquids, box vectors.
    positions_nm
        Positions (nm); each molecule's geometry in isolation fixes the D3 coordination numbers.
    correction
        Where (alpha, a1, s6) come from when not given explicitly: a published name
        (``"mace-off23-small"``, ``"mace-ec-emc"``: :data:`~.correction_choice.PUBLISHED_CORRECTIONS`,
        warns that it belongs to that model file) or a file written by ``physembed fit-a1``
        (refused when fitted for another model file unless ``force_correction``).
    alpha, a1, s6
        Explicit initial CSO global parameters instead of ``correction`` (``s6`` defaults to 1).
        One of the two ways is required: there is no default pair.
    cutoff_nm
        CSO cutoff for periodic systems (long-range correction beyond it); nm or a Quantity.
    dtype, precision
        MACE precision: ``"float64"``/``"double"`` or ``"float32"``/``"single"``; default the
        model file's own, as :func:`.mace_force.add_mace_force` and ``MLPotential('physembed-mace')``.
    cso_force_group
        Force group of the CSO forces; default the lowest one the MACE force does not use.
    molecule_index, reference_positions_nm, switch_distance_nm, long_range_correction, parameter_derivatives
        Passed to :func:`.cso.add_cso_correction` (``parameter_derivatives=()`` makes the CSO
        2-3x cheaper on the CPU platform when dE/da1 is not needed).
    **mace_kwargs
        Passed to :func:`.mace_force.add_mace_force` (``device``, ``force_group``, ...).

    Attributes
    ----------
    system
        The plain ``openmm.System`` (MACE TorchForce + CSO forces + a zero-energy bond list that
        tells a barostat the molecules).
    topology, positions_nm, mace_force, cso_force
    correction
        The :class:`~.correction_choice.CSOCorrection` used (values and where they came from).

    Examples
    --------
    >>> corrected = CorrectedMACESystem("MACE-OFF23_small.model", box.topology, box.positions_nm,
    ...                                 correction="mace-off23-small", precision="single")  # doctest: +SKIP
    """

    def __init__(self, model_path, topology, positions_nm, *, correction=None, alpha: float | None = None,
                 a1: float | None = None, s6: float | None = None, force_correction: bool = False,
                 cutoff_nm: float = DEFAULT_CUTOFF_NM, dtype: str | None = None, precision: str | None = None,
                 cso_force_group: int | None = None, molecule_index=None, reference_positions_nm=None,
                 switch_distance_nm: float | None = None, long_range_correction: bool = True,
                 a2: float = CSO_A2, a4_bohr: float = CSO_A4_BOHR,
                 parameter_derivatives: Sequence[str] = DERIVATIVE_PARAMETERS, **mace_kwargs):
        import openmm

        from .mace_model import resolve_dtype

        model_path = Path(model_path)
        if not model_path.is_file():
            raise PotentialError(
                f"MACE model file {str(model_path)!r} does not exist; train one (physembed train) "
                "or download a foundation model (e.g. MACE-OFF23_small.model) yourself and pass its path"
            )
        self.correction = choose_correction(correction, alpha=alpha, a1=a1, s6=s6, model_path=model_path,
                                            force=force_correction)
        dtype = resolve_dtype(dtype, precision)
        n_atoms = topology.getNumAtoms()
        positions = _positions_nm(positions_nm, n_atoms)

        system = openmm.System()
        for atom in topology.atoms():
            if atom.element is None:
                raise PotentialError(f"atom {atom.index} ({atom.name!r}) has no element; MACE needs every element")
            system.addParticle(atom.element.mass)
        box = topology.getPeriodicBoxVectors()
        if box is not None:
            system.setDefaultPeriodicBoxVectors(*box)

        from .mace_force import add_mace_force

        self.mace_force = add_mace_force(system, topology, model_path, dtype=dtype, **mace_kwargs)
        # What rebuilds the TorchForce elsewhere (a TorchForce cannot be deserialised from XML).
        self.mace_arguments = {"model_path": str(model_path), "dtype": dtype, **mace_kwargs}
        self.mace_force_builder = add_mace_force  # LiquidSetup calls it with mace_arguments in a worker
        chosen = self.correction
        self.cso_force = add_cso_correction(
            system, topology, positions, alpha=chosen.alpha, a1=chosen.a1, s6=chosen.s6, a2=a2, a4_bohr=a4_bohr,
            cutoff_nm=length_nm(cutoff_nm, "cutoff_nm"),
            force_group=cso_force_group, molecule_index=molecule_index,
            reference_positions_nm=reference_positions_nm, periodic=box is not None,
            long_range_correction=long_range_correction, switch_distance_nm=switch_distance_nm,
            parameter_derivatives=parameter_derivatives,
        )
        # A TorchForce declares no bonds, so a barostat would see single atoms, not molecules.
        from ..simulation.barostat_molecules import add_molecule_definition

        add_molecule_definition(system, topology)

        self.system = system
        self.topology = topology
        self.positions_nm = positions
        self.model_path = model_path

    @property
    def cso_force_group(self) -> int:
        return self.cso_force.getForceGroup()

    @property
    def cso_forces(self) -> list:
        return cso_forces(self.system)

    @staticmethod
    def set_a1(context, a1: float) -> None:
        """Change a1 in a live Context (no rebuild; the long-range correction follows)."""
        context.setParameter("a1", float(a1))

    @staticmethod
    def set_alpha(context, alpha: float) -> None:
        context.setParameter("alpha", float(alpha))

    @staticmethod
    def set_s6(context, s6: float) -> None:
        context.setParameter("s6", float(s6))

    def cso_energy_kj_mol(self, context) -> float:
        """The CSO part of the current energy (alpha included)."""
        from openmm import unit

        state = context.getState(getEnergy=True, groups={self.cso_force_group})
        return state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)


def _positions_nm(positions, n_atoms: int) -> np.ndarray:
    from openmm import unit

    if unit.is_quantity(positions):
        positions = positions.value_in_unit(unit.nanometer)
    array = np.asarray(positions, dtype=float)
    if array.shape != (n_atoms, 3):
        raise PotentialError(
            f"positions_nm has shape {array.shape}; the topology has {n_atoms} atoms (expected ({n_atoms}, 3) nm)"
        )
    return array
