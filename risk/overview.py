"""The model's history, gathered once for the PDF report and the dashboard.

:func:`build_overview` reads the records store (deployments, drift decisions, diagnostics snapshots, the
current version's evaluation, ingestions, data drift, the two newest risk lists), the current version's
deployment record and metadata, the latest ``risklist.csv`` and ``apireturns.txt``. It recomputes nothing and
writes nothing, so a GET can call it on a read-only store.

:func:`latest_risk_list` is the one reader of the risk list (the API's ``GET /risk``, the dashboard, the
report): the newest list recorded in the store, its CSV checked against the recorded sha256 (a list being
replaced is not mixed with the record of the one before), and the clients who entered its top 100 since the
previous list, from the two lists' recorded summaries (the previous file is gone: each list overwrites it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from risk.artifacts import API_RETURNS_NAME, RISK_LIST_NAME
from risk.cbpe import F1Estimate
from risk.clock import utc_now
from risk.config import Settings
from risk.errors import UserFacingError
from risk.modelfiles import read_metadata
from risk.risklist import TRACKED_TOP, Entrant, LoadedRiskList, changes, load_risklist
from risk.schema import DataFileError
from risk.store import RecordsStore
from risk.versions import DeploymentRecord, current_version, read_record, versions_dir

log = logging.getLogger("history")

API_RETURNS_MAX_CHARS = 200_000
TREND_LIMIT = 50
DATA_DRIFT_FACTS = (
    "verdict",
    "reason",
    "timestamp",
    "model_version",
    "files",
    "batch_rows",
    "reference_rows",
    "drift_share",
    "target_rate",
    "predicted_positive_rate",
)
DATA_DRIFT_COLUMNS = {
    "feature": "feature",
    "status": "status",
    "detail": "detail",
    "reference_mean": "ref. mean",
    "batch_mean": "batch mean",
    "batch_rows": "rows",
}
RECENT_LIMIT = 10


class RiskListUnavailable(UserFacingError):
    """No risk list to show: none recorded yet, its file is missing or unreadable, or it is being replaced."""


@dataclass(frozen=True, eq=False)
class RiskListView:
    """The newest risk list as recorded in the store, with its rows read from its (sha256-checked) CSV."""

    model_version: str
    model_sha256: str
    scored_at: str
    rows: int  # clients in the book
    book_path: str
    book_sha256: str
    list_path: str
    list_sha256: str
    estimate: F1Estimate  # CBPE: the F1 the model should reach on this book, from its probabilities alone
    calibration: dict[str, Any] | None  # risk.risklist.CalibrationCheck.as_json(), recorded when the list was made
    frame: pd.DataFrame  # risk.risklist.COLUMNS, rank 1 first
    entrants: list[Entrant] | None  # into the top TRACKED_TOP since the previous list; None: nothing to compare
    previous_scored_at: str | None = None
    previous_model_version: str | None = None
    realized_f1: float | None = None  # the F1 on this book once its labels arrive (none do yet)

    def top(self, count: int) -> pd.DataFrame:
        return self.frame.iloc[:count]


def _previous_top(summary: dict[str, Any]) -> pd.DataFrame | None:
    """A list's recorded top TRACKED_TOP as a frame :func:`risk.risklist.changes` compares with."""
    top = summary.get("top_100")
    if not isinstance(top, list):
        return None
    return pd.DataFrame({"corporation": [str(c) for c in top], "rank": range(1, len(top) + 1)})


def _no_list_yet(settings: Settings) -> str:
    if settings.client_book_path is None:
        return (
            f"no risk list yet: run fullprocess.py with client_book_path set in {settings.config_path.name} "
            "(the clients to rank, e.g. clientbook/clients.csv)"
        )
    return f"no risk list yet: run fullprocess.py (it ranks the clients of {settings.shown_path(settings.client_book_path)})"


