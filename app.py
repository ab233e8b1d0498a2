"""The API: serve the deployed model and its diagnostics over HTTP (Flask).

``create_app(config_path)`` builds the app; ``python app.py`` runs Flask's server on the config's ``api_url``
host and port (loopback, port 8000, no debug by default); ``wsgi.py`` exposes ``app`` for gunicorn.
Every error is a JSON body with a 4xx/5xx status, never an HTML page or a traceback.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException, InternalServerError

from dashboard import blueprint as dashboard_blueprint
from deployment import current_version
from plumbing import make_parser, setup_logging
from settings import Settings, load_config

log = logging.getLogger("app")


def error_response(status: int, message: str, **extra: object):
    """The one JSON error shape: ``{"error": ..., "status": ...}``."""
    response = jsonify({"error": message, "status": status, **extra})
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Turn every HTTP error into JSON; log unexpected exceptions and answer 500 without a traceback."""

    @app.errorhandler(HTTPException)
    def http_error(err: HTTPException):
        return error_response(err.code or 500, err.description or err.name)

    @app.errorhandler(Exception)
    def unexpected_error(err: Exception):
        log.exception("unexpected error")
        return error_response(500, InternalServerError.description)


def create_app(config_path: str | None = None) -> Flask:
    """Build the app for one config file (default: $RISK_CONFIG, then config.json beside this file)."""
    settings = load_config(config_path)
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    register_error_handlers(app)
    app.register_blueprint(dashboard_blueprint)

    @app.get("/health")
    def health():
        return jsonify({"status": "ok", "model_version": current_version(settings)})

    return app


def bind_address(settings: Settings) -> tuple[str, int]:
    """Host and port from the config's ``api_url`` (127.0.0.1:8000 by default)."""
    parts = urlsplit(settings.api_url)
    return parts.hostname or "127.0.0.1", parts.port or 8000


def main() -> None:
    parser = make_parser("Serve the deployed model over HTTP with Flask's server (use gunicorn for production).")
    parser.add_argument("--host", help="interface to listen on (default: the host of api_url)")
    parser.add_argument("--port", type=int, help="port to listen on (default: the port of api_url)")
    args = parser.parse_args()
    setup_logging(quiet=args.quiet, verbose=args.verbose)
    app = create_app(args.config)
    host, port = bind_address(app.config["SETTINGS"])
    app.run(host=args.host or host, port=args.port or port, debug=False, use_reloader=False, threaded=True)


if __name__ == "__main__":
    main()
