"""Benchmarks at scale, in one command, each figure beside a baseline measured in the same run.

1. Ingestion of 1M rows as 100 files x 10,000 rows and as 1,000 files x 1,000 rows: rows per second and peak
   memory of ``ingestion.merge_multiple_dataframe`` (scan, hashes, checks, records, outputs) against the
   loop-concat of course solutions and against the floor (read each file once, one concat, drop duplicates,
   write finaldata.csv; no checks, no records). Each run in a fresh process; peak memory is the growth of
   the process's resident set (high-water mark) during the call, beside the merged frame's own size.
2. Training and scoring on those rows: ``training.train_model`` and the F1 of the model on all of them,
   against plain scikit-learn on a plain ``read_csv``; and the ``training.py`` / ``scoring.py`` processes.
3. ``fullprocess.py`` end to end when 1M drifted rows arrive (ingest, drift checks, retrain, score, deploy,
   diagnostics, report) against the sum of its steps run as the course scripts on a copy of the same project.
4. A no-op cron tick (as cron runs it: compiled modules cached) against a bare ``python -c pass``, with
   ``tick_floor.py`` (argparse, JSON config, logging, SQLite and nothing else) as the floor of any Python tick.
5. The API figures of ``bench_api.py`` when it is there.

Prints a table and writes every figure as JSON under benchmarks/results/. Not a test: the figures depend on
the machine. About four minutes on 2 cores; ``--quick`` is a smoke run on small data.

    .venv/bin/python -m benchmarks.run [--quick] [--runs 3] [--tick-runs 30] [--no-api] [--keep]
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from risk.synthetic import make_data, make_test_file

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent


log = logging.getLogger("benchmarks")

RESULTS_DIR = BENCH_DIR / "results"
SHAPES = {"100 x 10,000": (100, 10_000), "1,000 x 1,000": (1_000, 1_000)}
QUICK_SHAPES = {"10 x 1,000": (10, 1_000), "100 x 100": (100, 100)}
DUPLICATE_RATE = 0.05
CLOSED_URL = "http://127.0.0.1:9/"  # nothing listens on the discard port: API and package index answer "no"
APPROACHES = ("loop", "floor", "ours")
STEP_SCRIPTS = ("ingestion.py", "training.py", "scoring.py", "deployment.py", "diagnostics.py", "reporting.py")
FULLPROCESS_ONLY_STEPS = ("drift check", "data drift check", "challengers")  # steps no course script runs alone
GOALS = {
    "ingestion_vs_loop_at_1000_files": 5.0,
    "ingestion_vs_floor": 1.3,
    "peak_memory_vs_frame": 3.0,
    "tick_vs_bare": 3.0,
    "fullprocess_vs_steps": 1.3,
}


# --- measuring in a fresh process ---


def _rss_bytes() -> int:
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak() -> None:
    """Reset the resident-set high-water mark of this process (Linux), so the next peak is the call's own."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        pass


def _peak_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _measured(action: Callable[[], Any]) -> tuple[Any, float, int]:
    """Run ``action``; its result, seconds, and how far the resident set grew above where it started."""
    import gc

    gc.collect()
    _reset_peak()
    before = _rss_bytes()
    started = time.perf_counter()
    result = action()
    seconds = time.perf_counter() - started
    return result, seconds, max(_peak_bytes() - before, 0)


