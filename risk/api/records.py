"""What the endpoints read from the records store: read-only, never creating a file, 503 until it exists."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from risk.api.errors import ApiError
from risk.clock import seconds_since
from risk.config import Settings
from risk.store import RecordsStore, StoreUnreadable, reading
from risk.versions import DeploymentRecord

log = logging.getLogger("risk.api")

SCORE_LOOKBACK = 200


@contextlib.contextmanager
def open_records(settings: Settings) -> Iterator[RecordsStore]:
    """The records store, read-only; ApiError 503 when it does not exist yet (StoreUnreadable: 503 too)."""
    with reading(settings.records_db_path) as store:
        if store is None:
            raise ApiError(
                503,
                f"no records yet ({settings.records_db_path} does not exist); run fullprocess.py "
                "to ingest, train, deploy and run diagnostics",
                about_server=True,
            )
        yield store


def latest_snapshot(settings: Settings) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The latest diagnostics snapshot and data-drift result; ApiError 503 when no diagnostics ran yet."""
    with open_records(settings) as store:
        snapshot = store.latest_diagnostics()
        drift = store.latest_data_drift()
    if snapshot is None:
        raise ApiError(503, "no diagnostics have been saved yet; run fullprocess.py (or diagnostics.py)")
    return snapshot, drift


def recent_scores(settings: Settings) -> list[dict[str, Any]]:
    """The latest rows of the score history, or none when the store does not exist yet or cannot be read (then
    a warning says why): what is optional in an answer (``/scoring``'s time, ``/metrics``' gauges) never fails it."""
    try:
        with open_records(settings) as store:
            return store.scores(SCORE_LOOKBACK)
    except ApiError:
        return []
    except StoreUnreadable as err:
        log.warning("%s; answering without the score history", err)
        return []


def latest_scores(settings: Settings) -> dict[str, float]:
    """The newest F1 of each kind (test, batch) in the score history; empty when there is none (or no store)."""
    rows = recent_scores(settings)
    latest: dict[str, float] = {}
    for row in rows:
        latest.setdefault(row["kind"], float(row["f1"]))
    return latest


def scored_at(settings: Settings, model_sha256: str) -> str | None:
    """When the deployed model's test F1 was computed (from the score history), if still recorded."""
    rows = recent_scores(settings)
    return next((r["scored_at"] for r in rows if r["kind"] == "test" and r["model_sha256"] == model_sha256), None)


def model_age_seconds(record: DeploymentRecord) -> float | None:
    """Seconds since a version's ``deployed_at``, or None when the record has no readable time."""
    try:
        return round(seconds_since(record.deployed_at), 3)
    except (AttributeError, TypeError, ValueError):
        return None
