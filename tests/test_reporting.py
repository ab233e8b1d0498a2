"""Reporting: confusionmatrix.png and report.pdf (pages, text, readable plots) from the store's history."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.text import Text

import reporting
from reporting import confusion_on_test_data, plot_confusion_matrix
from risk import plots
from risk.deployed import load_deployed_model
from risk.overview import build_overview, format_number
from risk.store import RecordsStore
from risk.versions import current_version
from tests.support import Project

BASE_PAGES = [
    "Model report: deployed version",
    "F1 across versions and drift checks",
    "Ingested data: summary statistics and missing values",
    "Missing values and timings over time",
    "Ingested files and dependencies",
]
DATA_DRIFT_PAGE = "Data drift per feature (latest check)"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
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
    titles = [*BASE_PAGES, DATA_DRIFT_PAGE, "Latest API returns (apireturns.txt, page 1 of 1)"]
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
    summary, trend, data, timings, files_page, drift_page, api_page = pages
    assert f"deployed version {version}" in summary
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
    assert "% missing" in timings and "Ingestion and training time" in timings
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
    assert len(pages) == len(BASE_PAGES) + 1, "the check before v0002 recorded data drift; no API returns yet"
    for page, title in zip(pages, [*BASE_PAGES, DATA_DRIFT_PAGE]):
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


def drawn_texts(figure: Figure) -> list[Text]:
    """Every piece of text the figure draws: titles, labels, ticks in view, legends, annotations, table cells."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
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
    renderer = FigureCanvasAgg(figure).get_renderer()
    boxes = [(text.get_text(), text.get_window_extent(renderer).padded(-1)) for text in drawn_texts(figure)]
    return [(a, b) for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2) if box_a.overlaps(box_b)]


def plot_axes(figure: Figure) -> Iterator[Axes]:
    """The plotting axes of a figure (not colorbars, not table-only axes)."""
    for axes in figure.findobj(Axes):
        if axes.get_visible() and axes.axison and axes.get_label() != "<colorbar>":
            yield axes


@pytest.fixture(scope="module")
def overview(history_project: Project):
    settings = history_project.settings()
    with RecordsStore(settings.records_db_path, readonly=True) as store:
        return build_overview(settings, store)


def dashboard_figures(overview) -> dict[str, Figure]:
    return {
        "confusion matrix": plots.draw_confusion_matrix(
            plots.confusion_matrix_of(overview.evaluation), plots.confusion_matrix_title(overview.version)
        ),
        "f1 trend": plots.draw_f1_trend(overview.deploys, overview.drift_checks, overview.version),
        "summary trend": plots.draw_summary_trend(overview.diagnostics_history),
        "missing trend": plots.draw_missing_trend(overview.diagnostics_history),
        "timings": plots.draw_timings(overview.diagnostics_history),
        "empty f1 trend": plots.draw_f1_trend([], []),
        "empty summary trend": plots.draw_summary_trend([]),
        "empty timings": plots.draw_timings([]),
    }


@pytest.mark.slow
def test_every_plot_has_a_title_axis_labels_and_dates_on_time_axes(overview) -> None:
    for name, figure in dashboard_figures(overview).items():
        FigureCanvasAgg(figure).draw()
        for axes in plot_axes(figure):
            assert axes.get_title() or figure.get_suptitle(), f"{name}: a plot without a title"
            assert axes.get_ylabel(), f"{name}: {axes.get_title()} has no y label"
            shows_x = any(text.get_visible() and text.get_text() for text in axes.xaxis.get_ticklabels())
            assert axes.get_xlabel() or not shows_x, f"{name}: {axes.get_title()} has no x label"
            if "time" in axes.get_xlabel() and shows_x:
                assert isinstance(axes.xaxis.get_major_formatter(), ConciseDateFormatter), f"{name}: no dates"


@pytest.mark.slow
def test_no_text_overlaps_in_any_plot_or_report_page(overview) -> None:
    figures = dashboard_figures(overview)
    for number, build in enumerate(reporting.report_pages(overview), start=1):
        built = build()
        for index, figure in enumerate(built if isinstance(built, list) else [built]):
            figures[f"report page {number}.{index}"] = figure
    problems = {name: found for name, figure in figures.items() if (found := overlaps(figure))}
    assert problems == {}