def latest_risk_list(
    settings: Settings, store: RecordsStore | None, read: Callable[[Path], LoadedRiskList] = load_risklist
) -> RiskListView:
    """The newest recorded risk list and what changed since the one before (see the module docstring).

    The list is read where this configuration keeps it (``risklist.csv`` in ``output_model_path``; the store's
    ``list_path`` says where it was written, which a copied or moved project no longer matches) and must hash
    to the recorded sha256. RiskListUnavailable saying what to do when there is none to show. ``read`` loads a
    list file (the API passes one that caches by the file's stat).
    """
    lists = store.risk_lists(2) if store is not None else []
    if not lists:
        raise RiskListUnavailable(_no_list_yet(settings))
    latest, previous = lists[0], (lists[1] if len(lists) > 1 else None)
    path = settings.output_model_path / RISK_LIST_NAME
    try:
        loaded = read(path)
    except FileNotFoundError:
        raise RiskListUnavailable(
            f"the risk list {path} is missing; run fullprocess.py to rank the clients again"
        ) from None
    except DataFileError as err:
        raise RiskListUnavailable(str(err)) from None
    if loaded.sha256 != latest["list_sha256"]:
        raise RiskListUnavailable(
            f"the risk list {path} is not the one recorded last (a run may be replacing it); retry in a moment, "
            "and if this persists run fullprocess.py"
        )
    summary = latest["summary"]
    before = _previous_top(previous["summary"]) if previous else None
    return RiskListView(
        model_version=latest["model_version"],
        model_sha256=latest["model_sha256"],
        scored_at=summary.get("scored_at") or latest["scored_at"],
        rows=int(latest["rows"]),
        book_path=latest["book_path"],
        book_sha256=latest["book_sha256"],
        list_path=str(path),
        list_sha256=latest["list_sha256"],
        estimate=F1Estimate.from_json(summary["estimate"]),
        calibration=summary.get("calibration"),
        frame=loaded.frame,
        entrants=changes(before, loaded.frame, TRACKED_TOP) if before is not None else None,
        previous_scored_at=(previous["summary"].get("scored_at") or previous["scored_at"]) if previous else None,
        previous_model_version=previous["model_version"] if previous else None,
    )


@dataclass(frozen=True)
class Overview:
    """Everything the report and the dashboard show; lists of history rows are oldest first."""

    generated_at: str
    version: str | None = None
    deployment: DeploymentRecord | None = None
    evaluation: dict[str, Any] | None = None
    deployments: list[dict[str, Any]] = field(default_factory=list)
    drift_checks: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: dict[str, Any] | None = None
    diagnostics_history: list[dict[str, Any]] = field(default_factory=list)
    ingested_files: list[dict[str, Any]] = field(default_factory=list)
    data_drift: dict[str, Any] | None = None
    api_returns: str | None = None
    model_metadata: dict[str, Any] | None = None  # the current version's trainedmodel.json
    risk_list: RiskListView | None = None
    risk_list_problem: str | None = None  # why there is no risk list to show
    notes: list[str] = field(default_factory=list)

    @property
    def deploys(self) -> list[dict[str, Any]]:
        """Deploy actions only (each a new version with its test F1), oldest first."""
        return [row for row in self.deployments if row["action"] == "deploy"]

    @property
    def recent_drift_checks(self) -> list[dict[str, Any]]:
        """The latest drift decisions, newest first."""
        return self.drift_checks[::-1][:RECENT_LIMIT]

    @property
    def recent_deployments(self) -> list[dict[str, Any]]:
        """The latest deploys and rollbacks, newest first."""
        return self.deployments[::-1][:RECENT_LIMIT]

    @property
    def trained_at(self) -> str | None:
        return self.deployment.trained_at if self.deployment else None

    @property
    def deployed_at(self) -> str | None:
        """When the current version was made current (its last deploy or rollback), else when it was written."""
        switches = [row for row in self.deployments if row["version"] == self.version]
        if switches:
            return switches[-1]["deployed_at"]
        return self.deployment.deployed_at if self.deployment else None


def format_time(timestamp: str | None) -> str:
    """A stored UTC timestamp as people read it: ``2026-11-23 01:02:03 UTC`` (a dash when there is none)."""
    return "-" if not timestamp else timestamp.replace("T", " ").replace("Z", " UTC")


def format_number(value: Any, digits: int = 4) -> str:
    """A float with ``digits`` decimals, an int as it is, a dash for None; other values as text."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def summary_rows(snapshot: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per column of the ingested data: mean, median, std and % missing from a diagnostics snapshot."""
    snapshot = snapshot or {}
    summary = snapshot.get("summary_statistics") or {}
    missing = snapshot.get("missing_data_percent") or {}
    return [
        {
            "column": column,
            **{k: (summary.get(column) or {}).get(k) for k in ("mean", "median", "std")},
            "missing": missing.get(column),
        }
        for column in dict.fromkeys([*summary, *missing])
    ]


def _rate_shift(shift: dict[str, Any]) -> str:
    """A target or predicted-positive rate shift (datadrift.rate_shift) on one line."""
    line = f"reference {format_number(shift.get('reference_rate'))} -> batch {format_number(shift.get('batch_rate'))}"
    if shift.get("shift") is not None:
        line += f" (shift {shift['shift']:+.4f}, p {format_number(shift.get('p_value'))})"
    return f"{line}: {shift.get('status', '-')}"


