"""The plots of the report and the dashboard: one function per plot, used by both.

Each ``draw_*`` function draws into a new :class:`~matplotlib.figure.Figure` (or into the given figure or
subfigure, so a PDF page can hold a plot beside text) and returns it. Only matplotlib's object-oriented API
is used, never pyplot, so drawing holds no global state and is safe in a threaded web server. Time axes
show UTC dates; every plot has a title and axis labels, and says so when there is nothing to draw yet.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import MaxNLocator

from risk.clock import unix_seconds

FigureLike = Figure | SubFigure

CLASS_LABELS = ("stayed (0)", "exited (1)")
PLOT_SIZE = (8.0, 4.5)
TALL_PLOT_SIZE = (8.0, 6.5)
MAX_VERSION_LABELS = 12
TIMING_STEPS = ("ingestion", "training")
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")
MIN_TIME_SPAN = timedelta(minutes=2)
MARKER_ROOM = 0.06  # of an axis' span kept below a zero floor, so markers at 0 are drawn whole
HALF_WIDTH_SIZE = (6.4, 4.6)  # plots shown half-width on the dashboard: a smaller figure keeps its text readable
TIMINGS_SIZE = (6.4, 4.0)
TIMINGS_FONT = 11
BAND_PERCENTILES = ("p10", "p90")  # diagnostics.dataframe_summary's keys
TIME_TICK_PAD = 7  # points: a date label at the left edge stays clear of the lowest value label
HISTOGRAM_BINS = 40
FLAG_THRESHOLD = 0.5  # the model flags a client above it (LogisticRegression.predict)
RELIABILITY_MARKER_AREA = 160.0  # points^2 of the fullest bin
DRIFT_COLOUR = "#d62728"
STABLE_COLOUR = "#2ca02c"


def _figure(fig: FigureLike | None, size: tuple[float, float] = PLOT_SIZE) -> FigureLike:
    return fig if fig is not None else Figure(figsize=size, layout="constrained")


def _nothing_yet(axes: Axes, message: str) -> None:
    """Say in the middle of an empty plot why there is nothing to draw."""
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, color="0.4", wrap=True)
    axes.set_xticks([])
    axes.set_yticks([])


def _time_axis(axes: Axes, times: Sequence[datetime], label: str = "time (UTC)") -> None:
    """Date ticks that adapt to the span (concise labels, the date as an offset at the right), a left label.

    Spans shorter than MIN_TIME_SPAN are widened around their middle, so ticks never fall between seconds.
    """
    locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
    # Longer steps than matplotlib's own lists, so every span has one (a 2.5-minute span had none: a warning in
    # cron mail); multiples of each unit keep the ticks on round times
    locator.intervald[mdates.SECONDLY] = [1, 5, 10, 15, 30, 60]
    locator.intervald[mdates.MINUTELY] = [1, 5, 10, 15, 30, 60]
    locator.intervald[mdates.HOURLY] = [1, 2, 3, 4, 6, 12, 24]
    locator.intervald[mdates.MONTHLY] = [1, 2, 3, 4, 6, 12]
    formats = ["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S"]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, formats=formats))
    axes.set_xlabel(label, loc="left")
    axes.tick_params(axis="x", pad=TIME_TICK_PAD)
    first, last = min(times), max(times)
    if last - first < MIN_TIME_SPAN:
        middle = first + (last - first) / 2
        axes.set_xlim(middle - MIN_TIME_SPAN / 2, middle + MIN_TIME_SPAN / 2)


def _times(rows: Sequence[dict[str, Any]], key: str) -> list[datetime]:
    return [datetime.fromtimestamp(unix_seconds(row[key]), tz=UTC) for row in rows]


# --- the plots ---


def confusion_matrix_title(version: str | None) -> str:
    """The title of the deployed model's confusion matrix (PNG, report and dashboard alike)."""
    return f"Confusion matrix on the test data\nmodel {version}"


def draw_confusion_matrix(matrix: np.ndarray, title: str, fig: FigureLike | None = None) -> FigureLike:
    """A labelled heatmap of a 2x2 confusion matrix with the count in each cell."""
    fig = _figure(fig, (6, 5))
    axes = fig.add_subplot()
    image = axes.imshow(matrix, cmap="Blues", vmin=0, aspect="auto")
    colorbar = fig.colorbar(image, ax=axes, label="clients")
    colorbar.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xticks([0, 1], labels=CLASS_LABELS)
    axes.set_yticks([0, 1], labels=CLASS_LABELS)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.max() else 0.5
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > threshold else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=14)
    return fig