def in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """``function(*args)`` in a new interpreter (nothing cached, its own memory high-water mark)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


# --- ingestion: ours, the floor and the course's loop ---


def _write_config(root: Path, **keys: Any) -> Path:
    config = {
        "input_folder_path": "sourcedata",
        "output_folder_path": "ingesteddata",
        "test_data_path": "testdata",
        "output_model_path": "models",
        "prod_deployment_path": "production_deployment",
        "api_url": CLOSED_URL,
        "package_index_url": CLOSED_URL + "pypi",
        "dependency_check_timeout_seconds": 1,
        **keys,
    }
    path = root / "config.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def ingest_once(approach: str, data: str, scratch: str) -> dict[str, Any]:
    """One ingestion of the CSV files in ``data`` by ``approach`` (ours, floor, loop); writes under ``scratch``."""
    import pandas as pd

    folder, out = Path(data), Path(scratch)
    files = sorted(folder.glob("*.csv"))
    rows_in = sum(1 for path in files for _ in path.open("rb")) - len(files)
    if approach == "ours":
        import ingestion
        from risk.config import load_config
        from risk.store import RecordsStore

        settings = load_config(_write_config(out, input_folder_path=str(folder)))
        store = RecordsStore(settings.records_db_path)
        result, seconds, peak = _measured(lambda: ingestion.merge_multiple_dataframe(settings, store))
        store.close()
        frame = result.data
    elif approach == "floor":

        def floor() -> pd.DataFrame:
            merged = pd.concat([pd.read_csv(path) for path in files], ignore_index=True).drop_duplicates()
            merged.to_csv(out / "finaldata.csv", index=False)
            return merged

        frame, seconds, peak = _measured(floor)
    else:

        def loop_concat() -> pd.DataFrame:
            merged = pd.DataFrame()
            for path in files:
                merged = pd.concat([merged, pd.read_csv(path)], ignore_index=True)
            merged = merged.drop_duplicates()
            merged.to_csv(out / "finaldata.csv", index=False)
            (out / "ingestedfiles.txt").write_text("".join(f"{path.name}\n" for path in files))
            return merged

        frame, seconds, peak = _measured(loop_concat)
    return {
        "seconds": seconds,
        "rows_in": rows_in,
        "rows_out": len(frame),
        "rows_per_second": rows_in / seconds,
        "peak_bytes": peak,
        "frame_bytes": int(frame.memory_usage(deep=True).sum()),
    }


def bench_ingestion(data: dict[str, Path], work: Path, runs: int) -> dict[str, Any]:
    """Each approach on each shape ``runs`` times, interleaved (loop, floor, ours, loop, ...) so all see the
    same machine load, each run in a fresh process; the fastest run of each approach is kept."""
    figures: dict[str, Any] = {}
    for shape, folder in data.items():
        results: dict[str, list[dict[str, Any]]] = {approach: [] for approach in APPROACHES}
        for _ in range(runs):
            for approach in APPROACHES:
                scratch = Path(tempfile.mkdtemp(prefix=f"ingest-{approach}-", dir=work))
                results[approach].append(in_fresh_process(ingest_once, approach, str(folder), str(scratch)))
                shutil.rmtree(scratch)
        figures[shape] = {"files": len(list(folder.glob("*.csv")))}
        figures[shape].update({approach: min(runs_, key=lambda r: r["seconds"]) for approach, runs_ in results.items()})
        figures[shape]["all_seconds"] = {approach: [r["seconds"] for r in runs_] for approach, runs_ in results.items()}
        ours = figures[shape]["ours"]
        figures[shape]["ratios"] = {
            "loop_vs_ours_seconds": figures[shape]["loop"]["seconds"] / ours["seconds"],
            "ours_vs_floor_seconds": ours["seconds"] / figures[shape]["floor"]["seconds"],
            "ours_peak_vs_frame": ours["peak_bytes"] / ours["frame_bytes"],
        }
    return figures


# --- training and scoring ---


def train_and_score_once(config: str) -> dict[str, Any]:
    """train_model and the F1 on every ingested row, against plain scikit-learn on a plain read_csv."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    import training
    from risk.artifacts import FINAL_DATA_NAME
    from risk.config import load_config
    from risk.datasets import read_training_data
    from risk.modelfiles import load_model
    from risk.schema import FEATURES, TARGET
    from scoring import f1_on_frame

    settings = load_config(config)
    path = settings.output_folder_path / FINAL_DATA_NAME
    _, train_seconds, train_peak = _measured(lambda: training.train_model(settings))
    model = load_model(settings.output_model_path).model
    frame = read_training_data(settings)
    _, score_seconds, _ = _measured(lambda: f1_on_frame(model, frame))

    def plain_training() -> Any:
        plain = pd.read_csv(path)
        return LogisticRegression(**settings.model.as_sklearn_kwargs()).fit(plain[list(FEATURES)], plain[TARGET])

    plain_model, plain_train_seconds, _ = _measured(plain_training)
    _, plain_score_seconds, _ = _measured(
        lambda: f1_score(frame[TARGET], plain_model.predict(frame[list(FEATURES)]), zero_division=0)
    )
    rows = len(frame)
    return {
        "rows": rows,
        "train_seconds": train_seconds,
        "train_peak_bytes": train_peak,
        "plain_train_seconds": plain_train_seconds,
        "score_seconds": score_seconds,
        "plain_score_seconds": plain_score_seconds,
        "train_rows_per_second": rows / train_seconds,
        "score_rows_per_second": rows / score_seconds,
        "train_vs_plain": train_seconds / plain_train_seconds,
        "score_vs_plain": score_seconds / plain_score_seconds,
    }


