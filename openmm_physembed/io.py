"""Small file helpers: atomic writes and extended XYZ.

Nothing here knows about chemistry beyond the extxyz convention (Angstrom, eV), which is the
format mace-torch and ASE read.
"""

from __future__ import annotations

import filecmp
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success if it changed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # Rewriting identical content would only bump the mtime and make finished work look redone.
        if not (path.is_file() and filecmp.cmp(tmp, path, shallow=False)):
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | Path, data: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=json_default))
    return Path(path)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def save_npz(path: str | Path, **arrays: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return Path(path)


def write_extxyz(path: str | Path, atoms_list: list) -> Path:
    """Write ASE Atoms objects (with their info/arrays) atomically as extended XYZ."""
    from ase.io import write

    with atomic_path(path) as tmp:
        write(str(tmp), atoms_list, format="extxyz")
    return Path(path)


def read_extxyz(path: str | Path) -> list:
    from ase.io import read

    return read(str(path), index=":", format="extxyz")


def json_default(obj: Any) -> Any:
    """``json.dumps`` default for numpy scalars and arrays and paths."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")
