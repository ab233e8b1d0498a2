"""Plumbing shared by the scripts: atomic writes, hashing, the run lock, logging set-up, timestamps.

Standard library only, so the cheap cron tick can use it without importing pandas or scikit-learn. Modules
the tick does not need (hashlib, logging.handlers, shutil, tempfile) are imported where they are used.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import fcntl
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

if TYPE_CHECKING:
    from datetime import datetime

    from settings import Settings

EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the lock, nothing was done
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 5
HASH_CHUNK = 1 << 20


class RunInProgress(RuntimeError):
    """Another process holds the run lock."""


class UserFacingError(RuntimeError):
    """A failure the user can fix (bad input file, nothing deployed yet...): logged without a traceback."""


def utc_now() -> str:
    """Now, as an ISO 8601 UTC timestamp with seconds precision (``2026-11-23T01:02:03Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parse_utc(timestamp: str) -> datetime:
    """The datetime of a timestamp written by :func:`utc_now` (any ISO 8601 form is accepted)."""
    from datetime import datetime, timezone  # the cron tick never parses times

    parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of some bytes."""
    import hashlib  # loads OpenSSL: only when there is something to hash

    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    import hashlib  # loads OpenSSL: only when there is something to hash

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fsync_dir(path: Path) -> None:
    """Flush a directory entry so a rename inside it survives a crash."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Create ``path`` through ``write(tmp_path)`` then one rename: readers see the old file or the new, never half.

    ``write`` receives a temporary path in the same folder (so it works for pandas, pickle or savefig).
    """
    import tempfile  # not needed by the cheap cron tick

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix or ".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


@contextlib.contextmanager
def run_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive, non-blocking lock for one pipeline run; raise RunInProgress if it is taken.

    The kernel releases the lock when the process dies, so a killed run never leaves a stale lock.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+", encoding="utf-8")
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


def log_file_handler(log_file: Path) -> logging.Handler:
    """A handler appending to ``log_file``, which is rotated (LOG_BACKUPS kept) when a run starts and finds it
    over LOG_MAX_BYTES: a file stays within about LOG_MAX_BYTES plus one run's lines, and a no-op cron tick
    does not import logging.handlers (it pulls in socket, pickle and threading queues)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    try:
        full = log_file.stat().st_size >= LOG_MAX_BYTES
    except FileNotFoundError:
        full = False
    if full:
        from logging.handlers import RotatingFileHandler

        rotating = RotatingFileHandler(
            log_file, maxBytes=LOG_MAX_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8", delay=True
        )
        rotating.doRollover()
        rotating.close()
    return logging.FileHandler(log_file, encoding="utf-8")


def setup_logging(log_file: Path | None = None, quiet: bool = False, verbose: bool = False) -> None:
    """Log to stderr (warnings only when ``quiet``) and, when given, to a rotating ``log_file`` at INFO."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    formatter = logging.Formatter(LOG_FORMAT)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING if quiet else logging.DEBUG)
    stderr.setFormatter(formatter)
    root.addHandler(stderr)
    if log_file is not None:
        to_file = log_file_handler(log_file)
        to_file.setFormatter(formatter)
        root.addHandler(to_file)


def _help_formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's help layout, sized to $COLUMNS or the terminal (as shutil.get_terminal_size would) without
    importing shutil, which argparse otherwise loads on every start (with bz2, lzma and zlib)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 80
    return argparse.HelpFormatter(prog, width=max(columns, 40) - 2)


def make_parser(description: str) -> argparse.ArgumentParser:
    """The argument parser every script starts from: ``--config``, ``--quiet`` and ``--verbose``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=_help_formatter)
    parser.add_argument("--config", help="path to config.json (default: $RISK_CONFIG or config.json beside the scripts)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log only warnings and errors to stderr")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    return parser


def run_script(
    args: argparse.Namespace,
    step: Callable[["Settings"], int | None],
    *,
    take_lock: bool = True,
    log_file: Callable[["Settings"], Path] | None = None,
    busy_exit: int = EXIT_BUSY,
) -> int:
    """Load config, set up logging, hold the run lock and run ``step``; turn known failures into exit codes.

    Exit codes: 0 success, 1 a step failed, 2 bad config or input, ``busy_exit`` when another run holds the
    lock (75, "try again later", for commands run by hand; the cron job passes 0: the next tick will do it).
    """
    from settings import ConfigError, load_config

    setup_logging(quiet=args.quiet, verbose=args.verbose)
    log = logging.getLogger(Path(sys.argv[0]).stem or "risk")
    try:
        settings = load_config(args.config)
    except ConfigError as err:
        log.error("%s", err)
        return 2
    if log_file is not None:
        setup_logging(log_file(settings), quiet=args.quiet, verbose=args.verbose)
    try:
        if not take_lock:
            return step(settings) or 0
        with run_lock(settings.lock_path):
            return step(settings) or 0
    except RunInProgress as err:
        log.warning("%s; nothing done%s", err, "" if busy_exit == 0 else ", try again when it has finished")
        return busy_exit
    except UserFacingError as err:
        log.error("%s", err)
        return 2
    except Exception:
        log.exception("failed; nothing half-written was published (see the traceback)")
        return 1

