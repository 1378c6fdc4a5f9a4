"""Bond classification sources behind one small interface.

The bond-length sampler only needs, per molecule, each atom's type and each bond's type pair,
force constant and equilibrium length, plus a force-field-wide lookup for type pairs the
molecule lacks (the reference bond ``c3-c3``). A source provides exactly that; GAFF 1 and GAFF2
are registered here, and a new source (OPLS, say) is one more ``register_bond_typing`` call,
without touching the sampling code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from ..errors import GAFFError
from .gaff import BondParameter, bond_type_name, parameterize, read_bond_table
from .molecule import Molecule


@dataclass(frozen=True)
class BondTyping:
    """Result of typing one molecule: what the sampler consumes."""

    source: str
    atom_types: tuple[str, ...]
    bonds: tuple[BondParameter, ...]

    def bond_types(self) -> list[str]:
        return sorted({bond.bond_type for bond in self.bonds})


class BondTypingSource(Protocol):
    name: str

    def type_molecule(self, molecule: Molecule) -> BondTyping: ...

    def lookup(self, type1: str, type2: str) -> tuple[float, float] | None:
        """Force-field (k in kJ/mol/nm^2 with E = k/2 (r-r0)^2, r0 in nm) of a type pair, or None."""
        ...


class GAFFBondTyping:
    """GAFF (1 or 2) typing through antechamber; parameters from the molecule's prmtop."""

    def __init__(self, force_field: str = "gaff", charge_method: str = "bcc", cache_dir=None):
        self.name = force_field
        self.force_field = force_field
        self.charge_method = charge_method
        self.cache_dir = cache_dir

    def type_molecule(self, molecule: Molecule) -> BondTyping:
        params = parameterize(molecule, self.force_field, self.charge_method, self.cache_dir)
        return BondTyping(self.name, params.atom_types, params.bonds)

    def lookup(self, type1: str, type2: str) -> tuple[float, float] | None:
        return read_bond_table(self.force_field).get(bond_type_name(type1, type2))


_REGISTRY: dict[str, Callable[..., BondTypingSource]] = {
    "gaff": lambda **kw: GAFFBondTyping("gaff", **kw),
    "gaff2": lambda **kw: GAFFBondTyping("gaff2", **kw),
}


def register_bond_typing(name: str, factory: Callable[..., BondTypingSource]) -> None:
    _REGISTRY[name] = factory


def get_bond_typing(name: str = "gaff", **options) -> BondTypingSource:
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise GAFFError(f"unknown bond typing source {name!r}; available: {', '.join(sorted(_REGISTRY))}") from None
    return factory(**options)
