"""How the service is: ``/health`` (liveness, the deployed version and its age; no token needed) and ``/metrics``
(Prometheus)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from risk.api.records import model_age_seconds
from risk.api.state import api_state, public
from risk.versions import current_version, read_record

blueprint = Blueprint("status", __name__)


@blueprint.get("/health")
@public
def health() -> Response:
    state = api_state()
    version = current_version(state.settings)
    body: dict[str, Any] = {"status": "ok", "model_version": version}
    if version is None:
        body["message"] = "no model deployed yet; run fullprocess.py"
        return jsonify(body)
    loaded = state.models.loaded
    try:
        in_memory = loaded is not None and loaded.version == version
        record = loaded.record if in_memory else read_record(state.settings, version)
        body.update(deployed_at=record.deployed_at, model_age_seconds=model_age_seconds(record))
    except Exception as err:  # noqa: BLE001 - liveness still answers; say what is wrong
        body["model_problem"] = str(err)
    problem = state.models.problem(version)
    if problem:
        body["model_problem"] = problem
        body["serving_version"] = loaded.version if loaded else None
    return jsonify(body)


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(api_state().metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)
