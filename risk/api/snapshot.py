"""The diagnostics snapshot over HTTP: ``/summarystats`` and ``/diagnostics``, from the latest saved snapshot
(a GET never recomputes)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from risk.api.records import latest_snapshot
from risk.api.state import api_state
from risk.versions import current_version

blueprint = Blueprint("snapshot", __name__)


@blueprint.get("/summarystats")
def summarystats() -> Response:
    snapshot, _ = latest_snapshot(api_state().settings)
    return jsonify(
        {
            "timestamp": snapshot["timestamp"],
            "model_version": snapshot.get("model_version"),
            "data_rows": snapshot.get("data_rows"),
            "summary_statistics": snapshot["summary_statistics"],
        }
    )


@blueprint.get("/diagnostics")
def diagnostics_snapshot() -> Response:
    settings = api_state().settings
    snapshot, drift = latest_snapshot(settings)
    return jsonify({**snapshot, "data_drift": drift, "current_model_version": current_version(settings)})
