"""One long job, one directory: its settings, its progress, its finished marker.

Every long job of the package (MD runs, bond sampling, MACE training, the stability MD) keeps a
manifest in its directory. A job restarted in the same directory with the same settings
continues (or returns what it finished); one with other settings is refused with the keys that
changed, instead of mixing two runs; ``overwrite`` replaces a finished run on purpose. The
manifest is JSON, written by rename, so a job killed at any instant leaves a readable one:

``{"kind": ..., "settings": {...}, "finished": bool, "state": {...}, "summary": {...}}``

``state`` is what a job wants back on resume (step counts, outcomes so far); ``summary`` is what
it reports once finished.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterable, Mapping

from .errors import PhysEmbedError
from .io import json_default, read_json, write_json


def jsonable(value):
    """``value`` as it reads back from JSON (tuples become lists, numpy scalars numbers, paths text)."""
    return json.loads(json.dumps(value, sort_keys=True, default=_plain))


def changed_keys(stored: Mapping, current: Mapping, ignore: Iterable[str] = ()) -> list[str]:
    """Top-level keys whose values differ between two settings mappings (``ignore`` left out).

    At any depth a key one side lacks counts as None there: an option added later, off (None) by
    default, leaves the manifests written before it matching, so their runs still resume.
    """
    skip = set(ignore)
    return sorted(k for k in set(stored) | set(current) if k not in skip and not _same(stored.get(k), current.get(k)))


def _same(a, b) -> bool:
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return all(_same(a.get(k), b.get(k)) for k in set(a) | set(b))
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


class JobDirectory:
    """The manifest of one long job in ``path``.

    Parameters
    ----------
    path
        The job's directory (created on :meth:`open`).
    kind
        What the job is, for messages (``"NPT run"``, ``"bond sampling run"``).
    settings
        What defines the job's result; stored as JSON and compared on every restart.
    manifest
        The manifest's file name inside ``path``.
    ignore
        Settings keys that may change between restarts (a moved input file whose hash is compared
        instead, a thread count).
    error
        The exception type to raise (the calling stage's).
    fix
        What the refusal tells the user to do.
    """

    def __init__(self, path: str | Path, kind: str, settings: Mapping, *, manifest: str = "job.json",
                 ignore: Iterable[str] = (), error: type[Exception] = PhysEmbedError,
                 fix: str = "choose a new output directory, or delete it to start over"):
        self.path = Path(path)
        self.kind = kind
        self.settings = jsonable(dict(settings))
        self.manifest_path = self.path / manifest
        self.ignore = tuple(ignore)
        self.error = error
        self.fix = fix

    # ----------------------------------------------------------------------------------------- reading
    def exists(self) -> bool:
        return self.manifest_path.is_file()

    def read(self) -> dict:
        """The stored manifest ({} when there is none)."""
        return read_json(self.manifest_path) if self.exists() else {}

    @property
    def finished(self) -> bool:
        return bool(self.read().get("finished", False))

    @property
    def state(self) -> dict:
        return dict(self.read().get("state", {}))

    @property
    def summary(self) -> dict:
        return dict(self.read().get("summary", {}))

    def differences(self) -> list[str]:
        """Settings keys that differ from the stored ones ([] for a new or matching directory)."""
        if not self.exists():
            return []
        return changed_keys(self.read().get("settings", {}), self.settings, self.ignore)

    # ----------------------------------------------------------------------------------------- writing
    def open(self, overwrite: bool = False, compare: Callable[[], bool] | bool = True) -> "JobDirectory":
        """Claim the directory for these settings: refuse other settings, or start over with ``overwrite``.

        ``compare`` (a bool or a callable) says whether a stored manifest binds this run; a job
        whose earlier attempt never started real work may pass False to simply take over.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        binding = compare() if callable(compare) else compare
        changed = self.differences() if binding else []
        if changed and not overwrite:
            raise self.error(
                f"{self.path} holds a {self.kind} with different settings (changed: {', '.join(changed)}); {self.fix}"
            )
        if changed or not self.exists() or not binding:
            self._write({"kind": self.kind, "settings": self.settings, "finished": False, "state": {}})
        elif self.read().get("settings") != self.settings:  # an ignored key changed: record the new value
            self.update(settings=self.settings)
        return self

    def save_state(self, **state) -> None:
        """Replace the job's resume state (and mark it unfinished)."""
        self.update(state=jsonable(state), finished=False)

    def finish(self, **summary) -> None:
        """Mark the job finished, with what it reports."""
        self.update(finished=True, summary=jsonable(summary))

    def update(self, **fields) -> None:
        self._write({**self.read(), "kind": self.kind, **fields})

    def _write(self, manifest: dict) -> None:
        write_json(self.manifest_path, manifest)


def _plain(value):
    # Settings may hold objects JSON has no type for (a bond-typing source, an enum): their text stands in.
    try:
        return json_default(value)
    except TypeError:
        return str(value)
