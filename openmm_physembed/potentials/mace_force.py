"""MACE as an OpenMM force: :func:`add_mace_force` puts any mace-torch model file into a System.

The force is an openmm-torch ``TorchForce`` running :class:`.mace_module.MACEOpenMMModule`, so
MD stays inside OpenMM (positions on the device, neighbour list in the module, no Python
callback per step). This module is also the one place that imports ``openmmtorch``, after
``torch`` as its wheel requires (:func:`import_openmmtorch`).

Defaults are those of ``MLPotential('physembed-mace')`` (and of every entry point of this
package): the model file's own dtype and the interaction energy. Nothing here changes
process-wide state: for TorchScript's graph-executor switch, which is faster off for MACE on the
CPU, see :func:`~openmm_physembed.torch_device.torchscript_optimization` (the MD engine uses it).
The model file is read by :mod:`.mace_model`, replica ids come from :mod:`.replicas`, and a force
OpenMM will copy is a PythonForce (:mod:`.mace_python_force`).

Example
-------
>>> system = openmm.System(); [system.addParticle(m) for m in masses]       # doctest: +SKIP
>>> add_mace_force(system, topology, "model.model", replicas="molecule")    # doctest: +SKIP

Virial (for pressure tensors)
-----------------------------
:func:`build_mace_module` returns the scripted module before it is wrapped in a TorchForce;
its ``virial(positions_nm, box_nm)`` method returns MACE's strain derivative
``W = -dE/d eps`` (kJ/mol, 3 x 3; :func:`.mace_module.mace_virial`), computed by MACE itself
with a symmetric displacement of positions and cell, so it includes the periodic images. The
configurational pressure tensor is ``W / V``.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ..errors import PotentialError
from ..torch_device import cueq_available, resolve_device
from ..units import KJ_PER_MOL_PER_EV
from .mace_model import MACEModelInfo, load_mace_model, resolve_dtype
from .replicas import resolve_replicas

#: Gas-phase molecules up to this many modelled atoms use the all-pairs neighbour search:
#: measured on CPU: 33 us (all pairs) vs 36 us (vesin) at 20 atoms, 96 vs 64 us at 64 atoms.
BRUTE_FORCE_MAX_ATOMS = 32

#: What the TorchForce returns: openmm-ml's default, the ``interaction_energy`` (MACE's total
#: minus the isolated-atom energies, the default everywhere here), or MACE's total ``energy``.
ENERGY_TYPES = ("interaction_energy", "energy")


def import_openmmtorch():
    """The ``openmmtorch`` module, imported after ``torch`` (its wheel links against torch's libs).

    If ``openmm`` was imported before ``torch``, OpenMM could not open the openmm-torch kernel
    plugins; they are loaded again here, once
    (:data:`~openmm_physembed.workarounds.OPENMMTORCH_PLUGIN_ORDER`).
    """
    import torch  # noqa: F401  - must precede openmmtorch

    from ..workarounds import reload_failed_torch_plugins

    try:
        import openmmtorch
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise PotentialError(f"openmm-torch is not importable ({exc}); pip install openmmtorch") from exc
    reload_failed_torch_plugins()
    return openmmtorch


def _resolve_device(device) -> str:
    # Never "cuda because torch sees a GPU": openmm-torch's CUDA kernel moves the module to
    # cuda:DeviceIndex itself, but its Reference/CPU kernel never moves it, so a module built on
    # CUDA fails in a CPU Context ("Expected all tensors to be on the same device").
    return resolve_device(device, default="cpu")


def _to_cueq(model, device: str):
    """mace-torch's own e3nn -> cuEquivariance conversion."""
    from mace.cli.convert_e3nn_cueq import run

    from ..workarounds import keep_torch_default_dtype

    with keep_torch_default_dtype():
        return run(model, device=device, return_model=True).to(device)


def _box_widths_nm(system, topology) -> np.ndarray:
    """Perpendicular widths (OpenMM's reduced box form: the diagonal) of the topology's box and
    the System's default box (``system`` None: the topology's only); the smaller of each counts,
    since either may start a Context."""
    from openmm import unit

    boxes = [] if system is None else [system.getDefaultPeriodicBoxVectors()]
    if topology.getPeriodicBoxVectors() is not None:
        boxes.append(topology.getPeriodicBoxVectors())
    widths = [[vec[k].value_in_unit(unit.nanometer) for k, vec in enumerate(box)] for box in boxes]
    return np.min(np.array(widths), axis=0)


def build_mace_module(
    model_path,
    atomic_numbers: Sequence[int],
    *,
    atoms: Sequence[int] | None = None,
    n_particles: int | None = None,
    periodic: bool = False,
    replica_ids: Sequence[int] | None = None,
    dtype: str | None = None,
    device=None,
    use_cueq: bool = False,
    return_forces: bool = False,
    neighbor_list: str = "auto",
    head: str | None = None,
    model=None,
    energy_type: str = "interaction_energy",
):
    """The scripted module for ``atomic_numbers`` (one per modelled atom; elements checked).

    Lower-level than :func:`add_mace_force` (no OpenMM objects): benchmarks and the virial use it.
    ``neighbor_list`` is ``"auto"`` (all pairs for gas-phase molecules of at most
    :data:`BRUTE_FORCE_MAX_ATOMS` atoms, else vesin), ``"vesin"`` or ``"brute"``. The module is
    built on ``device`` (default CPU; :func:`.mace_module.module_on` moves a copy elsewhere).
    ``use_cueq=True`` converts the model to cuEquivariance kernels first (needs a CUDA
    ``device``), an experiment: mace's cueq wrappers are not TorchScript-compatible (mace PR
    871, cuEquivariance issues 137 and 259), so expect a :class:`PotentialError` or a module
    that fails when run. cueq is for training and eager inference. ``energy_type`` is
    ``"interaction_energy"`` (default: without the isolated-atom energies E0, as openmm-ml) or
    ``"energy"`` (MACE's total, E0s included). ``dtype`` (default: the model file's own) also
    takes openmm-ml's ``"single"``/``"double"``.
    """
    import torch
    from mace.tools import atomic_numbers_to_indices, to_one_hot, utils

    from .mace_module import MACEOpenMMForcesModule, MACEOpenMMModule, script_module

    dtype = resolve_dtype(dtype)
    if energy_type not in ENERGY_TYPES:
        raise PotentialError(f"energy_type must be one of {ENERGY_TYPES}, got {energy_type!r}")
    if neighbor_list not in ("auto", "vesin", "brute"):
        raise PotentialError(f"neighbor_list must be 'auto', 'vesin' or 'brute', got {neighbor_list!r}")
    device = _resolve_device(device)
    if model is None:
        model = load_mace_model(model_path, device=device)
    info = MACEModelInfo.from_model(model)
    torch_dtype = torch.float64 if (dtype or info.dtype) == "float64" else torch.float32
    zs = [int(z) for z in atomic_numbers]
    unknown = sorted(set(zs) - set(info.atomic_numbers))
    if unknown:
        from ase.data import chemical_symbols

        raise PotentialError(
            f"MACE model {str(model_path)!r} was not trained on element(s) "
            f"{', '.join(chemical_symbols[z] for z in unknown)}; it knows {', '.join(info.element_symbols)}"
        )
    if head is None:
        head_index = 0 if len(info.heads) == 1 else next(
            (k for k, h in enumerate(info.heads) if h.lower() == "default"), len(info.heads) - 1
        )
    elif head in info.heads:
        head_index = info.heads.index(head)
    else:
        raise PotentialError(f"MACE model has no head {head!r}; it has {', '.join(info.heads)}")

    if use_cueq and not cueq_available():
        raise PotentialError("use_cueq=True but cuequivariance / cuequivariance_torch are not installed")
    if use_cueq and not device.startswith("cuda"):
        raise PotentialError(f"use_cueq=True needs a CUDA device (device='cuda'), got {device!r}")

    import copy

    with torch.no_grad():  # a TorchScript model's deepcopy would otherwise give non-leaf parameters
        model = copy.deepcopy(model).to(torch_dtype).to(device).eval()
    table = utils.AtomicNumberTable(list(info.atomic_numbers))
    indices = torch.tensor(atomic_numbers_to_indices(np.asarray(zs), z_table=table), dtype=torch.int64)
    node_attrs = to_one_hot(indices.unsqueeze(-1), num_classes=len(table)).to(torch_dtype).to(device)

    offset_kj = _energy_offset_kj(model, node_attrs, head_index)
    if energy_type == "interaction_energy":
        if offset_kj is None:
            raise PotentialError(
                f"MACE model {str(model_path)!r} ({info.model_class}) has no interaction_energy output; "
                "use energy_type='energy' (returnEnergyType='energy' through openmm-ml)"
            )
        offset_kj = 0.0
    n_model = len(zs)
    brute = neighbor_list == "brute" or (
        neighbor_list == "auto" and not periodic and replica_ids is None and n_model <= BRUTE_FORCE_MAX_ATOMS
    )
    cls = MACEOpenMMForcesModule if return_forces else MACEOpenMMModule
    atom_indices = None if atoms is None else [int(a) for a in atoms]
    if atom_indices is not None and n_particles is not None and atom_indices == list(range(n_particles)):
        atom_indices = None

    def make(m):
        wrapper = cls(m, node_attrs, atom_indices, periodic, replica_ids, head_index, offset_kj, brute)
        return script_module(wrapper)

    if use_cueq:
        try:
            return make(_to_cueq(model, device))
        except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
            detail = (str(exc).splitlines() or [""])[0][:160]
            raise PotentialError(
                f"cuEquivariance version of {str(model_path)!r} cannot be scripted for a TorchForce "
                f"({type(exc).__name__}: {detail}); use use_cueq=False"
            ) from exc
    return make(model)


def _energy_offset_kj(model, node_attrs, head_index: int) -> float | None:
    """Sum of E0s (kJ/mol, float64) if the model reports ``interaction_energy``, else None.

    Decided by evaluating the model once on a two-atom graph, which also proves the file works.
    """
    import torch

    dtype, device = node_attrs.dtype, node_attrs.device
    n_el = node_attrs.shape[1]
    probe = {
        "positions": torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype, device=device),
        "node_attrs": torch.eye(n_el, dtype=dtype, device=device)[[0, 0]],
        "edge_index": torch.tensor([[0, 1], [1, 0]], device=device),
        "shifts": torch.zeros((2, 3), dtype=dtype, device=device),
        "unit_shifts": torch.zeros((2, 3), dtype=dtype, device=device),
        "cell": torch.zeros((3, 3), dtype=dtype, device=device),
        "batch": torch.zeros(2, dtype=torch.int64, device=device),
        "ptr": torch.tensor([0, 2], device=device),
        "head": torch.tensor([head_index], device=device),
    }
    try:
        out = model(probe, training=False, compute_force=False)
    except Exception as exc:  # noqa: BLE001
        raise PotentialError(f"the MACE model cannot be evaluated ({type(exc).__name__}: {exc})") from exc
    if out.get("interaction_energy") is None:
        return None
    e0 = torch.atleast_2d(model.atomic_energies_fn.atomic_energies.detach())[head_index].to(torch.float64).cpu()
    counts = node_attrs.detach().to(torch.float64).cpu().sum(0)
    return float((counts * e0).sum()) * KJ_PER_MOL_PER_EV


