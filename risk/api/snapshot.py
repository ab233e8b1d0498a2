"""The diagnostics snapshot over HTTP, from the latest one saved (a GET never recomputes): ``/summarystats`` and
``/diagnostics``, and the parts some course clients ask for one by one: ``/missingdata``, ``/executiontime`` and
``/outdatedpackages``. Each part comes with the snapshot's ``timestamp`` and ``model_version`` (and ``data_rows``
where the part describes the ingested data), so a client can tell how old it is and what it describes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from risk.api.records import latest_snapshot
from risk.api.state import api_state
from risk.versions import current_version

blueprint = Blueprint("snapshot", __name__)


def snapshot_part(key: str, *, with_rows: bool) -> Response:
    """One part of the latest snapshot under its own key, stamped with when and for which version it was taken."""
    snapshot, _ = latest_snapshot(api_state().settings)
    body: dict[str, Any] = {"timestamp": snapshot["timestamp"], "model_version": snapshot.get("model_version")}
    if with_rows:
        body["data_rows"] = snapshot.get("data_rows")
    body[key] = snapshot.get(key)
    return jsonify(body)


@blueprint.get("/summarystats")
def summarystats() -> Response:
    return snapshot_part("summary_statistics", with_rows=True)


@blueprint.get("/missingdata")
def missingdata() -> Response:
    return snapshot_part("missing_data_percent", with_rows=True)


@blueprint.get("/executiontime")
def executiontime() -> Response:
    return snapshot_part("execution_time_seconds", with_rows=False)


@blueprint.get("/outdatedpackages")
def outdatedpackages() -> Response:
    return snapshot_part("dependencies", with_rows=False)


@blueprint.get("/diagnostics")
def diagnostics_snapshot() -> Response:
    settings = api_state().settings
    snapshot, drift = latest_snapshot(settings)
    return jsonify({**snapshot, "data_drift": drift, "current_model_version": current_version(settings)})
