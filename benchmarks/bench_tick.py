"""Benchmark: a no-op cron tick of ``fullprocess.py`` against a bare ``python -c pass``, in the same run.

Builds a throwaway project (course data, practice run deployed, sourcedata checked once), then times
``python fullprocess.py --config ... --quiet`` when there is nothing new, interleaved with a bare interpreter
start, and prints the medians and their ratio. Not a test: the figures depend on the machine.

    .venv/bin/python -m benchmarks.bench_tick [--runs 30] [--against OTHER_CHECKOUT]

``--against`` also times the tick of another checkout of the project (an older commit, say), interleaved with
this one's, on a project of its own built the same way: the figures of both from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def build_project(root: Path, repo: Path = REPO) -> Path:
    """A project copy with the practice model deployed and sourcedata already checked; returns its config."""
    for folder in ("practicedata", "sourcedata", "testdata"):
        shutil.copytree(repo / folder, root / folder)
    config = json.loads((repo / "config.json").read_text())
    config.update({"api_url": "http://127.0.0.1:9/", "package_index_url": "http://127.0.0.1:9/pypi"})
    practice = {
        **json.loads((repo / "config_practice.json").read_text()),
        **{key: config[key] for key in ("api_url", "package_index_url")},
    }
    (root / "config.json").write_text(json.dumps(config))
    (root / "config_practice.json").write_text(json.dumps(practice))
    for name in ("config_practice.json", "config.json"):
        subprocess.run(
            [sys.executable, str(repo / "fullprocess.py"), "--config", str(root / name), "--quiet"],
            check=True,
            capture_output=True,
        )
    return root / "config.json"


def time_command(command: list[str]) -> float:
    """Seconds of one run, in the environment cron gives: Python may cache compiled modules (the tick's own
    modules would otherwise be compiled on every run when PYTHONDONTWRITEBYTECODE is set, as in some shells)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def measure(config: Path, runs: int, other: tuple[Path, Path] | None = None) -> dict[str, float]:
    """Median seconds of a bare interpreter and of a no-op tick (and of another checkout's tick, ``other``: its
    repo and config), interleaved so all see the same machine load."""
    commands = {
        "bare": [sys.executable, "-c", "pass"],
        "tick": [sys.executable, str(REPO / "fullprocess.py"), "--config", str(config), "--quiet"],
    }
    if other is not None:
        commands["other_tick"] = [
            sys.executable,
            str(other[0] / "fullprocess.py"),
            "--config",
            str(other[1]),
            "--quiet",
        ]
    for command in commands.values():  # warm the page cache and the .pyc files
        time_command(command)
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            times[name].append(time_command(command))
    figures = {f"{name}_seconds": statistics.median(values) for name, values in times.items()}
    figures["ratio"] = figures["tick_seconds"] / figures["bare_seconds"]
    if other is not None:
        figures["other_ratio"] = figures["other_tick_seconds"] / figures["bare_seconds"]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each command (default 30)")
    parser.add_argument("--against", type=Path, help="another checkout of the project whose tick to time too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tick-") as tmp:
        ours = Path(tmp) / "ours"
        ours.mkdir()
        other = None
        if args.against:
            theirs = Path(tmp) / "theirs"
            theirs.mkdir()
            other = (args.against.resolve(), build_project(theirs, args.against.resolve()))
        figures = measure(build_project(ours), args.runs, other)
    print(f"bare `python -c pass`     median {figures['bare_seconds'] * 1000:7.1f} ms")
    print(f"no-op fullprocess.py tick median {figures['tick_seconds'] * 1000:7.1f} ms   {figures['ratio']:5.2f}x bare")
    if other is not None:
        print(
            f"the same, {args.against}  median {figures['other_tick_seconds'] * 1000:7.1f} ms   "
            f"{figures['other_ratio']:5.2f}x bare"
        )
    print(f"({args.runs} runs each, interleaved)")


if __name__ == "__main__":
    main()
