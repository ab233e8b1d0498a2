"""Benchmark: the API under gunicorn, against baselines measured in the same run.

1. Single-row ``POST /prediction`` (JSON records) with several concurrent client processes, against ``GET /health``
   of the same server: requests per second, p50 and p99 latency, and their ratios. ``/health`` is an honest
   baseline, not an empty view: each request goes through the same hooks (timer, bounded body, token check,
   metrics), reads the ``current`` pointer, checks the model in memory is that version (loading a newly deployed
   one, as a prediction would; risk/api/status.py), and answers the version and its age as JSON.
2. A 10,000-row batch through ``/prediction`` (CSV upload, JSON records, and a file path the server reads)
   against the deployed model's own ``predict`` (and ``predict_proba``) on the same rows in this process; the
   CSV upload is timed twice: up to the answer's last byte (the server's work and the transfer), and up to the
   JSON answer decoded by the client (as the other two are), with the client's ``json.loads`` alone beside it.

The goals of "serving fast" (issue 14), each printed with PASS or MISS from the ratios of one run: single-row
``/prediction`` at least half of ``/health``'s throughput, its p50 latency at most twice ``/health``'s, and the
10,000-row CSV upload at most 5x the model's ``predict`` + ``predict_proba`` on the same rows (both timings).

Builds a throwaway project (course data, practice and production runs), starts gunicorn with the shipped
gunicorn.conf.py on a free loopback port, prints the figures and ratios. Not a test: figures depend on the
machine. :func:`run_benchmark` returns the same figures as a dict.

    .venv/bin/python -m benchmarks.bench_api [--clients 4] [--requests 300] [--rows 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import requests

from benchmarks.bench_tick import build_project
from risk.config import load_config
from risk.deployed import load_deployed_model
from risk.schema import FEATURES

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

GOALS = (  # (ratio, "at least" or "at most", target, what it says)
    ("prediction_vs_health_throughput", "at least", 0.5, "single-row /prediction throughput vs /health"),
    ("prediction_vs_health_p50", "at most", 2.0, "single-row /prediction p50 latency vs /health"),
    (
        "api_csv_received_vs_model_predict_and_proba",
        "at most",
        5.0,
        "10,000-row CSV upload, answer received, vs model.predict + predict_proba",
    ),
    (
        "api_csv_vs_model_predict_and_proba",
        "at most",
        5.0,
        "10,000-row CSV upload, answer received and decoded, vs model.predict + predict_proba",
    ),
)
ONE_ROW = [{"corporation": "abcd", "lastmonth_activity": 234, "lastyear_activity": 3, "number_of_employees": 10}]
ROUNDS = 2


# --- the server ---


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn(config: Path, workers: int, log_path: Path) -> Iterator[str]:
    """gunicorn with the shipped gunicorn.conf.py on a free loopback port; yields the base URL."""
    port = free_port()
    env = {**os.environ, "RISK_CONFIG": str(config)}
    env.pop("RISK_API_TOKEN", None)
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        str(REPO / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "wsgi:app",
    ]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not start:\n{log_path.read_text()}")
            try:
                if requests.get(f"{url}/health", timeout=2).ok:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


# --- concurrent single requests ---


def client_loop(url: str, method: str, body: Any, count: int) -> list[float]:
    """One client: ``count`` requests in a row; returns each latency in seconds (raises on a non-200)."""
    latencies = []
    with requests.Session() as session:
        for _ in range(count):
            started = time.perf_counter()
            response = session.request(method, url, json=body, timeout=30)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"{method} {url} answered {response.status_code}: {response.text[:200]}")
    return latencies


def load(pool: ProcessPoolExecutor, url: str, method: str, body: Any, clients: int, count: int) -> dict[str, float]:
    """``clients`` processes each sending ``count`` requests at once: throughput and latency percentiles."""
    started = time.perf_counter()
    futures = [pool.submit(client_loop, url, method, body, count) for _ in range(clients)]
    latencies = [latency for future in futures for latency in future.result()]
    elapsed = time.perf_counter() - started
    quantiles = statistics.quantiles(latencies, n=100)
    return {
        "requests_per_second": len(latencies) / elapsed,
        "p50_ms": quantiles[49] * 1000,
        "p99_ms": quantiles[98] * 1000,
        "requests": float(len(latencies)),
    }


def merged(runs: list[dict[str, float]]) -> dict[str, float]:
    """Medians over the rounds."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def single_row_figures(url: str, clients: int, count: int) -> dict[str, dict[str, float]]:
    """/health and single-row /prediction, alternated over ROUNDS so both see the same machine."""
    health_runs, prediction_runs = [], []
    with ProcessPoolExecutor(max_workers=clients, mp_context=get_context("fork")) as pool:
        load(pool, f"{url}/prediction", "POST", ONE_ROW, clients, 10)  # warm up workers and clients
        for _ in range(ROUNDS):
            health_runs.append(load(pool, f"{url}/health", "GET", None, clients, count))
            prediction_runs.append(load(pool, f"{url}/prediction", "POST", ONE_ROW, clients, count))
    return {"health": merged(health_runs), "prediction": merged(prediction_runs)}