def run_script(script: str, config: Path, env: dict[str, str]) -> float:
    """Wall seconds of one repo script as its own process; raises with its output if it fails."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(REPO / script), "--config", str(config), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{script} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return seconds


def bench_training(folder: Path, work: Path, env: dict[str, str]) -> dict[str, Any]:
    """Ingest ``folder`` once, then train and score on all of it (in-process figures and the scripts)."""
    root = work / "training"
    (root / "testdata").mkdir(parents=True)
    make_test_file(root / "testdata" / "testdata.csv", rows=2_000, seed=5)
    config = _write_config(root, input_folder_path=str(folder))
    run_script("ingestion.py", config, env)
    figures = in_fresh_process(train_and_score_once, str(config))
    figures["training_script_seconds"] = run_script("training.py", config, env)
    figures["scoring_script_seconds"] = run_script("scoring.py", config, env)
    shutil.rmtree(root)
    return figures


# --- fullprocess.py end to end against its steps ---


def _last_run_timings(config: Path) -> tuple[str, dict[str, float]]:
    """Outcome and step timings of the newest fullprocess run, from its summary in the records store."""
    from risk.config import load_config
    from risk.store import RecordsStore

    with RecordsStore(load_config(config).records_db_path, readonly=True) as store:
        run = store.runs(limit=1)[0]
    line = next((text for text in run["summary"].splitlines() if text.startswith("timings: ")), "timings: none")
    timings = {}
    for item in line.removeprefix("timings: ").split(", "):
        name, _, seconds = item.rpartition(" ")
        if seconds.endswith("s"):
            timings[name] = float(seconds[:-1])
    return run["outcome"], timings


def _diagnostics_timing(config: Path) -> float:
    """Seconds the diagnostics step spent re-running ingestion and training on a scratch copy (execution_time)."""
    from risk.config import load_config

    snapshot = json.loads((load_config(config).output_model_path / "diagnostics.json").read_text())
    return sum(seconds or 0.0 for seconds in snapshot["execution_time_seconds"].values())


def build_drift_project(root: Path, files: int, rows: int, env: dict[str, str]) -> Path:
    """A project with a model deployed on undrifted data, then ``files`` x ``rows`` drifted rows arriving."""
    make_data(root / "sourcedata", files=2, rows=1_000, duplicate_rate=0.0, seed=21, prefix="base")
    make_test_file(root / "testdata" / "testdata.csv", rows=2_000, seed=22)
    shutil.copy(REPO / "requirements.txt", root / "requirements.txt")
    config = _write_config(root, requirements_path="requirements.txt")
    run_script("fullprocess.py", config, env)  # bootstrap: v0001 on the undrifted data
    make_data(root / "sourcedata", files, rows, DUPLICATE_RATE, drift=True, seed=23, prefix="drift")
    return config


def bench_fullprocess(work: Path, files: int, rows: int, env: dict[str, str]) -> dict[str, Any]:
    """fullprocess.py on one copy, the course scripts one by one on another; the same data and state."""
    template = work / "drift-template"
    build_drift_project(template, files, rows, env)
    whole, steps = work / "drift-fullprocess", work / "drift-steps"
    shutil.copytree(template, whole, symlinks=True)
    shutil.copytree(template, steps, symlinks=True)
    shutil.rmtree(template)

    end_to_end = run_script("fullprocess.py", whole / "config.json", env)
    outcome, timings = _last_run_timings(whole / "config.json")
    if outcome != "deployed":
        raise RuntimeError(f"the drifted batch should have been retrained and deployed; the run says {outcome!r}")
    step_seconds = {script: run_script(script, steps / "config.json", env) for script in STEP_SCRIPTS}
    step_seconds.update({step: timings.get(step, 0.0) for step in FULLPROCESS_ONLY_STEPS})
    steps_sum = sum(step_seconds.values())
    whole_timing, steps_timing = _diagnostics_timing(whole / "config.json"), _diagnostics_timing(steps / "config.json")
    shutil.rmtree(steps)
    return {
        "rows_arriving": files * rows,
        "fullprocess_seconds": end_to_end,
        "fullprocess_step_timings": timings,
        "step_seconds": step_seconds,
        "steps_sum_seconds": steps_sum,
        "ratio": end_to_end / steps_sum,
        "diagnostics_execution_time_seconds": {"fullprocess": whole_timing, "steps": steps_timing},
        "fullprocess_without_execution_time_seconds": end_to_end - whole_timing,
        "steps_sum_without_execution_time_seconds": steps_sum - steps_timing,
        "ratio_without_execution_time": (end_to_end - whole_timing) / (steps_sum - steps_timing),
        "project": str(whole),
    }


# --- the no-op tick ---


def cron_environment() -> dict[str, str]:
    """This environment as cron would give it: Python may cache compiled modules (no PYTHONDONTWRITEBYTECODE)."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONDONTWRITEBYTECODE", "RISK_CONFIG")}


