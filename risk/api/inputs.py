"""What a ``/prediction`` request asks about: the data it names or carries, in every client shape.

Course clients name a file: JSON ``{"filepath": ...}`` (or ``file_path``, ``filename``, ``fname``), the same
names as query parameters or form fields. Other clients send the data itself: JSON records (a list of objects,
or one object), a CSV upload (multipart) or a CSV body. :func:`prediction_input` turns a Flask request into one
:class:`PredictionInput` (the raw frame or JSON records, and the words to name them in messages) or raises
:class:`ApiError` with the status and a message that says what is wrong and how to fix it.

:func:`resolve_data_path` is the only way a client's path becomes a file: it must lie inside the project's
data folders once symlinks are resolved; ``..``, URLs and paths outside are refused before anything is read.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from flask import Request
from werkzeug.datastructures import FileStorage, MultiDict

from risk.api.errors import ApiError
from risk.config import Settings
from risk.schema import (
    COLUMNS,
    DATA_SUFFIXES,
    FEATURES,
    DataFileError,
    check_record_fields,
    decode_text,
    load_json_records,
    parse_csv_text,
    records_frame,
)

T = TypeVar("T")

# the keys course clients name a file with (query string, form field or JSON object)
PATH_KEYS = ("filepath", "file_path", "file_location", "filename", "fname", "dataset_path")
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # a JSON escape of a UTF-16 surrogate, \ud800 to \udfff
URL_PATTERN = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://|file:)")
JSON_START = (b"[", b"{")
CSV_TYPES = ("text/csv", "application/csv", "text/x-csv")
SNIFFED_TYPES = ("", "text/plain", "application/octet-stream")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
SHAPES_HINT = (
    'send a file path ({"filepath": "testdata/testdata.csv"} or ?filepath=...), JSON records '
    '([{"lastmonth_activity": 234, "lastyear_activity": 3, "number_of_employees": 10}]) '
    'or a CSV upload (multipart field "file")'
)


@dataclass(frozen=True)
class PredictionInput:
    """The rows to predict, as parsed (not yet schema-checked), and how to name them in messages.

    CSV arrives as a raw ``frame``; JSON as its ``records`` (a list of objects, already through the record and
    key-count checks), so plain records can be served without building a frame (risk/api/serving.py).
    """

    frame: pd.DataFrame | None
    subject: str
    records: list[dict[str, Any]] | None = None

    def raw_frame(self) -> pd.DataFrame:
        """The rows as a raw frame (built from the records when they came as JSON)."""
        if self.frame is not None:
            return self.frame
        return _guarded(lambda: records_frame(self.records or []), self.subject)


# --- files named by the client ---


def data_folders(settings: Settings) -> list[Path]:
    """The folders ``/prediction`` may read: test data, input, ingested data, then ``api_data_folders``."""
    test_folder = settings.test_data_file.parent
    folders = [test_folder, settings.input_folder_path, settings.output_folder_path, *settings.api_data_folders]
    unique: list[Path] = []
    for folder in folders:
        real = folder.resolve()
        if real not in unique:
            unique.append(real)
    return unique


def _folder_names(settings: Settings) -> str:
    return ", ".join(f"{settings.shown_path(folder)}/" for folder in data_folders(settings))


def _inside(path: Path, folders: Iterable[Path]) -> bool:
    return any(path == folder or path.is_relative_to(folder) for folder in folders)


def _real(path: Path) -> Path | None:
    """``path`` with every symlink resolved, or None when it cannot be (a symlink loop, a name too long)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return None


