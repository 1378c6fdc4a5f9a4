"""The constants of the self-adaptive bond-length sampling (:mod:`.bond_sampling`), with the published defaults.

Kept apart from the algorithm so that the records (:mod:`.bond_records`), the geometry check
(:mod:`.clash`) and the command line read the same defaults without importing the sampler.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

from ..errors import SamplingError
from ..units import NM_PER_ANGSTROM


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


__all__ = ["BondSamplingParameters"]
