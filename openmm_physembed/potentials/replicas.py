"""Replicas: independent copies of a molecule in one MACE force, as one id per modelled atom.

MACE keeps only edges within a replica (:class:`.mace_module.MACEOpenMMModule`), so copies may
overlap in space without interacting. This module turns the user's specification (a name or
ids) into those ids and says what is wrong with a bad one.
"""

from __future__ import annotations

import numpy as np

from ..chem.graph import connected_components_of
from ..errors import PotentialError


def resolve_replicas(replicas, topology, atoms: np.ndarray, n_particles: int) -> np.ndarray | None:
    """Replica id (0..R-1) per modelled atom, or None when every atom is in one replica.

    ``replicas`` is ``None``/``"none"``, ``"molecule"`` (bonded fragments of ``topology``),
    ``"residue"``, or one id per modelled atom (``atoms``) or per particle.
    """
    if replicas is None or (isinstance(replicas, str) and replicas == "none"):
        return None
    if isinstance(replicas, str):
        topo_atoms = list(topology.atoms())
        if replicas == "residue":
            ids = np.array([topo_atoms[i].residue.index for i in atoms])
        elif replicas == "molecule":
            bonds = [(a.index, b.index) for a, b in topology.bonds()]
            if not bonds and len(atoms) > 1:
                raise PotentialError(
                    "replicas='molecule' needs bonds in the topology, and it has none; "
                    "use replicas='residue' or pass replica ids"
                )
            ids = connected_components_of(n_particles, bonds)[atoms]
        else:
            raise PotentialError(f"replicas must be 'none', 'molecule', 'residue' or an array of ids, got {replicas!r}")
    else:
        ids = np.asarray(replicas)
        if ids.ndim != 1 or len(ids) not in (len(atoms), n_particles):
            raise PotentialError(
                f"replica ids must be one per modelled atom ({len(atoms)}) or per particle ({n_particles}), "
                f"got shape {ids.shape}"
            )
        if len(ids) == n_particles and len(atoms) != n_particles:
            ids = ids[atoms]
    _, ids = np.unique(ids, return_inverse=True)
    if ids.max(initial=0) == 0:
        return None
    return ids.astype(np.int64)
