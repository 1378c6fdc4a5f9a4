"""A MACE model file: loading it, what it was trained for (:class:`MACEModelInfo`), and its precision.

``precision`` means the dtype MACE runs in, as in openmm-ml (``"single"``/``"double"``; our
``dtype`` keyword takes the same values and the torch names ``"float32"``/``"float64"``). Every
entry point that runs a model file defaults to the file's own dtype (:attr:`MACEModelInfo.dtype`),
as ``MLPotential('physembed-mace')`` does.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from ..errors import PotentialError
from ..units import NM_PER_ANGSTROM

#: Spellings of the MACE precision: ours (torch dtype names) and openmm-ml's ``precision``.
PRECISIONS = {"float64": "float64", "double": "float64", "float32": "float32", "single": "float32"}


@dataclass(frozen=True)
class MACEModelInfo:
    """What a MACE model file was trained for."""

    atomic_numbers: tuple[int, ...]
    r_max_nm: float
    dtype: str
    heads: tuple[str, ...]
    model_class: str

    @property
    def element_symbols(self) -> tuple[str, ...]:
        from ase.data import chemical_symbols

        return tuple(chemical_symbols[z] for z in self.atomic_numbers)

    @classmethod
    def from_model(cls, model) -> "MACEModelInfo":
        import torch

        try:
            dtype = next(model.parameters()).dtype
        except StopIteration:  # pragma: no cover - every MACE model has parameters
            dtype = torch.float64
        heads = getattr(model, "heads", None) or ["Default"]
        return cls(
            atomic_numbers=tuple(int(z) for z in model.atomic_numbers),
            r_max_nm=float(model.r_max) * NM_PER_ANGSTROM,
            dtype="float64" if dtype == torch.float64 else "float32",
            heads=tuple(str(h) for h in heads),
            model_class=getattr(model, "original_name", type(model).__name__),
        )

    @classmethod
    def from_path(cls, model_path) -> "MACEModelInfo":
        return cls.from_model(load_mace_model(model_path))


def load_mace_model(model_path, device: str = "cpu"):
    """Load a mace-torch model file (``torch.save`` pickle, or a TorchScript ``*_compiled.model``).

    Raises :class:`PotentialError` for a missing file or one that is not a MACE model.
    """
    import mace  # noqa: F401  - unpickling needs mace's classes; mace before e3nn
    import torch

    path = Path(model_path)
    if not path.is_file():
        raise PotentialError(f"MACE model file {str(path)!r} does not exist; train one (physembed train) or fix the path")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = torch.load(str(path), map_location=device, weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means the same thing to the user
        try:
            model = torch.jit.load(str(path), map_location=device)
        except Exception:  # noqa: BLE001
            raise PotentialError(
                f"cannot read MACE model {str(path)!r} ({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); "
                "give a file written by mace_run_train (NAME.model) or torch.save(model)"
            ) from None
    if not isinstance(model, torch.nn.Module) or not hasattr(model, "atomic_numbers") or not hasattr(model, "r_max"):
        raise PotentialError(f"{str(path)!r} holds a {type(model).__name__}, not a MACE model")
    return model.eval()


def resolve_dtype(dtype: str | None = None, precision: str | None = None) -> str | None:
    """``"float32"``/``"float64"`` from our ``dtype`` or openmm-ml's ``precision`` (``"single"``/``"double"``).

    Either name takes either spelling; giving both is fine when they agree. ``None`` when neither
    is given (the caller then uses the model file's own dtype).

    >>> resolve_dtype(precision="single"), resolve_dtype("float64"), resolve_dtype()
    ('float32', 'float64', None)
    """
    chosen = []
    for name, value in (("dtype", dtype), ("precision", precision)):
        if value is None:
            continue
        if value not in PRECISIONS:
            raise PotentialError(
                f"{name}={value!r} is not a MACE precision; use 'single' or 'double' (or 'float32'/'float64')"
            )
        chosen.append(PRECISIONS[value])
    if len(set(chosen)) > 1:
        raise PotentialError(f"dtype={dtype!r} and precision={precision!r} disagree; give one of them")
    return chosen[0] if chosen else None
