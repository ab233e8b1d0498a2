"""The API's one error shape, ``{"error": ..., "status": ...}``, for every failure: never HTML, never a traceback.

:class:`ApiError` is what a view raises for a request it cannot answer (the client's fault: 4xx; or the service's
state: 503), with a message saying what is wrong and how to fix it.
"""

from __future__ import annotations

import logging
import re

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, NotFound, RequestEntityTooLarge

from risk.config import Settings
from risk.store import StoreUnreadable

log = logging.getLogger("risk.api")

ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/[^\s'\"(),;]*")  # not after a word, "~" or "://" (URLs are kept)


class ApiError(Exception):
    """A request the API cannot answer: the HTTP status and a message saying what is wrong.

    ``about_server``: the message describes the server's state (the model, the store) and may name its files;
    an open API shows them without absolute paths (:func:`for_client`).
    """

    def __init__(self, status: int, message: str, about_server: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.about_server = about_server


def without_server_paths(text: str, settings: Settings) -> str:
    """``text`` with each absolute path shown relative to the project, or by its last name when outside it."""
    project = f"{settings.project_dir}/"

    def shown(match: re.Match[str]) -> str:
        path = match.group(0)
        if path.startswith(project) or path == project.rstrip("/"):
            return path[len(project) :] or "."
        return f".../{path.rstrip('/').rsplit('/', 1)[-1]}"

    return ABSOLUTE_PATH.sub(shown, text)


def for_client(message: str, settings: Settings, token: str | None) -> str:
    """A message as a request may see it: absolute server paths only on a token-protected API (an open API shows
    paths relative to the project, or by their last name)."""
    return message if token is not None else without_server_paths(message, settings)


def error_response(status: int, message: str, **extra: object) -> Response:
    """The one JSON error shape: ``{"error": ..., "status": ...}``."""
    response = jsonify({"error": message, "status": status, **extra})
    response.status_code = status
    return response


def register_error_handlers(app: Flask, settings: Settings, token: str | None) -> None:
    """Turn every HTTP error into JSON; log unexpected exceptions and answer 500 without a traceback. Messages
    about the server's state name its files as :func:`for_client` allows (``settings``, ``token``: the app's)."""

    @app.errorhandler(ApiError)
    def api_error(err: ApiError) -> Response:
        return error_response(err.status, for_client(err.message, settings, token) if err.about_server else err.message)

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
        return error_response(503, for_client(str(err), settings, token))

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
