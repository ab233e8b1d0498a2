"""The API: serve the deployed model and its diagnostics over HTTP (Flask).

``create_app(config_path)`` builds the app; ``python app.py`` runs Flask's server on the config's ``api_url``
host and port (loopback, port 8000, no debug by default); ``wsgi.py`` exposes ``app`` for gunicorn
(``gunicorn -c gunicorn.conf.py wsgi:app``). Endpoints:

- ``/prediction`` (GET or POST): class and attrition probability per row, for a file in the data folders or
  for data sent as JSON records or CSV (see :mod:`apiinput` for every accepted shape), with the model version.
- ``/scoring``: the deployed version's F1 on the test data, as recorded when it was deployed.
- ``/summarystats`` and ``/diagnostics``: from the latest saved diagnostics snapshot (a GET never recomputes).
- ``/health``: liveness, deployed version and age (never needs the bearer token); ``/metrics``: Prometheus.

Every error is a JSON body ``{"error": ..., "status": ...}`` with a 4xx/5xx status, never HTML or a traceback.
When ``RISK_API_TOKEN`` is set, every endpoint but ``/health`` needs ``Authorization: Bearer <token>``.
The deployed model is loaded once per version (sha256-verified, through ``deployment.load_deployed_model``);
a redeploy is picked up on the next request, and the old model answers until the new one is fully loaded.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
from flask import Blueprint, Flask, Response, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound, RequestEntityTooLarge

from risk.api.inputs import ApiError, PredictionInput, prediction_input
from risk.api.dashboard import blueprint as dashboard_blueprint
from risk.deployed import DeployedModel, load_deployed_model
from risk.versions import current_version, read_record
from risk.predict import predict_frame
from risk.schema import FEATURES, ID_COLUMN, DataFileError, check_schema
from risk.cli import make_parser, run_script
from risk.clock import parse_utc
from risk.store import RecordsStore, StoreUnreadable, reading
from risk.config import API_TOKEN_ENV, Settings, load_config

log = logging.getLogger("app")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
STATE_KEY = "risk_api"
RETRY_FAILED_LOAD_SECONDS = 10.0
DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
DRAIN_CHUNK_BYTES = 1 << 16
SCORE_LOOKBACK = 200

api = Blueprint("api", __name__)


# --- errors ---


def error_response(status: int, message: str, **extra: object) -> Response:
    """The one JSON error shape: ``{"error": ..., "status": ...}``."""
    response = jsonify({"error": message, "status": status, **extra})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Turn every HTTP error into JSON; log unexpected exceptions and answer 500 without a traceback."""

    @app.errorhandler(ApiError)
    def api_error(err: ApiError) -> Response:
        return error_response(err.status, err.message)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(err: RequestEntityTooLarge) -> Response:
        limit = api_state().settings.api_max_upload_bytes
        length = request.content_length
        if length is not None and length <= limit:  # the body fits; a form field or the part count does not
            return error_response(413, f"a form field is over {app.config['MAX_FORM_MEMORY_SIZE']} bytes or the "
                                       "form has too many parts; upload the CSV as a file (multipart) or send it "
                                       "as the body with Content-Type: text/csv")
        size = f" is {length} bytes," if length else " is"
        return error_response(413, f"the request body{size} over the limit of {limit} bytes "
                                   "(api_max_upload_bytes in config); send fewer rows per request")

    @app.errorhandler(StoreUnreadable)
    def store_unreadable(err: StoreUnreadable) -> Response:
        log.error("%s", err)
        return error_response(503, str(err))

    @app.errorhandler(NotFound)
    def not_found(err: NotFound) -> Response:
        endpoints = sorted({rule.rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"})
        return error_response(404, f"no endpoint {request.path}; the endpoints are {', '.join(endpoints)}")

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException) -> Response:
        return error_response(err.code or 500, err.description or err.name)

    @app.errorhandler(Exception)
    def unexpected_error(err: Exception) -> Response:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, InternalServerError.description)


# --- the deployed model, once per version ---


