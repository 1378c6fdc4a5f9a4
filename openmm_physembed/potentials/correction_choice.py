"""Which (alpha, a1, s6) a CSO correction uses: never a silent default.

No pair (alpha, a1) is right for every model: each is fitted to an experimental density for one
model file (the paper's EC/EMC model wants alpha = +0.05, a1 = 0.6; MACE-OFF23(S) wants
alpha = -0.05, a1 = 1.07). So every API and CLI path that adds the correction takes one of

* explicit values: ``alpha=..., a1=...`` (``s6`` defaults to 1, as published);
* a published pair by name, ``correction="mace-off23-small"`` or ``"mace-ec-emc"``
  (:data:`PUBLISHED_CORRECTIONS`), with a warning naming the model file it belongs to;
* the file ``physembed fit-a1`` writes (``correction="runs/EMC_298.15K/correction.json"``): JSON with
  alpha, a1, s6, the sha256 of the model file it was fitted for, the liquid, temperature and the
  density reached. It is refused for any other model file unless forced (``force_correction=True``,
  CLI ``--force-correction``), since a1 fitted for one model is wrong for another.

Anything else raises :class:`~openmm_physembed.errors.PotentialError` saying these three ways.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from ..errors import PhysEmbedWarning, PotentialError

CORRECTION_FILE_FORMAT = "physembed-cso-correction"
CORRECTION_FILE_VERSION = 1


@dataclass(frozen=True)
class PublishedCorrection:
    """(alpha, a1, s6) fitted in the paper for one model file, and what it was fitted on."""

    alpha: float
    a1: float
    s6: float
    model: str
    fitted_on: str


#: The paper's fits (s6 = 1), each for one model file only.
PUBLISHED_CORRECTIONS: dict[str, PublishedCorrection] = {
    "mace-ec-emc": PublishedCorrection(0.05, 0.6, 1.0, "the paper's MACE model trained on EC/EMC",
                                       "EC:EMC 3:7 at 298 K"),
    "mace-off23-small": PublishedCorrection(-0.05, 1.07, 1.0, "MACE-OFF23_small.model (MACE-OFF23(S))",
                                            "EMC at 298 K"),
}

HOW_TO_CHOOSE = (
    "give alpha= and a1= explicitly, correction='mace-off23-small' or 'mace-ec-emc' (published, for those "
    "model files only), or correction=FILE written by `physembed fit-a1` (CLI: --alpha/--a1 or --correction)"
)


@dataclass(frozen=True)
class CSOCorrection:
    """The chosen CSO parameters and where they came from.

    Attributes
    ----------
    alpha, a1, s6
        The CSO global parameters.
    source
        ``"explicit"``, ``"published:<name>"``, the path of a fit file, ``"fit-a1"`` (a fit result
        not yet written) or ``"off"`` (alpha = 0, the term present but switched off).
    model_sha256, model_file
        For a fit: sha256 and name of the MACE model file it was fitted for; both ``None`` for a
        fit on the GAFF base (and for explicit or published values).
    liquid, temperature_K, pressure_bar, target_density_g_cm3, density_g_cm3, density_stderr_g_cm3
        For a fit: the liquid, conditions, experimental target and the density reached (from the
        confirming NPT run of the reweighting fit, or the scan's linear fit, see ``density_from``).
    a1_stderr, method, density_from, cso_cutoff_nm
        For a fit: a1's standard error, fit method, origin of the density, CSO cutoff used.
    """

    alpha: float
    a1: float
    s6: float = 1.0
    source: str = "explicit"
    model_sha256: str | None = None
    model_file: str | None = None
    liquid: str | None = None
    temperature_K: float | None = None
    pressure_bar: float | None = None
    target_density_g_cm3: float | None = None
    density_g_cm3: float | None = None
    density_stderr_g_cm3: float | None = None
    a1_stderr: float | None = None
    method: str | None = None
    density_from: str | None = None
    cso_cutoff_nm: float | None = None

    @property
    def is_fit(self) -> bool:
        """Fitted values (a fit file or a fit result), which belong to the model they were fitted for."""
        return self.source not in ("explicit", "off") and not self.source.startswith("published:")

    def as_dict(self) -> dict[str, Any]:
        """The JSON a fit file holds (format tag and version first)."""
        data = {"format": CORRECTION_FILE_FORMAT, "version": CORRECTION_FILE_VERSION, **asdict(self)}
        data.pop("source")
        return data

    def write(self, path) -> Path:
        """Write the correction file (atomically) that ``correction=PATH`` / ``--correction PATH`` read."""
        from ..io import write_json

        return write_json(path, self.as_dict())

    @classmethod
    def from_file(cls, path) -> "CSOCorrection":
        """Read a file written by :meth:`write` (``physembed fit-a1``)."""
        import json

        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise PotentialError(f"cannot read correction file {str(path)!r} ({exc}); give a file written by "
                                 "`physembed fit-a1`") from None
        if not isinstance(data, dict) or data.get("format") != CORRECTION_FILE_FORMAT:
            raise PotentialError(f"{str(path)!r} is not a CSO correction file (no \"format\": "
                                 f"\"{CORRECTION_FILE_FORMAT}\"); give a file written by `physembed fit-a1`")
        if data.get("version", 0) > CORRECTION_FILE_VERSION:
            raise PotentialError(f"correction file {str(path)!r} has version {data['version']}; this toolkit "
                                 f"reads up to {CORRECTION_FILE_VERSION} (update openmm_physembed)")
        known = {f.name for f in fields(cls)} - {"source"}
        missing = [k for k in ("alpha", "a1", "s6") if not isinstance(data.get(k), (int, float))]
        if missing:
            raise PotentialError(f"correction file {str(path)!r} lacks {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in known}, source=str(path))


def file_sha256(path) -> str:
    """sha256 of a file's bytes (hex), read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def choose_correction(correction=None, *, alpha: float | None = None, a1: float | None = None,
                      s6: float | None = None, model_path=None, force: bool = False) -> CSOCorrection:
    """The (alpha, a1, s6) the caller chose, or a :class:`PotentialError` if they chose none.

    Parameters
    ----------
    correction
        ``None`` (then ``alpha`` and ``a1`` are required), a name in :data:`PUBLISHED_CORRECTIONS`
        (warns: it belongs to one model file), the path of a file written by ``physembed fit-a1``,
        a :class:`CSOCorrection`, or a mapping ``{"alpha": ..., "a1": ...}`` (explicit values).
    alpha, a1, s6
        Explicit values (``s6`` defaults to 1); not together with ``correction``.
    model_path
        The MACE model file the correction will be used with (``None``: a GAFF or other non-MACE
        base); a fit file must have been fitted for the same file (same sha256).
    force
        Use a fit file fitted for another model anyway (with a warning).

    >>> choice = choose_correction(alpha=-0.05, a1=1.07)
    >>> choice.alpha, choice.a1, choice.s6, choice.source
    (-0.05, 1.07, 1.0, 'explicit')
    """
    if correction is None:
        if alpha is None and a1 is None:
            raise PotentialError(f"the CSO correction needs (alpha, a1) and has no default: {HOW_TO_CHOOSE}")
        if alpha is None or a1 is None:
            given, lacking = ("alpha", "a1") if a1 is None else ("a1", "alpha")
            raise PotentialError(f"{given} was given without {lacking}: {HOW_TO_CHOOSE}")
        return CSOCorrection(float(alpha), float(a1), 1.0 if s6 is None else float(s6))
    if alpha is not None or a1 is not None or s6 is not None:
        raise PotentialError(f"give either correction={correction!r} or alpha/a1/s6, not both")
    if isinstance(correction, Mapping):
        extra = sorted(set(correction) - {"alpha", "a1", "s6"})
        if extra:
            raise PotentialError(f"correction mapping has unknown keys {extra}; it takes alpha, a1 and s6")
        return choose_correction(None, **correction)
    if isinstance(correction, CSOCorrection):
        chosen = correction
    elif isinstance(correction, str) and correction.lower() in PUBLISHED_CORRECTIONS:
        name = correction.lower()
        published = PUBLISHED_CORRECTIONS[name]
        warnings.warn(
            f"correction {name!r}: (alpha, a1) = ({published.alpha:g}, {published.a1:g}) were fitted for "
            f"{published.model} on {published.fitted_on}; with any other model file they are wrong "
            "(fit your own with `physembed fit-a1`)",
            PhysEmbedWarning, stacklevel=3,
        )
        return CSOCorrection(published.alpha, published.a1, published.s6, source=f"published:{name}")
    elif isinstance(correction, (str, Path)) and Path(correction).is_file():
        chosen = CSOCorrection.from_file(correction)
    else:
        raise PotentialError(
            f"correction {str(correction)!r} is neither a published correction ({', '.join(PUBLISHED_CORRECTIONS)}) "
            "nor an existing file written by `physembed fit-a1`"
        )
    if chosen.is_fit:
        check_model(chosen, model_path, force)
    return chosen


def check_model(correction: CSOCorrection, model_path, force: bool = False) -> None:
    """Refuse (or, with ``force``, warn about) a fit used with another model file than its own."""
    if model_path is not None and not Path(model_path).is_file():
        raise PotentialError(f"MACE model file {str(model_path)!r} does not exist; cannot check that correction "
                             f"{correction.source!r} was fitted for it")
    here = None if model_path is None else file_sha256(model_path)
    if here == correction.model_sha256:
        return
    fitted = ("the GAFF base (no MACE model)" if correction.model_sha256 is None else
              f"model file {correction.model_file!r} (sha256 {correction.model_sha256[:12]}...)")
    used = ("a base without a MACE model file (pass model_path= if it has one)" if model_path is None else
            f"{str(model_path)!r} (sha256 {here[:12]}...)")
    message = f"correction {correction.source!r} was fitted for {fitted}, not for {used}"
    if not force:
        raise PotentialError(f"{message}; refit with `physembed fit-a1`, or force it (force_correction=True, "
                             "--force-correction)")
    warnings.warn(f"{message} (used anyway: forced)", PhysEmbedWarning, stacklevel=3)
