"""What runs around every request: the timer and metrics, the bounded body, and the bearer token."""

from __future__ import annotations

import hmac
import time
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from risk.api.errors import error_response
from risk.api.state import api_state
from risk.config import API_TOKEN_ENV

DRAIN_LIMIT_BYTES = 64 * 1024 * 1024
DRAIN_CHUNK_BYTES = 1 << 16


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
            response = error_response(
                401,
                f"this API needs a bearer token ({API_TOKEN_ENV} is set on the server); "
                "send the header Authorization: Bearer <token>",
            )
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
            api_state().metrics.observe(endpoint, request.method, response.status_code, time.perf_counter() - started)
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
