"""Benchmark: ranking a client book end to end (rank_file) against the floor, measured in the same run.

The floor is the least a ranking can do: ``read_csv``, ``predict_proba``, sort by probability, ``to_csv`` of the
book with its probabilities, on the same file. A second floor writes with pyarrow's CSV writer (what rank_file
uses), so the ratio against it shows what the checks, reasons, bands and CBPE cost. Runs are interleaved, best of
``--runs``; peak memory is each job's own peak RSS, run once in a child process. Then where rank_file's time goes,
stage by stage. Not a test: the figures depend on the machine.

    .venv/bin/python -m benchmarks.bench_risklist [--rows 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from risk.cbpe import estimate_f1
from risk.config import ModelParams
from risk.model import build_model
from risk.risklist import (
    TypicalClient,
    check_book,
    explain,
    linear_terms,
    rank_clients,
    rank_file,
    read_book,
    risk_order,
    typical_client,
    write_risklist,
)
from risk.schema import FEATURES
from risk.synthetic import client_rows, make_client_book

REPO = Path(__file__).resolve().parents[1]
TRAINING_ROWS = 10_000
JOBS = ("floor", "floor_arrow", "rank_file")


def prepare(folder: Path, rows: int) -> None:
    """The book, and the course model trained on the same process with its typical client."""
    make_client_book(folder / "book.csv", rows=rows, seed=1)
    labelled = client_rows(np.random.default_rng(0), TRAINING_ROWS, drift=False)
    frame = pd.DataFrame(labelled[:, 1:], columns=[*FEATURES, "exited"])
    model = build_model(ModelParams()).fit(frame[list(FEATURES)], frame["exited"])
    (folder / "model.pkl").write_bytes(pickle.dumps(model))
    (folder / "typical.json").write_text(json.dumps(typical_client(frame).as_json()))


def load(folder: Path) -> tuple[Any, TypicalClient]:
    model = pickle.loads((folder / "model.pkl").read_bytes())
    return model, TypicalClient.from_json(json.loads((folder / "typical.json").read_text()))


def floor(folder: Path, model: Any, _typical: TypicalClient) -> None:
    frame = pd.read_csv(folder / "book.csv")
    probability = model.predict_proba(frame[list(FEATURES)])[:, 1]
    order = np.argsort(-probability, kind="stable")
    frame.iloc[order].assign(probability=probability[order]).to_csv(folder / "floor.csv", index=False)


def floor_arrow(folder: Path, model: Any, _typical: TypicalClient) -> None:
    frame = pd.read_csv(folder / "book.csv")
    probability = model.predict_proba(frame[list(FEATURES)])[:, 1]
    order = np.argsort(-probability, kind="stable")
    ranked = frame.iloc[order].assign(probability=probability[order])
    pacsv.write_csv(
        pa.Table.from_pandas(ranked, preserve_index=False),
        folder / "floor_arrow.csv",
        pacsv.WriteOptions(quoting_style="none"),
    )


def ranking(folder: Path, model: Any, typical: TypicalClient) -> None:
    rank_file(model, typical, "bench", folder / "book.csv", folder / "risklist.csv", progress=False)


JOB_FUNCTIONS: dict[str, Callable[[Path, Any, TypicalClient], None]] = {
    "floor": floor,
    "floor_arrow": floor_arrow,
    "rank_file": ranking,
}


def timed(function: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def best_times(folder: Path, runs: int) -> dict[str, float]:
    """Best seconds of each job over ``runs`` interleaved rounds (after one warm-up round)."""
    model, typical = load(folder)
    best = {job: float("inf") for job in JOBS}
    for round_ in range(runs + 1):
        for job in JOBS:
            seconds, _ = timed(partial(JOB_FUNCTIONS[job], folder, model, typical))
            if round_:
                best[job] = min(best[job], seconds)
    return best


def stage_pass(folder: Path, model: Any, typical: TypicalClient, figures: dict[str, float]) -> None:
    """Time each stage of rank_file once, keeping the best seconds per stage in ``figures``."""

    def note(name: str, function: Callable[[], Any]) -> Any:
        seconds, result = timed(function)
        figures[name] = min(figures.get(name, float("inf")), seconds)
        return result

    raw = note("read the CSV", lambda: read_book(folder / "book.csv"))
    checked = note("schema check, ids present and unique", lambda: check_book(raw))
    terms = linear_terms(model)
    probabilities = note("predict_proba", lambda: model.predict_proba(checked[list(FEATURES)])[:, 1])
    values = checked[list(FEATURES)].to_numpy(dtype="float64", na_value=np.nan)
    note("reasons", lambda: explain(values, terms.coefficients, typical))
    note("order, ties and bands", lambda: risk_order(probabilities, checked["corporation"]))
    note("CBPE estimate", lambda: estimate_f1(probabilities))
    risk_list = note("rank_clients (all the above but reading)", lambda: rank_clients(model, raw, typical, "b", "x"))
    note("write (pyarrow, fsync, rename)", lambda: write_risklist(folder / "stages.csv", risk_list))


def stages(folder: Path) -> dict[str, float]:
    """Seconds of each stage of rank_file, run one after the other (best of 2)."""
    model, typical = load(folder)
    figures: dict[str, float] = {}
    for _ in range(2):
        stage_pass(folder, model, typical, figures)
    return figures


def peak_rss_mb(folder: Path, job: str) -> float:
    """Peak resident memory (MB) of one run of ``job`` in a fresh child process (its VmHWM, which exec resets:
    a child's ru_maxrss would count the parent's memory it was forked from)."""
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_risklist", "--child", job, "--folder", str(folder)],
        cwd=REPO,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(result.stdout.strip())


def run_child(job: str, folder: Path) -> None:
    """Run one job and print this process's peak RSS in MB."""
    model, typical = load(folder)
    if job != "baseline":
        JOB_FUNCTIONS[job](folder, model, typical)
    status = Path("/proc/self/status").read_text()
    peak_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    print(peak_kb / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="clients in the book (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="timed rounds, best kept (default 3)")
    parser.add_argument("--child", choices=("baseline", *JOBS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.folder)
        return
    with tempfile.TemporaryDirectory(prefix="bench-risklist-") as tmp:
        folder = Path(tmp)
        prepare(folder, args.rows)
        size_mb = (folder / "book.csv").stat().st_size / 1e6
        best = best_times(folder, args.runs)
        memory = {job: peak_rss_mb(folder, job) for job in ("baseline", *JOBS)}
        breakdown = stages(folder)
        out_mb = (folder / "risklist.csv").stat().st_size / 1e6
    print(f"book: {args.rows:,} clients, {size_mb:.1f} MB; risk list {out_mb:.1f} MB; best of {args.runs}, interleaved")
    print(f"{'':34s}{'seconds':>9s}{'peak RSS MB':>13s}{'over imports MB':>17s}")
    print(f"{'imports and model load only':34s}{'':>9s}{memory['baseline']:13.0f}")
    labels = {
        "floor": "floor (read, predict, sort, to_csv)",
        "floor_arrow": "floor, pyarrow writer",
        "rank_file": "rank_file (progress off)",
    }
    for job in JOBS:
        print(f"{labels[job]:34s}{best[job]:9.3f}{memory[job]:13.0f}{memory[job] - memory['baseline']:17.0f}")
    print(f"ratio rank_file / floor              {best['rank_file'] / best['floor']:6.2f}x   (goal <= 1.5x)")
    print(f"ratio rank_file / floor with pyarrow {best['rank_file'] / best['floor_arrow']:6.2f}x")
    print(f"rank_file per client                 {best['rank_file'] / args.rows * 1e6:6.2f} us")
    print("where rank_file's time goes (each stage alone, best of 2):")
    for name, seconds in breakdown.items():
        print(f"  {name:44s}{seconds:7.3f} s")


if __name__ == "__main__":
    main()
