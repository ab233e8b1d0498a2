"""What is in the input folder, and which of it is new: names, sizes and hashes, standard library only.

The cron tick calls :func:`scan_folder` and :func:`new_files` before importing anything heavy, so a tick
with nothing to do stays cheap. A file's sha256 is re-used from the records store when its location,
size and modification time match a recorded ingestion, so unchanged files are not re-hashed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from plumbing import sha256_file
from records import RecordsStore

DATA_SUFFIXES = (".csv", ".json")
FINAL_DATA_NAME = "finaldata.csv"
INGESTED_FILES_NAME = "ingestedfiles.txt"


@dataclass(frozen=True)
class DataFile:
    """One file in the input folder, fingerprinted by name and content."""

    path: Path
    size_bytes: int
    mtime_ns: int
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def key(self) -> tuple[str, str]:
        """Identity of a file for "have we seen it": its name and its content hash."""
        return (self.name, self.sha256)


def candidate_paths(folder: Path) -> list[Path]:
    """Every visible regular file in ``folder`` (not sub-folders), sorted by name."""
    if not folder.is_dir():
        return []
    with os.scandir(folder) as entries:
        paths = [Path(e.path) for e in entries if not e.name.startswith(".") and e.is_file()]
    return sorted(paths, key=lambda p: p.name)


def scan_folder(folder: Path, store: RecordsStore | None = None) -> list[DataFile]:
    """Fingerprint every file in ``folder``, re-using recorded hashes for unchanged files."""
    files = []
    for path in candidate_paths(folder):
        stat = path.stat()
        location = str(path.resolve())
        sha = store.cached_sha256(location, stat.st_size, stat.st_mtime_ns) if store else None
        files.append(DataFile(path, stat.st_size, stat.st_mtime_ns, sha or sha256_file(path)))
    return files


def new_files(files: Iterable[DataFile], store: RecordsStore) -> list[DataFile]:
    """The files no completed run has checked yet (new by name or by content)."""
    checked = store.checked_files()
    return [f for f in files if f.key not in checked]
