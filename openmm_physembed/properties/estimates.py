"""The value type of every estimate: never a bare float."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Estimate:
    """A value with its standard error, effective sample count and unit.

    ``n_effective`` is the number of effectively independent samples behind the value
    (N / g for a correlated time series), or NaN where that is not meaningful.

    ``trusted`` is False when a statistic behind ``stderr`` or ``n_effective`` could not be
    computed (e.g. the statistical inefficiency of a constant or too short series); ``note``
    then says which, and the error bar should not be relied on.
    """

    value: float
    stderr: float
    n_effective: float
    unit: str
    method: str = ""
    trusted: bool = True
    note: str = ""

    def __str__(self) -> str:
        text = f"{self.value:.4f} +/- {self.stderr:.4f} {self.unit}"
        return text if self.trusted else f"{text} (untrusted: {self.note})"

    def as_dict(self) -> dict:
        return {"value": self.value, "stderr": self.stderr, "n_effective": self.n_effective, "unit": self.unit,
                "method": self.method, "trusted": self.trusted, "note": self.note}