def add_mace_force(
    system,
    topology,
    model_path,
    *,
    atoms: Sequence[int] | None = None,
    periodic: bool | None = None,
    dtype: str | None = None,
    replicas="none",
    force_group: int = 0,
    device=None,
    use_cueq: bool = False,
    return_forces: bool | None = None,
    neighbor_list: str = "auto",
    head: str | None = None,
    jit_optimize: bool | None = None,
    precision: str | None = None,
    energy_type: str = "interaction_energy",
    copyable: bool | None = None,
):
    """Add a MACE model as a TorchForce to ``system`` and return the force (see ``copyable``).

    Parameters
    ----------
    system
        ``openmm.System`` whose particles are ``topology``'s atoms, in order, or an empty
        ``openmm.System()``: openmm-ml's ``createMixedSystem(..., interpolate=True)`` hands one
        and moves the forces into a ``CustomCVForce`` of the System built for ``topology``.
    topology
        ``openmm.app.Topology``: elements (and bonds/residues for ``replicas``).
    model_path
        A mace-torch model file (``NAME.model`` from ``mace_run_train``, or ``torch.save``).
    atoms
        Indices of the atoms MACE models; ``None`` for all. The others feel no MACE force.
    periodic
        ``None``: periodic if the topology has box vectors or the System uses PBC.
    dtype, precision
        The precision MACE runs in (the model is converted): ``"float64"``/``"double"`` or
        ``"float32"``/``"single"`` (openmm-ml's ``precision`` names; either keyword takes either
        spelling). Neither: the model file's own dtype (:attr:`.mace_model.MACEModelInfo.dtype`),
        as ``MLPotential('physembed-mace')``.
    replicas
        ``"none"``; ``"molecule"`` (bonded fragments), ``"residue"``, or one id per modelled atom
        (or per particle): MACE edges only within a replica, so independent copies of a molecule
        share one Context without interacting.
    force_group
        OpenMM force group of the TorchForce.
    device
        Torch device the module is built on (``None``: the CPU). OpenMM's platform decides where
        it runs: openmm-torch's CUDA kernel moves the module to the Context's GPU, its
        Reference/CPU kernel never moves it, so a module built on CUDA works in CUDA Contexts only.
    use_cueq
        cuEquivariance kernels (see :func:`build_mace_module`): off by default, since they cannot
        be TorchScripted; use them for training (``mace_run_train --enable_cueq``).
    return_forces
        Whether the module returns forces itself (``TorchForce.setOutputsForces``) instead of
        letting openmm-torch differentiate the energy; ``None`` picks the measured faster one
        (energy only; the two agree to round-off).
    neighbor_list
        ``"auto"``, ``"vesin"`` or ``"brute"`` (see :func:`build_mace_module`).
    head
        Model head for multi-head models (default: the one MACE's calculator picks).
    jit_optimize
        Deprecated: sets TorchScript's thread-global graph-executor switch (the force itself does
        not depend on it). Run the MD inside
        :func:`~openmm_physembed.torch_device.torchscript_optimization` instead, as
        :class:`~openmm_physembed.simulation.engine.MDEngine` does on the CPU (measured 5-15 %
        faster with it off there).
    energy_type
        ``"interaction_energy"`` (default, as openmm-ml's ``MLPotential('mace')`` and
        ``MLPotential('physembed-mace')``): without the isolated-atom energies (E0s).
        ``"energy"``: MACE's total energy, E0s included, as mace-torch's ``MACECalculator``
        reports it. Forces are the same.
    copyable
        Whether the force will be copied through OpenMM's XML serialiser, as a ``CustomCVForce``
        does with each collective variable and ``copy.deepcopy`` with any Force; ``None``: when
        ``system`` is empty (openmm-ml's interpolation). While
        :data:`~openmm_physembed.workarounds.TORCHFORCE_XML` is active a copied TorchForce
        crashes the process, so a copyable MACE is an ``openmm.PythonForce`` running the same
        scripted module (:class:`.mace_python_force.MACEPythonComputation`): same energies and
        forces, one Python call per evaluation.

    Notes
    -----
    The box is checked when the force is added; if a barostat later shrinks it below twice
    the cutoff the energies stay right (the neighbour list includes every periodic image), only
    OpenMM's usual minimum-image convention no longer holds.

    Raises
    ------
    PotentialError
        Missing/unreadable model file, elements the model was not trained on, a periodic box
        smaller than twice the model cutoff, bad replica specification.
    """
    openmmtorch = import_openmmtorch()
    from ..workarounds import TORCHFORCE_XML

    topo_atoms = list(topology.atoms())
    n_particles = len(topo_atoms)
    empty = system.getNumParticles() == 0
    if not empty and system.getNumParticles() != n_particles:
        raise PotentialError(
            f"topology has {n_particles} atoms but the System {system.getNumParticles()} particles; give the "
            "System built for this topology (or an empty System, whose forces you move into that one)"
        )
    selected = np.arange(n_particles) if atoms is None else np.asarray(list(atoms), dtype=np.int64)
    if selected.size == 0:
        raise PotentialError("atoms is empty: give at least one atom for MACE")
    if selected.min() < 0 or selected.max() >= n_particles or len(np.unique(selected)) != len(selected):
        raise PotentialError(f"atoms must be distinct atom indices of the topology in [0, {n_particles}), "
                             f"got {list(atoms)[:10]}...")
    elements = [topo_atoms[i].element for i in selected]
    missing = [int(i) for i, el in zip(selected, elements) if el is None]
    if missing:
        raise PotentialError(f"atoms {missing[:10]} have no element in the topology; MACE needs elements")
    zs = [el.atomic_number for el in elements]
    dtype = resolve_dtype(dtype, precision)

    model = load_mace_model(model_path, device=_resolve_device(device))
    info = MACEModelInfo.from_model(model)
    if periodic is None:
        periodic = topology.getPeriodicBoxVectors() is not None or system.usesPeriodicBoundaryConditions()
    if periodic and not (empty and topology.getPeriodicBoxVectors() is None):
        # An empty System's default box is OpenMM's placeholder, not the one the force will see.
        width = float(_box_widths_nm(None if empty else system, topology).min())
        if width < 2.0 * info.r_max_nm:
            raise PotentialError(
                f"periodic box width {width:.3f} nm is smaller than twice the MACE cutoff "
                f"(2 x {info.r_max_nm:.3f} nm); use a larger box (more molecules)"
            )
    replica_ids = resolve_replicas(replicas, topology, selected, n_particles)
    if return_forces is None:
        return_forces = False
    python_force = (empty if copyable is None else bool(copyable)) and TORCHFORCE_XML.active()
    module = build_mace_module(
        # A PythonForce is handed the modelled atoms' positions only (setParticles).
        model_path, zs, atoms=None if atoms is None or python_force else selected.tolist(), n_particles=n_particles,
        periodic=bool(periodic), replica_ids=replica_ids, dtype=dtype, device=device, use_cueq=use_cueq,
        return_forces=bool(return_forces) and not python_force, neighbor_list=neighbor_list, head=head,
        model=model, energy_type=energy_type,
    )
    if jit_optimize is not None:
        from ..torch_device import set_torchscript_optimization

        warnings.warn("add_mace_force(jit_optimize=) is deprecated: it changes a thread-global TorchScript switch; "
                      "run the MD inside openmm_physembed.torch_device.torchscript_optimization(...) instead",
                      DeprecationWarning, stacklevel=2)
        set_torchscript_optimization(jit_optimize)
    if python_force:
        from .mace_python_force import add_mace_python_force

        return add_mace_python_force(system, module, selected.tolist(), bool(periodic), force_group)
    force = openmmtorch.TorchForce(module)
    force.setUsesPeriodicBoundaryConditions(bool(periodic))
    force.setOutputsForces(bool(return_forces))
    force.setForceGroup(int(force_group))
    force.setName("MACE")
    system.addForce(force)
    return force