def quoted(text: str, limit: int = 120) -> str:
    """``text`` quoted for a message, cut to ``limit`` characters (a client may send megabytes)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _checked_path_text(value: object, key: str) -> str:
    """The path text, or ApiError for a non-string, empty value, NUL byte, URL or ``..``."""
    if not isinstance(value, str):
        raise ApiError(
            400,
            f'{key} must be a string naming a CSV file, such as "testdata/testdata.csv" (got {type(value).__name__})',
        )
    text = value.strip()
    if not text:
        raise ApiError(400, f"{key} is empty; name a CSV file in the data folders, such as testdata/testdata.csv")
    if "\x00" in text:
        raise ApiError(400, f"{key} contains a NUL byte; send a plain file path")
    if URL_PATTERN.match(text):
        raise ApiError(
            400,
            f"{key} {quoted(text)} is a URL; the API never fetches URLs, it reads only files in the "
            "project's data folders (or send the data itself as JSON records or a CSV upload)",
        )
    if ".." in Path(text).parts:
        raise ApiError(
            400,
            f"{key} {quoted(text)} contains '..'; give the path from the project folder, such as testdata/testdata.csv",
        )
    return text


def resolve_data_path(value: object, settings: Settings, key: str = "filepath") -> Path:
    """The real path of the data file a client names; ApiError (400/403/404) for anything else.

    A relative path is looked up from the project folder, then inside each data folder (so ``testdata.csv``
    finds ``testdata/testdata.csv``); an absolute path must lie inside a data folder. The file's real path
    (symlinks resolved) must be inside a data folder too. Nothing outside them is read or even checked for.
    """
    text = _checked_path_text(value, key)
    path = Path(text)
    folders = data_folders(settings)
    candidates = [path] if path.is_absolute() else [settings.project_dir / path, *(f / path for f in folders)]
    if path.is_absolute() and not _inside(path, folders):
        # "/testdata/testdata.csv", as several course clients send it, meant from the project folder; the
        # confinement below applies to it exactly as to any other path
        candidates.append(settings.project_dir / path.relative_to(path.anchor))
    reached_inside = False
    for candidate in candidates:
        real = _real(candidate)
        if real is None:
            if _inside(candidate, folders):
                raise ApiError(400, f"{key} {quoted(text)} cannot be resolved (a symlink loop?); name a plain CSV file")
            continue
        if not _inside(real, folders):
            if _inside(candidate, folders):  # the same answer whether or not a file is behind the link
                raise ApiError(
                    403,
                    f"{key} {quoted(text)} leads through a symlink outside the data folders "
                    f"({_folder_names(settings)}); the API reads only files inside them",
                )
            continue
        reached_inside = True
        try:
            mode = os.stat(real).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            raise ApiError(
                400, f"{key} {quoted(text)} is a folder; name a CSV file inside it, such as testdata/testdata.csv"
            )
        return real
    if not reached_inside:
        raise ApiError(
            403,
            f"{key} {quoted(text)} is outside the data folders ({_folder_names(settings)}); the API reads only "
            "files inside them (to serve another folder, add it to api_data_folders in the config)",
        )
    raise ApiError(
        404,
        f"{key} {quoted(text)}: no such file inside the data folders ({_folder_names(settings)}); files outside "
        "them, the project folder's own included, are never read: check the name (such as testdata/testdata.csv), "
        "or add the file's folder to api_data_folders in the config",
    )


def read_named_file(real: Path, settings: Settings) -> PredictionInput:
    """Read a data file found by :func:`resolve_data_path` (regular files only, symlinks already resolved)."""
    shown = settings.shown_path(real)
    suffix = real.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise ApiError(
            400,
            f"{shown} is not a CSV file (type {suffix or 'none'!r}); name a .csv file "
            "(or a .json file of records) in the data folders",
        )
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as err:
        raise ApiError(400, f"{shown} cannot be read ({err.strerror}); check the file") from None
    limit = settings.api_max_upload_bytes
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise ApiError(400, f"{shown} is not a regular file; name a CSV file")
        raw = handle.read(limit + 1) if status.st_size <= limit else b""  # at most the limit, even if it grows
    if status.st_size > limit or len(raw) > limit:
        raise ApiError(
            413,
            f"{shown} is {max(status.st_size, len(raw))} bytes, over the limit of {limit} bytes a request may "
            "read (api_max_upload_bytes in config); split it into smaller files",
        )
    kind = "json" if suffix == ".json" else "csv"
    return parse_data(raw, kind, shown)


# --- data sent by the client ---


def parse_data(raw: bytes | str, kind: str, subject: str) -> PredictionInput:
    """Parse CSV bytes into a raw frame, or JSON-records bytes into records; ApiError 400 naming ``subject``
    otherwise."""

    def parsed() -> PredictionInput:
        text = raw if isinstance(raw, str) else decode_text(raw)
        if kind == "json":
            return records_input(load_json_records(text), text, subject)
        return PredictionInput(parse_csv_text(text), subject)

    return _guarded(parsed, subject)


def records_input(records: list[dict[str, Any]], text: str, subject: str) -> PredictionInput:
    """JSON records, kept as records for the fast path; but JSON text with a surrogate escape (``\\ud800``...) is
    made a frame at once, as every body was before the fast path: pandas may refuse such text, and its message
    then comes where it always came, before the request's other checks."""
    if "\\u" in text and SURROGATE_ESCAPE.search(text):
        return PredictionInput(_guarded(lambda: records_frame(records), subject), subject)
    return PredictionInput(None, subject, records=records)


