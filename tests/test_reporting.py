"""Reporting: confusionmatrix.png and report.pdf (pages, text, readable plots) from the store's history."""

from __future__ import annotations

import itertools
import json
import time
import warnings
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pypdf
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.dates import ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.text import Text

import reporting
from reporting import confusion_on_test_data, plot_confusion_matrix
from risk import pdfreport, plots
from risk.deployed import load_deployed_model
from risk.overview import build_overview, format_number, format_time, missing_values_line
from risk.risklist import read_risklist
from risk.store import IngestionRecord, RecordsStore
from risk.versions import current_version
from tests.support import Project

BASE_PAGES = [
    "Model report: deployed version",
    "in detail",
    "F1 across versions and drift checks",
    "Ingested data: summary statistics and missing values",
    "Missing values and timings over time",
    "Ingested files and dependencies",
]
DATA_DRIFT_PAGE = "Data drift per feature (latest check)"
RISK_LIST_PAGE = "Risk list: probabilities and calibration"
WITH_LIST = [*BASE_PAGES[:2], RISK_LIST_PAGE, *BASE_PAGES[2:]]  # the production config ranks the client book
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EDGE_SCORES = (  # deploys and drift checks scoring F1 0 and 1: markers on the axis limits' edges
    [
        {"version": "v1", "f1": 0.0, "action": "deploy"},
        {"version": "v2", "f1": 1.0, "action": "deploy"},
    ],
    [
        {"checked_at": "2026-01-01T00:00:00Z", "new_score": 0.0, "drift": True, "threshold": 0.5},
        {"checked_at": "2026-01-01T01:00:00Z", "new_score": 1.0, "drift": False, "threshold": 0.5},
        {"checked_at": "2026-01-01T02:00:00Z", "new_score": None, "drift": None, "threshold": None},
    ],
)
API_RETURNS = "GET /scoring -> 200\n" + json.dumps({"f1": 0.8, "model_version": "v0002"}, indent=2) + "\n"


def pdf_pages(path: Path) -> list[str]:
    """The text of each page of a PDF, whitespace collapsed."""
    reader = pypdf.PdfReader(path)
    return [" ".join(page.extract_text().split()) for page in reader.pages]


@pytest.fixture
def reported(history_project: Project, tmp_path: Path) -> Project:
    """A copy of the history project with API returns, after reporting.py ran."""
    project = history_project.copy_to(tmp_path / "project")
    settings = project.settings()
    (settings.output_model_path / "apireturns.txt").write_text(API_RETURNS)
    (settings.output_model_path / "report.pdf").unlink()
    project.run("reporting.py")
    return project