class ModelCache:
    """The deployed model, loaded once per version and shared by the requests of one process.

    Each call reads the ``current`` pointer (one readlink). A new version is loaded by one request under a
    lock; meanwhile the other requests are answered by the old model, so nobody sees a half-loaded one.
    A version that fails to load (sha256 mismatch...) is retried at most every RETRY_FAILED_LOAD_SECONDS;
    until then the previous, verified model keeps answering, and ``/health`` reports the problem.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._model: DeployedModel | None = None
        self._failure: tuple[str, str, float] | None = None

    @property
    def loaded(self) -> DeployedModel | None:
        """The model in memory, if any (without checking for a newer version)."""
        return self._model

    def problem(self, version: str | None) -> str | None:
        """Why ``version`` could not be loaded, if its last attempt failed."""
        failure = self._failure
        return failure[1] if failure and failure[0] == version else None

    def current(self) -> DeployedModel:
        """The model of the current deployed version (or the previous one while that loads or if it fails)."""
        version = current_version(self._settings)
        model = self._model
        if model is not None and model.version == version:
            return model
        if version is None:
            raise ApiError(503, f"no model is deployed in {self._settings.prod_deployment_path}; "
                                "run fullprocess.py (or training.py, scoring.py and deployment.py)")
        if not self._lock.acquire(blocking=model is None):
            return model  # another request is loading the new version; the old one answers meanwhile
        try:
            return self._load(version)
        finally:
            self._lock.release()

    def _load(self, version: str) -> DeployedModel:
        model = self._model
        if model is not None and model.version == version:
            return model
        failure = self._failure
        if failure and failure[0] == version and time.monotonic() - failure[2] < RETRY_FAILED_LOAD_SECONDS:
            return self._fallback(version, failure[1])
        try:
            loaded = load_deployed_model(self._settings, version)
        except Exception as err:  # noqa: BLE001 - any failure to load leaves the verified model in place
            log.error("cannot load deployed model %s: %s", version, err)
            self._failure = (version, str(err), time.monotonic())
            return self._fallback(version, str(err))
        log.info("loaded deployed model %s (previous in memory: %s)", version, model.version if model else "none")
        self._model, self._failure = loaded, None
        return loaded

    def _fallback(self, version: str, problem: str) -> DeployedModel:
        if self._model is None:
            raise ApiError(503, f"the deployed model {version} cannot be loaded: {problem}")
        return self._model


# --- metrics ---


def multiprocess_dir() -> str | None:
    """The prometheus-client multiprocess folder (set by gunicorn.conf.py when there are several workers)."""
    return os.environ.get(MULTIPROC_ENV) or None


class DeploymentCollector:
    """Gauges read at scrape time: deployed version, its F1 and age, and the latest scores in the store."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def collect(self) -> Iterator[GaugeMetricFamily]:
        version = current_version(self._settings)
        info = GaugeMetricFamily("risk_deployed_model_info", "The deployed model version (value 1)",
                                 labels=["version"])
        if version is None:
            yield info
            return
        info.add_metric([version], 1)
        yield info
        try:
            record = read_record(self._settings, version)
        except Exception:  # noqa: BLE001 - an unreadable record must not break the scrape
            return
        yield GaugeMetricFamily("risk_deployed_model_f1", "F1 of the deployed model on the test data",
                                value=record.f1)
        age = model_age_seconds(record)
        if age is not None:
            yield GaugeMetricFamily("risk_deployed_model_age_seconds", "Seconds since the version was deployed",
                                    value=age)
        latest = GaugeMetricFamily("risk_latest_f1", "The latest F1 in the score history, by kind (test: a "
                                   "trained model on the test data; batch: the deployed model on new data)",
                                   labels=["kind"])
        for kind, f1 in latest_scores(self._settings).items():
            latest.add_metric([kind], f1)
        yield latest


class ApiMetrics:
    """Request counts and latencies per endpoint and rows predicted, in a registry of this app's own."""

    def __init__(self, settings: Settings) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("risk_api_requests", "HTTP requests answered, by endpoint, method and status",
                                ["endpoint", "method", "status"], registry=self.registry)
        self.latency = Histogram("risk_api_request_duration_seconds", "Time to answer a request, by endpoint",
                                 ["endpoint"], registry=self.registry)
        self.predictions = Counter("risk_api_predictions", "Rows predicted, by model version",
                                   ["model_version"], registry=self.registry)
        self.deployment = DeploymentCollector(settings)
        if multiprocess_dir() is None:
            self.registry.register(self.deployment)

    def exposition(self) -> bytes:
        """The Prometheus text; summed over all gunicorn workers in multiprocess mode."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self.deployment)
        return generate_latest(registry)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)


# --- per-app state ---


@dataclass(frozen=True)
class ApiState:
    """What the endpoints of one app share: settings, the model cache, metrics and the optional token."""

    settings: Settings
    models: ModelCache
    metrics: ApiMetrics
    token: str | None


def api_state() -> ApiState:
    """The state of the app handling the current request (for blueprints such as the dashboard)."""
    return current_app.extensions[STATE_KEY]


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view as reachable without the bearer token."""
    view.public = True  # type: ignore[attr-defined]
    return view


