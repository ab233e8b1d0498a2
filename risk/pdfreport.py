"""The PDF report (``report.pdf``): its pages, built from the Overview (risk/overview.py) with the plots the
dashboard shares (risk/plots.py).

The first page is for a manager: what happened last, the ten riskiest clients, and the model's health in words
with the labelled rows each figure rests on; then the deployed model in detail, the risk list's probabilities and
calibration, the F1 trend, the ingested data, timings, files and dependencies, data drift and the API returns.
Table cells wrap to the width they are measured to need (rows grow); no text is cut. matplotlib's
object-oriented API only (no pyplot), headless.
"""

from __future__ import annotations

import functools
import logging
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure, SubFigure
from matplotlib.font_manager import FontProperties
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.textpath import text_to_path

from risk.artifacts import API_RETURNS_NAME, REPORT_PDF_NAME
from risk.config import Settings
from risk.files import atomic_write
from risk.overview import (
    Overview,
    RiskListView,
    calibration_sentence,
    data_drift_facts,
    data_drift_rows,
    format_number,
    format_time,
    latest_decision_sentence,
    missing_values_line,
    model_health_lines,
    summary_rows,
)
from risk.plots import (
    confusion_matrix_of,
    confusion_matrix_title,
    draw_confusion_matrix,
    draw_f1_trend,
    draw_missing_trend,
    draw_probability_histogram,
    draw_reliability,
    draw_summary_trend,
    draw_timings,
)

log = logging.getLogger("risk.pdfreport")
logging.getLogger("fontTools").setLevel(logging.WARNING)  # its font subsetting logs every table at INFO

PAGE_SIZE = (8.27, 11.69)  # A4 portrait, inches
TABLE_FONT_SIZE = 8
TABLE_WIDTH_SHARE = 0.9  # of its block's width a laid-out table axes keeps at least (margins and padding)
MAX_TABLE_ROWS = 24
CELL_PADDING = 0.03  # fraction of the cell width
LINE_SPACING = 1.2  # matplotlib's: a line of text is 1.2 font sizes tall
ROW_PADDING_LINES = 0.6  # a row is its lines plus this much space
TABLE_ROOM = 0.98  # of the axes' height the table may fill
PARAGRAPH_FONT_SIZE = 9
BULLET = "\u2022 "
INDENT = "   "  # about as wide as the bullet
REPORT_TOP = 10  # riskiest clients on the first page

DRIFT_COLUMN_WEIGHTS = {"feature": 20, "status": 17, "detail": 34, "ref. mean": 13, "batch mean": 12, "rows": 9}
API_LINES_PER_PAGE = 80
API_LINE_WIDTH = 110
MAX_API_PAGES = 5


# --- PDF building blocks ---


def _page(title: str, overview: Overview, height_ratios: Sequence[float]) -> tuple[Figure, list[SubFigure]]:
    """An A4 page with a title, a footer, and one subfigure per block (heights in the given ratios)."""
    figure = Figure(figsize=PAGE_SIZE, layout=ConstrainedLayoutEngine(h_pad=0.1, w_pad=0.15))
    figure.suptitle(title, fontsize=15, fontweight="bold", x=0.03, ha="left")
    figure.supxlabel(
        f"Dynamic Risk Assessment System, report of {format_time(overview.generated_at)}",
        fontsize=7,
        color="0.4",
        x=0.97,
        ha="right",
    )
    blocks = figure.subfigures(len(height_ratios), 1, height_ratios=height_ratios, squeeze=False)
    return figure, list(blocks.ravel())


@functools.lru_cache(maxsize=4096)
def _char_width(char: str, size: float, bold: bool) -> float:
    """Width in points of one character in matplotlib's default font."""
    font = FontProperties(size=size, weight="bold" if bold else "normal")
    return text_to_path.get_text_width_height_descent(char, font, ismath=False)[0]


def _text_width(text: str, size: float, bold: bool = False) -> float:
    """Width in points of a line of text (characters summed: kerning only narrows it, so this is a bound)."""
    return sum(_char_width(char, size, bold) for char in text)


