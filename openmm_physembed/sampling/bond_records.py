"""What the bond-length sampler (:mod:`.bond_sampling`) plans, draws and returns: its record classes.

Frozen dataclasses with lengths in nm (``*_angstrom`` properties for reading) and ``to_dict``
for the files :mod:`.augment` writes. Nothing here draws or moves atoms.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..chem.bond_typing import BondTyping
from ..units import ANGSTROM_PER_NM
from .angle_sampling import AngleSamplingParameters
from .bond_parameters import BondSamplingParameters
from .coverage import missing_types

COMPRESSION = "compression"
STRETCH = "stretch"


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
    """One 1/k draw: which bond (index into the plans), which segment, the new length."""

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


__all__ = [
    "COMPRESSION",
    "STRETCH",
    "AugmentationResult",
    "BondModification",
    "BondPlan",
    "BondRange",
    "Draw",
    "Rejection",
    "StructureRecord",
]
