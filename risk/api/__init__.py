"""The API: serve the deployed model, its diagnostics and history over HTTP (Flask), one blueprint per concern.

``create_app(settings or config path)`` builds the app; ``.venv/bin/python app.py`` runs Flask's server on the
config's API url (``api_url``, else ``url`` or ``api_port``; loopback, port 8000, no debug by default); ``wsgi.py``
exposes ``app`` for gunicorn (``gunicorn -c gunicorn.conf.py wsgi:app``). Endpoints:

- ``/prediction`` (GET or POST): class and attrition probability per row, for a file in the data folders or
  for data sent as JSON records or CSV (see risk/api/inputs.py for every accepted shape), with the model version.
- ``/scoring``: the deployed version's F1 on the test data, as recorded when it was deployed.
- ``/summarystats`` and ``/diagnostics``: from the latest saved diagnostics snapshot (a GET never recomputes);
  ``/missingdata``, ``/executiontime`` and ``/outdatedpackages``: one part of it each, as course clients ask.
- ``/health``: liveness, deployed version and age (never needs the bearer token); ``/metrics``: Prometheus.

Every error is a JSON body ``{"error": ..., "status": ...}`` with a 4xx/5xx status, never HTML or a traceback.
When ``RISK_API_TOKEN`` is set, every endpoint but ``/health`` needs ``Authorization: Bearer <token>``.
The deployed model is loaded once per version (sha256-verified, through ``risk.deployed.load_deployed_model``);
a redeploy is picked up on the next request, and the old model answers until the new one is fully loaded.
"""

from __future__ import annotations

import logging
import os

from flask import Flask

from risk.api import dashboard, serving, snapshot, status
from risk.api.errors import ApiError, register_error_handlers
from risk.api.hooks import register_request_hooks
from risk.api.metrics import ApiMetrics
from risk.api.models import ModelCache
from risk.api.state import STATE_KEY, ApiState
from risk.config import API_TOKEN_ENV, Settings, load_config

log = logging.getLogger("risk.api")


def register_blueprints(app: Flask) -> None:
    """Every group of endpoints, registered in one place (add new blueprints here)."""
    for module in (serving, snapshot, status, dashboard):
        app.register_blueprint(module.blueprint)


def create_app(settings: Settings | str | os.PathLike[str] | None = None) -> Flask:
    """Build the app from settings, or from a config file (default: $RISK_CONFIG, then config.json)."""
    if not isinstance(settings, Settings):
        settings = load_config(settings)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=settings.api_max_upload_bytes)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    app.extensions[STATE_KEY] = ApiState(
        settings=settings,
        models=ModelCache(settings),
        metrics=ApiMetrics(settings),
        token=os.environ.get(API_TOKEN_ENV) or None,
    )
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