def data_drift_facts(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The dataset-level lines of a data drift result (diagnostics.data_drift), verdict first."""
    facts = []
    for key in DATA_DRIFT_FACTS:
        value = result.get(key)
        if key in result and value is not None:
            if isinstance(value, dict):
                value = _rate_shift(value)
            elif isinstance(value, list):
                value = ", ".join(map(str, value)) or "none"
            elif key == "timestamp":
                value = format_time(value)
            facts.append((key.replace("_", " "), format_number(value)))
    return facts


def data_drift_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-feature results of a data drift result (``features``: name -> result)."""
    features = result.get("features") or {}
    items = [{"feature": name, **value} for name, value in features.items() if isinstance(value, dict)]
    present = [column for column in DATA_DRIFT_COLUMNS if any(column in item for item in items)]
    return [DATA_DRIFT_COLUMNS[c] for c in present], [[format_number(item.get(c)) for c in present] for item in items]


def read_api_returns(settings: Settings) -> str | None:
    """The text of ``apireturns.txt`` in ``output_model_path`` (cut to API_RETURNS_MAX_CHARS), or None."""
    path = settings.output_model_path / API_RETURNS_NAME
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return None
    if len(text) > API_RETURNS_MAX_CHARS:
        text = text[:API_RETURNS_MAX_CHARS] + f"\n... (cut: {path} holds {len(text)} characters)\n"
    return text


def _deployment_record(settings: Settings, version: str | None, notes: list[str]) -> DeploymentRecord | None:
    if version is None:
        notes.append(f"no model is deployed in {settings.prod_deployment_path} yet; run fullprocess.py")
        return None
    try:
        return read_record(settings, version)
    except UserFacingError as err:
        notes.append(str(err))
        return None


def _model_metadata(settings: Settings, version: str | None, notes: list[str]) -> dict[str, Any] | None:
    if version is None:
        return None
    try:
        return read_metadata(versions_dir(settings) / version)
    except UserFacingError as err:
        notes.append(str(err))
        return None


def _risk_list(
    settings: Settings, store: RecordsStore | None, read: Callable[[Path], LoadedRiskList]
) -> tuple[RiskListView | None, str | None]:
    try:
        return latest_risk_list(settings, store, read), None
    except RiskListUnavailable as err:
        return None, str(err)


def build_overview(
    settings: Settings, store: RecordsStore | None, read_list: Callable[[Path], LoadedRiskList] = load_risklist
) -> Overview:
    """Gather the current version and the history; ``store`` None means there is no records store yet.

    ``read_list`` reads the risk list's CSV (see :func:`latest_risk_list`).
    """
    notes: list[str] = []
    version = current_version(settings)
    deployment = _deployment_record(settings, version, notes)
    metadata = _model_metadata(settings, version, notes)
    api_returns = read_api_returns(settings)
    if store is None:
        notes.append(f"no records store at {settings.records_db_path} yet; run fullprocess.py")
        return Overview(
            utc_now(),
            version,
            deployment,
            api_returns=api_returns,
            model_metadata=metadata,
            risk_list_problem=_risk_list(settings, None, read_list)[1],
            notes=notes,
        )
    with store.read_snapshot():
        risk_list, risk_list_problem = _risk_list(settings, store, read_list)
        evaluation = store.latest_evaluation(version) if version else None
        overview = Overview(
            generated_at=utc_now(),
            version=version,
            deployment=deployment,
            evaluation=evaluation,
            deployments=store.deployments(TREND_LIMIT)[::-1],
            drift_checks=store.drift_checks(TREND_LIMIT)[::-1],
            diagnostics=store.latest_diagnostics(),
            diagnostics_history=store.diagnostics_history(TREND_LIMIT),
            ingested_files=store.latest_ingestion_per_file(),
            data_drift=store.latest_data_drift(),
            api_returns=api_returns,
            model_metadata=metadata,
            risk_list=risk_list,
            risk_list_problem=risk_list_problem,
            notes=notes,
        )
    if version and evaluation is None:
        notes.append(f"no confusion matrix recorded for {version}; run reporting.py")
    return overview


def missing_values_line(history: list[dict[str, Any]]) -> str | None:
    """One sentence instead of a chart when no diagnostics run found a missing value; None when some did (or
    there is no run yet: the chart says so)."""
    if not history:
        return None
    shares = [value for snapshot in history for value in (snapshot.get("missing_data_percent") or {}).values()]
    if any(value for value in shares if value is not None):
        return None
    runs = "the diagnostics run" if len(history) == 1 else f"any of the {len(history)} diagnostics runs"
    return f"No missing values in any column at {runs} (latest {format_time(history[-1].get('timestamp'))})."


# --- the report's first page, in sentences ---

FEW_ROWS = 30  # labelled rows below which an F1 says little on its own
NEXT_STEPS = {
    "no drift": "no drift, so {checked} stays deployed",
    "carried over": "too few rows to decide on, so {checked} stays deployed and they are pooled with the next batch",
    "challenger rejected": "drift, but no retrained model was significantly better, so {checked} stays deployed",
    "challenger deployed": "drift; a retrained model did significantly better and replaced it",
    "forced": "an operator forced a retrain (--force), which replaced it",
}


def latest_decision_sentence(overview: Overview) -> str:
    """What happened last, in one sentence: the newest drift check's decision and the version deployed now."""
    now = overview.version or "no model"
    check = overview.drift_checks[-1] if overview.drift_checks else None
    if check is None:
        since = f" since {format_time(overview.deployed_at)}" if overview.deployed_at else ""
        return f"No new data has been checked yet: {now} is deployed{since}, trained on the first data."
    checked = check.get("deployed_version") or "the deployed model"
    step = check.get("next_step") or ("drift" if check.get("drift") else "no drift")
    outcome = NEXT_STEPS.get(step, step).format(checked=checked)
    rows = check.get("rows")
    batch = f"{rows:,} new rows" if isinstance(rows, int) else "the new data"
    since = [row for row in overview.deployments if row["deployed_at"] > check["checked_at"]]
    if since:  # a deploy by hand, --force with nothing new, or a rollback after the check
        last = since[-1]
        action = "rolled back to" if last["action"] == "rollback" else "deployed"
        later = (
            f"Since then {last['version']} was {action} ({format_time(last['deployed_at'])}); {now} is deployed now."
        )
    else:
        later = f"{now} is deployed now."
    return (
        f"On {format_time(check['checked_at'])}, {checked} was checked on {batch}: {outcome}. {later} "
        f"The check said: {check['reason']}"
    )


def _f1_words(f1: float | None, rows: int) -> str:
    if f1 is None:
        return f"F1 is undefined on {rows:,} labelled rows (no exits among them and none predicted)"
    caveat = ": too few for this score alone to say much" if rows < FEW_ROWS else ""
    return f"F1 is {f1:.3f} on {rows:,} labelled rows{caveat}"


def model_health_lines(overview: Overview) -> list[str]:
    """The deployed model's health in plain words: how it scores, on how many labelled rows each score rests,
    what it expects on the client book and whether its probabilities hold."""
    from risk.drift import ConfusionCounts  # numpy: only when a report is written

    lines = []
    evaluation = overview.evaluation
    if evaluation:
        lines.append(
            f"On the test file, {_f1_words(evaluation['f1'], int(evaluation['rows']))} "
            f"(precision {evaluation['precision']:.3f}, recall {evaluation['recall']:.3f})."
        )
    elif overview.deployment:
        lines.append(
            f"On the test file, F1 was {overview.deployment.f1:.3f} when it was deployed (not evaluated since)."
        )
    reference = (overview.model_metadata or {}).get("reference_counts")
    if reference:
        counts = ConfusionCounts.from_json(reference)
        lines.append(
            f"Out of fold (each training row scored by a model fitted without it), {_f1_words(counts.f1, counts.rows)}: "
            "the reference the drift check compares new batches with."
        )
    elif overview.version:
        lines.append("No out-of-fold reference is recorded for this model (trained before it was kept).")
    risk_list = overview.risk_list
    if risk_list:
        estimate = risk_list.estimate
        lines.append(
            f"On the client book, the model's own probabilities put its F1 at about {estimate.f1:.3f} "
            f"({estimate.level:.0%} interval {estimate.low:.3f} to {estimate.high:.3f}), resting on "
            f"{estimate.rows:,} clients; no labels have arrived to check it against yet."
        )
        if risk_list.calibration:
            lines.append(calibration_sentence(risk_list.calibration))
    if overview.data_drift:
        lines.append(f"Data drift, latest check: {overview.data_drift.get('verdict')}.")
    return lines or ["No model is deployed yet; run fullprocess.py."]


def calibration_sentence(calibration: dict[str, Any]) -> str:
    """The calibration recorded with a risk list (risk.risklist.CalibrationCheck.as_json()) in one sentence, with
    what it was measured on."""
    rows, trained = calibration["rows"], calibration.get("training_rows")
    own = f", {trained:,} of which the model was trained on (so at best optimistic)" if trained else ""
    return f"Calibration on {rows:,} labelled ingested rows{own}: {calibration['verdict']}."
