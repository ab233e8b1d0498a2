"""What every script's ``main()`` shares: the argument parser and the run wrapper that turns failures into exit codes."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from risk.config import ConfigError, Settings, load_config
from risk.errors import UserFacingError
from risk.lock import RunInProgress, run_lock
from risk.logs import LogFolderError, setup_logging

EXIT_BUSY = 75  # EX_TEMPFAIL: another run holds the lock, nothing was done (the cron job exits 0 instead)
EXIT_BAD_INPUT = 2


def python_command(project_dir: Path) -> str:
    """The interpreter running now, as a hint to type: relative to the project folder when inside it (a fresh
    clone's bare ``python`` has no pandas; ``.venv/bin/python`` does)."""
    executable = Path(sys.executable)
    try:
        return str(executable.relative_to(project_dir))
    except ValueError:
        return str(executable)


def make_parser(description: str) -> argparse.ArgumentParser:
    """The argument parser every script starts from: ``--config``, ``--quiet`` and ``--verbose``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--config", help="path to config.json (default: $RISK_CONFIG or config.json beside the scripts)"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="on stderr, only what people must hear about: notices, warnings and errors",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    return parser


def run_script(
    args: argparse.Namespace,
    step: Callable[[Settings], int | None],
    *,
    take_lock: bool = True,
    log_file: Callable[[Settings], Path] | None = None,
    busy_exit: int = EXIT_BUSY,
) -> int:
    """Load config, set up logging, hold the run lock and run ``step``; turn known failures into exit codes.

    Exit codes: 0 success, 1 a step failed, 2 bad config or input, ``busy_exit`` when another run holds the
    lock (75, "try again later", for commands run by hand; the cron job passes 0: the next tick will do it).
    """
    setup_logging(quiet=args.quiet, verbose=args.verbose)
    log = logging.getLogger(Path(sys.argv[0]).stem or "risk")
    try:
        settings = load_config(args.config)
        if log_file is not None:
            setup_logging(log_file(settings), quiet=args.quiet, verbose=args.verbose)
    except (ConfigError, LogFolderError) as err:
        log.error("%s", err)
        return EXIT_BAD_INPUT
    try:
        if not take_lock:
            return step(settings) or 0
        with run_lock(settings.lock_path):
            return step(settings) or 0
    except RunInProgress as err:
        log.warning("%s; nothing done%s", err, "" if busy_exit == 0 else ", try again when it has finished")
        return busy_exit
    except (UserFacingError, ConfigError) as err:  # ConfigError: a setting a step checks itself (the API token)
        log.error("%s", err)
        return EXIT_BAD_INPUT
    except Exception:
        log.exception("failed; nothing half-written was published (see the traceback)")
        return 1
