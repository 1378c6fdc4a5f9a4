"""One exception type per pipeline stage.

Each subclasses the builtin a caller would naturally catch (ValueError for bad input,
RuntimeError for a failed external step) and :class:`PhysEmbedError`, so ``except
PhysEmbedError`` catches everything the toolkit raises on purpose. Messages name the input and
the fix; the CLI prints them as one line.
"""

from __future__ import annotations


class PhysEmbedError(Exception):
    """Base class of every error the toolkit raises deliberately."""


class UsageError(PhysEmbedError, ValueError):
    """A command-line argument out of range, of the wrong kind, or naming nothing that exists."""


class MoleculeError(PhysEmbedError, ValueError):
    """Invalid SMILES, unreadable structure file, radical, wrong charge, unsupported element."""


class GAFFError(PhysEmbedError, RuntimeError):
    """antechamber / sqm / parmchk2 / tleap failed."""


class BoxError(PhysEmbedError, ValueError):
    """A liquid box that cannot be built (impossible density, packmol failure)."""


class SimulationError(PhysEmbedError, RuntimeError):
    """An MD run that cannot start or continue (NaN energies, mismatched checkpoint)."""


class SamplingError(PhysEmbedError, RuntimeError):
    """Bond-length sampling could not produce a valid structure."""


class LabellingError(PhysEmbedError, RuntimeError):
    """xTB labelling failed."""


class TrainingError(PhysEmbedError, RuntimeError):
    """MACE training failed."""


class PotentialError(PhysEmbedError, ValueError):
    """A model file, element set or box that a potential cannot handle."""


class PropertyError(PhysEmbedError, ValueError):
    """A property estimate that cannot be made from the given data."""


class StabilityError(PhysEmbedError, RuntimeError):
    """The stability benchmark could not run."""


class PhysEmbedWarning(UserWarning):
    """Base class of the toolkit's warnings (the CLI prints them as one line, like its errors)."""


class PropertyWarning(PhysEmbedWarning):
    """A property estimate was made, but a statistic behind its error bar failed: it is flagged untrusted."""


def tail(text: str, n_lines: int = 15) -> str:
    """Last lines of an external program's log, for error messages."""
    lines = [line for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-n_lines:])
