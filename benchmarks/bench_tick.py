"""Benchmark: a no-op cron tick of ``fullprocess.py`` against a bare ``python -c pass``, in the same run.

Builds a throwaway project (course data, practice run deployed, sourcedata checked once), then times
``python fullprocess.py --config ... --quiet`` when there is nothing new, interleaved with a bare interpreter
start, and prints the medians and their ratio. Not a test: the figures depend on the machine.

    .venv/bin/python -m benchmarks.bench_tick [--runs 30]
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


def build_project(root: Path) -> Path:
    """A project copy with the practice model deployed and sourcedata already checked; returns its config."""
    for folder in ("practicedata", "sourcedata", "testdata"):
        shutil.copytree(REPO / folder, root / folder)
    config = json.loads((REPO / "config.json").read_text())
    config.update({"api_url": "http://127.0.0.1:9/", "package_index_url": "http://127.0.0.1:9/pypi"})
    practice = {**config, "input_folder_path": "practicedata", "output_model_path": "practicemodels"}
    (root / "config.json").write_text(json.dumps(config))
    (root / "config_practice.json").write_text(json.dumps(practice))
    for name in ("config_practice.json", "config.json"):
        subprocess.run(
            [sys.executable, str(REPO / "fullprocess.py"), "--config", str(root / name), "--quiet"],
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


def measure(config: Path, runs: int) -> dict[str, float]:
    """Median seconds of a bare interpreter and of a no-op tick, interleaved so both see the same machine load."""
    bare = [sys.executable, "-c", "pass"]
    tick = [sys.executable, str(REPO / "fullprocess.py"), "--config", str(config), "--quiet"]
    for command in (bare, tick):  # warm the page cache and the .pyc files
        time_command(command)
    bare_times, tick_times = [], []
    for _ in range(runs):
        bare_times.append(time_command(bare))
        tick_times.append(time_command(tick))
    bare_median, tick_median = statistics.median(bare_times), statistics.median(tick_times)
    return {"bare_seconds": bare_median, "tick_seconds": tick_median, "ratio": tick_median / bare_median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each command (default 30)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tick-") as tmp:
        figures = measure(build_project(Path(tmp)), args.runs)
    print(f"bare `python -c pass`     median {figures['bare_seconds'] * 1000:7.1f} ms")
    print(f"no-op fullprocess.py tick median {figures['tick_seconds'] * 1000:7.1f} ms")
    print(f"ratio tick / bare                {figures['ratio']:7.2f}x   ({args.runs} runs each, interleaved)")


if __name__ == "__main__":
    main()
