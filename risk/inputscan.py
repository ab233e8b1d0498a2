"""What is in the input folder, and which of it is new: names, sizes and hashes, standard library only.

The cron tick calls :func:`scan_folder` and :func:`new_files` before importing anything heavy, so a tick
with nothing to do stays cheap. A file's sha256 is re-used from the records store when its location,
size and modification time match a recorded ingestion, so unchanged files are not re-hashed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from risk.files import sha256_file
from risk.store import RecordsStore


class DataFile(NamedTuple):
    """One file in the input folder, fingerprinted by name and content."""

    path: Path
    size_bytes: int
    mtime_ns: int
    sha256: str
    location: str = ""  # the resolved path, as recorded (empty: resolve ``path`` when needed)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def key(self) -> tuple[str, str]:
        """Identity of a file for "have we seen it": its name and its content hash."""
        return (self.name, self.sha256)


def _visible_files(folder: Path) -> list[os.DirEntry[str]]:
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        found = [e for e in entries if not e.name.startswith(".") and e.is_file()]
    return sorted(found, key=lambda e: e.name)


def scan_folder(folder: Path, store: RecordsStore | None = None) -> list[DataFile]:
    """Fingerprint every file in ``folder``, re-using recorded hashes for unchanged files.

    One stat per file and one batch of store look-ups for all of them; only new or changed files are hashed.
    """
    base = folder.resolve()
    seen = []
    for entry in _visible_files(folder):
        stat = entry.stat()
        location = str(Path(entry.path).resolve()) if entry.is_symlink() else str(base / entry.name)
        seen.append((Path(entry.path), stat.st_size, stat.st_mtime_ns, location))
    recorded = store.cached_sha256s([(loc, size, mtime) for _, size, mtime, loc in seen]) if store and seen else {}
    files = []
    for path, size, mtime, location in seen:
        sha = recorded.get((location, size, mtime)) or _readable_sha256(path)
        if sha is not None:
            files.append(DataFile(path, size, mtime, sha, location))
    return files


def _readable_sha256(path: Path) -> str | None:
    """The file's sha256, or None (with a warning) when it cannot be read: it is left for a later run."""
    try:
        return sha256_file(path)
    except OSError as err:
        logging.getLogger("datafiles").warning(
            "skipped %s: cannot read it (%s); fix its permissions or remove it, it is retried every run",
            path,
            err.strerror or err,
        )
        return None


def new_files(files: Iterable[DataFile], store: RecordsStore) -> list[DataFile]:
    """The files no completed run has checked yet (new by name or by content)."""
    checked = store.checked_files()
    return [f for f in files if f.key not in checked]