def confusion_matrix_of(evaluation: dict[str, Any]) -> np.ndarray:
    """The 2x2 matrix [[TN, FP], [FN, TP]] of an evaluation row from the records store."""
    return np.array(
        [
            [evaluation["true_negatives"], evaluation["false_positives"]],
            [evaluation["false_negatives"], evaluation["true_positives"]],
        ]
    )


def draw_f1_trend(
    deploys: Sequence[dict[str, Any]],
    drift_checks: Sequence[dict[str, Any]],
    current_version: str | None = None,
    fig: FigureLike | None = None,
) -> FigureLike:
    """Top: test F1 of each deployed version. Bottom: the deployed model's F1 on each new batch vs the threshold."""
    fig = _figure(fig, TALL_PLOT_SIZE)
    by_version, by_time = fig.subplots(2, 1)
    _draw_f1_by_version(by_version, deploys, current_version)
    _draw_drift_checks(by_time, drift_checks)
    return fig


def _draw_f1_by_version(axes: Axes, deploys: Sequence[dict[str, Any]], current_version: str | None) -> None:
    axes.set_title("F1 on the test data of each deployed version")
    axes.set_ylabel("F1")
    axes.set_xlabel("version, in order of deployment (the star marks the current one)")
    if not deploys:
        _nothing_yet(axes, "no version deployed yet")
        return
    positions = np.arange(len(deploys))
    scores = [row["f1"] if row["f1"] is not None else np.nan for row in deploys]
    axes.plot(positions, scores, marker="o", color=COLOURS[0])
    current = [i for i, row in enumerate(deploys) if row["version"] == current_version]
    if current:
        axes.plot(
            positions[current], np.array(scores)[current], marker="*", markersize=16, linestyle="none", color=COLOURS[1]
        )
    step = max(1, int(np.ceil(len(deploys) / MAX_VERSION_LABELS)))
    axes.set_xticks(positions[::step], labels=[row["version"] for row in deploys][::step])
    if len(deploys) <= MAX_VERSION_LABELS:
        for x, y in zip(positions, scores):
            if not np.isnan(y):
                axes.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    axes.set_xlim(-0.5, len(deploys) - 0.5)
    _f1_limits(axes)
    axes.grid(axis="y", alpha=0.3)


def _draw_drift_checks(axes: Axes, checks: Sequence[dict[str, Any]]) -> None:
    axes.set_title("Drift checks: deployed model's F1 on each new batch")
    axes.set_ylabel("F1")
    if not checks:
        axes.set_xlabel("check time (UTC)")
        _nothing_yet(axes, "no drift check yet (the first batch deploys a model)")
        return
    times = _times(checks, "checked_at")
    scores = np.array([row["new_score"] if row["new_score"] is not None else np.nan for row in checks], dtype=float)
    drift = np.array([bool(row["drift"]) for row in checks])
    thresholds = [row["threshold"] if row["threshold"] is not None else np.nan for row in checks]
    axes.plot(times, thresholds, linestyle="--", drawstyle="steps-post", color="0.45", label="threshold")
    axes.plot(times, scores, color=COLOURS[0], alpha=0.5, linewidth=1)
    stable = ~drift
    axes.scatter(np.array(times)[stable], scores[stable], color=STABLE_COLOUR, marker="o", zorder=3, label="no drift")
    axes.scatter(np.array(times)[drift], scores[drift], color=DRIFT_COLOUR, marker="X", s=70, zorder=3, label="drift")
    _f1_limits(axes)
    axes.legend(loc="lower right", fontsize=8, ncols=3)
    axes.grid(axis="y", alpha=0.3)
    _time_axis(axes, times, "check time (UTC)")


def _f1_limits(axes: Axes) -> None:
    """F1 from 0 to 1 with room for the markers at either end (and for the value labels above them)."""
    axes.set_ylim(-MARKER_ROOM, 1.12)
    axes.set_yticks(np.linspace(0, 1, 6))


def _numeric_columns(history: Sequence[dict[str, Any]]) -> list[str]:
    """Columns with summary statistics in any snapshot, in the order of the latest one."""
    columns: list[str] = []
    for snapshot in reversed(history):
        for column in snapshot.get("summary_statistics") or {}:
            if column not in columns:
                columns.append(column)
    return columns