def _child_seconds(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def bench_tick(configs: dict[str, Path], runs: int, env: dict[str, str]) -> dict[str, Any]:
    """Median wall and CPU seconds of each command, interleaved so all see the same machine load."""
    commands = {"bare `python -c pass`": [sys.executable, "-c", "pass"]}
    for name, config in configs.items():
        commands[f"no-op tick, {name}"] = [
            sys.executable,
            str(REPO / "fullprocess.py"),
            "--config",
            str(config),
            "--quiet",
        ]
    first = next(iter(configs.values()))
    commands["floor: tick_floor.py"] = [
        sys.executable,
        str(BENCH_DIR / "tick_floor.py"),
        "--config",
        str(first),
        "--quiet",
    ]
    for command in commands.values():  # warm the page cache; let Python write its compiled modules
        _child_seconds(command, env)
        _child_seconds(command, env)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(_child_seconds(command, env))
    figures = {
        name: {
            "wall_seconds": statistics.median(s[0] for s in runs_),
            "cpu_seconds": statistics.median(s[1] for s in runs_),
        }
        for name, runs_ in samples.items()
    }
    bare = figures["bare `python -c pass`"]
    for row in figures.values():
        row["wall_vs_bare"] = row["wall_seconds"] / bare["wall_seconds"]
        row["cpu_vs_bare"] = row["cpu_seconds"] / bare["cpu_seconds"]
    return {"runs": runs, "commands": figures}


def course_project(root: Path, env: dict[str, str]) -> Path:
    """The course data with the practice model deployed and sourcedata checked (a quiet production folder)."""
    for folder in ("practicedata", "sourcedata", "testdata"):
        shutil.copytree(REPO / folder, root / folder)
    shutil.copy(REPO / "requirements.txt", root / "requirements.txt")
    practice = _write_config(
        root, input_folder_path="practicedata", output_model_path="practicemodels", requirements_path="requirements.txt"
    )
    practice.rename(root / "config_practice.json")
    config = _write_config(root, requirements_path="requirements.txt")
    run_script("fullprocess.py", root / "config_practice.json", env)
    run_script("fullprocess.py", config, env)
    return config


# --- the API ---


def bench_api() -> dict[str, Any] | None:
    """The figures of bench_api.py (its run_benchmark()), or None when that benchmark is not there."""
    if not (BENCH_DIR / "bench_api.py").exists():
        return None
    module = importlib.import_module("benchmarks.bench_api")  # a real import: its worker processes pickle its functions
    figures = module.run_benchmark()
    text = module.report(figures) if hasattr(module, "report") else json.dumps(figures, indent=2)
    return {"figures": figures, "text": text}


# --- the report ---


def _mb(size: float) -> str:
    return f"{size / 1e6:7.1f}"


def goals(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each goal of the benchmark issue with the measured figure and whether it is met."""
    ingestion = figures["ingestion"]
    shapes = list(ingestion)
    many_files = max(shapes, key=lambda shape: ingestion[shape]["files"])
    rows = [
        (
            f"ingestion >= 5x faster than loop-concat, {many_files}",
            ingestion[many_files]["ratios"]["loop_vs_ours_seconds"],
            ">=",
            GOALS["ingestion_vs_loop_at_1000_files"],
        ),
    ]
    for shape in shapes:
        rows.append(
            (
                f"ingestion within 1.3x of the floor, {shape}",
                ingestion[shape]["ratios"]["ours_vs_floor_seconds"],
                "<=",
                GOALS["ingestion_vs_floor"],
            )
        )
        rows.append(
            (
                f"peak memory < 3x the final frame, {shape}",
                ingestion[shape]["ratios"]["ours_peak_vs_frame"],
                "<",
                GOALS["peak_memory_vs_frame"],
            )
        )
    for name, row in figures["tick"]["commands"].items():
        if name.startswith("no-op tick"):
            rows.append((f"{name} < 3x bare start (wall)", row["wall_vs_bare"], "<", GOALS["tick_vs_bare"]))
    full = figures["fullprocess"]
    rows.append(("fullprocess.py within 1.3x of its steps' sum", full["ratio"], "<=", GOALS["fullprocess_vs_steps"]))
    rows.append(
        (
            "  the same without diagnostics' execution_time",
            full["ratio_without_execution_time"],
            "<=",
            GOALS["fullprocess_vs_steps"],
        )
    )
    checks = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, "<": lambda a, b: a < b}
    return [
        {"goal": goal, "value": value, "target": f"{op} {target}", "met": checks[op](value, target)}
        for goal, value, op, target in rows
    ]


def table(figures: dict[str, Any]) -> str:
    """Every figure as the printed table."""
    env = figures["environment"]
    lines = [
        f"machine: {env['cpus']} CPUs, Python {env['python']}, pandas {env['pandas']}, scikit-learn "
        f"{env['sklearn']}, pyarrow {env['pyarrow']}; {env['date']}",
        "",
    ]
    lines.append(
        "INGESTION (fastest of the interleaved runs, each in a fresh process; peak = growth of the resident set)"
    )
    lines.append(
        f"  {'shape':14} {'approach':10} {'seconds':>8} {'rows/s':>10} {'peak MB':>8} {'frame MB':>8}"
        f" {'peak/frame':>10}"
    )
    for shape, approaches in figures["ingestion"].items():
        for approach in ("loop", "floor", "ours"):
            row = approaches[approach]
            lines.append(
                f"  {shape:14} {approach:10} {row['seconds']:8.2f} {row['rows_per_second']:10,.0f} "
                f"{_mb(row['peak_bytes']):>8} {_mb(row['frame_bytes']):>8} "
                f"{row['peak_bytes'] / row['frame_bytes']:9.2f}x"
            )
        ratios = approaches["ratios"]
        lines.append(
            f"  {shape:14} loop/ours {ratios['loop_vs_ours_seconds']:.2f}x, "
            f"ours/floor {ratios['ours_vs_floor_seconds']:.2f}x"
        )
    train = figures["training"]
    lines += [
        "",
        f"TRAINING AND SCORING on {train['rows']:,} rows",
        f"  train_model      {train['train_seconds']:7.2f} s  ({train['train_rows_per_second']:,.0f} rows/s)"
        f"  plain read_csv + fit {train['plain_train_seconds']:6.2f} s  ratio {train['train_vs_plain']:.2f}x",
        f"  F1 on all rows   {train['score_seconds']:7.2f} s  ({train['score_rows_per_second']:,.0f} rows/s)"
        f"  plain predict + f1   {train['plain_score_seconds']:6.2f} s  ratio {train['score_vs_plain']:.2f}x",
        f"  training.py {train['training_script_seconds']:.2f} s, scoring.py (test data) "
        f"{train['scoring_script_seconds']:.2f} s, as processes",
    ]
    full = figures["fullprocess"]
    lines += [
        "",
        f"FULLPROCESS.PY END TO END, {full['rows_arriving']:,} drifted rows arriving",
        f"  fullprocess.py {full['fullprocess_seconds']:7.2f} s   steps: "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in full["fullprocess_step_timings"].items()),
        f"  sum of steps   {full['steps_sum_seconds']:7.2f} s   "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in full["step_seconds"].items()),
        f"  ratio {full['ratio']:.2f}x; without diagnostics' execution_time (re-runs the ingestion and "
        f"training steps: {full['diagnostics_execution_time_seconds']['fullprocess']:.2f} s / "
        f"{full['diagnostics_execution_time_seconds']['steps']:.2f} s): "
        f"{full['fullprocess_without_execution_time_seconds']:.2f} s vs "
        f"{full['steps_sum_without_execution_time_seconds']:.2f} s = {full['ratio_without_execution_time']:.2f}x",
    ]
    tick = figures["tick"]
    lines += [
        "",
        f"NO-OP TICK (medians of {tick['runs']} interleaved runs)",
        f"  {'command':44} {'wall ms':>8} {'x bare':>7} {'cpu ms':>8} {'x bare':>7}",
    ]
    for name, row in tick["commands"].items():
        lines.append(
            f"  {name:44} {row['wall_seconds'] * 1000:8.1f} {row['wall_vs_bare']:6.2f}x "
            f"{row['cpu_seconds'] * 1000:8.1f} {row['cpu_vs_bare']:6.2f}x"
        )
    lines += ["", "API"]
    api = figures.get("api")
    lines += ["  " + line for line in api["text"].splitlines()] if api else [f"  {figures.get('api_note')}"]
    lines += ["", "GOALS"]
    for goal in figures["goals"]:
        lines.append(
            f"  {'met ' if goal['met'] else 'MISS'} {goal['goal']:58} {goal['value']:6.2f} (target {goal['target']})"
        )
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    import numpy
    import pandas
    import sklearn

    try:
        import pyarrow

        arrow = pyarrow.__version__
    except ImportError:
        arrow = "not installed"
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "pandas": pandas.__version__,
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "pyarrow": arrow,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data: a smoke run of every benchmark")
    parser.add_argument("--runs", type=int, default=3, help="ingestion runs per approach and shape (default 3)")
    parser.add_argument("--tick-runs", type=int, default=30, help="timed runs of each tick command (default 30)")
    parser.add_argument("--no-api", action="store_true", help="skip the API benchmark")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and say where it is")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    shapes = QUICK_SHAPES if args.quick else SHAPES
    env = cron_environment()
    work = Path(tempfile.mkdtemp(prefix="risk-bench-"))
    started = time.perf_counter()
    try:
        figures: dict[str, Any] = {"environment": environment()}
        data = {}
        for index, (shape, (files, rows)) in enumerate(shapes.items()):
            data[shape] = work / f"data-{index}"
            make_data(data[shape], files, rows, DUPLICATE_RATE, seed=index)
        log.info("ingestion: loop-concat, floor and ours, %d run(s) each per shape", args.runs)
        figures["ingestion"] = bench_ingestion(data, work, args.runs)
        log.info("training and scoring")
        figures["training"] = bench_training(next(iter(data.values())), work, env)
        log.info("fullprocess.py end to end, and its steps one by one")
        files, rows = next(iter(shapes.values()))
        figures["fullprocess"] = bench_fullprocess(work, files, rows, env)
        log.info("no-op tick, %d interleaved runs", args.tick_runs)
        configs = {
            "course data": course_project(work / "course", env),
            f"{files * rows:,} rows ingested": Path(figures["fullprocess"]["project"]) / "config.json",
        }
        figures["tick"] = bench_tick(configs, args.tick_runs, env)
        if args.no_api:
            figures["api_note"] = "API benchmark skipped (--no-api)"
        else:
            log.info("API (bench_api.py)")
            try:
                api = bench_api()
            except Exception as err:
                log.exception("the API benchmark failed")
                api, figures["api_note"] = None, f"API benchmark failed: {type(err).__name__}: {err}"
            if api is not None:
                figures["api"] = api
            elif "api_note" not in figures:
                figures["api_note"] = "API benchmark not present"
        figures["goals"] = goals(figures)
        figures["seconds"] = time.perf_counter() - started
    finally:
        if args.keep:
            log.info("scratch folder kept: %s", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(table(figures))
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nwhole run {figures['seconds']:.0f} s; figures written to {out}")


if __name__ == "__main__":
    main()
