"""plumbing: the log file rotates when a run starts and finds it full; the help text still fits the terminal."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from risk.logs import LOG_BACKUPS, LOG_MAX_BYTES, log_file_handler
from tests.support import REPO


def write_line(path: Path, message: str) -> None:
    handler = log_file_handler(path)
    handler.emit(logging.LogRecord("test", logging.INFO, __file__, 1, message, None, None))
    handler.close()


def test_a_log_file_under_the_limit_is_appended_to(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "run.log"
    write_line(log, "first")
    write_line(log, "second")
    assert log.read_text().splitlines() == ["first", "second"]
    assert not log.with_name("run.log.1").exists()


def test_a_full_log_file_is_rotated_when_a_run_starts_and_backups_are_capped(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    generations = LOG_BACKUPS + 2
    for generation in range(generations):
        log.write_text(f"generation {generation}\n" + "x" * LOG_MAX_BYTES)
        write_line(log, f"after {generation}")
        assert log.read_text() == f"after {generation}\n"
        assert log.with_name("run.log.1").read_text().startswith(f"generation {generation}\n")
    assert sorted(p.name for p in tmp_path.glob("run.log.*")) == [f"run.log.{n}" for n in range(1, LOG_BACKUPS + 1)]
    oldest = log.with_name(f"run.log.{LOG_BACKUPS}").read_text()
    assert oldest.startswith(f"generation {generations - LOG_BACKUPS}\n")


def test_a_library_warning_is_one_log_line_on_stderr_and_in_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    script = (
        "import warnings; from pathlib import Path; from risk.logs import setup_logging; "
        f"setup_logging(Path({str(log)!r}), quiet=True); warnings.warn('the solver did not converge')"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].endswith(
        "WARNING py.warnings: <string>:1: UserWarning: the solver did not converge"
    )
    assert log.read_text().splitlines()[0].endswith("UserWarning: the solver did not converge")


def test_help_is_laid_out_for_the_terminal_width(tmp_path: Path) -> None:
    narrow = subprocess.run(
        [sys.executable, str(REPO / "ingestion.py"), "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "50", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    wide = subprocess.run(
        [sys.executable, str(REPO / "ingestion.py"), "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        check=True,
    )
    assert "--config" in narrow.stdout and max(map(len, narrow.stdout.splitlines())) <= 48
    assert len(wide.stdout.splitlines()) < len(narrow.stdout.splitlines())
