"""Logging for the scripts: stderr for people (warnings and notices only under ``--quiet``, which cron mails) and
a log file per script that rotates when a run starts and finds it full."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_MAX_BYTES = 1_000_000
LOG_BACKUPS = 5
NOTICE = 25  # between INFO and WARNING: what a run did that people must hear about, even under --quiet
logging.addLevelName(NOTICE, "NOTICE")


class LogFolderError(OSError):
    """The log folder cannot be created or written."""


def rotate(log_file: Path, backups: int = LOG_BACKUPS) -> None:
    """``x.log`` becomes ``x.log.1``, ``x.log.1`` becomes ``x.log.2``..., the oldest beyond ``backups`` goes."""
    for number in range(backups - 1, 0, -1):
        older = log_file.with_name(f"{log_file.name}.{number}")
        if older.exists():
            os.replace(older, log_file.with_name(f"{log_file.name}.{number + 1}"))
    os.replace(log_file, log_file.with_name(f"{log_file.name}.1"))


def log_file_handler(log_file: Path) -> logging.Handler:
    """A handler appending to ``log_file``, rotated first when it is over LOG_MAX_BYTES (so a file stays within
    about LOG_MAX_BYTES plus one run's lines); LogFolderError names the folder when it cannot be written."""
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        if log_file.exists() and log_file.stat().st_size >= LOG_MAX_BYTES:
            rotate(log_file)
        return logging.FileHandler(log_file, encoding="utf-8")
    except OSError as err:
        raise LogFolderError(
            f"cannot write the log file {log_file} ({err.strerror or err}); make {log_file.parent} writable "
            "or set log_folder_path in the config to a folder you can write"
        ) from None


def log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: object = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` as one log line of logger ``py.warnings`` (where the warning came from, no source)."""
    logging.getLogger("py.warnings").warning("%s:%d: %s: %s", filename, lineno, category.__name__, message)


def setup_logging(log_file: Path | None = None, quiet: bool = False, verbose: bool = False) -> None:
    """Log to stderr (notices, warnings and errors only when ``quiet``) and, when given, to ``log_file`` at INFO.

    Python warnings (a library's deprecation or convergence warning) become log records too, so they reach the
    log file and stderr as one line in the log's format instead of raw text on stderr alone.
    """
    warnings.showwarning = log_warning
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    formatter = logging.Formatter(LOG_FORMAT)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(NOTICE if quiet else logging.DEBUG)
    stderr.setFormatter(formatter)
    root.addHandler(stderr)
    if log_file is not None:
        to_file = log_file_handler(log_file)
        to_file.setFormatter(formatter)
        root.addHandler(to_file)
