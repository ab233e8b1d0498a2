"""The run lock: one pipeline run at a time, released by the kernel when the process dies."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from risk.files import make_folder


class RunInProgress(RuntimeError):
    """Another process holds the run lock."""


@contextlib.contextmanager
def run_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock for one pipeline run; raise RunInProgress if it is taken.

    The kernel releases the lock when the process dies, so a killed run never leaves a stale lock.
    """
    make_folder(lock_path.parent)
    handle = open(lock_path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole run, closed below
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunInProgress(f"another run is in progress (pid {holder}, lock {lock_path})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