@pytest.mark.slow
def test_report_pdf_has_every_page_and_the_history_in_it(reported: Project) -> None:
    settings = reported.settings()
    pages = pdf_pages(settings.output_model_path / "report.pdf")
    titles = [*WITH_LIST, DATA_DRIFT_PAGE, "Latest API returns (apireturns.txt, page 1 of 1)"]
    assert len(pages) == len(titles)
    for page, title in zip(pages, titles):
        assert title in page

    with RecordsStore(settings.records_db_path, readonly=True) as store:
        version = current_version(settings)
        evaluation = store.latest_evaluation(version)
        deployments = store.deployments()
        checks = store.drift_checks()
        snapshot = store.latest_diagnostics()
        files = store.latest_ingestion_per_file()
        data_drift = store.latest_data_drift()
    brief, summary, risk_page, trend, data, timings, files_page, drift_page, api_page = pages
    assert "Risk list: probabilities and calibration" in risk_page
    assert f"deployed version {version}" in brief and f"Deployed model {version} in detail" in summary
    metrics = " / ".join(format_number(evaluation[k]) for k in ("precision", "recall", "f1"))
    assert f"precision / recall / F1 {metrics}" in summary
    assert f"Confusion matrix on the test data model {version}" in summary
    assert "F1 on the test data of each deployed version" in trend and "Drift checks" in trend
    for deployment in deployments:
        assert deployment["version"] in trend and format_number(deployment["f1"]) in trend
    for check in checks:
        assert format_number(check["new_score"]) in trend
    for column, stats in snapshot["summary_statistics"].items():
        assert column in data and format_number(stats["mean"], 3) in data
    assert "Ingestion and training time" in timings
    assert "% missing" in timings or "No missing values in any column" in timings
    for record in files:
        assert record["file_name"] in files_page
    for dependency in snapshot["dependencies"]:
        assert f"{dependency['package']} {dependency['installed']} {dependency['latest']}" in files_page
    assert f"verdict {data_drift['verdict']}" in drift_page
    assert f"model version {data_drift['model_version']}" in drift_page
    for feature, result in data_drift["features"].items():
        assert f"{feature} {result['status']}" in drift_page
    assert "GET /scoring -> 200" in api_page and '"model_version": "v0002"' in api_page

    assert (settings.output_model_path / "confusionmatrix.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.slow
def test_fullprocess_writes_the_report_after_each_deploy(history_project: Project) -> None:
    settings = history_project.settings()
    pages = pdf_pages(settings.output_model_path / "report.pdf")
    assert len(pages) == len(WITH_LIST) + 1, "the check before v0002 recorded data drift; no API returns yet"
    for page, title in zip(pages, [*WITH_LIST, DATA_DRIFT_PAGE]):
        assert title in page
    assert "deployed version v0002" in pages[0]
    practice = pdf_pages(history_project.settings(history_project.practice_config).output_model_path / "report.pdf")
    assert len(practice) == len(BASE_PAGES), "the bootstrap run had no data drift check and no API returns"
    assert "deployed version v0001" in practice[0]


@pytest.mark.slow
def test_confusion_matrix_png_of_the_deployed_model(deployed_project: Project) -> None:
    settings = deployed_project.settings()
    path = plot_confusion_matrix(settings)
    assert path == settings.output_model_path / "confusionmatrix.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE) and path.stat().st_size > 5_000

    matrix = confusion_on_test_data(settings, load_deployed_model(settings))
    assert matrix.tolist() == [[0, 2], [1, 2]]  # TN FP / FN TP of the practice model on the five test rows


@pytest.mark.slow
def test_reporting_script_says_to_deploy_first(project: Project) -> None:
    result = project.run("reporting.py", check=False)
    assert result.returncode == 2 and "no model is deployed" in result.stderr
    assert "run fullprocess.py" in result.stderr
    assert not (project.settings().output_model_path / "report.pdf").exists()


# --- readability: every plot labelled, no text drawn over other text ---


_DRAWN: weakref.WeakSet[Figure] = weakref.WeakSet()


def drawn(figure: Figure) -> FigureCanvasAgg:
    """The figure's Agg canvas, drawn once (the checks below only read what a drawing laid out)."""
    if figure not in _DRAWN:
        FigureCanvasAgg(figure).draw()
        _DRAWN.add(figure)
    return figure.canvas


def drawn_texts(figure: Figure) -> list[Text]:
    """Every piece of text the figure draws: titles, labels, ticks in view, legends, annotations, table cells."""
    drawn(figure)
    texts: dict[int, Text] = {}
    for axes in figure.findobj(Axes):
        if not axes.get_visible():
            continue
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            span = (high - low) * 1e-9
            locations = axis.get_majorticklocs()  # older Tick objects past these keep stale labels: skip them
            for tick, location in zip(axis.get_major_ticks(len(locations)), locations):
                if low - span <= location <= high + span and tick.label1.get_visible():
                    texts[id(tick.label1)] = tick.label1
            texts[id(axis.label)] = axis.label
            texts[id(axis.offsetText)] = axis.offsetText
        for text in [axes.title, *axes.texts, *(axes.get_legend().get_texts() if axes.get_legend() else [])]:
            texts[id(text)] = text
        for table in axes.tables:
            for cell in table.get_celld().values():
                texts[id(cell.get_text())] = cell.get_text()
    inside_axes = {id(text) for axes in figure.findobj(Axes) for text in axes.findobj(Text)}
    for text in figure.findobj(Text):  # suptitles, footers and other figure-level text
        if id(text) not in inside_axes:
            texts.setdefault(id(text), text)
    return [t for t in texts.values() if t.get_visible() and t.get_text().strip()]


def overlaps(figure: Figure) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap by more than a pixel."""
    texts = drawn_texts(figure)
    renderer = drawn(figure).get_renderer()
    boxes = [(text.get_text(), text.get_window_extent(renderer).padded(-1)) for text in texts]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]


def plot_axes(figure: Figure) -> Iterator[Axes]:
    """The plotting axes of a figure (not colorbars, not table-only axes)."""
    for axes in figure.findobj(Axes):
        if axes.get_visible() and axes.axison and axes.get_label() != "<colorbar>":
            yield axes


@pytest.fixture(scope="module")
def overview(risk_list_project: Project):
    settings = risk_list_project.settings()
    with RecordsStore(settings.records_db_path, readonly=True) as store:
        return build_overview(settings, store)


@pytest.fixture(scope="module")
def dashboard_figures(overview) -> dict[str, Figure]:
    """Every plot the dashboard and the report draw, and the empty and edge cases (built once per module)."""
    return {
        "confusion matrix": plots.draw_confusion_matrix(
            plots.confusion_matrix_of(overview.evaluation), plots.confusion_matrix_title(overview.version)
        ),
        "f1 trend": plots.draw_f1_trend(overview.deploys, overview.drift_checks, overview.version),
        "summary trend": plots.draw_summary_trend(overview.diagnostics_history),
        "missing trend": plots.draw_missing_trend(overview.diagnostics_history),
        "timings": plots.draw_timings(overview.diagnostics_history),
        "probabilities": plots.draw_probability_histogram(
            overview.risk_list.frame["probability"].to_numpy(),
            overview.risk_list.frame["band"].to_numpy(),
            overview.risk_list.model_version,
        ),
        "calibration": plots.draw_reliability(
            overview.risk_list.calibration["bins"], overview.risk_list.calibration["rows"]
        ),
        "f1 at 0 and 1": plots.draw_f1_trend(*EDGE_SCORES, current_version="v2"),
        "empty f1 trend": plots.draw_f1_trend([], []),
        "empty summary trend": plots.draw_summary_trend([]),
        "empty timings": plots.draw_timings([]),
    }


@pytest.fixture(scope="module")
def report_figures(overview) -> dict[str, Figure]:
    """The report's pages, as report.pdf has them (built once per module)."""
    figures = {}
    for number, build in enumerate(pdfreport.report_pages(overview), start=1):
        built = build()
        for index, figure in enumerate(built if isinstance(built, list) else [built]):
            figures[f"report page {number}.{index}"] = figure
    return figures


@pytest.mark.slow
def test_every_plot_has_a_title_axis_labels_and_dates_on_time_axes(dashboard_figures: dict[str, Figure]) -> None:
    for name, figure in dashboard_figures.items():
        drawn(figure)
        for axes in plot_axes(figure):
            assert axes.get_title() or figure.get_suptitle(), f"{name}: a plot without a title"
            assert axes.get_ylabel(), f"{name}: {axes.get_title()} has no y label"
            shows_x = any(text.get_visible() and text.get_text() for text in axes.xaxis.get_ticklabels())
            assert axes.get_xlabel() or not shows_x, f"{name}: {axes.get_title()} has no x label"
            if "time" in axes.get_xlabel() and shows_x:
                assert isinstance(axes.xaxis.get_major_formatter(), ConciseDateFormatter), f"{name}: no dates"


@pytest.mark.slow
def test_no_text_overlaps_in_any_plot_or_report_page(
    dashboard_figures: dict[str, Figure], report_figures: dict[str, Figure]
) -> None:
    figures = {**dashboard_figures, **report_figures}
    problems = {name: found for name, figure in figures.items() if (found := overlaps(figure))}
    assert problems == {}


# --- the first page a manager reads; nothing cut off ---

LONG_REASON = (
    "has a column 'lastmonth_activty' that is not in the schema; the columns must be corporation, "
    "lastmonth_activity, lastyear_activity, number_of_employees and exited (rename the column and drop the "
    "file in the input folder again, or remove it if it was put there by mistake)"
)


@pytest.fixture(scope="module")
def report_with_lists(risk_list_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A copy of the risk list project with a rejected file whose reason is long, after write_reports ran."""
    project = risk_list_project.copy_to(tmp_path_factory.mktemp("report-lists") / "project")
    settings = project.settings()
    with project.store() as store:
        store.record_ingestions(
            [
                IngestionRecord(
                    "dataset9_with_a_rather_long_name.csv", "sourcedata", "0" * 64, 10, 1, "rejected", LONG_REASON
                )
            ]
        )
        reporting.write_reports(settings, store)
    return project


@pytest.mark.slow
def test_the_first_page_tells_a_manager_what_happened_who_is_at_risk_and_how_the_model_is(
    report_with_lists: Project,
) -> None:
    settings = report_with_lists.settings()
    first = pdf_pages(settings.output_model_path / "report.pdf")[0]
    top = read_risklist(settings.output_model_path / "risklist.csv").iloc[:10]
    with RecordsStore(settings.records_db_path, readonly=True) as store:
        check = store.drift_checks(1)[0]
        evaluation = store.latest_evaluation("v0002")
    reference = load_deployed_model(settings).metadata["reference_counts"]

    assert "What happened last" in first
    assert f"On {format_time(check['checked_at'])}, {check['deployed_version']} was checked" in first
    assert "Since then v0002 was deployed" in first and "v0002 is deployed now" in first
    assert "Riskiest clients (top 10 of 10,000, ranked" in first
    for row in top.itertuples():
        assert f"{row.rank} {row.corporation} {row.probability:.4f} {row.band} " in first
    assert first.index(top["corporation"].iloc[0]) < first.index(top["corporation"].iloc[1])
    assert "Model health" in first
    assert f"On the test file, F1 is {evaluation['f1']:.3f} on {evaluation['rows']} labelled rows" in first
    assert "Out of fold (each training row scored by a model fitted without it), F1 is" in first
    assert f"on {sum(reference.values())} labelled rows: the reference" in first
    assert "resting on 10,000 clients" in first


@pytest.mark.slow
def test_nothing_in_the_pdf_is_cut_off(report_with_lists: Project) -> None:
    pages = pdf_pages(report_with_lists.settings().output_model_path / "report.pdf")
    assert [page for page in pages if "…" in page] == []
    files_page = next(page for page in pages if page.startswith("Ingested files") or "Ingested files (" in page)
    assert LONG_REASON in files_page, "a long cell wraps, whole"
    assert "dataset9_with_a_rather_long_name.csv" in files_page.replace(" ", "")


def test_wrapping_keeps_every_character_within_the_width() -> None:
    text = "a fairly long sentence with a verylongwordthatcannotfitonanylineatall in the middle of it"
    lines = pdfreport.wrap_to_width(text, 60, 8)
    assert len(lines) > 3 and "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert all(pdfreport._text_width(line, 8) <= 60 for line in lines)
    assert pdfreport.wrap_to_width(None, 60, 8) == ["-"]


@pytest.mark.slow
def test_table_cells_hold_their_text(report_figures: dict[str, Figure]) -> None:
    for name, figure in report_figures.items():
        renderer = drawn(figure).get_renderer()
        for axes in figure.findobj(Axes):
            for table in axes.tables:
                for key, cell in table.get_celld().items():
                    text = cell.get_text().get_window_extent(renderer)
                    box = cell.get_window_extent(renderer)
                    assert text.width <= box.width and text.height <= box.height + 1, (name, key)


# --- plots a data scientist trusts ---


def clipped_markers(figure: Figure) -> list[str]:
    """Markers not drawn whole inside their axes: (axes title, point) for each."""
    canvas = drawn(figure)
    points_to_pixels = figure.dpi / 72
    found = []
    for axes in plot_axes(figure):
        box = axes.get_window_extent(canvas.get_renderer())
        marks = [
            (line.get_xydata(), np.full(len(line.get_xydata()), line.get_markersize() / 2))
            for line in axes.get_lines()
            if line.get_visible() and line.get_marker() not in (None, "None", "", " ")
        ]
        marks += [
            (c.get_offsets(), np.sqrt(np.broadcast_to(c.get_sizes(), (len(c.get_offsets()),))) / 2)
            for c in axes.collections
            if isinstance(c, PathCollection) and len(c.get_offsets())
        ]
        for data, radius in marks:
            for (x, y), r in zip(axes.transData.transform(np.asarray(data, dtype=float)), radius * points_to_pixels):
                if np.isnan(x) or np.isnan(y):
                    continue
                inside = box.x0 + r - 0.5 <= x <= box.x1 - r + 0.5 and box.y0 + r - 0.5 <= y <= box.y1 - r + 0.5
                if not inside:
                    found.append(f"{axes.get_title()}: ({x:.0f}, {y:.0f}) r {r:.1f} in {box}")
    return found


@pytest.mark.slow
def test_no_marker_is_clipped_at_an_axis(dashboard_figures: dict[str, Figure]) -> None:
    problems = {name: found for name, figure in dashboard_figures.items() if (found := clipped_markers(figure))}
    assert problems == {}


@pytest.mark.slow
def test_summary_bands_are_quantiles_that_never_go_below_zero(overview) -> None:
    history = overview.diagnostics_history
    latest = history[-1]["summary_statistics"]
    assert any(s["mean"] - s["std"] < 0 for s in latest.values()), "a mean ± std band would dip below zero here"
    figure = plots.draw_summary_trend(history)
    for axes in plot_axes(figure):
        column = axes.get_title()
        bands = [c for c in axes.collections if c.get_label() == "10th to 90th percentile"]
        assert len(bands) == 1, column
        heights = np.concatenate([path.vertices[:, 1] for path in bands[0].get_paths()])
        assert heights.min() >= 0, column
        assert heights.min() == pytest.approx(min(s["summary_statistics"][column]["p10"] for s in history))
        assert heights.max() == pytest.approx(max(s["summary_statistics"][column]["p90"] for s in history))


def test_missing_values_become_a_sentence_when_there_are_none() -> None:
    none_missing = [
        {"timestamp": "2026-01-01T00:00:00Z", "missing_data_percent": {"a": 0.0, "b": 0.0}},
        {"timestamp": "2026-01-02T00:00:00Z", "missing_data_percent": {"a": 0.0}},
    ]
    assert missing_values_line(none_missing) == (
        "No missing values in any column at any of the 2 diagnostics runs (latest 2026-01-02 00:00:00 UTC)."
    )
    some = [*none_missing, {"timestamp": "2026-01-03T00:00:00Z", "missing_data_percent": {"a": 2.5}}]
    assert missing_values_line(some) is None, "then the chart shows where"
    assert missing_values_line([]) is None, "no run yet: the chart says so"


@pytest.mark.slow
def test_the_timing_plot_reads_at_dashboard_size(overview) -> None:
    figure = plots.draw_timings(overview.diagnostics_history)
    sizes = {text.get_text(): text.get_fontsize() for text in drawn_texts(figure)}
    assert min(sizes.values()) >= 9, sizes
    assert figure.get_figwidth() <= 6.5, "shown half-width on the dashboard: a small figure keeps its text large"


@pytest.mark.parametrize(
    "span_seconds", [0, 1, 59, 150, 151, 3_000, 40_000, 200_000, 3_000_000, 80_000_000, 90_000_000]
)
def test_time_axes_pick_their_ticks_for_any_span_without_a_warning(span_seconds: int) -> None:
    """A warning from matplotlib's date locator would reach the cron mail through stderr (2.5 minutes had none)."""
    start = 1_790_000_000
    stamps = [time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + offset)) for offset in (0, span_seconds)]
    history = [{"timestamp": stamp, "execution_time_seconds": {"training_seconds": 0.2}} for stamp in stamps]
    figure = plots.draw_timings(history)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = plots.figure_bytes(figure)
    assert png.startswith(b"\x89PNG")
