"""The TorchScript module OpenMM's TorchForce runs: positions (nm) -> neighbour list -> MACE -> kJ/mol.

Everything per step happens inside the module on the device the Context uses: unit conversion,
the neighbour list (vesin's TorchScript class, or an all-pairs search for small molecules),
the MACE model and, optionally, the forces. Nothing goes back to Python during MD.

Units: OpenMM hands positions and box vectors in nm and expects kJ/mol (and kJ/mol/nm); MACE
works in Angstrom and eV. The two factors come from :mod:`openmm_physembed.units`.

Edges and replicas
------------------
MACE's graph has an edge ``sender -> receiver`` for every pair closer than ``r_max`` (its
``edge_index`` row 0 is the sender, row 1 the receiver, and the edge vector is
``pos[receiver] - pos[sender] + shift``). With replica ids (one per atom) the module keeps only
edges within a replica, so many copies of a molecule run in one Context without interacting
even though they overlap in space. Gas phase: each replica is moved, for the neighbour search
only, to its own cell of a cubic grid whose spacing exceeds twice the largest replica radius
plus ``r_max``; no cross-replica pair is ever generated, and MACE still sees the original
coordinates (edge vectors are differences within a replica, so the move cancels exactly and
costs no float32 precision). Periodic boxes: the periodic pair list is filtered by replica.

Virial
------
The same module exposes a second scripted method, ``virial(positions, boxvectors)``: MACE's
own strain derivative (``compute_virials=True``, a symmetric displacement ``eps`` applied to
positions and cell) gives ``W = -dE/d eps`` in kJ/mol, the quantity a pressure tensor needs,
``P V = sum_i m_i v_i (x) v_i + W``. Call it on the module returned by
:func:`~openmm_physembed.potentials.mace_force.build_mace_module` (or :func:`mace_virial`).
TorchForce itself only calls ``forward``.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import torch

from ..units import ANGSTROM_PER_NM, KJ_PER_MOL_PER_EV

try:  # e3nn (imported through mace, which must come first) compiles the model's submodules
    import mace  # noqa: F401
    from e3nn.util.jit import compile_mode
except ImportError:  # pragma: no cover - mace-torch is a hard dependency of this module
    def compile_mode(mode):
        return lambda cls: cls


def replica_grid(n_replicas: int) -> np.ndarray:
    """Integer cell coordinates of ``n_replicas`` cells of the smallest cube that holds them."""
    side = max(1, int(np.ceil(n_replicas ** (1.0 / 3.0) - 1e-9)))
    cells = np.stack(np.meshgrid(np.arange(side), np.arange(side), np.arange(side), indexing="ij"), -1)
    return cells.reshape(-1, 3)[:n_replicas].astype(float)


@compile_mode("script")
class MACEOpenMMModule(torch.nn.Module):
    """Energy in kJ/mol of OpenMM positions (nm) from a mace-torch model.

    Parameters
    ----------
    model
        A mace-torch model (``MACE``/``ScaleShiftMACE``) already in the wanted dtype and on the
        wanted device; it is used, not copied.
    node_attrs
        One-hot element encoding of the modelled atoms (n_model_atoms x n_elements), in the
        order of ``model.atomic_numbers``.
    atom_indices
        Indices of the modelled atoms among the System's particles, or ``None`` for all.
    periodic
        Whether positions come with box vectors (TorchForce ``setUsesPeriodicBoundaryConditions``).
    replica_ids
        Replica id (0..R-1) of every modelled atom, or ``None`` for one graph without restriction.
    head
        Index of the model head to evaluate.
    energy_offset_kj
        Sum of the modelled atoms' isolated-atom energies (E0s) in kJ/mol, added in float64:
        the module evaluates MACE's interaction energy only, so float32 models keep the
        precision of the (small) interaction part instead of losing it in the huge E0 sum.
        ``None`` means take MACE's total ``energy`` output (models without
        ``interaction_energy``).
    brute_force
        Use an all-pairs search (gas phase only) instead of vesin's cell list.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        node_attrs: torch.Tensor,
        atom_indices: Optional[Sequence[int]],
        periodic: bool,
        replica_ids: Optional[Sequence[int]] = None,
        head: int = 0,
        energy_offset_kj: Optional[float] = 0.0,
        brute_force: bool = False,
    ):
        super().__init__()
        from vesin_torch import NeighborList

        self.model = model
        dtype = node_attrs.dtype
        device = node_attrs.device
        n = int(node_attrs.shape[0])
        self.r_max_angstrom = float(model.r_max)
        self.angstrom_per_nm = float(ANGSTROM_PER_NM)
        self.kj_per_mol_per_ev = float(KJ_PER_MOL_PER_EV)
        self.periodic = bool(periodic)
        self.brute_force = bool(brute_force) and not self.periodic
        self.use_total_energy = energy_offset_kj is None
        self.energy_offset_kj = 0.0 if energy_offset_kj is None else float(energy_offset_kj)
        self.all_atoms = atom_indices is None
        self.register_buffer("node_attrs", node_attrs)
        indices = torch.arange(n) if atom_indices is None else torch.as_tensor(list(atom_indices), dtype=torch.int64)
        self.register_buffer("atom_indices", indices.to(device))
        self.register_buffer("batch", torch.zeros(n, dtype=torch.int64, device=device))
        self.register_buffer("ptr", torch.tensor([0, n], dtype=torch.int64, device=device))
        self.register_buffer("head", torch.tensor([int(head)], dtype=torch.int64, device=device))
        self.use_replicas = replica_ids is not None
        reps = np.zeros(n, dtype=np.int64) if replica_ids is None else np.asarray(replica_ids, dtype=np.int64)
        self.n_replicas = int(reps.max()) + 1 if n else 1
        self.register_buffer("replica", torch.as_tensor(reps).to(device))
        self.register_buffer(
            "replica_counts",
            torch.as_tensor(np.bincount(reps, minlength=self.n_replicas).astype(float)).to(dtype).to(device),
        )
        self.register_buffer("replica_cells", torch.as_tensor(replica_grid(self.n_replicas)).to(dtype).to(device))
        self.nl = NeighborList(cutoff=self.r_max_angstrom, full_list=True)
        for param in self.model.parameters():
            param.requires_grad_(False)

    # ---------------------------------------------------------------- graph
    def _edges(self, pos: torch.Tensor, cell: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(edge_index [2, E], integer cell shifts [E, 3]) of pairs closer than r_max (Angstrom)."""
        points = pos.detach()
        if self.periodic:
            i, j, s = self.nl.compute(points=points, box=cell.detach(), periodic=True, quantities="ijS")
            if self.use_replicas:
                keep = self.replica[i] == self.replica[j]
                i, j, s = i[keep], j[keep], s[keep]
            return torch.stack([i, j]).to(torch.int64), s.to(points.dtype)
        if self.use_replicas:
            points = self._separate_replicas(points)
        if self.brute_force:
            d2 = (points.unsqueeze(0) - points.unsqueeze(1)).pow(2).sum(-1)
            close = d2 < self.r_max_angstrom * self.r_max_angstrom
            close.fill_diagonal_(False)
            pairs = torch.nonzero(close).t()
            return pairs.contiguous(), torch.zeros((pairs.shape[1], 3), dtype=points.dtype, device=points.device)
        i, j = self.nl.compute(points=points, box=torch.zeros_like(cell), periodic=False, quantities="ij")
        return torch.stack([i, j]).to(torch.int64), torch.zeros((i.shape[0], 3), dtype=points.dtype, device=points.device)

    def _separate_replicas(self, points: torch.Tensor) -> torch.Tensor:
        """Move every replica (centroid) to its own grid cell, far enough that no pair spans two."""
        centres = torch.zeros((self.n_replicas, 3), dtype=points.dtype, device=points.device)
        centres = centres.index_add(0, self.replica, points) / self.replica_counts.unsqueeze(1)
        local = points - centres[self.replica]
        radius = torch.linalg.vector_norm(local, dim=1).max()
        # Quantised spacing: the grid (and so the pair list) does not jitter from step to step.
        quantum = 8.0
        spacing = torch.ceil((2.0 * radius + self.r_max_angstrom + 1.0) / quantum) * quantum
        return local + self.replica_cells[self.replica] * spacing

    def _graph(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """MACE's input dict for OpenMM positions (nm, all particles) in the model dtype."""
        dtype = self.node_attrs.dtype
        pos = positions.to(dtype)
        if not self.all_atoms:
            pos = pos.index_select(0, self.atom_indices)
        pos = pos * self.angstrom_per_nm
        if self.periodic and boxvectors is not None:
            cell = boxvectors.to(dtype) * self.angstrom_per_nm
        else:
            cell = torch.zeros((3, 3), dtype=dtype, device=pos.device)
        edge_index, unit_shifts = self._edges(pos, cell)
        return {
            "positions": pos,
            "node_attrs": self.node_attrs,
            "edge_index": edge_index,
            "shifts": unit_shifts @ cell,
            "unit_shifts": unit_shifts,
            "cell": cell,
            "batch": self.batch,
            "ptr": self.ptr,
            "head": self.head,
        }

    def _energy(self, out: Dict[str, Optional[torch.Tensor]]) -> torch.Tensor:
        key = "energy" if self.use_total_energy else "interaction_energy"
        energy = out[key]
        assert energy is not None
        return energy.sum().to(torch.float64) * self.kj_per_mol_per_ev + self.energy_offset_kj

    def _potential(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor]) -> torch.Tensor:
        data = self._graph(positions, boxvectors)
        out = self.model(data, training=False, compute_force=False)
        return self._energy(out)

    # ---------------------------------------------------------------- entry points
    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Potential energy (kJ/mol, float64 scalar) of positions (nm); TorchForce differentiates it."""
        return self._potential(positions, boxvectors)

    @torch.jit.export
    def energy_and_forces(
        self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """(energy kJ/mol, forces kJ/mol/nm on every particle) from one backward pass."""
        x = positions.detach().requires_grad_(True)
        energy = self._potential(x, boxvectors)
        grads = torch.autograd.grad([energy], [x], allow_unused=True)
        grad = grads[0]
        if grad is None:  # no modelled atom (cannot happen through add_mace_force)
            grad = torch.zeros_like(x)
        return energy.detach(), -grad

    @torch.jit.export
    def virial(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Virial ``W = -dE/d eps`` (3 x 3, kJ/mol) from MACE's strain derivative.

        MACE applies a symmetric displacement ``eps`` to positions and cell and differentiates;
        for a periodic system ``W`` includes the images, so the configurational pressure tensor
        is ``W / V``. Replicas and atom subsets are handled as in ``forward``.
        """
        data = self._graph(positions, boxvectors)
        out = self.model(data, training=False, compute_force=False, compute_virials=True)
        virials = out["virials"]
        assert virials is not None
        return virials.sum(0).to(torch.float64) * self.kj_per_mol_per_ev