def wrap_to_width(text: Any, width: float, size: float, bold: bool = False) -> list[str]:
    """Text (None as a dash) in lines no wider than ``width`` points at font ``size``: words kept whole unless one
    alone is wider than a line (then it is split). Never cut: every character is on some line."""
    words = ("-" if text is None else " ".join(str(text).split())).split(" ")
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if _text_width(candidate, size, bold) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        current = ""
        for char in word:  # a word wider than the line: split it where it must
            if current and _text_width(current + char, size, bold) > width:
                lines.append(current)
                current = ""
            current += char
    lines.append(current)
    return lines


def _table(
    axes: Axes,
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    empty: str = "nothing recorded yet",
) -> None:
    """A plain table at the top of ``axes`` (widths are fractions of the axes). Long cells wrap onto more lines
    and their row grows; rows that do not fit in the axes are left out and counted in a last row."""
    axes.axis("off")
    axes.set_title(title, loc="left", fontsize=11, fontweight="bold")
    if not rows:
        axes.text(0, 0.95, empty, va="top", fontsize=9, color="0.4", transform=axes.transAxes)
        return
    room = [_cell_room(axes, width) for width in widths]
    line = _line_height(axes)
    labels = [wrap_to_width(label, points, TABLE_FONT_SIZE, bold=True) for label, points in zip(header, room)]
    used = _row_height(max(map(len, labels)), line)
    cells: list[list[list[str]]] = []
    for row in rows[:MAX_TABLE_ROWS]:
        wrapped = [wrap_to_width(value, points, TABLE_FONT_SIZE) for value, points in zip(row, room)]
        height = _row_height(max(map(len, wrapped)), line)
        if used + height + _row_height(1, line) > TABLE_ROOM:  # keep room for the "and N more" row
            break
        cells.append(wrapped)
        used += height
    if len(rows) > len(cells):
        cells.append([[f"... and {len(rows) - len(cells)} more"], *[[""]] * (len(header) - 1)])
    table = axes.table(
        cellText=[["\n".join(lines) for lines in row] for row in cells],
        colLabels=["\n".join(lines) for lines in labels],
        colWidths=list(widths),
        loc="upper left",
        cellLoc="left",
    )
    table.auto_set_font_size(False)
    table.set_fontsize(TABLE_FONT_SIZE)
    heights = [max(map(len, labels)), *(max(len(lines) for lines in row) for row in cells)]
    for (row, _), cell in table.get_celld().items():
        cell.PAD = CELL_PADDING
        cell.set_height(_row_height(heights[row], line))
        cell.set_edgecolor("0.8")
        if row == 0:
            cell.set_facecolor("#e8eef7")
            cell.get_text().set_fontweight("bold")


def _cell_room(axes: Axes, width: float) -> float:
    """Points of text that fit in a column ``width`` (a fraction of the axes) wide, inside the cell's padding.

    Measured on the block the axes sit in, before layout: the laid-out axes are about as wide, never wider."""
    block = axes.get_figure(root=False).bbox.width * 72 / axes.figure.dpi
    return block * TABLE_WIDTH_SHARE * width * (1 - 2 * CELL_PADDING)


def _line_height(axes: Axes) -> float:
    """One line of table text as a fraction of the axes' height (as laid out before the page's layout runs,
    which only makes the axes taller: a table that fits now fits then)."""
    return TABLE_FONT_SIZE * LINE_SPACING / 72 * axes.figure.dpi / max(axes.bbox.height, 1.0)


def _row_height(lines: int, line: float) -> float:
    return line * (lines + ROW_PADDING_LINES)


