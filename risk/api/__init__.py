"""The API: serve the deployed model, its diagnostics and history over HTTP (Flask), one blueprint per concern.

``create_app(settings or config path)`` builds the app; ``.venv/bin/python app.py`` runs Flask's server on the
config's API url (``api_url``, else ``url`` or ``api_port``; loopback, port 8000, no debug by default); ``wsgi.py``
exposes ``app`` for gunicorn (``gunicorn -c gunicorn.conf.py wsgi:app``). Endpoints:

- ``/prediction`` (GET or POST): class and attrition probability per row, for a file in the data folders or
  for data sent as JSON records or CSV (see risk/api/inputs.py for every accepted shape), with the model version.
- ``/scoring``: the deployed version's F1 on the test data, as recorded when it was deployed.
- ``/summarystats`` and ``/diagnostics``: from the latest saved diagnostics snapshot (a GET never recomputes);
  ``/missingdata``, ``/executiontime`` and ``/outdatedpackages``: one part of it each, as course clients ask.
- ``/risk``: the newest risk list (riskiest clients first, with the CBPE estimate of F1), as JSON or CSV.
- ``/dashboard`` and ``/history``: the model's history as one HTML page, and as paged JSON.
- ``/health``: ``ok``, ``degraded`` or ``unavailable`` (503: nothing can answer /prediction), the deployed version
  and its age (never needs the bearer token; terse without it on a token-protected API); ``/metrics``: Prometheus.

Every error is a JSON body ``{"error": ..., "status": ...}`` with a 4xx/5xx status, never HTML or a traceback.
When ``RISK_API_TOKEN`` is set, every endpoint but ``/health`` needs ``Authorization: Bearer <token>``; an empty
or padded value refuses to start (ConfigError), and a log line says whether the API is open or token-protected.
The deployed model is loaded once per version (sha256-verified, through ``risk.deployed.load_deployed_model``);
a redeploy is picked up on the next request, and the old model answers until the new one is fully loaded.
"""

from __future__ import annotations

import importlib
import logging
import os

from flask import Flask

from risk.api import dashboard, risk, serving, snapshot, status
from risk.api.errors import ApiError, register_error_handlers
from risk.api.hooks import register_request_hooks
from risk.api.metrics import ApiMetrics
from risk.api.models import ModelCache
from risk.api.state import STATE_KEY, ApiState
from risk.config import API_TOKEN_ENV, Settings, api_token, load_config

log = logging.getLogger("risk.api")

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def register_blueprints(app: Flask) -> None:
    """Every group of endpoints, registered in one place (add new blueprints here)."""
    for module in (serving, snapshot, status, dashboard, risk):
        app.register_blueprint(module.blueprint)


def create_app(settings: Settings | str | os.PathLike[str] | None = None) -> Flask:
    """Build the app from settings, or from a config file (default: $RISK_CONFIG, then config.json)."""
    if not isinstance(settings, Settings):
        settings = load_config(settings)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.api_max_upload_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    token = api_token()  # ConfigError for an empty or padded $RISK_API_TOKEN: refuse to start, never serve open
    app.extensions[STATE_KEY] = ApiState(
        settings=settings,
        models=ModelCache(settings),
        metrics=ApiMetrics(settings),
        token=token,
    )
    log_access_mode(token, settings)
    register_error_handlers(app, settings, token)
    register_request_hooks(app)
    register_blueprints(app)
    warm_up(app)
    return app


def log_access_mode(token: str | None, settings: Settings) -> None:
    """Say whether the API is open or needs the token: the operator should never have to guess (a warning when
    it is open and the config's ``api_url`` is not a loopback address)."""
    if token is None:
        host = settings.api_bind[0]
        level = logging.INFO if host in LOOPBACK_HOSTS else logging.WARNING
        log.log(level, "the API is open: %s is not set, so every endpoint answers without a token", API_TOKEN_ENV)
    else:
        log.info(
            "the API is token-protected: every endpoint but /health needs Authorization: Bearer <%s>", API_TOKEN_ENV
        )


def warm_up(app: Flask) -> None:
    """Load the deployed model now, so the first request does not pay for it (a failure is only logged).

    With no model to load, the code unpickling one needs (scikit-learn) is imported anyway: the first load after
    a deployment is then an unpickle of milliseconds, so ``/health``, which loads a newly deployed version as a
    prediction would, answers within the pipeline's probe timeout even on a busy machine.
    """
    try:
        app.extensions[STATE_KEY].models.current()
    except ApiError as err:
        log.warning("%s", err.message)
        importlib.import_module("risk.model")