@compile_mode("script")
class MACEOpenMMForcesModule(MACEOpenMMModule):
    """The same module returning ``(energy, forces)``: TorchForce with ``setOutputsForces(True)``."""

    def forward(  # type: ignore[override]
        self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        return self.energy_and_forces(positions, boxvectors)


def module_device(module) -> torch.device:
    """The device a (scripted) module's tensors live on (CPU for one without any)."""
    for tensor in module.buffers():
        return tensor.device
    for tensor in module.parameters():
        return tensor.device
    return torch.device("cpu")


def module_on(module, device) -> torch.jit.ScriptModule:
    """A copy of a scripted module on ``device``; the module itself stays where it is.

    ``ScriptModule.to`` moves in place, and the module (e.g. one a CPU evaluation also uses)
    must keep its device. The copy goes through TorchScript's serialisation, as openmm-torch
    hands a TorchForce's module around.
    """
    import io

    device = torch.device(device)
    if module_device(module) == device:
        return module
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer, map_location=device)


def mace_virial(module, positions_nm, box_vectors_nm=None) -> np.ndarray:
    """MACE's virial ``W = -dE/d eps`` (3 x 3, kJ/mol) for one configuration (nm).

    The inputs go to the module's device as float64; the module casts them to its own dtype.
    """
    device = module_device(module)
    positions = torch.as_tensor(np.asarray(positions_nm, dtype=np.float64), device=device)
    box = None
    if box_vectors_nm is not None:
        box = torch.as_tensor(np.asarray(box_vectors_nm, dtype=np.float64), device=device)
    return module.virial(positions, box).detach().cpu().numpy()


