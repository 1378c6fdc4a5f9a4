"""Experimental densities and viscosities shipped with the package (``data/experimental_liquids.csv``).

Temperatures are in K (the published tables' 298 K etc. are stored as 298.15 K); mixtures
are given by mass fractions; every row names its source.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from ..errors import PropertyError


@dataclass(frozen=True)
class ExperimentalLiquid:
    system: str
    components: tuple[str, ...]  # library names or SMILES
    mass_fractions: tuple[float, ...]
    temperature_K: float
    density_g_cm3: float | None
    viscosity_cP: float | None  # a single value, or the middle of a published range
    viscosity_range_cP: tuple[float, float] | None
    source: str


def _float(text: str) -> float | None:
    return float(text) if text.strip() else None


@lru_cache(maxsize=1)
def experimental_liquids() -> tuple[ExperimentalLiquid, ...]:
    rows = []
    with resources.files("openmm_physembed.data").joinpath("experimental_liquids.csv").open() as handle:
        for row in csv.DictReader(handle):
            low, high = _float(row["viscosity_cP_low"]), _float(row["viscosity_cP_high"])
            viscosity = _float(row["viscosity_cP"])
            if viscosity is None and low is not None and high is not None:
                viscosity = 0.5 * (low + high)
            rows.append(ExperimentalLiquid(
                system=row["system"],
                components=tuple(row["components"].split(";")),
                mass_fractions=tuple(float(x) for x in row["mass_fractions"].split(";")),
                temperature_K=float(row["temperature_K"]),
                density_g_cm3=_float(row["density_g_cm3"]),
                viscosity_cP=viscosity,
                viscosity_range_cP=(low, high) if low is not None else None,
                source=row["source"],
            ))
    return tuple(rows)


def lookup(system: str, temperature_K: float, tolerance_K: float = 0.5) -> ExperimentalLiquid:
    """The row for ``system`` (case-insensitive, e.g. 'EMC', 'EC:EMC 3:7') at ``temperature_K``."""
    key = system.strip().lower()
    matches = [r for r in experimental_liquids() if r.system.lower() == key]
    if not matches:
        known = sorted({r.system for r in experimental_liquids()})
        raise PropertyError(f"no experimental data for {system!r}; known systems: {', '.join(known)}")
    for row in matches:
        if abs(row.temperature_K - temperature_K) <= tolerance_K:
            return row
    temps = ", ".join(f"{r.temperature_K:g}" for r in matches)
    raise PropertyError(f"no experimental data for {system!r} at {temperature_K:g} K (available: {temps} K)")


def parse_system_at_temperature(text: str, require_row: bool = True) -> tuple[ExperimentalLiquid, float]:
    """``(row, temperature_K)`` for ``'SYSTEM'`` or ``'SYSTEM@TEMPERATURE'`` (K), e.g. ``'EC:EMC 3:7@303.15'``.

    Without a temperature: the table's first row for the system, at its temperature. With one and
    ``require_row``: the row at that temperature (:func:`lookup`). Without ``require_row`` any
    temperature is accepted and the system's nearest-temperature row gives the composition (and
    the packing density), for training data at temperatures the table has no density for.

    >>> row, t = parse_system_at_temperature("EMC@313.15", require_row=False)
    >>> row.system, row.temperature_K, t
    ('EMC', 298.15, 313.15)
    """
    import math

    system, _, temperature = text.partition("@")
    key = system.strip().lower()
    rows = [r for r in experimental_liquids() if r.system.lower() == key]
    if not rows:
        lookup(system, 298.15)  # raises with the list of known systems
    if not temperature:
        return rows[0], rows[0].temperature_K
    try:
        temperature_K = float(temperature)
    except ValueError:
        raise PropertyError(f"{text!r}: the temperature after '@' must be a number in K") from None
    if not (math.isfinite(temperature_K) and temperature_K > 0):
        raise PropertyError(f"{text!r}: the temperature after '@' must be positive (K)")
    if require_row:
        return lookup(system, temperature_K), temperature_K
    return min(rows, key=lambda r: abs(r.temperature_K - temperature_K)), temperature_K
