"""The risk list blueprint: ``GET /risk``, the newest risk list the pipeline recorded (risk/risklist.py).

JSON by default: which model ranked which book and when, the rows asked for (``top``, default 100, from
``offset``, optionally only ``band`` 1..10), the CBPE estimate of the model's F1 on the book with its interval
and the number of clients it rests on, and the realized F1 (None until the book's labels arrive).
``?format=csv`` or ``Accept: text/csv`` downloads the list as CSV instead, written as ``risklist.csv`` is: the
whole list unless ``top`` is given. Bad parameters get a JSON 400 naming the parameter and its allowed range;
no list yet, a missing file or one being replaced get a JSON 503 saying what to do.

Read-only: the records store through risk.store.reading and the CSV file, which is parsed once per version
of the file (cached by its stat) and checked against the sha256 the store recorded for it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from flask import Blueprint, Response, abort, current_app, jsonify, request

from risk.api.errors import ApiError
from risk.api.query import MAX_OFFSET, known_parameters, one_parameter, whole_number_parameter
from risk.api.state import api_state
from risk.overview import RiskListUnavailable, RiskListView, latest_risk_list
from risk.risklist import BANDS, LoadedRiskList, load_risklist, risklist_csv
from risk.store import reading

blueprint = Blueprint("risk", __name__)

RISK_PARAMETERS = ("top", "offset", "band", "format")
FORMATS = ("json", "csv")
DEFAULT_TOP = 100
MAX_JSON_TOP = 10_000  # a bigger slice is a download: ask for the CSV
MAX_CSV_TOP = MAX_OFFSET
CLIENT_FIELDS = ("rank", "corporation", "probability", "band", "reason")
CACHE_KEY = "risk_list_file"


def cached_reader() -> Callable[[Path], LoadedRiskList]:
    """A risk list reader for this app that parses a file again only when its stat changes (one entry per app:
    a list is replaced by a rename, which gives it a new inode and mtime)."""

    def read(path: Path) -> LoadedRiskList:
        stat = os.stat(path)
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        cached = current_app.extensions.get(CACHE_KEY)
        if cached is None or cached[0] != key:
            cached = (key, load_risklist(path))
            current_app.extensions[CACHE_KEY] = cached
        return cached[1]

    return read


def _wants_csv() -> bool:
    """``format`` when given (400 unless json or csv), else the Accept header (a browser's */* gets JSON)."""
    fmt = one_parameter("format")
    if fmt is not None:
        if fmt not in FORMATS:
            abort(400, description=f"query parameter 'format' must be one of {', '.join(FORMATS)} (got {fmt!r})")
        return fmt == "csv"
    return request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"


def _selection(csv: bool) -> tuple[int, int, int | None]:
    """``top``, ``offset`` and ``band`` from the query string, validated (400 naming the parameter otherwise)."""
    known_parameters("/risk", RISK_PARAMETERS)
    top = whole_number_parameter("top", MAX_CSV_TOP if csv else DEFAULT_TOP, 1, MAX_CSV_TOP if csv else MAX_JSON_TOP)
    offset = whole_number_parameter("offset", 0, 0, MAX_OFFSET)
    band = whole_number_parameter("band", 0, 1, BANDS) if one_parameter("band") is not None else None
    return top, offset, band


def _rows(view: RiskListView, top: int, offset: int, band: int | None) -> tuple[pd.DataFrame, int]:
    """The rows asked for, in rank order, and how many match the band filter."""
    frame = view.frame if band is None else view.frame.loc[view.frame["band"] == band]
    return frame.iloc[offset : offset + top], len(frame)


def _estimate_json(view: RiskListView) -> dict[str, Any]:
    estimate = view.estimate
    return {
        "f1": estimate.f1,
        "low": estimate.low,
        "high": estimate.high,
        "level": estimate.level,
        "rests_on_clients": estimate.rows,
        "expected_exits": estimate.expected_positives,
        "flagged_clients": estimate.predicted_positives,
        "threshold": estimate.threshold,
        "summary": (
            f"F1 estimated at {estimate.f1:.3f} ({estimate.level:.0%} interval {estimate.low:.3f} to "
            f"{estimate.high:.3f}) from the model's probabilities; rests on {estimate.rows:,} clients"
        ),
    }


def _calibration_json(view: RiskListView) -> dict[str, Any] | None:
    calibration = view.calibration
    if not calibration:
        return None
    return {key: calibration.get(key) for key in ("calibration", "verdict", "rows", "ece", "data_path")}


def _body(view: RiskListView, rows: pd.DataFrame, matching: int, top: int, offset: int, band: int | None) -> Any:
    following = offset + len(rows)
    return {
        "model_version": view.model_version,
        "model_sha256": view.model_sha256,
        "scored_at": view.scored_at,
        "book": {"path": view.book_path, "sha256": view.book_sha256, "rows": view.rows},
        "rows": view.rows,
        "list_sha256": view.list_sha256,
        "top": top,
        "offset": offset,
        "band": band,
        "matching": matching,
        "returned": len(rows),
        "next_offset": following if following < matching else None,
        "estimate": _estimate_json(view),
        "realized_f1": view.realized_f1,
        "realized_f1_note": "the realized F1 needs the book's labels; none have arrived yet",
        "calibration": _calibration_json(view),
        "clients": rows[list(CLIENT_FIELDS)].to_dict(orient="records"),
    }


def _csv_response(view: RiskListView, rows: pd.DataFrame, band: int | None) -> Response:
    name = f"risklist-{view.model_version}{f'-band{band}' if band else ''}.csv"
    return Response(
        risklist_csv(rows),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@blueprint.get("/risk")
def risk_list() -> Response:
    csv = _wants_csv()
    top, offset, band = _selection(csv)
    settings = api_state().settings
    with reading(settings.records_db_path) as store:
        try:
            view = latest_risk_list(settings, store, cached_reader())
        except RiskListUnavailable as err:
            raise ApiError(503, str(err)) from None
    rows, matching = _rows(view, top, offset, band)
    if csv:
        return _csv_response(view, rows, band)
    return jsonify(_body(view, rows, matching, top, offset, band))