def _paragraphs(axes: Axes, title: str, lines: Sequence[str]) -> None:
    """Sentences as wrapped lines, one bullet each, at the top of ``axes`` (never cut: they wrap)."""
    axes.axis("off")
    axes.set_title(title, loc="left", fontsize=11, fontweight="bold")
    block = axes.get_figure(root=False).bbox.width * 72 / axes.figure.dpi
    room = block * TABLE_WIDTH_SHARE - _text_width(BULLET, PARAGRAPH_FONT_SIZE)
    wrapped = []
    for text in lines:
        first, *rest = wrap_to_width(text, room, PARAGRAPH_FONT_SIZE)
        wrapped += [BULLET + first, *(INDENT + piece for piece in rest)]
    axes.text(
        0, 1, "\n".join(wrapped), va="top", fontsize=PARAGRAPH_FONT_SIZE, linespacing=1.4, transform=axes.transAxes
    )


# --- the pages ---


def _facts(overview: Overview) -> list[tuple[str, str]]:
    record, evaluation = overview.deployment, overview.evaluation or {}
    latest_check = overview.drift_checks[-1] if overview.drift_checks else None
    facts = [
        ("deployed version", overview.version or "none"),
        ("made current at", format_time(overview.deployed_at)),
        ("trained at", format_time(overview.trained_at)),
        ("trained with", f"scikit-learn {(record.sklearn_version if record else None) or '?'}"),
        ("trained on files", ", ".join(record.ingested_files if record else ()) or "-"),
        ("test F1 at deployment", format_number(record.f1 if record else None)),
        (
            "precision / recall / F1",
            " / ".join(format_number(evaluation.get(k)) for k in ("precision", "recall", "f1"))
            if evaluation
            else "not evaluated yet",
        ),
        ("test rows", str(evaluation.get("rows", "-"))),
        (
            "latest drift decision",
            f"{format_time(latest_check['checked_at'])}: {latest_check['reason']}"
            if latest_check
            else "no drift check yet",
        ),
    ]
    if overview.data_drift:
        facts.append(
            (
                "data drift (latest)",
                f"{overview.data_drift.get('verdict')} at {format_time(overview.data_drift.get('timestamp'))}",
            )
        )
    if overview.diagnostics:
        facts.append(
            (
                "latest diagnostics",
                f"{format_time(overview.diagnostics.get('timestamp'))}, "
                f"{overview.diagnostics.get('data_rows')} ingested rows",
            )
        )
    return facts


def _brief_page(overview: Overview) -> Figure:
    """The first page, for a manager: what happened last, the riskiest clients, the model's health in words."""
    figure, (what, top, health) = _page(
        f"Model report: deployed version {overview.version}", overview, [0.45, 0.9, 0.9]
    )
    _paragraphs(what.add_subplot(), "What happened last", [latest_decision_sentence(overview)])
    risk_list = overview.risk_list
    title = "Riskiest clients"
    if risk_list:
        title += (
            f" (top {min(REPORT_TOP, risk_list.rows)} of {risk_list.rows:,}, ranked "
            f"{format_time(risk_list.scored_at)} by {risk_list.model_version})"
        )
    _table(
        top.add_subplot(),
        title,
        ["rank", "corporation", "probability", "band", "main reason"],
        [
            (row.rank, row.corporation, f"{row.probability:.4f}", row.band, row.reason)
            for row in risk_list.top(REPORT_TOP).itertuples(index=False)
        ]
        if risk_list
        else [],
        [0.07, 0.2, 0.13, 0.07, 0.53],
        empty=overview.risk_list_problem or "no risk list yet",
    )
    _paragraphs(health.add_subplot(), "Model health", model_health_lines(overview))
    return figure


def _risk_list_page(overview: Overview, risk_list: RiskListView) -> Figure:
    """The book's probabilities, and the calibration recorded with the list with its verdict under it."""
    figure, (histogram, calibration, verdict) = _page(
        "Risk list: probabilities and calibration", overview, [1, 1.15, 0.3]
    )
    frame = risk_list.frame
    draw_probability_histogram(
        frame["probability"].to_numpy(), frame["band"].to_numpy(), risk_list.model_version, fig=histogram
    )
    recorded = risk_list.calibration
    if recorded:
        draw_reliability(recorded["bins"], recorded["rows"], fig=calibration)
        _paragraphs(verdict.add_subplot(), "Calibration verdict", [calibration_sentence(recorded)])
    else:
        _paragraphs(calibration.add_subplot(), "Calibration", ["No calibration check recorded with this list."])
    return figure


