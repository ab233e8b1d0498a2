"""dashboard.py: /dashboard in headless Chromium from the real gunicorn server, and /history paging.

The browser test needs Debian's ``chromium`` (``.ci/run`` installs it) and playwright's Python package,
which drives that system browser (playwright never downloads a browser of its own here). Without a browser
the test skips on a developer machine and FAILS when ``CI`` is set.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from risk.api import create_app
from risk.overview import format_number, missing_values_line
from risk.risklist import read_risklist
from risk.store import HISTORY_KINDS, RecordsStore
from risk.versions import current_version
from tests.support import REPO, Project, in_process, serve

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SECTIONS = (
    "#current",
    "#risk-list",
    "#f1-trend",
    "#confusion-matrix",
    "#data-summary",
    "#drift-decisions",
    "#deployments",
    "#diagnostics",
    "#data-drift",
    "#ingested-files",
)
TIMEOUT = 30


def missing_for_browser_test(message: str) -> None:
    """Fail under CI (the browser must be there), skip elsewhere, saying what to install."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{message} (CI is set, so this fails instead of skipping)")
    pytest.skip(message)


def chromium_executable() -> str:
    """The system Chromium: $CHROMIUM_PATH, else ``chromium`` on PATH."""
    candidates = [os.environ.get("CHROMIUM_PATH"), *(shutil.which(name) for name in CHROMIUM_CANDIDATES)]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    missing_for_browser_test("headless Chromium not found: `apt-get install chromium` or set CHROMIUM_PATH")
    raise AssertionError("unreachable")


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` except SQLite's shared-memory index (readers may touch it)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink() and not path.name.endswith("-shm")
    }


@pytest.fixture(scope="module")
def served(risk_list_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, str]]:
    """The history project with its two risk lists (plus API returns) served by gunicorn; yields it and its URL."""
    project = risk_list_project.copy_to(tmp_path_factory.mktemp("dashboard") / "project")
    (project.settings().output_model_path / "apireturns.txt").write_text("GET /health -> 200\n{}\n")
    with serve(project, "gunicorn") as url:
        yield project, url


def test_dashboard_in_headless_chromium(served: tuple[Project, str]) -> None:
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing_for_browser_test("playwright is not installed: `pip install -r requirements-dev.txt`")
    executable = chromium_executable()
    project, url = served
    settings = project.settings()
    with RecordsStore(settings.records_db_path, readonly=True) as store:
        version = current_version(settings)
        evaluation = store.latest_evaluation(version)
        checks, deployments = store.drift_checks(), store.deployments()
        snapshot = store.latest_diagnostics()
        data_drift = store.latest_data_drift()
        history = store.diagnostics_history()
        estimate = store.risk_lists(1)[0]["summary"]["estimate"]
    risk_list = read_risklist(settings.output_model_path / "risklist.csv")
    nothing_missing = missing_values_line(history)

    requested: list[str] = []
    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda req: requested.append(req.url))
            page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda err: problems.append(str(err)))
            response = page.goto(f"{url}/dashboard", wait_until="load", timeout=TIMEOUT * 1000)
            assert response is not None and response.status == 200

            expect(page.locator("#current-version")).to_have_text(version)
            for section in SECTIONS:
                expect(page.locator(section)).to_be_visible()
            expect(page.locator("#metrics")).to_contain_text(format_number(evaluation["f1"]))
            expect(page.locator("#riskiest-client")).to_have_text(risk_list["corporation"].iloc[0])
            riskiest = page.locator("#riskiest tr")
            assert riskiest.count() == 1 + 25
            for rank in (0, 24):
                row = risk_list.iloc[rank]
                expect(riskiest.nth(1 + rank)).to_contain_text(
                    f"{row['corporation']}{format_number(row['probability'])}"
                )
            expect(page.locator("#estimated-f1")).to_have_text(format_number(estimate["f1"], 3))
            expect(page.locator("#risk-list")).to_contain_text("rests on 10,000 clients")
            expect(page.locator("#realized-f1")).to_have_text("not yet")
            expect(page.locator("#risk-changes")).to_contain_text("entered the top 100 since the list of")
            expect(page.locator("#calibration-verdict")).to_contain_text("Calibration on")
            if nothing_missing:
                expect(page.locator("#nothing-missing")).to_have_text(nothing_missing)
            images = page.locator("img")
            assert images.count() == (4 if nothing_missing else 5) + 2  # + probabilities, calibration
            csv_link = page.locator("#risk-csv").get_attribute("href")
            for image in images.all():
                image.scroll_into_view_if_needed()
                expect(image).to_be_visible()
                assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "an image did not decode"
            assert page.locator("#drift-decisions tr").count() == 1 + len(checks)
            assert page.locator("#deployments tr").count() == 1 + len(deployments)
            for row in deployments:
                expect(page.locator("#deployments")).to_contain_text(row["version"])
            for column in snapshot["summary_statistics"]:
                expect(page.locator("#summary-table")).to_contain_text(column)
            expect(page.locator("#data-drift-verdict")).to_have_text(data_drift["verdict"])
            for feature in data_drift["features"]:
                expect(page.locator("#data-drift")).to_contain_text(feature)

            ARTIFACTS.mkdir(exist_ok=True)
            screenshot = ARTIFACTS / "dashboard.png"
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
    download = requests.get(f"{url}{csv_link}", timeout=TIMEOUT)
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("text/csv")
    assert download.content == (settings.output_model_path / "risklist.csv").read_bytes()
    assert [u for u in requested if not u.startswith("data:")] == [f"{url}/dashboard"], "no other request, no CDN"
    assert problems == []


def test_history_pages_newest_first_through_everything(served: tuple[Project, str]) -> None:
    project, url = served
    first = requests.get(f"{url}/history", timeout=TIMEOUT)
    assert first.status_code == 200
    body = first.json()
    assert (body["limit"], body["offset"]) == (20, 0)
    with RecordsStore(project.settings().records_db_path, readonly=True) as store:
        expected = {kind: store.history_page(kind, 1000)[0] for kind in HISTORY_KINDS}
    for kind in HISTORY_KINDS:
        assert body[kind]["items"] == expected[kind] and body[kind]["total"] == len(expected[kind])
        walked, offset = [], 0
        while offset is not None:
            page = requests.get(f"{url}/history", params={"kind": kind, "limit": 1, "offset": offset}, timeout=TIMEOUT)
            assert page.status_code == 200 and set(page.json()) == {"limit", "offset", "order", kind}
            walked += page.json()[kind]["items"]
            offset = page.json()[kind]["next_offset"]
        assert walked == expected[kind]
        ids = [row["id"] for row in walked]
        assert ids == sorted(ids, reverse=True) and len(ids) >= 2, f"{kind}: newest first"
    assert [row["version"] for row in expected["deployments"]] == ["v0002", "v0001"]
    assert [row["drift"] for row in expected["drift_checks"]] == [True, False]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "'limit' must be a whole number from 1 to 200 (got '0')"),
        ({"limit": "201"}, "'limit' must be a whole number from 1 to 200"),
        ({"limit": "ten"}, "'limit' must be a whole number"),
        ({"limit": "2.5"}, "'limit' must be a whole number"),
        ({"offset": "-1"}, "'offset' must be a whole number from 0"),
        ({"offset": "99999999999999999999"}, "'offset' must be a whole number"),
        ({"kind": "runs"}, "'kind' must be one of scores, drift_checks, deployments (got 'runs')"),
        ({"limt": "5"}, "unknown query parameter 'limt'"),
        ([("limit", "1"), ("limit", "2")], "'limit' is given 2 times"),
    ],
)
def test_history_rejects_bad_paging_with_a_json_400(served: tuple[Project, str], query, message: str) -> None:
    _, url = served
    response = requests.get(f"{url}/history", params=query, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("application/json")
    assert message in response.json()["error"]


def test_gets_never_write(served: tuple[Project, str]) -> None:
    project, url = served
    before = file_digests(project.root)
    for path in (
        "/dashboard",
        "/history",
        "/history?kind=scores&limit=1&offset=1",
        "/risk",
        "/risk?format=csv&band=2",
        "/dashboard",
    ):
        assert requests.get(f"{url}{path}", timeout=TIMEOUT).status_code == 200
    assert file_digests(project.root) == before


def test_readers_are_not_blocked_by_a_cron_run_writing(served: tuple[Project, str]) -> None:
    project, url = served
    writer = sqlite3.connect(project.settings().records_db_path, isolation_level=None)
    try:
        total = writer.execute("SELECT COUNT(*) FROM deployments").fetchone()[0]
        writer.execute("BEGIN IMMEDIATE")  # as every write of the store: readers go on reading until it commits
        writer.execute("INSERT INTO deployments (deployed_at, action, version, f1) VALUES ('t', 'deploy', 'v0099', 1)")
        history = requests.get(f"{url}/history", params={"kind": "deployments"}, timeout=TIMEOUT)
        assert history.status_code == 200
        assert history.json()["deployments"]["total"] == total, "readers see the last committed state"
        assert requests.get(f"{url}/dashboard", timeout=TIMEOUT).status_code == 200
    finally:
        writer.execute("ROLLBACK")
        writer.close()


def test_dashboard_and_history_before_anything_ran(project: Project) -> None:
    with in_process(create_app(project.settings())) as url:
        dashboard = requests.get(f"{url}/dashboard", timeout=TIMEOUT)
        history = requests.get(f"{url}/history", timeout=TIMEOUT)
    assert dashboard.status_code == 200 and dashboard.headers["Content-Type"].startswith("text/html")
    assert '<div class="value" id="current-version">none</div>' in dashboard.text
    assert "run fullprocess.py" in dashboard.text
    assert '<p class="empty" id="risk-list-missing">no risk list yet: run fullprocess.py' in dashboard.text
    assert history.status_code == 200
    assert {kind: history.json()[kind] for kind in HISTORY_KINDS} == {
        kind: {"items": [], "total": 0, "next_offset": None} for kind in HISTORY_KINDS
    }
    assert not project.settings().records_db_path.exists(), "a GET never creates the store"


def test_an_unreadable_store_answers_503_json_not_a_traceback(project: Project) -> None:
    store = project.settings().records_db_path
    store.parent.mkdir(parents=True, exist_ok=True)
    store.write_bytes(b"this is not an SQLite database, it was overwritten by mistake\n" * 100)
    with in_process(create_app(project.settings())) as url:
        responses = [requests.get(f"{url}{path}", timeout=TIMEOUT) for path in ("/history", "/dashboard")]
    for response in responses:
        assert response.status_code == 503
        assert response.headers["Content-Type"].startswith("application/json")
        assert "the records store ingesteddata/records.sqlite cannot be read" in response.json()["error"]
        assert (
            "Traceback" not in response.text and str(project.root) not in response.text
        )  # an open API: no server paths


def test_the_bearer_token_guards_the_dashboard_and_history(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RISK_API_TOKEN", "s3cret")
    with in_process(create_app(project.settings())) as url:
        refused = [requests.get(f"{url}{path}", timeout=TIMEOUT) for path in ("/dashboard", "/history")]
        allowed = [
            requests.get(f"{url}{path}", headers={"Authorization": "Bearer s3cret"}, timeout=TIMEOUT)
            for path in ("/dashboard", "/history")
        ]
    assert [r.status_code for r in refused] == [401, 401]
    assert all("bearer token" in r.json()["error"] for r in refused)
    assert [r.status_code for r in allowed] == [200, 200]