# --- one big batch ---


def batch_frame(project: Path, rows: int) -> pd.DataFrame:
    """``rows`` rows resampled from the course data, features jittered (seeded), unique corporation ids."""
    source = pd.concat(
        [
            pd.read_csv(path)
            for folder in ("practicedata", "sourcedata", "testdata")
            for path in sorted((project / folder).glob("*.csv"))
        ],
        ignore_index=True,
    )
    rng = np.random.default_rng(0)
    sample = source.sample(n=rows, replace=True, random_state=0).reset_index(drop=True)
    frame = pd.DataFrame({"corporation": [f"c{i:05d}" for i in range(rows)]})
    for column in FEATURES:
        frame[column] = (sample[column] * rng.uniform(0.5, 1.5, rows)).round().astype(int)
    return frame


def median_seconds(action: Callable[[], Any], runs: int) -> float:
    action()  # warm up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def checked_answer(url: str, rows: int, kwargs: dict[str, Any]) -> bytes:
    """The answer to one batch request, checked whole: status 200 and one prediction per row."""
    response = requests.post(f"{url}/prediction", timeout=120, **kwargs)
    if response.status_code != 200 or len(response.json()["predictions"]) != rows:
        raise RuntimeError(f"batch answered {response.status_code}: {response.text[:200]}")
    return response.content


def batch_figures(url: str, config: Path, rows: int, runs: int) -> dict[str, float]:
    """Seconds for one batch through the API (three ways) and through the model itself."""
    settings = load_config(config)
    frame = batch_frame(settings.project_dir, rows)
    csv_bytes = frame.to_csv(index=False).encode()
    records = frame.to_dict(orient="records")
    batch_file = settings.test_data_file.parent / "bench_batch.csv"
    batch_file.write_bytes(csv_bytes)
    model = load_deployed_model(settings).model
    features = frame[list(FEATURES)]

    def post(decode: bool = True, **kwargs: Any) -> Callable[[], None]:
        """One batch request, timed as a client sees it: with ``decode`` up to the whole JSON answer decoded (as a
        client would); without, up to the answer's last byte (the server's work and the transfer)."""
        expected = checked_answer(url, rows, kwargs)

        def call() -> None:
            response = requests.post(f"{url}/prediction", timeout=120, **kwargs)
            if response.status_code != 200 or len(response.content) != len(expected):
                raise RuntimeError(f"batch answered {response.status_code}: {response.text[:200]}")
            if decode and response.json()["rows"] != rows:
                raise RuntimeError(f"batch answered another number of rows: {response.text[:200]}")

        return call

    upload = {"files": {"file": ("batch.csv", csv_bytes, "text/csv")}}
    answer = checked_answer(url, rows, upload)
    return {
        "rows": float(rows),
        "model_predict_s": median_seconds(lambda: model.predict(features), runs),
        "model_proba_only_s": median_seconds(lambda: model.predict_proba(features), runs),
        "model_predict_proba_s": median_seconds(lambda: (model.predict(features), model.predict_proba(features)), runs),
        "api_csv_upload_s": median_seconds(post(**upload), runs),
        "api_csv_upload_received_s": median_seconds(post(decode=False, **upload), runs),
        "client_decode_s": median_seconds(lambda: json.loads(answer), runs),
        "api_json_records_s": median_seconds(
            post(data=json.dumps(records), headers={"Content-Type": "application/json"}), runs
        ),
        "api_file_path_s": median_seconds(post(json={"filepath": settings.shown_path(batch_file)}), runs),
    }


# --- the whole run ---