def _summary_page(overview: Overview) -> Figure:
    figure, (facts, plot) = _page(f"Deployed model {overview.version} in detail", overview, [0.7, 1])
    rows = [(name, value) for name, value in _facts(overview)]
    _table(facts.add_subplot(), "Deployed model", ["item", "value"], rows, [0.25, 0.75])
    if overview.evaluation:
        matrix = confusion_matrix_of(overview.evaluation)
        draw_confusion_matrix(matrix, confusion_matrix_title(overview.version), fig=plot)
    else:
        _table(plot.add_subplot(), "Confusion matrix", [], [], [], empty="not evaluated yet")
    return figure


def _trend_page(overview: Overview) -> Figure:
    figure, (plot, tables) = _page("F1 across versions and drift checks", overview, [1.5, 1])
    draw_f1_trend(overview.deploys, overview.drift_checks, overview.version, fig=plot)
    checks, deployments = tables.subplots(2, 1)
    _table(
        checks,
        "Recent drift decisions (newest first)",
        ["checked at", "model", "test", "new F1", "threshold", "decision"],
        [
            (
                format_time(c["checked_at"]),
                c["deployed_version"],
                c["test"],
                format_number(c["new_score"]),
                format_number(c["threshold"]),
                "drift" if c["drift"] else "no drift",
            )
            for c in overview.recent_drift_checks
        ],
        [0.25, 0.12, 0.16, 0.13, 0.13, 0.21],
        empty="no drift check yet",
    )
    _table(
        deployments,
        "Recent deployments (newest first)",
        ["at", "action", "version", "previous", "test F1"],
        [
            (format_time(d["deployed_at"]), d["action"], d["version"], d["previous_version"], format_number(d["f1"]))
            for d in overview.recent_deployments
        ],
        [0.28, 0.16, 0.16, 0.2, 0.2],
    )
    return figure


def _data_page(overview: Overview) -> Figure:
    snapshot = overview.diagnostics or {}
    figure, (table, plot) = _page("Ingested data: summary statistics and missing values", overview, [0.6, 2.3])
    rows = [
        (
            row["column"],
            *(format_number(row[k], 3) for k in ("mean", "median", "std")),
            format_number(row["missing"], 2),
        )
        for row in summary_rows(snapshot)
    ]
    _table(
        table.add_subplot(),
        f"Latest diagnostics run ({format_time(snapshot.get('timestamp'))}, {snapshot.get('data_rows', '-')} rows)",
        ["column", "mean", "median", "std", "% missing"],
        rows,
        [0.3, 0.175, 0.175, 0.175, 0.175],
        empty="no diagnostics run yet",
    )
    draw_summary_trend(overview.diagnostics_history, fig=plot)
    return figure


def _timings_page(overview: Overview) -> Figure:
    nothing_missing = missing_values_line(overview.diagnostics_history)
    if nothing_missing:  # a sentence, not a chart of zeros; the timings keep a plot's usual height
        figure, (missing, timings, _) = _page("Missing values and timings over time", overview, [0.15, 1, 0.85])
        _paragraphs(missing.add_subplot(), "Missing values", [nothing_missing])
    else:
        figure, (missing, timings) = _page("Missing values and timings over time", overview, [1, 1])
        draw_missing_trend(overview.diagnostics_history, fig=missing)
    draw_timings(overview.diagnostics_history, fig=timings)
    return figure