def _guarded(parse: Callable[[], T], subject: str) -> T:
    """``parse()``, with what goes wrong in it as ApiError 400 naming ``subject``."""
    try:
        return parse()
    except DataFileError as err:
        raise ApiError(400, f"{subject} {err}") from None
    except RecursionError:
        raise ApiError(400, f"{subject} is nested too deeply to be JSON records") from None
    except ValueError as err:  # e.g. an integer with more digits than Python converts
        raise ApiError(400, f"{subject} is not valid JSON ({err})") from None


def _body_text(raw: bytes, subject: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ApiError(400, f"{subject} is not UTF-8 text (byte {err.start}); send UTF-8 JSON or CSV") from None


def _load_json(text: str, subject: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ApiError(400, f"{subject} is not valid JSON (line {err.lineno} column {err.colno}: {err.msg})") from None
    except RecursionError:
        raise ApiError(400, f"{subject} is nested too deeply") from None
    except ValueError as err:
        raise ApiError(400, f"{subject} is not valid JSON ({err})") from None


@dataclass
class Offer:
    """What one request offers: named paths (key, value) and data carried in the request."""

    paths: list[tuple[str, object]]
    data: list[PredictionInput]


def _path_values(fields: MultiDict[str, Any] | dict[str, Any]) -> list[tuple[str, object]]:
    """(key, value) for every path key present in query args, form fields or a JSON object."""
    found: list[tuple[str, object]] = []
    for key in PATH_KEYS:
        values = fields.getlist(key) if isinstance(fields, MultiDict) else ([fields[key]] if key in fields else [])
        found.extend((key, value) for value in values)
    return found


def _json_object(payload: dict[str, Any], subject: str, text: str) -> Offer:
    """A JSON object is either a path request or one record; never both, never neither."""
    paths = _path_values(payload)
    record_keys = [key for key in payload if key in COLUMNS]
    if paths and record_keys:
        raise ApiError(
            400,
            f"{subject} has both a file path ({paths[0][0]}) and data columns "
            f"({', '.join(record_keys)}); send one or the other",
        )
    if paths:
        return Offer(paths, [])
    if record_keys:
        try:
            check_record_fields([payload])  # before a frame with a column per key is built
        except DataFileError as err:
            raise ApiError(400, f"{subject} {err}") from None
        return Offer([], [records_input([payload], text, subject)])
    keys = ", ".join(quoted(key, 40) for key in list(payload)[:5]) or "none"
    raise ApiError(
        400,
        f"{subject} is a JSON object with neither a file path ({', '.join(PATH_KEYS)}) nor the "
        f"columns {', '.join(FEATURES)} (its keys: {keys}); {SHAPES_HINT}",
    )


def _json_body(raw: bytes) -> Offer:
    subject = "the request body"
    text = _body_text(raw, subject)
    start = text.lstrip()[:1]
    if start == "[":
        return Offer([], [parse_data(text, "json", subject)])
    payload = _load_json(text, subject)
    if isinstance(payload, dict):
        return _json_object(payload, subject, text)
    raise ApiError(
        400, f"{subject} is JSON {type(payload).__name__}, not an object or a list of records; {SHAPES_HINT}"
    )


def _csv_body(raw: bytes, subject: str = "the CSV body") -> Offer:
    return Offer([], [parse_data(raw, "csv", subject)])


def _sniffed_body(raw: bytes) -> Offer:
    """A body without a telling Content-Type: JSON when it starts like JSON, else CSV."""
    if raw.lstrip()[:1] in JSON_START:
        return _json_body(raw)
    return _csv_body(raw)


def _uploaded(upload: FileStorage, raw: bytes) -> PredictionInput:
    name = upload.filename or ""
    subject = f"the uploaded file {quoted(name)}" if name else "the uploaded file"
    suffix = Path(name).suffix.lower()
    if suffix and suffix not in (*DATA_SUFFIXES, ".txt"):
        raise ApiError(
            400,
            f"{subject} is not a CSV file (type {quoted(suffix, 20)}); upload a .csv file "
            "(comma-separated, with a header line)",
        )
    kind = "json" if suffix == ".json" else "csv"
    return parse_data(raw, kind, subject)


def _form_body(request: Request, raw: bytes) -> Offer:
    parts = [(upload, upload.read()) for _, upload in request.files.items(multi=True)]
    uploads = [(upload, data) for upload, data in parts if upload.filename or data]  # skip empty file inputs
    paths = _path_values(request.form)
    if not paths and not uploads and request.mimetype == FORM_TYPES[0] and raw.lstrip()[:1] in JSON_START:
        return _json_body(raw)  # curl -d '{"filepath": ...}' without -H 'Content-Type: application/json'
    if len(uploads) > 1:
        raise ApiError(400, f"{len(uploads)} files were uploaded; upload one CSV file per request")
    if not paths and not uploads and request.form:
        fields = ", ".join(quoted(field, 40) for field in list(request.form)[:5])
        raise ApiError(
            400, f"the form has no {' / '.join(PATH_KEYS)} field and no file (its fields: {fields}); {SHAPES_HINT}"
        )
    return Offer(paths, [_uploaded(*uploads[0])] if uploads else [])


def _body_offer(request: Request) -> Offer:
    """What the request body offers, by Content-Type."""
    mimetype = request.mimetype
    raw = request.get_data(cache=True)  # cached: the form parser reads the same bytes
    if mimetype in FORM_TYPES:
        return _form_body(request, raw)
    if not raw.strip():
        return Offer([], [])
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return _json_body(raw)
    if mimetype in CSV_TYPES:
        return _csv_body(raw)
    if mimetype in SNIFFED_TYPES:
        return _sniffed_body(raw)
    raise ApiError(
        415,
        f"unsupported Content-Type {quoted(mimetype, 60)}; send application/json, a form "
        "(multipart/form-data or urlencoded) or text/csv",
    )


def _one_path(paths: list[tuple[str, object]]) -> tuple[str, object]:
    distinct = {json.dumps(value, sort_keys=True, default=str) for _, value in paths}
    if len(distinct) > 1:
        shown = ", ".join(f"{key}={quoted(str(value), 60)}" for key, value in paths[:3])
        raise ApiError(400, f"the request names {len(distinct)} different files ({shown}); send one file path")
    return paths[0]


def _nothing_offered(request: Request) -> str:
    """What to say of a request with neither a file path nor data: the keys it did send, and those accepted."""
    keys = list(dict.fromkeys([*request.args, *request.form]))
    if not keys:
        return f"the request is empty: nothing to predict; {SHAPES_HINT}"
    shown = ", ".join(quoted(key, 40) for key in keys[:5])
    return (
        f"the request names no file and carries no data: its keys are {shown}, and a file is named by one of "
        f"{', '.join(PATH_KEYS)}; {SHAPES_HINT}"
    )


def prediction_input(request: Request, settings: Settings) -> PredictionInput:
    """The one input of a ``/prediction`` request, from the query string and the body, read and parsed."""
    body = _body_offer(request)
    paths = _path_values(request.args) + body.paths
    offered = len(body.data) + (1 if paths else 0)
    if offered == 0:
        raise ApiError(400, _nothing_offered(request))
    if offered > 1:
        raise ApiError(400, "the request carries both a file path and data; send one or the other")
    if body.data:
        return body.data[0]
    key, value = _one_path(paths)
    return read_named_file(resolve_data_path(value, settings, key), settings)