def script_module(module: torch.nn.Module) -> torch.jit.ScriptModule:
    """TorchScript the wrapper the way mace-torch exports to LAMMPS (e3nn's recursive compiler).

    ``torch.jit.script`` alone fails inside e3nn; ``e3nn.util.jit.compile`` scripts each
    submodule by its declared mode. It replaces submodules in place.
    """
    import warnings

    from e3nn.util import jit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        scripted = jit.compile(module)
    inline_forward(scripted)
    return scripted


def inline_forward(scripted: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """Inline every TorchScript method/function call of ``scripted.forward``, in place.

    openmm-torch freezes the module it is given, keeping only ``forward``. Freezing inlines
    one level of calls using each callee's cached "optimised" graph, and those are themselves
    inlined only if they were first built while the graph executor's optimisation was on in
    that thread; with it off (faster on CPU, see ``torch_device.set_torchscript_optimization``)
    the frozen module fails with "Couldn't find method: '_graph'". Inlining to a fixed point
    here removes the dependence. Calls into C++ custom classes (vesin) stay calls.
    Use it on any wrapper scripted around this module before handing it to a TorchForce.
    """
    graph = scripted.forward.graph

    def n_calls() -> int:
        return len(graph.findAllNodes("prim::CallMethod")) + len(graph.findAllNodes("prim::CallFunction"))

    with torch.jit.optimized_execution(True):
        for _ in range(100):
            before = n_calls()
            torch._C._jit_pass_inline(graph)
            if n_calls() == before:
                break
    return scripted
