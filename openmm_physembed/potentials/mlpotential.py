"""openmm-ml plugin: ``MLPotential('physembed-mace', modelPath=...)`` runs our TorchForce MACE.

Registered in ``pyproject.toml`` under the entry-point group ``openmmml.potentials``, which
openmm-ml reads when it is imported, so after ``pip install`` this works without importing
``openmm_physembed``::

    from openmmml import MLPotential

    potential = MLPotential("physembed-mace", modelPath="MACE-OFF23_small.model")
    system = potential.createSystem(pdb.topology, precision="single")           # plain openmm.System
    system = potential.createSystem(pdb.topology, correction="runs/EMC_298.15K/correction.json",
                                    positions=pdb.positions)                    # + CSO correction
    mixed = potential.createMixedSystem(pdb.topology, mm_system, ligand_atoms)  # ML/MM, mechanical
    mixed = potential.createMixedSystem(pdb.topology, mm_system, ligand_atoms, interpolate=True)
    simulation.context.setParameter("lambda_interpolate", 0.5)                 # 0: all MM, 1: ML/MM

It is a drop-in for openmm-ml's own ``MLPotential('mace', modelPath=...)`` (same model files,
same ``precision`` and ``returnEnergyType``, same energies and forces) that adds the MACE as
:func:`.mace_force.add_mace_force`'s TorchForce instead of a Python callback, and can add the
intermolecular CSO correction (:func:`.cso.add_cso_correction`) in the same call.

``createSystem`` / ``createMixedSystem`` options, besides openmm-ml's own (``removeCMMotion``,
``forceGroup``, ``embedding``, ...); an unknown option is an error, not silently ignored:

precision
    ``"single"`` or ``"double"`` (also ``"float32"``/``"float64"``); default: the model file's own.
returnEnergyType
    ``"interaction_energy"`` (default, as openmm-ml and ``add_mace_force``: without the
    isolated-atom energies E0) or ``"energy"`` (MACE's total energy, as mace-torch's calculator).
replicas
    ``"none"`` (default), ``"molecule"``, ``"residue"`` or ids: independent copies in one Context.
device
    Torch device the module is built on (default the CPU; openmm-torch moves it to a CUDA
    Context's GPU itself).
correction, positions, forceCorrection
    Add the CSO term (``createSystem`` only): ``correction`` is a published name
    (``"mace-off23-small"``, ``"mace-ec-emc"``), a file from ``physembed fit-a1`` (refused when
    fitted for another model file unless ``forceCorrection=True``), explicit values
    ``{"alpha": ..., "a1": ...}`` or a :class:`~.correction_choice.CSOCorrection`; ``positions``
    (Quantity or nm) fix the D3 coordination numbers. There is no default correction.
correctionCutoff, correctionSwitchDistance
    CSO cutoff (default 1.2 nm) and optional switching distance, Quantity or nm (periodic boxes).
correctionDerivatives
    CSO global parameters whose energy derivatives OpenMM computes (default none, the fast
    choice for MD; ``("alpha", "a1")`` for dE/da1 as the density fit needs).

With ``interpolate=True`` openmm-ml calls ``addForces`` on an empty ``openmm.System()`` and
moves the forces into a ``CustomCVForce``, which copies them through OpenMM's XML serialiser;
openmm-torch 1.5 crashes deserialising a TorchForce (:data:`~openmm_physembed.workarounds.TORCHFORCE_XML`),
so there the MACE is an ``openmm.PythonForce`` running the same scripted module
(:func:`.mace_force.add_mace_force`, ``copyable``): same energies and forces, periodic boxes and
``replicas`` included. ``correction`` is refused in every ``createMixedSystem``.

MACE interactions are short-ranged, so :meth:`PhysEmbedMACEImpl.getMLLongRange` is ``False``
and a periodic ``createMixedSystem`` needs no ``mlLongRange`` option (openmm-ml's ``'mace'``
asks for it).
"""

from __future__ import annotations


class PhysEmbedMACEImplFactory:
    """openmm-ml factory for ``'physembed-mace'`` (the entry point's target).

    Defined before ``openmmml`` is imported below and without its base class: openmm-ml loads
    every entry point while its own module is still being imported, so this module may be
    reached half-imported (when it is imported first); the factory must already exist then.
    openmm-ml only calls :meth:`createImpl`.
    """

    def createImpl(self, name: str, modelPath=None, **args) -> "PhysEmbedMACEImpl":
        return PhysEmbedMACEImpl(name, modelPath, **args)