def register_request_hooks(app: Flask) -> None:
    """Timing and metrics, the body-size limit, and the bearer token, in that order."""

    @app.before_request
    def start_timer() -> None:
        g.started = time.perf_counter()

    @app.before_request
    def read_body() -> None:
        """Read the body up front (bounded), so every answer, even a 401 or 413, reaches the client."""
        limit = api_state().settings.api_max_upload_bytes
        length = request.content_length
        if length is not None and length > limit:
            drain_input(request.environ, length)
            raise RequestEntityTooLarge()
        request.get_data(cache=True)

    @app.before_request
    def check_token() -> Response | None:
        token = api_state().token
        view = app.view_functions.get(request.endpoint or "")
        if token is None or getattr(view, "public", False):
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            response = error_response(401, f"this API needs a bearer token ({API_TOKEN_ENV} is set on the server); "
                                           "send the header Authorization: Bearer <token>")
        elif not hmac.compare_digest(given.strip().encode(), token.encode()):
            response = error_response(401, "the bearer token is wrong; send the token the server was started with")
        else:
            return None
        response.headers["WWW-Authenticate"] = 'Bearer realm="risk-api"'
        return response

    @app.after_request
    def count(response: Response) -> Response:
        started = g.get("started")
        if started is not None:
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            api_state().metrics.observe(endpoint, request.method, response.status_code,
                                        time.perf_counter() - started)
        return response


def drain_input(environ: dict[str, Any], length: int) -> None:
    """Read and discard an oversized body (up to DRAIN_LIMIT_BYTES) so the client sees the 413, not a reset."""
    stream = environ.get("wsgi.input")
    remaining = min(length, DRAIN_LIMIT_BYTES) if stream is not None else 0
    while remaining > 0:
        chunk = stream.read(min(DRAIN_CHUNK_BYTES, remaining))
        if not chunk:
            break
        remaining -= len(chunk)


# --- helpers shared by the endpoints ---


@contextlib.contextmanager
def open_records(settings: Settings) -> Iterator[RecordsStore]:
    """The records store, read-only; ApiError 503 when it does not exist yet (StoreUnreadable: 503 too)."""
    with reading(settings.records_db_path) as store:
        if store is None:
            raise ApiError(503, f"no records yet ({settings.records_db_path} does not exist); run fullprocess.py "
                                "to ingest, train, deploy and run diagnostics")
        yield store


def latest_snapshot(settings: Settings) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The latest diagnostics snapshot and data-drift result; ApiError 503 when no diagnostics ran yet."""
    with open_records(settings) as store:
        snapshot = store.latest_diagnostics()
        drift = store.latest_data_drift()
    if snapshot is None:
        raise ApiError(503, "no diagnostics have been saved yet; run fullprocess.py (or diagnostics.py)")
    return snapshot, drift


def latest_scores(settings: Settings) -> dict[str, float]:
    """The newest F1 of each kind (test, batch) in the score history; empty when there is none yet."""
    try:
        with open_records(settings) as store:
            rows = store.scores(SCORE_LOOKBACK)
    except ApiError:
        return {}
    latest: dict[str, float] = {}
    for row in rows:
        latest.setdefault(row["kind"], float(row["f1"]))
    return latest


def scored_at(settings: Settings, model_sha256: str) -> str | None:
    """When the deployed model's test F1 was computed (from the score history), if still recorded."""
    try:
        with open_records(settings) as store:
            rows = store.scores(SCORE_LOOKBACK)
    except ApiError:
        return None
    return next((r["scored_at"] for r in rows if r["kind"] == "test" and r["model_sha256"] == model_sha256), None)


def model_age_seconds(record: dict[str, Any]) -> float | None:
    """Seconds since a version's ``deployed_at``, or None when the record has no readable time."""
    try:
        deployed = parse_utc(record.deployed_at)
    except (KeyError, TypeError, ValueError):
        return None
    return round((datetime.now(timezone.utc) - deployed).total_seconds(), 3)


# --- predictions ---


def checked_rows(data: PredictionInput) -> pd.DataFrame:
    """The rows schema-checked (``exited`` and ``corporation`` optional); ApiError 400 naming the problem."""
    try:
        return check_schema(data.frame, require_target=False, require_id=False)
    except DataFileError as err:
        raise ApiError(400, f"{data.subject} {err}") from None


