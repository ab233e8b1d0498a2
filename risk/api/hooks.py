"""What runs around every request: the timer and metrics, the bounded body, and the bearer token."""

from __future__ import annotations

import hmac
import io
import time
from typing import Any

from flask import Flask, Request, Response, g, request
from werkzeug.exceptions import RequestEntityTooLarge

from risk.api.errors import ApiError, error_response
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
        if length is None and request.environ.get("wsgi.input_terminated"):
            read_streamed_body(request, limit)
        request.get_data(cache=True)

    @app.before_request
    def check_token() -> Response | None:
        token = api_state().token
        view = app.view_functions.get(request.endpoint or "")
        if token is None or getattr(view, "public", False):
            return None
        given = bearer_token(token)
        if given == "missing":
            response = error_response(
                401,
                f"this API needs a bearer token ({API_TOKEN_ENV} is set on the server); "
                "send the header Authorization: Bearer <token>",
            )
        elif given == "wrong":
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


def bearer_token(token: str) -> str:
    """How the current request's ``Authorization: Bearer`` header compares with ``token``: "missing", "wrong"
    or "right" (compared in constant time)."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return "missing"
    return "right" if hmac.compare_digest(given.strip().encode(), token.encode()) else "wrong"


def read_streamed_body(request: Request, limit: int) -> None:
    """Read a body sent without Content-Length (chunked) from the server's stream, at most ``limit`` bytes.

    More than ``limit`` bytes: ApiError 413, and the rest is drained so the client sees it. Otherwise the whole body
    replaces the stream with its length declared, so every later reader (the form parser too) sees exactly it:
    werkzeug's own limit on such streams stops reading at ``limit`` and hands the view a truncated body.
    """
    environ = request.environ
    stream = environ["wsgi.input"]
    chunks: list[bytes] = []
    received = 0
    while received <= limit:
        chunk = stream.read(min(DRAIN_CHUNK_BYTES, limit + 1 - received))
        if not chunk:
            break
        chunks.append(chunk)
        received += len(chunk)
    if received > limit:
        drain_input(environ, DRAIN_LIMIT_BYTES)
        raise ApiError(
            413,
            f"the request body (sent without Content-Length) is over the limit of {limit} bytes "
            "(api_max_upload_bytes in config); send fewer rows per request",
        )
    body = b"".join(chunks)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("HTTP_TRANSFER_ENCODING", None)
    environ.pop("wsgi.input_terminated", None)
    for cached in ("content_length", "stream"):  # werkzeug caches both on first use; recompute from the environ
        request.__dict__.pop(cached, None)


def drain_input(environ: dict[str, Any], length: int) -> None:
    """Read and discard an oversized body (up to DRAIN_LIMIT_BYTES) so the client sees the 413, not a reset."""
    stream = environ.get("wsgi.input")
    remaining = min(length, DRAIN_LIMIT_BYTES) if stream is not None else 0
    while remaining > 0:
        chunk = stream.read(min(DRAIN_CHUNK_BYTES, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
