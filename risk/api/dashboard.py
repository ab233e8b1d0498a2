"""The dashboard blueprint: ``GET /dashboard`` (one HTML page) and ``GET /history`` (JSON, paged).

``/dashboard`` shows the current version, the riskiest clients of the newest risk list (with the histogram of
the book's probabilities, who entered the top 100, the CBPE estimate and the calibration recorded with the list),
the F1 trend, the confusion matrix, the data summary, recent drift decisions and deployments, the diagnostics and
data drift, rendered server-side with Jinja; the plots (the same functions as the PDF report, plots.py) are
inline SVG images, so the page needs no other request and no internet. ``/history`` returns the score, drift-decision and deployment history, newest first, paged with
``limit`` and ``offset``. Both read the records store read-only: a GET never writes and never recomputes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from typing import Any

from flask import Blueprint, abort, current_app, jsonify, render_template

from risk.api.query import MAX_OFFSET, known_parameters, one_parameter, whole_number_parameter
from risk.api.risk import cached_reader
from risk.api.state import api_state
from risk.artifacts import API_RETURNS_NAME
from risk.config import Settings
from risk.overview import (
    Overview,
    build_overview,
    calibration_sentence,
    data_drift_facts,
    data_drift_rows,
    format_number,
    format_time,
    missing_values_line,
    summary_rows,
)
from risk.risklist import TRACKED_TOP
from risk.store import HISTORY_KINDS, RecordsStore, reading

log = logging.getLogger("dashboard")

blueprint = Blueprint("dashboard", __name__, template_folder="templates")

DEFAULT_LIMIT = 20
MAX_LIMIT = 200
HISTORY_PARAMETERS = ("kind", "limit", "offset")
PLOT_CACHE_KEY = "dashboard_plots"
DASHBOARD_TOP = 25  # riskiest clients shown; the whole list is a download (GET /risk?format=csv)


def _settings() -> Settings:
    return api_state().settings


# --- /history ---


def history_paging() -> tuple[list[str], int, int]:
    """The kinds, limit and offset asked for by ``/history``'s query string, validated (400 otherwise)."""
    known_parameters("/history", HISTORY_PARAMETERS)
    kind = one_parameter("kind")
    if kind is not None and kind not in HISTORY_KINDS:
        abort(400, description=f"query parameter 'kind' must be one of {', '.join(HISTORY_KINDS)} (got {kind!r})")
    limit = whole_number_parameter("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    offset = whole_number_parameter("offset", 0, 0, MAX_OFFSET)
    return ([kind] if kind else list(HISTORY_KINDS)), limit, offset


def history_section(store: RecordsStore | None, kind: str, limit: int, offset: int) -> dict[str, Any]:
    """One kind's page: its items (newest first), the total, and the offset of the next page (None at the end)."""
    items, total = store.history_page(kind, limit, offset) if store else ([], 0)
    return {"items": items, "total": total, "next_offset": offset + limit if offset + limit < total else None}


@blueprint.get("/history")
def history():
    kinds, limit, offset = history_paging()
    with reading(_settings().records_db_path) as store, store.read_snapshot() if store else contextlib.nullcontext():
        sections = {kind: history_section(store, kind, limit, offset) for kind in kinds}
    return jsonify({"limit": limit, "offset": offset, "order": "newest first", **sections})


# --- /dashboard ---


def _plot_inputs(overview: Overview) -> str:
    """What the plots are drawn from, as text: the same text means the same pictures."""
    inputs = [
        overview.version,
        overview.evaluation,
        overview.deploys,
        overview.drift_checks,
        overview.diagnostics_history,
        overview.risk_list.list_sha256 if overview.risk_list else None,
        overview.risk_list.calibration if overview.risk_list else None,
    ]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def draw_plots(overview: Overview) -> dict[str, str | None]:
    """Every dashboard plot as an SVG data URI (None when there is nothing to draw), from plots.py."""
    from risk import plots  # matplotlib: only once the dashboard is asked for

    matrix = None
    if overview.evaluation:
        matrix = plots.draw_confusion_matrix(
            plots.confusion_matrix_of(overview.evaluation), plots.confusion_matrix_title(overview.version)
        )
    risk_list, probabilities, reliability = overview.risk_list, None, None
    if risk_list is not None:
        frame = risk_list.frame
        probabilities = plots.draw_probability_histogram(
            frame["probability"].to_numpy(), frame["band"].to_numpy(), risk_list.model_version
        )
        if risk_list.calibration:
            reliability = plots.draw_reliability(risk_list.calibration["bins"], risk_list.calibration["rows"])
    nothing_missing = missing_values_line(overview.diagnostics_history)
    figures = {
        "f1_trend": plots.draw_f1_trend(overview.deploys, overview.drift_checks, overview.version),
        "confusion_matrix": matrix,
        "summary_trend": plots.draw_summary_trend(overview.diagnostics_history),
        "missing_trend": None if nothing_missing else plots.draw_missing_trend(overview.diagnostics_history),
        "timings": plots.draw_timings(overview.diagnostics_history),
        "probabilities": probabilities,
        "reliability": reliability,
    }
    return {name: plots.figure_data_uri(figure) if figure is not None else None for name, figure in figures.items()}


def cached_plots(overview: Overview) -> dict[str, str | None]:
    """The plots for this overview, redrawn only when what they show has changed (one entry per app)."""
    key = _plot_inputs(overview)
    cached = current_app.extensions.get(PLOT_CACHE_KEY)
    if cached is None or cached[0] != key:
        cached = (key, draw_plots(overview))
        current_app.extensions[PLOT_CACHE_KEY] = cached
    return cached[1]


@blueprint.get("/dashboard")
def dashboard():
    settings = _settings()
    with reading(settings.records_db_path) as store:
        overview = build_overview(settings, store, cached_reader())
    data_drift = overview.data_drift
    html = render_template(
        "dashboard.html",
        overview=overview,
        plots=cached_plots(overview),
        summary=summary_rows(overview.diagnostics),
        data_drift_facts=data_drift_facts(data_drift) if data_drift else [],
        data_drift_table=data_drift_rows(data_drift) if data_drift else ([], []),
        api_returns_name=API_RETURNS_NAME,
        nothing_missing=missing_values_line(overview.diagnostics_history),
        riskiest=list(overview.risk_list.top(DASHBOARD_TOP).itertuples(index=False)) if overview.risk_list else [],
        tracked_top=TRACKED_TOP,
        calibration_sentence=calibration_sentence,
        when=format_time,
        num=format_number,
    )
    return html, 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}