def predict_rows(data: PredictionInput, deployed: DeployedModel) -> list[dict[str, Any]]:
    """Per row: ``corporation`` (when sent), the predicted class and the attrition probability.

    An empty feature is filled in by the model's own imputer (the training median); such a row lists the
    columns it lacked under ``imputed``.
    """
    clean = checked_rows(data)
    result = predict_frame(clean, deployed.model)
    columns: dict[str, list[Any]] = {}
    if ID_COLUMN in clean.columns:
        columns[ID_COLUMN] = clean[ID_COLUMN].astype(object).where(clean[ID_COLUMN].notna(), None).tolist()
    columns["prediction"] = result["prediction"].tolist()
    columns["probability"] = result["probability"].tolist()
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    missing = clean[list(FEATURES)].isna().to_numpy()
    for position in np.flatnonzero(missing.any(axis=1)):
        rows[position]["imputed"] = [FEATURES[i] for i in np.flatnonzero(missing[position])]
    return rows


# --- endpoints ---


@api.route("/prediction", methods=["GET", "POST"])
def prediction() -> Response:
    state = api_state()
    data = prediction_input(request, state.settings)
    deployed = state.models.current()
    rows = predict_rows(data, deployed)
    state.metrics.predictions.labels(deployed.version).inc(len(rows))
    return jsonify({"model_version": deployed.version, "source": data.subject, "rows": len(rows),
                    "predictions": rows})


@api.get("/scoring")
def scoring() -> Response:
    state = api_state()
    deployed = state.models.current()
    record = deployed.record
    return jsonify({
        "model_version": deployed.version,
        "f1": record.f1,
        "scored_at": scored_at(state.settings, deployed.sha256),
        "deployed_at": record.deployed_at,
        "test_data": state.settings.shown_path(state.settings.test_data_file),
    })


@api.get("/summarystats")
def summarystats() -> Response:
    snapshot, _ = latest_snapshot(api_state().settings)
    return jsonify({
        "timestamp": snapshot["timestamp"],
        "model_version": snapshot.get("model_version"),
        "data_rows": snapshot.get("data_rows"),
        "summary_statistics": snapshot["summary_statistics"],
    })


@api.get("/diagnostics")
def diagnostics_snapshot() -> Response:
    settings = api_state().settings
    snapshot, drift = latest_snapshot(settings)
    return jsonify({**snapshot, "data_drift": drift, "current_model_version": current_version(settings)})


@api.get("/health")
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


@api.get("/metrics")
def metrics() -> Response:
    return Response(api_state().metrics.exposition(), mimetype=CONTENT_TYPE_LATEST)


# --- the app ---


def register_blueprints(app: Flask) -> None:
    """Every group of endpoints, registered in one place (add new blueprints here)."""
    app.register_blueprint(api)
    app.register_blueprint(dashboard_blueprint)


def create_app(config_path: str | None = None) -> Flask:
    """Build the app for one config file (default: $RISK_CONFIG, then config.json beside this file)."""
    settings = load_config(config_path)
    app = Flask(__name__)
    app.config.update(SETTINGS=settings, MAX_CONTENT_LENGTH=settings.api_max_upload_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    app.extensions[STATE_KEY] = ApiState(settings=settings, models=ModelCache(settings),
                                         metrics=ApiMetrics(settings), token=os.environ.get(API_TOKEN_ENV) or None)
    register_error_handlers(app)
    register_request_hooks(app)
    register_blueprints(app)
    warm_up(app)
    return app


def warm_up(app: Flask) -> None:
    """Load the deployed model now, so the first request does not pay for it (a failure is only logged)."""
    try:
        app.extensions[STATE_KEY].models.current()
    except ApiError as err:
        log.warning("%s", err.message)


def main() -> None:
    parser = make_parser("Serve the deployed model over HTTP with Flask's server (use gunicorn for production).")
    parser.add_argument("--host", help="interface to listen on (default: the host of api_url)")
    parser.add_argument("--port", type=int, help="port to listen on (default: the port of api_url)")
    args = parser.parse_args()

    def serve(settings: Settings) -> int:
        app = create_app(str(settings.config_path))
        host, port = settings.api_bind
        app.run(host=args.host or host, port=args.port or port, debug=False, use_reloader=False, threaded=True)
        return 0

    raise SystemExit(run_script(args, serve, take_lock=False))


if __name__ == "__main__":
    main()