def run_benchmark(
    clients: int = 4, requests_per_client: int = 300, rows: int = 10_000, batch_runs: int = 7, workers: int = 2
) -> dict[str, Any]:
    """Build a project, start gunicorn, measure; returns every figure and ratio as a dict."""
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        config = build_project(Path(tmp))
        with gunicorn(config, workers, Path(tmp) / "gunicorn.log") as url:
            single = single_row_figures(url, clients, requests_per_client)
            batch = batch_figures(url, config, rows, batch_runs)
    health, prediction = single["health"], single["prediction"]
    return {
        "setup": {
            "clients": clients,
            "requests_per_client_per_round": requests_per_client,
            "rounds": ROUNDS,
            "gunicorn_workers": workers,
            "batch_rows": rows,
            "batch_runs": batch_runs,
        },
        "health": health,
        "prediction": prediction,
        "batch": batch,
        "ratios": {
            "prediction_vs_health_throughput": prediction["requests_per_second"] / health["requests_per_second"],
            "prediction_vs_health_p50": prediction["p50_ms"] / health["p50_ms"],
            "prediction_vs_health_p99": prediction["p99_ms"] / health["p99_ms"],
            "api_csv_vs_model_predict": batch["api_csv_upload_s"] / batch["model_predict_s"],
            "api_json_vs_model_predict": batch["api_json_records_s"] / batch["model_predict_s"],
            "api_path_vs_model_predict": batch["api_file_path_s"] / batch["model_predict_s"],
            "api_csv_vs_model_predict_and_proba": batch["api_csv_upload_s"] / batch["model_predict_proba_s"],
            "api_csv_received_vs_model_predict_and_proba": batch["api_csv_upload_received_s"]
            / batch["model_predict_proba_s"],
            "client_decode_vs_model_predict_and_proba": batch["client_decode_s"] / batch["model_predict_proba_s"],
        },
    }


def goal_lines(ratios: dict[str, float]) -> list[str]:
    """Each goal with its ratio from this run, PASS or MISS."""
    lines = []
    for key, direction, target, what in GOALS:
        value = ratios[key]
        passed = value >= target if direction == "at least" else value <= target
        lines.append(f"  {'PASS' if passed else 'MISS'}  {what}: {value:.2f}x ({direction} {target:g}x)")
    return lines


def report(figures: dict[str, Any]) -> str:
    """The figures as the printed table."""
    setup, health, prediction = figures["setup"], figures["health"], figures["prediction"]
    batch, ratios = figures["batch"], figures["ratios"]
    lines = [
        f"gunicorn, {setup['gunicorn_workers']} workers x 8 threads; {setup['clients']} concurrent client processes x "
        f"{setup['requests_per_client_per_round']} requests, {setup['rounds']} alternating rounds (medians)",
        f"{'':28} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}",
    ]
    for name, row in (("GET /health", health), ("POST /prediction (1 row)", prediction)):
        lines.append(f"{name:28} {row['requests_per_second']:9.1f} {row['p50_ms']:8.2f} {row['p99_ms']:8.2f}")
    lines += [
        f"ratio /prediction vs /health: throughput {ratios['prediction_vs_health_throughput']:.2f}x, "
        f"p50 {ratios['prediction_vs_health_p50']:.2f}x, p99 {ratios['prediction_vs_health_p99']:.2f}x",
        "",
        f"batch of {int(batch['rows'])} rows (median of {setup['batch_runs']} runs)",
        f"  model.predict in-process           {batch['model_predict_s'] * 1000:8.1f} ms",
        f"  model.predict_proba                {batch['model_proba_only_s'] * 1000:8.1f} ms",
        f"  model.predict + predict_proba      {batch['model_predict_proba_s'] * 1000:8.1f} ms",
        f"  /prediction, CSV upload, received  {batch['api_csv_upload_received_s'] * 1000:8.1f} ms   "
        f"{batch['api_csv_upload_received_s'] / batch['model_predict_s']:6.1f}x predict",
        f"  the client's json.loads of it      {batch['client_decode_s'] * 1000:8.1f} ms   "
        f"{batch['client_decode_s'] / batch['model_predict_s']:6.1f}x predict",
        f"  /prediction, CSV upload            {batch['api_csv_upload_s'] * 1000:8.1f} ms   "
        f"{ratios['api_csv_vs_model_predict']:6.1f}x predict",
        f"  /prediction, JSON records          {batch['api_json_records_s'] * 1000:8.1f} ms   "
        f"{ratios['api_json_vs_model_predict']:6.1f}x predict",
        f"  /prediction, file path             {batch['api_file_path_s'] * 1000:8.1f} ms   "
        f"{ratios['api_path_vs_model_predict']:6.1f}x predict",
        "",
        "goals (ratios from this run; the machine's load moves them):",
        *goal_lines(ratios),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent client processes (default 4)")
    parser.add_argument("--requests", type=int, default=300, help="requests per client per round (default 300)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows in the batch (default 10000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    args = parser.parse_args()
    figures = run_benchmark(args.clients, args.requests, args.rows, workers=args.workers)
    print(json.dumps(figures, indent=2) if args.json else report(figures))


if __name__ == "__main__":
    main()
