"""The API's one error shape, ``{"error": ..., "status": ...}``, for every failure: never HTML, never a traceback.

:class:`ApiError` is what a view raises for a request it cannot answer (the client's fault: 4xx; or the service's
state: 503), with a message saying what is wrong and how to fix it.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound, RequestEntityTooLarge

from risk.store import StoreUnreadable

log = logging.getLogger("risk.api")


class ApiError(Exception):
    """A request the API cannot answer: the HTTP status and a message saying what is wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
        limit = app.config["MAX_CONTENT_LENGTH"]  # = api_max_upload_bytes, set by create_app
        length = request.content_length
        if length is not None and length <= limit:  # the body fits; a form field or the part count does not
            return error_response(
                413,
                f"a form field is over {app.config['MAX_FORM_MEMORY_SIZE']} bytes or the "
                "form has too many parts; upload the CSV as a file (multipart) or send it "
                "as the body with Content-Type: text/csv",
            )
        size = f" is {length} bytes," if length else " is"
        return error_response(
            413,
            f"the request body{size} over the limit of {limit} bytes "
            "(api_max_upload_bytes in config); send fewer rows per request",
        )

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

    @app.errorhandler(MemoryError)
    def out_of_memory(err: MemoryError) -> Response:
        log.error("out of memory answering %s %s", request.method, request.path)
        return error_response(
            503, "the server ran out of memory answering this request; send fewer rows per request, or retry later"
        )

    @app.errorhandler(Exception)
    def unexpected_error(err: Exception) -> Response:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, InternalServerError.description)