from openmmml.mlpotential import MLPotentialImpl  # noqa: E402  - after the factory, see its docstring

from ..errors import PotentialError  # noqa: E402

#: Options of openmm-ml's embeddings that reach ``addForces`` and are not ours to use.
_EMBEDDING_OPTIONS = ("mlLongRange", "linkAtomDistances")
_OPTIONS = ("precision", "returnEnergyType", "replicas", "device", "correction", "positions", "forceCorrection",
            "correctionCutoff", "correctionSwitchDistance", "correctionDerivatives")


class PhysEmbedMACEImpl(MLPotentialImpl):
    """``MLPotential('physembed-mace', modelPath=...)``: see the module docstring for the options."""

    def __init__(self, name: str, modelPath=None, **args) -> None:
        from pathlib import Path

        if args:
            raise PotentialError(f"MLPotential({name!r}) takes modelPath only, not {', '.join(sorted(args))}; "
                                 "give precision, correction, ... to createSystem")
        if modelPath is None:
            raise PotentialError(f"MLPotential({name!r}) needs modelPath=, a MACE model file (NAME.model from "
                                 "`physembed train` or mace_run_train, or a downloaded MACE-OFF23_small.model)")
        if not Path(modelPath).is_file():
            raise PotentialError(f"MACE model file {str(modelPath)!r} does not exist; train one (physembed train) "
                                 "or fix the path")
        self.name = name
        self.modelPath = str(modelPath)

    def addForces(self, topology, system, atoms, forceGroup: int, precision: str | None = None,
                  returnEnergyType: str = "interaction_energy", replicas="none", device=None, correction=None,
                  positions=None, forceCorrection: bool = False, correctionCutoff=None,
                  correctionSwitchDistance=None, correctionDerivatives=(), **args) -> None:
        """Add the MACE TorchForce (and the CSO forces when ``correction`` is given) to ``system``.

        ``system`` may be empty (openmm-ml's interpolation): ``atoms`` are then checked against
        ``topology`` and the MACE is a PythonForce (see the module docstring).
        """
        from .correction_choice import choose_correction
        from .cso import DEFAULT_CUTOFF_NM, add_cso_correction, length_nm
        from .mace_force import ENERGY_TYPES, add_mace_force
        from .mace_model import resolve_dtype

        unknown = sorted(set(args) - set(_EMBEDDING_OPTIONS))
        if unknown:
            raise PotentialError(f"MLPotential({self.name!r}) has no option {', '.join(map(repr, unknown))}; "
                                 f"it takes {', '.join(_OPTIONS)}")
        if correction is None and positions is not None:
            raise PotentialError("positions= is only used with correction=: give the correction too, or drop positions")
        if correction is not None and atoms is not None:
            raise PotentialError(
                "correction= adds the CSO term between molecules of an all-ML System (createSystem); in "
                "createMixedSystem the MM force field describes the ML/MM interactions: leave correction out"
            )
        if correction is not None and positions is None:
            raise PotentialError("correction= needs positions= (Quantity or nm): each molecule's geometry "
                                 "fixes its D3 coordination numbers")
        dtype = resolve_dtype(precision=precision)  # None: the model file's own, add_mace_force's default
        if returnEnergyType not in ENERGY_TYPES:
            raise PotentialError(f"returnEnergyType must be one of {', '.join(map(repr, ENERGY_TYPES))}, "
                                 f"got {returnEnergyType!r}")
        if correction is not None:  # resolved (and a fit's model checked) before the slow MACE build
            correction = choose_correction(correction, model_path=self.modelPath, force=forceCorrection)
        add_mace_force(system, topology, self.modelPath, atoms=atoms, dtype=dtype, replicas=replicas,
                       force_group=forceGroup, device=device, energy_type=returnEnergyType)
        if atoms is None and system.usesPeriodicBoundaryConditions():
            # A TorchForce declares no bonds: without this a barostat would scale single atoms.
            from ..simulation.barostat_molecules import add_molecule_definition

            add_molecule_definition(system, topology)
        if correction is not None:
            cutoff = length_nm(correctionCutoff, "correctionCutoff")
            add_cso_correction(system, topology, positions, alpha=correction.alpha, a1=correction.a1,
                               s6=correction.s6, cutoff_nm=DEFAULT_CUTOFF_NM if cutoff is None else cutoff,
                               switch_distance_nm=correctionSwitchDistance,
                               parameter_derivatives=tuple(correctionDerivatives))

    def getMLLongRange(self) -> bool:
        """MACE is short-ranged (cutoff r_max): no long-range ML interactions for embeddings to handle."""
        return False