def _series(history: Sequence[dict[str, Any]], *path: str) -> np.ndarray:
    """One value per snapshot, following ``path`` into each (NaN where it is missing)."""
    values = []
    for snapshot in history:
        value: Any = snapshot
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        values.append(np.nan if value is None else float(value))
    return np.array(values, dtype=float)


def draw_summary_trend(history: Sequence[dict[str, Any]], fig: FigureLike | None = None) -> FigureLike:
    """Mean and median of each numeric column over the diagnostics runs, in a band from its 10th to its 90th
    percentile."""
    columns = _numeric_columns(history)
    fig = _figure(fig, (8.0, 2.4 * max(1, (len(columns) + 1) // 2)))
    fig.suptitle("Summary statistics of the ingested data at each diagnostics run")
    if not columns:
        axes = fig.add_subplot()
        axes.set_title("mean and median per column")
        axes.set_ylabel("value")
        axes.set_xlabel("diagnostics run time (UTC)")
        _nothing_yet(axes, "no diagnostics run yet")
        return fig
    times = _times(history, "timestamp")
    grid = fig.subplots((len(columns) + 1) // 2, 2, squeeze=False)
    for axes, column in zip(grid.ravel(), columns):
        mean = _series(history, "summary_statistics", column, "mean")
        median = _series(history, "summary_statistics", column, "median")
        low, high = (_series(history, "summary_statistics", column, key) for key in BAND_PERCENTILES)
        # a quantile band: counts are skewed, and mean ± std would reach below zero; snapshots from before the
        # percentiles were recorded have no band (NaN leaves a gap)
        axes.fill_between(times, low, high, color=COLOURS[0], alpha=0.15, label="10th to 90th percentile")
        axes.plot(times, mean, marker="o", color=COLOURS[0], label="mean")
        axes.plot(times, median, marker="s", linestyle="--", color=COLOURS[1], label="median")
        axes.set_title(column, fontsize=10)
        axes.set_ylabel("value")
        _time_axis(axes, times)
    if len(columns) % 2:
        grid[-1, 1].set_visible(False)
    grid.ravel()[0].legend(fontsize=7, loc="best")
    return fig


def draw_missing_trend(history: Sequence[dict[str, Any]], fig: FigureLike | None = None) -> FigureLike:
    """Percent of missing values per column at each diagnostics run."""
    fig = _figure(fig)
    axes = fig.add_subplot()
    axes.set_title("Missing values in the ingested data at each diagnostics run")
    axes.set_ylabel("% missing")
    columns: list[str] = []
    for snapshot in history:
        columns += [c for c in snapshot.get("missing_data_percent") or {} if c not in columns]
    if not columns:
        axes.set_xlabel("diagnostics run time (UTC)")
        _nothing_yet(axes, "no diagnostics run yet")
        return fig
    times = _times(history, "timestamp")
    highest = 0.0
    for index, column in enumerate(columns):
        values = _series(history, "missing_data_percent", column)
        highest = max(highest, float(np.nanmax(values)) if not np.isnan(values).all() else 0.0)
        axes.plot(
            times,
            values,
            marker="o",
            color=COLOURS[index % len(COLOURS)],
            label=column,
            linestyle=("-", "--", ":", "-.")[index % 4],
        )
    axes.set_ylim(-0.5, max(5.0, highest * 1.2))
    axes.legend(fontsize=8, loc="upper left", ncols=min(3, len(columns)))
    axes.grid(axis="y", alpha=0.3)
    _time_axis(axes, times, "diagnostics run time (UTC)")
    return fig


def draw_timings(history: Sequence[dict[str, Any]], fig: FigureLike | None = None) -> FigureLike:
    """Seconds taken by ingestion and training at each diagnostics run."""
    fig = _figure(fig, TIMINGS_SIZE)
    axes = fig.add_subplot()
    axes.set_title("Ingestion and training time at each diagnostics run", fontsize=TIMINGS_FONT + 1)
    axes.set_ylabel("seconds", fontsize=TIMINGS_FONT)
    axes.tick_params(labelsize=TIMINGS_FONT - 1)
    if not history:
        axes.set_xlabel("diagnostics run time (UTC)", fontsize=TIMINGS_FONT)
        _nothing_yet(axes, "no diagnostics run yet")
        return fig
    times = _times(history, "timestamp")
    highest = 0.0
    for index, step in enumerate(TIMING_STEPS):
        values = _series(history, "execution_time_seconds", f"{step}_seconds")
        if not np.isnan(values).all():
            highest = max(highest, float(np.nanmax(values)))
        axes.plot(times, values, marker="o", color=COLOURS[index], label=step)
    top = max(1.0, highest * 1.25)
    axes.set_ylim(-MARKER_ROOM * top, top)
    axes.legend(fontsize=TIMINGS_FONT - 1, loc="upper left")
    axes.grid(axis="y", alpha=0.3)
    _time_axis(axes, times, "diagnostics run time (UTC)")
    axes.xaxis.label.set_fontsize(TIMINGS_FONT)
    return fig


def draw_probability_histogram(
    probabilities: np.ndarray, bands: np.ndarray, model_version: str, fig: FigureLike | None = None
) -> FigureLike:
    """How many clients of the book have each attrition probability, with the start of band 1 (the riskiest
    tenth) and the model's flag threshold marked."""
    fig = _figure(fig, HALF_WIDTH_SIZE)
    axes = fig.add_subplot()
    axes.set_title(f"Attrition probability of the {len(probabilities):,} clients (model {model_version})")
    axes.set_xlabel("probability of leaving")
    axes.set_ylabel("clients")
    if len(probabilities) == 0:
        _nothing_yet(axes, "no clients in the book")
        return fig
    edges = np.histogram_bin_edges(probabilities, bins=min(HISTOGRAM_BINS, max(1, len(probabilities) // 5)))
    axes.hist(probabilities, bins=edges, color=COLOURS[0], alpha=0.8, label="clients")
    band_one = probabilities[bands == 1]
    if band_one.size:
        axes.axvline(float(band_one.min()), color=DRIFT_COLOUR, linestyle="--", label="band 1 starts (riskiest 10%)")
    low, high = axes.get_xlim()
    if low <= FLAG_THRESHOLD <= high:
        axes.axvline(FLAG_THRESHOLD, color="0.35", linestyle=":", label="flagged above 0.5")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(axis="y", alpha=0.3)
    return fig


def draw_reliability(bins: Sequence[dict[str, Any]], rows: int, fig: FigureLike | None = None) -> FigureLike:
    """Calibration: per probability bin, the mean predicted probability against the share that exited (the
    diagonal is perfect calibration); marker area shows how many rows each bin holds. ``bins`` as recorded by
    risk.cbpe.Reliability.as_json."""
    fig = _figure(fig, HALF_WIDTH_SIZE)
    axes = fig.add_subplot()
    axes.set_title(f"Calibration on {rows:,} labelled rows")
    axes.set_xlabel("mean predicted probability of leaving")
    axes.set_ylabel("share that left")
    axes.plot([0, 1], [0, 1], linestyle="--", color="0.5", label="perfect calibration")
    filled = [b for b in bins if b.get("count") and b.get("mean_predicted") is not None]
    if filled:
        counts = np.array([b["count"] for b in filled], dtype=float)
        axes.plot(
            [b["mean_predicted"] for b in filled], [b["observed_rate"] for b in filled], color=COLOURS[0], alpha=0.6
        )
        axes.scatter(
            [b["mean_predicted"] for b in filled],
            [b["observed_rate"] for b in filled],
            s=RELIABILITY_MARKER_AREA * np.sqrt(counts / counts.max()),
            color=COLOURS[0],
            zorder=3,
            label="probability bin (area: rows)",
        )
    else:
        axes.text(0.5, 0.35, "no labelled rows", ha="center", color="0.4", transform=axes.transAxes)
    room = MARKER_ROOM * 1.5  # the largest markers sit whole at 0 and at 1
    axes.set_xlim(-room, 1 + room)
    axes.set_ylim(-room, 1 + room)
    axes.set_aspect("equal")
    axes.legend(fontsize=8, loc="upper left")
    axes.grid(alpha=0.3)
    return fig


# --- output ---


def figure_bytes(fig: Figure, fmt: str = "png", dpi: int = 110) -> bytes:
    """The figure rendered as PNG or SVG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    return buffer.getvalue()


def figure_data_uri(fig: Figure, fmt: str = "svg") -> str:
    """The figure as a ``data:`` URI for an ``<img>`` (SVG by default), self-contained: no file, no network."""
    mime = {"svg": "image/svg+xml", "png": "image/png"}[fmt]
    return f"data:{mime};base64,{base64.b64encode(figure_bytes(fig, fmt)).decode('ascii')}"
