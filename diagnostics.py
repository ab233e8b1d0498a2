"""Step 5, diagnostics: predictions, data summary, missing data, timings, dependency status and data drift.

:func:`run_diagnostics` gathers them into one snapshot (JSON, with a timestamp and the deployed version),
saves it as ``diagnostics.json`` in ``output_model_path`` and in the records store, so the API and reports
serve the latest run without re-running ingestion, training or pip. :func:`data_drift` compares a batch of
rows with the deployed version's training reference, feature by feature (statistics in datadrift.py);
``fullprocess.py`` runs it on every new batch and records it, and the snapshot carries the latest one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import ingestion
import training
from risk import datadrift
from risk.artifacts import SNAPSHOT_NAME
from risk.cli import make_parser, run_script
from risk.clock import utc_now
from risk.config import Settings, load_config
from risk.datasets import read_final_data, read_test_data
from risk.deployed import DeployedModel, load_deployed_model
from risk.errors import UserFacingError
from risk.files import atomic_write_text
from risk.modelfiles import installed_version, read_reference
from risk.predict import predict_frame
from risk.schema import FEATURES, TARGET, DataFileError, check_schema, feature_arrays, read_data_file
from risk.snapshot import DiagnosticsSnapshot
from risk.store import RecordsStore, with_store

log = logging.getLogger("diagnostics")

SUMMARY_PERCENTILES = (10, 25, 75, 90)
REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


# --- predictions ---


def model_predictions(frame: pd.DataFrame, settings: Settings, deployed: DeployedModel | None = None) -> list[int]:
    """Predictions of the deployed model, one per row of ``frame`` (schema-checked; ``exited`` is optional)."""
    deployed = deployed or load_deployed_model(settings)
    clean = check_schema(frame, require_target=False, require_id=False)
    return predict_frame(clean, deployed.model)["prediction"].tolist()


# --- the ingested data ---


def _plain(value: float) -> float | None:
    """A float fit for JSON (NaN becomes null)."""
    return None if pd.isna(value) else float(value)


def dataframe_summary(settings: Settings, frame: pd.DataFrame | None = None) -> dict[str, dict[str, float | None]]:
    """Mean, median and standard deviation of each numeric column of ``finaldata.csv`` (the course's three), and
    its 10th, 25th, 75th and 90th percentiles (``p10``...: the spread of skewed counts, which mean ± std
    misstates)."""
    frame = read_final_data(settings) if frame is None else frame
    numeric = frame.select_dtypes(include="number")
    percentiles = numeric.quantile([p / 100 for p in SUMMARY_PERCENTILES]) if len(numeric.columns) else None
    return {
        column: {
            "mean": _plain(numeric[column].mean()),
            "median": _plain(numeric[column].median()),
            "std": _plain(numeric[column].std()),
            **{f"p{p}": _plain(percentiles[column].iloc[i]) for i, p in enumerate(SUMMARY_PERCENTILES)},
        }
        for column in numeric.columns
    }


def missing_data(settings: Settings, frame: pd.DataFrame | None = None) -> dict[str, float]:
    """Percent of missing values in each column of ``finaldata.csv``."""
    frame = read_final_data(settings) if frame is None else frame
    if frame.empty:
        return {column: 0.0 for column in frame.columns}
    return {column: float(frame[column].isna().mean() * 100) for column in frame.columns}


# --- timings ---


def _scratch_config(settings: Settings, scratch: Path) -> Path:
    """A copy of the config whose outputs all go to ``scratch``, so timing a step changes nothing real."""
    config = {
        **settings.raw,
        "input_folder_path": str(settings.input_folder_path),
        "test_data_path": str(settings.test_data_path),
        "output_folder_path": str(scratch / "ingesteddata"),
        "output_model_path": str(scratch / "models"),
        "prod_deployment_path": str(scratch / "production_deployment"),
        "records_db_path": str(scratch / "records.sqlite"),
        "log_folder_path": str(scratch / "logs"),
    }
    path = scratch / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@contextlib.contextmanager
def _silenced() -> Iterator[None]:
    """No log records while a step is timed: the run has already said what that step does with these files.

    Python's record of which warnings were shown is put back too, so a warning silenced here is not taken as
    shown for the rest of the process. Steps run in this process and without a time limit: they are the steps
    this run has just run on the same data.
    """
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        logging.disable(previous)


def _time_step(step: str, run: Callable[[Settings], object], settings: Settings) -> float | None:
    started = time.perf_counter()
    try:
        with _silenced():
            run(settings)
    except UserFacingError as err:  # bad or missing data: the message says what and how to fix it
        log.warning("timing %s: the step failed on the scratch copy: %s", step, err)
        return None
    except Exception as err:  # any other failure is a diagnostic too (None, a warning and its traceback)
        log.warning(
            "timing %s: the step failed on the scratch copy: %s: %s", step, type(err).__name__, err, exc_info=True
        )
        return None
    return round(time.perf_counter() - started, 4)


def execution_time(settings: Settings) -> dict[str, float | None]:
    """Seconds taken by the ingestion step and the training step, each run on a scratch copy of the data.

    The steps run in this process, as ``ingestion.py`` and ``training.py`` run them, so the figure is the step's
    own work on the current data (what grows with the data); Python's start and the imports of pandas and
    scikit-learn (about two seconds, the same every time) are left out. A step that fails gets None (and a
    warning); nothing outside the scratch folder is written.
    """
    steps: dict[str, Callable[[Settings], object]] = {
        "ingestion": with_store(ingestion.merge_multiple_dataframe),
        "training": training.train_model,
    }
    with tempfile.TemporaryDirectory(prefix="risk-timing-") as scratch:
        scratch_settings = load_config(_scratch_config(settings, Path(scratch)))
        return {f"{step}_seconds": _time_step(step, run, scratch_settings) for step, run in steps.items()}


# --- dependencies ---


def requirement_names(requirements: Path) -> list[str]:
    """Package names listed in a requirements file (options, comments and blank lines skipped)."""
    names = []
    for line in requirements.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        match = REQUIREMENT_NAME.match(line)
        if line and not line.startswith("-") and match:
            names.append(match.group(1))
    return names


def latest_version(package: str, index_url: str, timeout: float) -> str:
    """The newest release on the package index, or ``unknown`` if it cannot be asked within ``timeout``."""
    url = f"{index_url.rstrip('/')}/{package}/json"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return str(json.load(response)["info"]["version"])
    except (OSError, ValueError, KeyError, TypeError) as err:  # URLError is an OSError; TypeError: odd JSON
        log.debug("cannot ask %s for %s: %s", url, package, err)
        return "unknown"


def _status(installed: str | None, latest: str) -> str:
    if installed is None:
        return "not installed"
    if latest == "unknown":
        return "unknown"
    return "up to date" if installed == latest else "outdated"


def outdated_packages_list(settings: Settings) -> list[dict[str, str | None]]:
    """Package, installed and latest version for each line of requirements.txt; ``unknown`` when offline."""
    path = settings.requirements_path
    if not path.exists():
        log.warning("%s does not exist; no dependency status", path)
        return []
    names = requirement_names(path)
    timeout = settings.dependency_check_timeout_seconds
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(names)))) as pool:
        latest = list(pool.map(lambda name: latest_version(name, settings.package_index_url, timeout), names))
    rows = []
    for name, newest in zip(names, latest):
        installed = installed_version(name)
        rows.append({"package": name, "installed": installed, "latest": newest, "status": _status(installed, newest)})
    return rows


# --- data drift ---


def _no_rows() -> pd.DataFrame:
    """An empty batch with the feature columns (check_schema rejects frames without rows)."""
    return pd.DataFrame({name: pd.Series(dtype="float64") for name in FEATURES})


def data_drift(
    settings: Settings,
    batch: pd.DataFrame,
    deployed: DeployedModel | None = None,
    files: list[str] | None = None,
) -> dict[str, Any]:
    """Compare a batch of rows with the deployed version's training reference (JSON-able result).

    Per feature KS or PSI, the target-rate shift (when the batch has ``exited``), the predicted-positive-rate
    shift of the deployed model, and the verdict: ``drift``, ``no drift``, ``insufficient data``, or
    ``no reference`` for a version deployed before references were kept. Thresholds come from config.
    """
    deployed = deployed or load_deployed_model(settings)
    clean = check_schema(batch, require_target=False, require_id=False) if len(batch) else _no_rows()
    config = datadrift.DriftConfig.from_settings(settings)
    stamp = {
        "timestamp": utc_now(),
        "model_version": deployed.version,
        "model_sha256": deployed.sha256,
        "files": list(files or []),
    }
    reference = read_reference(deployed.path)
    if reference is None:
        reason = f"{deployed.version} was deployed before training references were kept; the next deployment has one"
        return {**stamp, **datadrift.without_reference(len(clean), config, reason)}
    predictions = predict_frame(clean, deployed.model)["prediction"].to_numpy() if len(clean) else np.array([])
    target = clean[TARGET].to_numpy(dtype="float64") if TARGET in clean.columns else None
    result = datadrift.compare_with_reference(reference, feature_arrays(clean), config, target, predictions)
    return {**stamp, **result}


def describe_data_drift(result: dict[str, Any]) -> str:
    """One line for logs and run summaries: which version's reference, how many rows, the verdict and why."""
    rows = f"{result.get('batch_rows', 0)} new rows"
    against = f"{result.get('model_version')} training reference"
    if result.get("reference_rows") is not None:
        against += f" ({result['reference_rows']} rows)"
    return f"data drift of {rows} vs {against}: {datadrift.summary_line(result)}"


# --- the snapshot ---


def _test_predictions(settings: Settings, deployed: DeployedModel) -> dict[str, Any]:
    test = read_test_data(settings)
    predictions = np.asarray(model_predictions(test, settings, deployed))
    return {"rows": int(len(predictions)), "predicted_positive_rate": float(predictions.mean())}


def run_diagnostics(settings: Settings, store: RecordsStore) -> DiagnosticsSnapshot:
    """Run every diagnostic once; save the snapshot (risk/snapshot.py) to ``diagnostics.json`` and the store."""
    frame = read_final_data(settings)
    try:
        deployed: DeployedModel | None = load_deployed_model(settings)
    except UserFacingError as err:
        log.warning("diagnostics without a deployed model: %s", err)
        deployed = None
    snapshot = DiagnosticsSnapshot(
        timestamp=utc_now(),
        model_version=deployed.version if deployed else None,
        model_sha256=deployed.sha256 if deployed else None,
        data_rows=int(len(frame)),
        summary_statistics=dataframe_summary(settings, frame),
        missing_data_percent=missing_data(settings, frame),
        execution_time_seconds=execution_time(settings),
        dependencies=outdated_packages_list(settings),
        test_predictions=_test_predictions(settings, deployed) if deployed else None,
        data_drift=store.latest_data_drift(),
    )
    atomic_write_text(settings.output_model_path / SNAPSHOT_NAME, json.dumps(snapshot.as_json(), indent=2) + "\n")
    store.record_diagnostics(snapshot)
    outdated = snapshot.outdated_packages
    log.info(
        "diagnostics saved to %s: %d rows, timings %s, %d outdated package(s)",
        settings.output_model_path / SNAPSHOT_NAME,
        len(frame),
        snapshot.execution_time_seconds,
        outdated,
    )
    return snapshot


def data_drift_of_file(settings: Settings, path: Path) -> dict[str, Any]:
    """:func:`data_drift` of one data file (CSV or JSON records, the ingestion schema) against the deployed model."""
    try:
        frame = read_data_file(path)
    except FileNotFoundError:
        raise UserFacingError(f"{path} does not exist") from None
    except DataFileError as err:
        raise UserFacingError(f"{path} {err}") from None
    return data_drift(settings, frame, files=[path.name])


def main() -> None:
    parser = make_parser("Run the diagnostics and save them as diagnostics.json (and in the records store).")
    parser.add_argument(
        "--data-drift",
        metavar="FILE",
        type=Path,
        help="instead: compare FILE with the deployed model's training reference and print the "
        "data drift result (not recorded)",
    )
    args = parser.parse_args()

    def step(settings: Settings) -> int:
        if args.data_drift:
            result = data_drift_of_file(settings, args.data_drift)
            log.info("%s", describe_data_drift(result))
            json.dump(result, sys.stdout, indent=2)
            sys.stdout.write("\n")
            return 0
        with RecordsStore(settings.records_db_path) as store:
            snapshot = run_diagnostics(settings, store)
        json.dump(snapshot.as_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0

    raise SystemExit(run_script(args, step, take_lock=not args.data_drift))


if __name__ == "__main__":
    main()
