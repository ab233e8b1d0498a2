"""The model's history, gathered once for the PDF report and the dashboard.

:func:`build_overview` reads the records store (deployments, drift decisions, diagnostics snapshots, the
current version's evaluation, ingestions, data drift), the current version's deployment record and the
latest ``apireturns.txt``. It recomputes nothing and writes nothing, so a GET can call it on a read-only
store. Standard library only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from risk.artifacts import API_RETURNS_NAME
from risk.clock import utc_now
from risk.config import Settings
from risk.errors import UserFacingError
from risk.store import RecordsStore
from risk.versions import DeploymentRecord, current_version, read_record

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


def build_overview(settings: Settings, store: RecordsStore | None) -> Overview:
    """Gather the current version and the history; ``store`` None means there is no records store yet."""
    notes: list[str] = []
    version = current_version(settings)
    deployment = _deployment_record(settings, version, notes)
    api_returns = read_api_returns(settings)
    if store is None:
        notes.append(f"no records store at {settings.records_db_path} yet; run fullprocess.py")
        return Overview(utc_now(), version, deployment, api_returns=api_returns, notes=notes)
    with store.read_snapshot():
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
            notes=notes,
        )
    if version and evaluation is None:
        notes.append(f"no confusion matrix recorded for {version}; run reporting.py")
    return overview
