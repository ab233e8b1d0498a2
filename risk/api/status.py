"""How the service is: ``/health`` (no token needed) and ``/metrics`` (Prometheus).

``/health`` says whether ``/prediction`` can answer: ``ok`` (the deployed version serves), ``degraded`` (an older,
verified version still serves because the deployed one cannot be loaded) or ``unavailable`` (nothing can serve:
nothing deployed, or the model cannot be loaded), the last with HTTP 503 so a load balancer or probe sees it.
What it says depends on who asks: with the token (or when the API has none) the versions, the deployment's age and
any problem; an open API shows no absolute server path (paths in the project are shown relative to it, others by
their last name). Without the token on a token-protected API it stays public but terse: the status and version.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST

from risk.api.errors import ApiError, without_server_paths
from risk.api.hooks import bearer_token
from risk.api.records import model_age_seconds
from risk.api.state import ApiState, api_state, public
from risk.versions import current_version, read_record

blueprint = Blueprint("status", __name__)


def serving_state(state: ApiState, version: str | None) -> tuple[str, str | None, str | None]:
    """The status, the version that answers /prediction (if any) and the problem (if any)."""
    try:
        serving = state.models.current().version  # loads a newly deployed version, as a prediction would
    except ApiError as err:
        return "unavailable", None, err.message
    if serving == version:
        return "ok", serving, None
    return "degraded", serving, state.models.problem(version) or f"version {version} is still being loaded"


def health_details(state: ApiState, version: str) -> dict[str, Any]:
    """When the deployed version was deployed, and how long ago."""
    loaded = state.models.loaded
    try:
        record = (
            loaded.record if loaded is not None and loaded.version == version else read_record(state.settings, version)
        )
    except Exception as err:  # noqa: BLE001 - health still answers; say what is wrong
        return {"record_problem": str(err)}
    return {"deployed_at": record.deployed_at, "model_age_seconds": model_age_seconds(record)}


@blueprint.get("/health")
@public
def health() -> Response:
    state = api_state()
    version = current_version(state.settings)
    status, serving, problem = serving_state(state, version)
    body: dict[str, Any] = {"status": status, "model_version": version}
    access = "open" if state.token is None else bearer_token(state.token)
    if access in ("open", "right"):
        if serving != version:
            body["serving_version"] = serving
        if version is not None:
            body.update(health_details(state, version))
        if problem is not None:
            body["model_problem"] = problem
        if access == "open":
            body = {
                key: without_server_paths(v, state.settings) if isinstance(v, str) else v for key, v in body.items()
            }
    response = jsonify(body)
    response.status_code = 503 if status == "unavailable" else 200
    return response


@blueprint.get("/metrics")
def metrics() -> Response:
    return Response(api_state().metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)
