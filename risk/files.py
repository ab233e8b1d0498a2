"""Files written whole or not at all, and their sha256.

:func:`atomic_write` is how every artifact is written (CSV, pickle, PDF, JSON, the Prometheus textfile): into a
temporary file beside the target (``.<name>.<pid>.<n><suffix>``, so :func:`remove_stale_temp_files` can find the
ones a killed run left), flushed, then renamed over the target. On the tick path: no tempfile module (it
imports random and hashlib on every tick); the temporary name is made unique with the pid, a counter and
``O_EXCL`` instead.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Callable
from pathlib import Path

HASH_CHUNK = 1 << 20
TEMP_PREFIX = "."  # temporary files are hidden: ".<name>.<pid>.<n><suffix>"
_counter = itertools.count()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


FOLDER_MODE = 0o755  # the folders the pipeline creates: readable by all, writable by their owner only
FILE_MODE = 0o644  # and its files (a model folder others can write is refused by risk/modelfiles.py)


def make_folder(path: Path) -> Path:
    """Create ``path`` and any missing parents with FOLDER_MODE whatever the umask (a umask of 002 would make
    them group-writable, and the model loader refuses a model in a folder others can write)."""
    missing = []
    folder = path
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    path.mkdir(parents=True, exist_ok=True)
    for created in missing:
        try:
            os.chmod(created, FOLDER_MODE)
        except OSError:  # created by another user meanwhile: theirs to set
            pass
    return path


def fsync_dir(path: Path) -> None:
    """Flush a directory entry so a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_path(path: Path, suffix: str | None) -> Path:
    """A new, empty temporary file beside ``path`` (created with O_EXCL, so two writers never share one)."""
    suffix = suffix or path.suffix or ".tmp"
    while True:
        tmp = path.with_name(f"{TEMP_PREFIX}{path.name}.{os.getpid()}.{next(_counter)}{suffix}")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            return tmp
        except FileExistsError:
            continue


def atomic_write(
    path: Path, write: Callable[[Path], None], temp_suffix: str | None = None, durable: bool = True
) -> Path:
    """Create ``path`` through ``write(tmp_path)`` then one rename: readers see the old file or the new, never half.

    ``write`` receives a temporary path in the same folder, ending like ``path`` (so pandas, pickle or savefig pick
    the format from it) unless ``temp_suffix`` says otherwise (``.tmp`` for a file a collector globs by suffix).
    The file is readable by all (0644): other users' services (node_exporter, a web server) read artifacts.
    ``durable`` flushes the file and its folder to disk; without it the rename is still atomic for readers.
    """
    make_folder(path.parent)
    tmp = _temp_path(path, temp_suffix)
    try:
        write(tmp)
        if durable:
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str, temp_suffix: str | None = None, durable: bool = True) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), temp_suffix, durable)


def stale_temp_files(folder: Path, alive: Callable[[int], bool]) -> list[Path]:
    """Temporary files in ``folder`` left by :func:`atomic_write` in processes that are gone."""
    found = []
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return found
    for entry in entries:
        pid = _temp_owner(entry.name)
        if pid is not None and not alive(pid) and entry.is_file(follow_symlinks=False):
            found.append(Path(entry.path))
    return found


def _temp_owner(name: str) -> int | None:
    """The pid in a temporary file's name (``.<name>.<pid>.<n><suffix>``), or None if it is not one of ours."""
    if not name.startswith(TEMP_PREFIX):
        return None
    parts = name[len(TEMP_PREFIX) :].split(".")
    for first, second in zip(parts, parts[1:]):
        if first.isdigit() and second[:1].isdigit():
            return int(first)
    return None


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this machine)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
