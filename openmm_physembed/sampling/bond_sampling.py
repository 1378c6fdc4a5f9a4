"""Self-adaptive bond-length sampling: physics-informed augmentation of a few reference frames.

From N reference frames of one molecule (default 50 GAFF MD frames) this keeps ``n_validation``
frames untouched and, in each of the others, compresses or stretches ``bonds_per_structure``
bond(s) by amounts set from force-field physics (Hu, Hou and Jiang, "Physical embedding machine
learning force fields for organic systems", section "Self-adaptive Bond Length Sampling
Method"; ``shared/reference/paper_physical_embedding.md``).

Algorithm (every constant is a field of :class:`.bond_parameters.BondSamplingParameters`; the plans,
draws and results are the records of :mod:`.bond_records`)
---------------------------------------------------------------------------------------------------
1. Bond type = sorted pair of force-field atom types (``c3-hc``), k from the typing source.
2. Per type, r_min, r_mean, r_max over all bonds of the type in all reference frames; the
   compression segment is ``[s_c r_min, r_min]`` and the stretch segment
   ``[r_max, s_s k_ref / k_eff + r_mean]`` with ``s_c = 0.95``, ``s_s = 0.25 A`` and k_ref the
   force-field k of ``c3-c3`` (looked up even when the molecule has no such bond). Should the
   upper stretch bound fall below r_max (a very stiff bond), the stretch segment collapses to
   ``[r_max, r_max]``.
3. ``k_eff = 0.8 k`` for a bond to a *terminal atom*, else ``k_eff = k``. A terminal atom is a
   degree-1 atom of a monovalent element (H, F, Cl, Br, I; ``terminal_elements``). A carbonyl
   O is degree 1 but not terminal: with the 0.8 factor, paracetamol's ``c-o`` would stretch to
   r_mean + 0.147 A, whereas the paper reports +0.12 A (= 0.25 x 300.9 / 637.7, factor 1).
4. A bond is drawn with probability ``1/k_eff`` normalised over the molecule's bonds (each
   bond, not each type), the segment compression:stretch = 1:4, the new length uniform in it.
5. Terminal-group rotation. If the modified bond joins a terminal atom to a heavy atom whose
   other neighbours include exactly one non-terminal atom (methyl, CF3, OH, NH2, ...), then
   with probability 0.8 every terminal substituent of the heavy atom is rotated by a uniform
   15-30 degrees, random sign, about the axis of that single attaching bond (anchor -> heavy
   atom). The modified bond's new length is preserved (the heavy atom is on the axis). A
   heavy atom held by two or more non-terminal neighbours (aromatic CH, ring or chain CH2)
   has no unique attaching bond, so no rotation is drawn; records show ``rotation=None``.
6. Geometry check (:mod:`.clash`, shared with the angle bending): a structure is rejected if a pair of atoms ``min_bond_separation`` (2,
   i.e. every pair that is not directly bonded) or more bonds apart is closer than the
   equilibrium length such a pair would have plus 0.25 A. That length is the typing source's
   force-field r0 of the type pair (``lookup``), or the sum of the two atoms' covalent radii
   (Cordero et al. 2008, ``ase.data.covalent_radii``) when the force field has no bond
   parameter for the pair. On rejection the bond is excluded and another is drawn (new
   segment and length too), up to ``max_attempts`` draws per structure; then
   :class:`~openmm_physembed.errors.SamplingError` names the frame.
7. How atoms move. For a bond that is not in a ring, the bond is cut and the side with fewer
   atoms is translated rigidly along the bond axis (on a tie, both sides move by half the
   change, in opposite directions). For a ring bond there is no smaller side: both atoms move
   along the axis by half the change each, in opposite directions, each carrying its
   non-ring substituents, i.e. the atoms reachable from it once every ring bond of the
   molecule is cut (an H, an OH, or a whole acetamide group). The rest of the ring stays
   fixed, so the two ring bonds adjacent to the modified one and the ring angles absorb the
   change; every other bond length is unchanged. Splitting the change evenly keeps the ring's
   distortion symmetric and the displacement of each atom at half of what a one-sided move
   would need.
8. Split: ``n_validation`` frames (drawn at random with the seed) stay unmodified for
   validation; the rest are modified.
9. Coverage by design (``cover_every_type``, on by default; an extension, issue 28): before the
   1/k draws, every bond type of the molecule is given one structure of its own, in which one
   of its bonds (uniformly among them) is stretched, uniformly in its stretch segment
   (:mod:`.coverage`). The rest of that structure's modifications and every other structure
   follow steps 4-7 unchanged. With more types than structures each structure modifies
   ``ceil(n_types / n_structures)`` bonds. A scheduled stretch the geometry check refuses
   ``max_attempts`` times moves on to the next structure; a type no structure could take is
   reported (``AugmentationResult.unstretched_bond_types``). Off (the published random draw,
   the ``paper`` preset), the same report says which types the draw left out.

Randomness comes from ``numpy.random.SeedSequence(seed)``: one child stream for the split and
one per reference frame, so a structure depends only on the seed and its frame.
Lengths are in nm at the API (``*_angstrom`` properties for reading).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Mapping, Sequence

import numpy as np

from ..chem.bond_typing import BondTyping, get_bond_typing
from ..chem.gaff import bond_type_name
from ..errors import SamplingError
from ..units import ANGSTROM_PER_NM
from . import geometry
from .angle_sampling import AngleSamplingParameters, bend_structure, gaff_angle_constants
from .bond_parameters import BondSamplingParameters
from .bond_records import (
    COMPRESSION,
    STRETCH,
    AugmentationResult,
    BondModification,
    BondPlan,
    BondRange,
    Draw,
    Rejection,
    StructureRecord,
)
from .clash import Lookup, clash_thresholds, close_pairs
from .coverage import carry_over, coverage_schedule, per_structure_quota


# -- topology ------------------------------------------------------------------------------------

def _bond_list(typing: BondTyping) -> list[tuple[int, int]]:
    return [(min(b.atom1, b.atom2), max(b.atom1, b.atom2)) for b in typing.bonds]


def terminal_atoms(symbols: Sequence[str], bonds: Sequence[tuple[int, int]],
                   terminal_elements: Sequence[str]) -> frozenset[int]:
    """Degree-1 atoms of a monovalent element (H, halogens): the atoms of terminal bonds."""
    adjacency = geometry.neighbours(len(symbols), bonds)
    elements = set(terminal_elements)
    return frozenset(i for i, s in enumerate(symbols) if len(adjacency[i]) == 1 and s in elements)


def _typed_k(typing: BondTyping) -> dict[str, float]:
    values: dict[str, float] = {}
    for bond in typing.bonds:
        previous = values.setdefault(bond.bond_type, bond.k)
        if not np.isclose(previous, bond.k, rtol=1e-6):
            raise SamplingError(
                f"bonds of type {bond.bond_type} carry different force constants ({previous} and {bond.k}); "
                "the typing source must give one k per bond type"
            )
    return values


def _reference_k(parameters: BondSamplingParameters, lookup: Lookup | None, typing: BondTyping) -> float:
    type1, type2 = parameters.reference_bond_type.split("-")
    found = lookup(type1, type2) if lookup is not None else None
    if found is not None:
        return float(found[0])
    own = _typed_k(typing).get(bond_type_name(type1, type2))
    if own is not None:
        return float(own)
    raise SamplingError(
        f"reference bond type {parameters.reference_bond_type!r} is unknown to the {typing.source!r} typing "
        "source; set BondSamplingParameters(reference_bond_type=...) to a type it knows"
    )


def _as_lookup(reference_lookup, typing: BondTyping) -> Lookup:
    if reference_lookup is None:
        return get_bond_typing(typing.source).lookup
    if hasattr(reference_lookup, "lookup"):
        return reference_lookup.lookup
    return reference_lookup


def bond_ranges(
    typing: BondTyping,
    frames_positions_nm: np.ndarray,
    parameters: BondSamplingParameters = BondSamplingParameters(),
    reference_lookup: Lookup | object | None = None,
    *,
    symbols: Sequence[str],
) -> dict[str, BondRange]:
    """Compression and stretch segments of every bond type of a molecule.

    ``compression = [s_c r_min, r_min]``, ``stretch = [r_max, s_s k_ref / k_eff + r_mean]``,
    r_min/r_mean/r_max over every bond of the type in every frame.

    Parameters
    ----------
    typing
        The molecule's bond typing (atom types, per-bond k and r0).
    frames_positions_nm
        Reference frames, ``(n_frames, n_atoms, 3)`` in nm.
    reference_lookup
        ``lookup(type1, type2) -> (k, r0) | None`` of the force field, or a typing source with a
        ``lookup`` method; default: the registered source named ``typing.source``.
    symbols
        Element symbols (terminal atoms are degree-1 H or halogens).
    """
    frames = _check_frames(frames_positions_nm, len(typing.atom_types))
    lookup = _as_lookup(reference_lookup, typing)
    k_ref = _reference_k(parameters, lookup, typing)
    bonds = _bond_list(typing)
    terminal = terminal_atoms(symbols, bonds, parameters.terminal_elements)
    k_by_type = _typed_k(typing)
    lengths = geometry.bond_lengths(frames, bonds)  # (n_frames, n_bonds)
    ranges = {}
    for bond_type in typing.bond_types():
        members = [n for n, b in enumerate(typing.bonds) if b.bond_type == bond_type]
        values = lengths[:, members].ravel()
        is_terminal = any(bonds[n][0] in terminal or bonds[n][1] in terminal for n in members)
        k = k_by_type[bond_type]
        k_eff = parameters.terminal_k_factor * k if is_terminal else k
        r_min, r_mean, r_max = float(values.min()), float(values.mean()), float(values.max())
        upper = parameters.s_stretch_nm * k_ref / k_eff + r_mean
        ranges[bond_type] = BondRange(
            bond_type=bond_type, k=k, k_eff=k_eff, k_ref=k_ref, terminal=is_terminal, n_bonds=len(members),
            n_samples=int(values.size), r_min=r_min, r_mean=r_mean, r_max=r_max,
            compression=(parameters.s_compression * r_min, r_min), stretch=(r_max, max(upper, r_max)),
        )
    return ranges


def plan_bonds(typing: BondTyping, symbols: Sequence[str],
               parameters: BondSamplingParameters = BondSamplingParameters()) -> tuple[BondPlan, ...]:
    """Weight, moving atoms and terminal-group rotation of every bond (module docstring, 3, 5, 7)."""
    n_atoms = len(typing.atom_types)
    bonds = _bond_list(typing)
    rings = geometry.ring_bonds(n_atoms, bonds)
    terminal = terminal_atoms(symbols, bonds, parameters.terminal_elements)
    adjacency = geometry.neighbours(n_atoms, bonds)
    plans = []
    for index, (bond, (i, j)) in enumerate(zip(typing.bonds, bonds)):
        is_terminal = i in terminal or j in terminal
        k_eff = parameters.terminal_k_factor * bond.k if is_terminal else bond.k
        if (i, j) in rings:
            side_i = geometry.component(i, n_atoms, bonds, cut=rings)
            side_j = geometry.component(j, n_atoms, bonds, cut=rings)
            fraction_i = 0.5
        else:
            side_i = geometry.component(i, n_atoms, bonds, cut=[(i, j)])
            side_j = frozenset(range(n_atoms)) - side_i
            if len(side_i) < len(side_j):
                fraction_i, side_j = 1.0, frozenset()
            elif len(side_j) < len(side_i):
                fraction_i, side_i = 0.0, frozenset()
            else:
                fraction_i = 0.5
        rotation: dict = {}
        if (i in terminal) != (j in terminal):
            heavy = j if i in terminal else i
            anchors = sorted(adjacency[heavy] - terminal)
            if len(anchors) == 1:
                rotation = dict(rotation_atoms=tuple(sorted(adjacency[heavy] & terminal)),
                                rotation_anchor=anchors[0], rotation_center=heavy)
        plans.append(BondPlan(index, i, j, bond.bond_type, float(bond.k), float(k_eff), is_terminal, (i, j) in rings,
                              tuple(sorted(side_i)), tuple(sorted(side_j)), fraction_i, **rotation))
    return tuple(plans)


def selection_probabilities(plans: Sequence[BondPlan], excluded: frozenset[int] | set[int] = frozenset()) -> np.ndarray:
    """``p_b = (1/k_eff,b) / sum over allowed bonds of 1/k_eff`` (0 for excluded bonds)."""
    weights = np.array([0.0 if p.index in excluded else 1.0 / p.k_eff for p in plans])
    total = weights.sum()
    if total <= 0:
        raise SamplingError("no bond left to modify")
    return weights / total


def draw_modification(rng: np.random.Generator, plans: Sequence[BondPlan], ranges: Mapping[str, BondRange],
                      parameters: BondSamplingParameters = BondSamplingParameters(),
                      excluded: frozenset[int] | set[int] = frozenset()) -> Draw:
    """Bond (p ~ 1/k_eff), segment (compression : stretch = weights) and a uniform new length."""
    bond_index = int(rng.choice(len(plans), p=selection_probabilities(plans, excluded)))
    segment = COMPRESSION if rng.random() < parameters.compression_probability else STRETCH
    low, high = ranges[plans[bond_index].bond_type].segment(segment)
    return Draw(bond_index, segment, float(rng.uniform(low, high)))


def apply_modification(positions_nm: np.ndarray, plan: BondPlan, new_length: float, rotation_degrees: float | None
                       ) -> np.ndarray:
    """Set the bond of ``plan`` to ``new_length`` (nm) and optionally rotate its terminal group."""
    moved = geometry.set_bond_length(positions_nm, plan.atom1, plan.atom2, new_length, plan.moved_with_1,
                                     plan.moved_with_2, plan.fraction_1)
    if rotation_degrees is not None:
        center = moved[plan.rotation_center]
        moved = geometry.rotate_about_axis(moved, plan.rotation_atoms, center,
                                           center - moved[plan.rotation_anchor], rotation_degrees)
    return moved


def draw_rotation(rng: np.random.Generator, plan: BondPlan, parameters: BondSamplingParameters) -> float | None:
    """A signed angle uniform in the rotation range with probability ``rotation_probability``."""
    if not plan.can_rotate or rng.random() >= parameters.rotation_probability:
        return None
    low, high = parameters.rotation_degrees
    angle = float(rng.uniform(low, high))
    return -angle if rng.random() < 0.5 else angle


# -- the sampler ---------------------------------------------------------------------------------

def _check_frames(frames_positions_nm, n_atoms: int) -> np.ndarray:
    frames = np.asarray(frames_positions_nm, dtype=float)
    if frames.ndim == 2:
        frames = frames[None]
    if frames.ndim != 3 or frames.shape[1:] != (n_atoms, 3):
        raise SamplingError(f"reference frames have shape {frames.shape}; expected (n_frames, {n_atoms}, 3) in nm")
    if not np.all(np.isfinite(frames)):
        raise SamplingError("reference frames contain non-finite coordinates")
    return frames


def _resolve_typing(molecule, typing: BondTyping | None, source) -> tuple[BondTyping, Lookup]:
    if source is None:
        source = get_bond_typing(typing.source if typing is not None else "gaff")
    elif isinstance(source, str):
        source = get_bond_typing(source)
    if typing is None:
        typing = source.type_molecule(molecule)
    if len(typing.atom_types) != molecule.n_atoms or sorted(_bond_list(typing)) != molecule.bonds:
        raise SamplingError(
            f"the bond typing ({len(typing.atom_types)} atoms, {len(typing.bonds)} bonds) does not match molecule "
            f"{molecule.name!r} ({molecule.n_atoms} atoms, {len(molecule.bonds)} bonds); type this molecule"
        )
    return typing, source.lookup


def augment_frames(
    molecule,
    frames_positions_nm: np.ndarray,
    typing: BondTyping | None = None,
    parameters: BondSamplingParameters = BondSamplingParameters(),
    seed: int = 0,
    source=None,
    angle_parameters: AngleSamplingParameters = AngleSamplingParameters(),
    angle_constants=None,
) -> AugmentationResult:
    """Self-adaptive bond-length sampling of a molecule's reference frames (module docstring).

    Parameters
    ----------
    molecule
        :class:`~openmm_physembed.chem.molecule.Molecule` (elements, bonds).
    frames_positions_nm
        ``(n_frames, n_atoms, 3)`` reference geometries in nm, e.g. ``ReferenceFrames.positions_nm``.
    typing
        Bond typing of the molecule; default ``source.type_molecule(molecule)``.
    source
        Typing source (name or object with ``type_molecule``/``lookup``); default the registered
        source named ``typing.source``, or ``"gaff"`` when ``typing`` is None. Only its
        ``lookup`` is used once ``typing`` is known (k_ref and the geometry check's r_eq).
    seed
        Seed of every random choice; the result is a pure function of the inputs and the seed.
        The bond modifications do not depend on whether angle sampling is on.
    angle_parameters, angle_constants
        Bond-angle bending after the bond modification (:mod:`.angle_sampling`; off by default,
        as in the paper) and the force field's angle constants ``{(i, j, k): k}``, e.g.
        :func:`.angle_sampling.gaff_angle_constants`; needed when bending is on (without them the
        molecule is parameterised with GAFF here, deprecated).

    Returns
    -------
    AugmentationResult
        Modified positions (one structure per non-validation frame, in frame order), a record
        per structure, the validation frame indices, ranges and per-bond plans.

    Raises
    ------
    SamplingError
        When a frame gets no accepted structure within ``max_attempts`` draws, or bad input.
    """
    typing, lookup = _resolve_typing(molecule, typing, source)
    frames = _check_frames(frames_positions_nm, molecule.n_atoms)
    if angle_parameters.enabled and angle_constants is None:
        warnings.warn("augment_frames with angle sampling on and no angle_constants parameterises the molecule "
                      "with GAFF (AM1-BCC charges) on the quiet; pass angle_constants="
                      "gaff_angle_constants(molecule) (openmm_physembed.sampling.angle_sampling)",
                      DeprecationWarning, stacklevel=2)
        angle_constants = gaff_angle_constants(molecule)
    n_frames = len(frames)
    if parameters.n_validation >= n_frames:
        raise SamplingError(
            f"{n_frames} reference frames leave none to modify after {parameters.n_validation} for validation; "
            "lower n_validation or give more frames"
        )
    if parameters.bonds_per_structure > len(typing.bonds):
        raise SamplingError(f"bonds_per_structure={parameters.bonds_per_structure} exceeds the "
                            f"{len(typing.bonds)} bonds of {molecule.name!r}")
    symbols = molecule.symbols
    ranges = bond_ranges(typing, frames, parameters, lookup, symbols=symbols)
    plans = plan_bonds(typing, symbols, parameters)
    thresholds, pair_table = clash_thresholds(typing, symbols, lookup, parameters.clash_margin_nm,
                                             parameters.min_bond_separation)

    # Children n_frames+1 ... are the bends' streams, the last two the coverage schedules: spawning
    # more leaves the earlier streams (and so the published random draw) unchanged.
    split_seq, *children = np.random.SeedSequence(seed).spawn(2 * n_frames + 3)
    frame_seqs, bend_seqs = children[:n_frames], children[n_frames:2 * n_frames]
    bond_schedule_seq, angle_schedule_seq = children[2 * n_frames:]
    split_rng = np.random.default_rng(split_seq)
    validation = tuple(sorted(int(i) for i in split_rng.choice(n_frames, parameters.n_validation, replace=False)))
    train = tuple(i for i in range(n_frames) if i not in set(validation))
    bending = _angle_setup(molecule, typing, frames, parameters, angle_parameters, angle_constants, symbols) \
        if angle_parameters.enabled else None
    bendable = tuple(sorted({p.angle_type for p in bending[0]})) if bending is not None else ()

    bond_quota, angle_quota = parameters.bonds_per_structure, angle_parameters.angles_per_structure
    bond_schedule = [[] for _ in train]
    angle_schedule = [[] for _ in train]
    if parameters.cover_every_type:
        bond_quota = per_structure_quota(len(ranges), len(train), bond_quota)
        if bond_quota > len(typing.bonds):
            raise SamplingError(f"{molecule.name!r}: {len(ranges)} bond types in {len(train)} structures need "
                                f"{bond_quota} bonds per structure, more than its {len(typing.bonds)} bonds; "
                                "give more reference frames")
        bond_schedule = coverage_schedule(list(ranges), len(train), np.random.default_rng(bond_schedule_seq))
        if bending is not None:
            angle_quota = per_structure_quota(len(bendable), len(train), angle_quota)
            angle_schedule = coverage_schedule(bendable, len(train), np.random.default_rng(angle_schedule_seq))

    bend_parameters = replace(angle_parameters, angles_per_structure=angle_quota)
    positions_out, records = [], []
    for structure, frame in enumerate(train):
        positions, record, deferred = _modify_frame(
            frames[frame], frame, structure, plans, ranges, thresholds, parameters,
            np.random.default_rng(frame_seqs[frame]), molecule.name, bond_quota, bond_schedule[structure])
        carry_over(bond_schedule, structure, deferred)
        if bending is not None:
            positions, bends, rejected, deferred = bend_structure(
                positions, bending[0], bending[1], thresholds, bend_parameters,
                np.random.default_rng(bend_seqs[frame]), scheduled_types=angle_schedule[structure])
            carry_over(angle_schedule, structure, deferred)
            record = replace(record, bends=bends, rejected_bends=rejected)
        positions_out.append(positions)
        records.append(record)
    return AugmentationResult(
        molecule_name=molecule.name, positions_nm=np.array(positions_out), records=tuple(records),
        train_frames=train, validation_frames=validation, ranges=ranges, plans=plans, parameters=parameters,
        seed=seed, typing=typing, pair_thresholds=pair_table, angle_parameters=angle_parameters,
        angle_ranges={} if bending is None else bending[1], bendable_angle_types=bendable,
    )


def _angle_setup(molecule, typing, frames, parameters, angle_parameters, angle_constants, symbols):
    """(bendable angle plans, angle ranges) for :func:`.angle_sampling.bend_structure`."""
    from .angle_sampling import angle_ranges, plan_angles

    bonds = _bond_list(typing)
    terminal = terminal_atoms(symbols, bonds, parameters.terminal_elements)
    plans = plan_angles(typing.atom_types, bonds, angle_constants, terminal, parameters.terminal_k_factor)
    if not plans:
        raise SamplingError(f"{molecule.name!r} has no bendable angle (every angle lies in a ring); "
                            "switch angle sampling off")
    return plans, angle_ranges(typing.atom_types, frames, angle_constants, angle_parameters)


def _blocked(plans, modifications, excluded) -> set[int]:
    # With several bonds per structure, a later move must not undo an earlier bond's new length.
    return set(excluded) | {p.index for p in plans for m in modifications if p.changes_distance(m.atom1, m.atom2)}


def _accept(positions, plan: BondPlan, draw: Draw, angle, scheduled: bool = False) -> BondModification:
    return BondModification(
        plan.atom1, plan.atom2, plan.bond_type,
        old_length=geometry.bond_length(positions, plan.atom1, plan.atom2), new_length=draw.new_length,
        segment=draw.segment, rotation_degrees=angle, rotated_atoms=plan.rotation_atoms if angle is not None else (),
        moved_atoms=tuple(sorted(set(plan.moved_with_1) | set(plan.moved_with_2))), scheduled=scheduled,
    )


def _scheduled_stretch(positions, bond_type: str, plans, ranges, thresholds, parameters, rng, modifications,
                       rejections: list) -> tuple[np.ndarray, BondModification | None]:
    """Stretch one bond of ``bond_type`` (uniformly among its free bonds); None when none passes."""
    low, high = ranges[bond_type].stretch
    excluded: set[int] = set()
    for _ in range(parameters.max_attempts):
        blocked = _blocked(plans, modifications, excluded)
        members = [p for p in plans if p.bond_type == bond_type and p.index not in blocked]
        if not members:
            return positions, None
        plan = members[int(rng.integers(len(members)))]
        draw = Draw(plan.index, STRETCH, float(rng.uniform(low, high)))
        angle = draw_rotation(rng, plan, parameters)
        trial = apply_modification(positions, plan, draw.new_length, angle)
        clashes = close_pairs(trial, thresholds)
        if not clashes:
            return trial, _accept(positions, plan, draw, angle, scheduled=True)
        i, j, distance, threshold = clashes[0]
        rejections.append(Rejection(plan.atom1, plan.atom2, plan.bond_type, STRETCH, draw.new_length, (i, j),
                                    distance, threshold))
        if len(members) > 1:
            excluded.add(plan.index)  # another bond of the type may fit where this one clashed
    return positions, None


def _modify_frame(reference: np.ndarray, frame: int, structure: int, plans, ranges, thresholds, parameters,
                  rng: np.random.Generator, name: str, quota: int | None = None,
                  scheduled_types: Sequence[str] = ()) -> tuple[np.ndarray, StructureRecord, list[str]]:
    """The structure of one frame: scheduled stretches first, then 1/k draws up to ``quota``.

    Returns the positions, the record and the scheduled types this frame could not take.
    """
    quota = parameters.bonds_per_structure if quota is None else quota
    positions = reference.copy()
    modifications: list[BondModification] = []
    rejections: list[Rejection] = []
    excluded: set[int] = set()
    deferred: list[str] = []
    for bond_type in scheduled_types:
        positions, accepted = _scheduled_stretch(positions, bond_type, plans, ranges, thresholds, parameters, rng,
                                                 modifications, rejections)
        if accepted is None:
            deferred.append(bond_type)
        else:
            modifications.append(accepted)
    attempts = 0
    while len(modifications) < quota:
        blocked = _blocked(plans, modifications, excluded)
        if attempts >= parameters.max_attempts or len(blocked) == len(plans):
            if len(modifications) >= parameters.bonds_per_structure:
                break  # the extra bonds coverage asked for are a wish; the requested count is met
            raise SamplingError(_failure_message(name, frame, attempts, rejections, reference, thresholds,
                                                 exhausted=len(blocked) == len(plans)))
        attempts += 1
        draw = draw_modification(rng, plans, ranges, parameters, blocked)
        plan = plans[draw.bond_index]
        angle = draw_rotation(rng, plan, parameters)
        trial = apply_modification(positions, plan, draw.new_length, angle)
        excluded.add(draw.bond_index)
        clashes = close_pairs(trial, thresholds)
        if clashes:
            i, j, distance, threshold = clashes[0]
            rejections.append(Rejection(plan.atom1, plan.atom2, plan.bond_type, draw.segment, draw.new_length,
                                        (i, j), distance, threshold))
            continue
        modifications.append(_accept(positions, plan, draw, angle))
        positions = trial
    return positions, StructureRecord(structure, frame, tuple(modifications), tuple(rejections)), deferred


def _failure_message(name, frame, attempts, rejections, reference, thresholds, exhausted: bool) -> str:
    base = close_pairs(reference, thresholds)
    worst = rejections[-1] if rejections else None
    detail = (f"; last rejection: bond {worst.atom1}-{worst.atom2} ({worst.bond_type}, {worst.segment}) put atoms "
              f"{worst.pair[0]} and {worst.pair[1]} at {worst.distance * ANGSTROM_PER_NM:.3f} A < "
              f"{worst.threshold * ANGSTROM_PER_NM:.3f} A") if worst else ""
    unmodified = (f"; the unmodified frame already has {len(base)} pair(s) closer than allowed (closest: atoms "
                  f"{base[0][0]}-{base[0][1]} at {base[0][2] * ANGSTROM_PER_NM:.3f} A)") if base else ""
    why = "every bond was tried" if exhausted else f"max_attempts={attempts} reached"
    return (f"{name!r} reference frame {frame}: no modification passed the geometry check ({why}, "
            f"{len(rejections)} rejected){detail}{unmodified}; lower clash_margin_angstrom or raise max_attempts")


__all__ = [
    "apply_modification",
    "augment_frames",
    "bond_ranges",
    "draw_modification",
    "draw_rotation",
    "plan_bonds",
    "selection_probabilities",
    "terminal_atoms",
]