def _files_page(overview: Overview) -> Figure:
    snapshot = overview.diagnostics or {}
    figure, (files, dependencies) = _page("Ingested files and dependencies", overview, [1.3, 1])
    _table(
        files.add_subplot(),
        "Ingested files (latest record of each file)",
        ["file", "status", "read", "kept", "duplicates", "recorded at", "reason"],
        [
            (
                f["file_name"],
                f["status"],
                f["rows_read"],
                f["rows_kept"],
                f["duplicates_dropped"],
                format_time(f["ingested_at"]),
                f["reason"],
            )
            for f in overview.ingested_files
        ],
        [0.2, 0.1, 0.07, 0.07, 0.1, 0.21, 0.25],
    )
    _table(
        dependencies.add_subplot(),
        f"Dependencies (checked {format_time(snapshot.get('timestamp'))})",
        ["package", "installed", "latest", "status"],
        [(d["package"], d["installed"], d["latest"], d["status"]) for d in snapshot.get("dependencies") or []],
        [0.34, 0.22, 0.22, 0.22],
        empty="no dependency check yet",
    )
    return figure


def _data_drift_page(overview: Overview, result: dict[str, Any]) -> Figure:
    figure, (facts, features) = _page("Data drift per feature (latest check)", overview, [1, 1])
    _table(facts.add_subplot(), "Dataset", ["item", "value"], data_drift_facts(result), [0.22, 0.78])
    header, rows = data_drift_rows(result)
    weights = [DRIFT_COLUMN_WEIGHTS.get(column, 12) for column in header]
    widths = [weight / sum(weights) for weight in weights]
    _table(features.add_subplot(), "Features", header, rows, widths, empty="no per-feature results")
    return figure


def _api_pages(overview: Overview, text: str) -> list[Figure]:
    lines = [piece for line in text.splitlines() for piece in (textwrap.wrap(line, API_LINE_WIDTH) or [""])]
    chunks = [lines[i : i + API_LINES_PER_PAGE] for i in range(0, len(lines), API_LINES_PER_PAGE)][:MAX_API_PAGES]
    pages = []
    for number, chunk in enumerate(chunks, start=1):
        figure, (block,) = _page(
            f"Latest API returns ({API_RETURNS_NAME}, page {number} of {len(chunks)})", overview, [1]
        )
        axes = block.add_subplot()
        axes.axis("off")
        axes.text(0, 1, "\n".join(chunk), family="monospace", fontsize=7, va="top", transform=axes.transAxes)
        pages.append(figure)
    if len(lines) > API_LINES_PER_PAGE * MAX_API_PAGES:
        pages[-1].text(0.03, 0.03, f"... cut after {MAX_API_PAGES} pages; see {API_RETURNS_NAME}", fontsize=8)
    return pages


def report_pages(overview: Overview) -> list[Callable[[], Figure | list[Figure]]]:
    """The page builders of the report, in order (the optional pages only when there is something to show)."""
    pages: list[Callable[[], Figure | list[Figure]]] = [
        lambda: _brief_page(overview),
        lambda: _summary_page(overview),
        lambda: _trend_page(overview),
        lambda: _data_page(overview),
        lambda: _timings_page(overview),
        lambda: _files_page(overview),
    ]
    if overview.risk_list:
        pages.insert(2, lambda: _risk_list_page(overview, overview.risk_list))
    if overview.data_drift:
        pages.append(lambda: _data_drift_page(overview, overview.data_drift))
    if overview.api_returns:
        pages.append(lambda: _api_pages(overview, overview.api_returns))
    return pages


def write_report_pdf(settings: Settings, overview: Overview) -> Path:
    """Write ``report.pdf`` to ``output_model_path`` (atomically) and return its path."""
    path = settings.output_model_path / REPORT_PDF_NAME

    def write(tmp: Path) -> None:
        metadata = {"Title": f"Model report, version {overview.version}", "Subject": "Dynamic Risk Assessment"}
        with matplotlib.rc_context({"pdf.fonttype": 42}), PdfPages(tmp, metadata=metadata) as pdf:
            for build in report_pages(overview):
                built = build()
                for figure in built if isinstance(built, list) else [built]:
                    pdf.savefig(figure)

    atomic_write(path, write)
    log.info("saved %s (model %s)", path, overview.version)
    return path
