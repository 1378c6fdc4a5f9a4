"""Self-adaptive bond-length sampling: physics-informed augmentation of a few reference frames.

From N reference frames of one molecule (default 50 GAFF MD frames) this keeps ``n_validation``
frames untouched and, in each of the others, compresses or stretches ``bonds_per_structure``
bond(s) by amounts set from force-field physics (Hu, Hou and Jiang, "Physical embedding machine
learning force fields for organic systems", section "Self-adaptive Bond Length Sampling
Method"; ``shared/reference/paper_physical_embedding.md``).

Algorithm (every constant is a field of :class:`BondSamplingParameters`)
------------------------------------------------------------------------
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
6. Geometry check: a structure is rejected if a pair of atoms ``min_bond_separation`` (2,
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

from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from ..chem.bond_typing import BondTyping, get_bond_typing
from ..chem.gaff import bond_type_name
from ..errors import SamplingError
from ..units import ANGSTROM_PER_NM, NM_PER_ANGSTROM
from . import geometry
from .angle_sampling import AngleSamplingParameters, bend_structure
from .coverage import carry_over, coverage_schedule, missing_types, per_structure_quota

COMPRESSION = "compression"
STRETCH = "stretch"
Lookup = Callable[[str, str], "tuple[float, float] | None"]


@dataclass(frozen=True)
class BondSamplingParameters:
    """Every constant of the self-adaptive bond-length sampling, with the published default."""

    s_compression: float = 0.95
    s_stretch_angstrom: float = 0.25
    reference_bond_type: str = "c3-c3"
    terminal_k_factor: float = 0.8
    terminal_elements: tuple[str, ...] = ("H", "F", "Cl", "Br", "I")
    compression_weight: float = 1.0
    stretch_weight: float = 4.0
    rotation_probability: float = 0.8
    rotation_degrees: tuple[float, float] = (15.0, 30.0)
    clash_margin_angstrom: float = 0.25
    min_bond_separation: int = 2
    max_attempts: int = 20
    n_validation: int = 5
    bonds_per_structure: int = 1
    # Not in the paper: without it a stiff bond type that occurs once is easily never drawn.
    cover_every_type: bool = True

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.s_compression <= 1.0:
            problems.append(f"s_compression={self.s_compression} must lie in (0, 1]")
        if self.s_stretch_angstrom < 0:
            problems.append(f"s_stretch_angstrom={self.s_stretch_angstrom} must be >= 0")
        if len(self.reference_bond_type.split("-")) != 2:
            problems.append(f"reference_bond_type={self.reference_bond_type!r} must look like 'c3-c3'")
        if self.terminal_k_factor <= 0:
            problems.append(f"terminal_k_factor={self.terminal_k_factor} must be > 0")
        if self.compression_weight < 0 or self.stretch_weight < 0 or \
                self.compression_weight + self.stretch_weight <= 0:
            problems.append("compression_weight and stretch_weight must be >= 0 with a positive sum")
        if not 0.0 <= self.rotation_probability <= 1.0:
            problems.append(f"rotation_probability={self.rotation_probability} must lie in [0, 1]")
        low, high = self.rotation_degrees
        if not 0.0 <= low <= high:
            problems.append(f"rotation_degrees={self.rotation_degrees} must satisfy 0 <= low <= high")
        if self.min_bond_separation < 2:
            problems.append("min_bond_separation must be >= 2 (bonded pairs are never checked)")
        if self.max_attempts < 1 or self.bonds_per_structure < 1 or self.n_validation < 0:
            problems.append("max_attempts and bonds_per_structure must be >= 1, n_validation >= 0")
        if problems:
            raise SamplingError("invalid bond sampling parameters: " + "; ".join(problems))
        object.__setattr__(self, "terminal_elements", tuple(self.terminal_elements))
        object.__setattr__(self, "rotation_degrees", (float(low), float(high)))

    @property
    def s_stretch_nm(self) -> float:
        return self.s_stretch_angstrom * NM_PER_ANGSTROM

    @property
    def clash_margin_nm(self) -> float:
        return self.clash_margin_angstrom * NM_PER_ANGSTROM

    @property
    def compression_probability(self) -> float:
        return self.compression_weight / (self.compression_weight + self.stretch_weight)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["terminal_elements"] = list(self.terminal_elements)
        data["rotation_degrees"] = list(self.rotation_degrees)
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "BondSamplingParameters":
        data = dict(data)
        for key in ("terminal_elements", "rotation_degrees"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


@dataclass(frozen=True)
class BondRange:
    """Sampling range of one bond type (lengths in nm, k in kJ/mol/nm^2 with E = k/2 (r - r0)^2)."""

    bond_type: str
    k: float
    k_eff: float
    k_ref: float
    terminal: bool
    n_bonds: int  # bonds of this type in the molecule
    n_samples: int  # bond lengths the statistics come from (n_bonds x frames)
    r_min: float
    r_mean: float
    r_max: float
    compression: tuple[float, float]
    stretch: tuple[float, float]

    def segment(self, name: str) -> tuple[float, float]:
        return {COMPRESSION: self.compression, STRETCH: self.stretch}[name]

    @property
    def stretch_above_mean(self) -> float:
        """Upper stretch bound minus r_mean: ``s_stretch k_ref / k_eff`` unless clamped at r_max."""
        return self.stretch[1] - self.r_mean

    @property
    def r_min_angstrom(self) -> float:
        return self.r_min * ANGSTROM_PER_NM

    @property
    def r_mean_angstrom(self) -> float:
        return self.r_mean * ANGSTROM_PER_NM

    @property
    def r_max_angstrom(self) -> float:
        return self.r_max * ANGSTROM_PER_NM

    @property
    def compression_angstrom(self) -> tuple[float, float]:
        return tuple(x * ANGSTROM_PER_NM for x in self.compression)

    @property
    def stretch_angstrom(self) -> tuple[float, float]:
        return tuple(x * ANGSTROM_PER_NM for x in self.stretch)

    @property
    def stretch_above_mean_angstrom(self) -> float:
        return self.stretch_above_mean * ANGSTROM_PER_NM

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update({
            "r_min_angstrom": self.r_min_angstrom, "r_mean_angstrom": self.r_mean_angstrom,
            "r_max_angstrom": self.r_max_angstrom, "compression_angstrom": list(self.compression_angstrom),
            "stretch_angstrom": list(self.stretch_angstrom),
            "stretch_above_mean_angstrom": self.stretch_above_mean_angstrom,
        })
        return data


@dataclass(frozen=True)
class BondPlan:
    """How one bond of the molecule is modified: its weight, the atoms that move, the rotation."""

    index: int
    atom1: int
    atom2: int
    bond_type: str
    k: float
    k_eff: float
    terminal: bool
    in_ring: bool
    moved_with_1: tuple[int, ...]  # translated with atom1 (atom1 included), possibly empty
    moved_with_2: tuple[int, ...]
    fraction_1: float  # share of the length change taken by atom1's side (0, 0.5 or 1)
    rotation_atoms: tuple[int, ...] = ()  # terminal group rotated after the change
    rotation_anchor: int | None = None  # axis runs anchor -> heavy atom
    rotation_center: int | None = None  # the heavy atom

    @property
    def can_rotate(self) -> bool:
        return self.rotation_center is not None

    def changes_distance(self, a: int, b: int) -> bool:
        """Whether modifying this bond changes the distance between atoms ``a`` and ``b``.

        The length change translates ``moved_with_1`` and ``moved_with_2`` by different vectors
        and leaves the rest fixed; a pair within one of these three groups keeps its distance
        (a terminal-group rotation only turns atoms bonded to nothing but the heavy atom).
        """
        def group(atom: int) -> int:
            return 1 if atom in self.moved_with_1 else 2 if atom in self.moved_with_2 else 0

        return group(a) != group(b)


@dataclass(frozen=True)
class Draw:
    bond_index: int
    segment: str
    new_length: float  # nm


@dataclass(frozen=True)
class BondModification:
    """One accepted change of one bond (lengths in nm)."""

    atom1: int
    atom2: int
    bond_type: str
    old_length: float
    new_length: float
    segment: str
    rotation_degrees: float | None
    rotated_atoms: tuple[int, ...]
    moved_atoms: tuple[int, ...]
    scheduled: bool = False  # drawn to cover its bond type (coverage by design), not by 1/k

    @property
    def old_length_angstrom(self) -> float:
        return self.old_length * ANGSTROM_PER_NM

    @property
    def new_length_angstrom(self) -> float:
        return self.new_length * ANGSTROM_PER_NM

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(old_length_angstrom=self.old_length_angstrom, new_length_angstrom=self.new_length_angstrom,
                    change_angstrom=self.new_length_angstrom - self.old_length_angstrom)
        return data


@dataclass(frozen=True)
class Rejection:
    """A modification the geometry check refused: the bond tried and the closest offending pair."""

    atom1: int
    atom2: int
    bond_type: str
    segment: str
    new_length: float
    pair: tuple[int, int]
    distance: float  # nm
    threshold: float  # nm

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StructureRecord:
    """One augmented structure: the reference frame it came from and what was changed."""

    structure: int  # position in the augmented (training) set
    reference_frame: int  # index of the source frame in the reference frames
    modifications: tuple[BondModification, ...]
    rejections: tuple[Rejection, ...] = ()
    bends: tuple = ()  # AngleModification, when angle sampling is on (angle_sampling.py)
    rejected_bends: int = 0

    @property
    def rejected_attempts(self) -> int:
        return len(self.rejections)

    @property
    def modification(self) -> BondModification:
        """The first (with the default ``bonds_per_structure=1``, the only) modification."""
        return self.modifications[0]

    def to_dict(self) -> dict:
        return {
            "structure": self.structure, "reference_frame": self.reference_frame,
            "rejected_attempts": self.rejected_attempts,
            "modifications": [m.to_dict() for m in self.modifications],
            "rejections": [r.to_dict() for r in self.rejections],
            "bends": [b.to_dict() for b in self.bends], "rejected_bends": self.rejected_bends,
        }


@dataclass(frozen=True)
class AugmentationResult:
    """Output of :func:`augment_frames` (positions in nm)."""

    molecule_name: str
    positions_nm: np.ndarray  # (n_modified, n_atoms, 3), in the order of ``records``
    records: tuple[StructureRecord, ...]
    train_frames: tuple[int, ...]  # reference frame of each modified structure
    validation_frames: tuple[int, ...]  # reference frames kept unmodified
    ranges: dict[str, BondRange]
    plans: tuple[BondPlan, ...]
    parameters: BondSamplingParameters
    seed: int
    typing: BondTyping
    pair_thresholds: dict[str, dict] = field(default_factory=dict)  # type pair -> r_eq, source
    angle_parameters: AngleSamplingParameters = AngleSamplingParameters()
    angle_ranges: dict = field(default_factory=dict)  # angle type -> AngleRange (angle sampling on)
    bendable_angle_types: tuple[str, ...] = ()  # angle types the bends can reach (angle sampling on)

    @property
    def rejected_attempts(self) -> int:
        return sum(r.rejected_attempts for r in self.records)

    @property
    def unstretched_bond_types(self) -> list[str]:
        """Bond types of the molecule that no structure stretched (empty with coverage by design)."""
        return missing_types(self.ranges, [m.bond_type for r in self.records for m in r.modifications
                                           if m.segment == STRETCH])

    @property
    def unbent_angle_types(self) -> list[str]:
        """Bendable angle types that no structure bent (empty with coverage by design and bends on)."""
        return missing_types(self.bendable_angle_types, [b.angle_type for r in self.records for b in r.bends])

    def coverage(self) -> dict:
        """What the set covers, for reports: counts and the types left out."""
        return {"cover_every_type": self.parameters.cover_every_type,
                "n_bond_types": len(self.ranges), "unstretched_bond_types": self.unstretched_bond_types,
                "n_bendable_angle_types": len(self.bendable_angle_types),
                "unbent_angle_types": self.unbent_angle_types if self.angle_parameters.enabled else [],
                "bonds_per_structure": max((len(r.modifications) for r in self.records), default=0),
                "bends_per_structure": max((len(r.bends) for r in self.records), default=0)}


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


# -- geometry check ------------------------------------------------------------------------------

def covalent_radius_nm(symbol: str) -> float:
    from ase.data import atomic_numbers, covalent_radii

    return float(covalent_radii[atomic_numbers[symbol]]) * NM_PER_ANGSTROM


def clash_thresholds(typing: BondTyping, symbols: Sequence[str], lookup: Lookup,
                     parameters: BondSamplingParameters = BondSamplingParameters()
                     ) -> tuple[np.ndarray, dict[str, dict]]:
    """Minimum allowed distance of every checked pair (nm; NaN = not checked) and the table used.

    ``threshold = r_eq(type_i, type_j) + margin`` for pairs at least ``min_bond_separation``
    bonds apart; r_eq is the force field's r0 of the type pair, else the sum of covalent radii.
    """
    n_atoms = len(typing.atom_types)
    separation = geometry.topological_distances(n_atoms, _bond_list(typing))
    table: dict[str, dict] = {}
    thresholds = np.full((n_atoms, n_atoms), np.nan)
    for i in range(n_atoms):
        for j in range(i + 1, n_atoms):
            if separation[i, j] < parameters.min_bond_separation:
                continue
            pair = bond_type_name(typing.atom_types[i], typing.atom_types[j])
            if pair not in table:
                found = lookup(typing.atom_types[i], typing.atom_types[j])
                if found is not None:
                    table[pair] = {"r_eq_nm": float(found[1]), "source": typing.source}
                else:
                    table[pair] = {"r_eq_nm": covalent_radius_nm(symbols[i]) + covalent_radius_nm(symbols[j]),
                                   "source": "covalent radii"}
            thresholds[i, j] = thresholds[j, i] = table[pair]["r_eq_nm"] + parameters.clash_margin_nm
    return thresholds, table


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
        as in the paper) and the force field's angle constants ``{(i, j, k): k}``; default: from
        the molecule's GAFF System.

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
    thresholds, pair_table = clash_thresholds(typing, symbols, lookup, parameters)

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
    from .angle_sampling import angle_ranges, force_field_angle_constants, plan_angles

    if angle_constants is None:
        from ..chem.gaff import parameterize

        angle_constants = force_field_angle_constants(parameterize(molecule).create_system())
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
        clashes = geometry.close_pairs(trial, thresholds)
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
        clashes = geometry.close_pairs(trial, thresholds)
        if clashes:
            i, j, distance, threshold = clashes[0]
            rejections.append(Rejection(plan.atom1, plan.atom2, plan.bond_type, draw.segment, draw.new_length,
                                        (i, j), distance, threshold))
            continue
        modifications.append(_accept(positions, plan, draw, angle))
        positions = trial
    return positions, StructureRecord(structure, frame, tuple(modifications), tuple(rejections)), deferred


def _failure_message(name, frame, attempts, rejections, reference, thresholds, exhausted: bool) -> str:
    base = geometry.close_pairs(reference, thresholds)
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
    "AugmentationResult",
    "BondModification",
    "BondPlan",
    "BondRange",
    "BondSamplingParameters",
    "Draw",
    "Rejection",
    "StructureRecord",
    "apply_modification",
    "augment_frames",
    "bond_ranges",
    "clash_thresholds",
    "draw_modification",
    "draw_rotation",
    "plan_bonds",
    "selection_probabilities",
    "terminal_atoms",
]
