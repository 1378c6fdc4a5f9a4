"""The value type of every estimate: never a bare float."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """A value with its standard error, effective sample count and unit.

    ``n_effective`` is the number of effectively independent samples behind the value
    (N / g for a correlated time series), or NaN where that is not meaningful.
    """

    value: float
    stderr: float
    n_effective: float
    unit: str
    method: str = ""

    def __str__(self) -> str:
        return f"{self.value:.4f} +/- {self.stderr:.4f} {self.unit}"

    def as_dict(self) -> dict:
        return {"value": self.value, "stderr": self.stderr, "n_effective": self.n_effective, "unit": self.unit,
                "method": self.method}
