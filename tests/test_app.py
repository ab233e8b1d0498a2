"""The API: every client shape of /prediction, each error case with its status and message, path escapes of each
kind, the bearer token, the read-only endpoints against the saved records, and hypothesis fuzzing finding no 5xx,
in-process (``create_app`` spoken to with requests, see tests/support.py); and what users run, over real HTTP on
free loopback ports: gunicorn (wsgi.py + gunicorn.conf.py) and ``python app.py`` binding the config's url, metrics
across gunicorn workers, a redeploy while clients loop on /prediction, oversized and stalled requests.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from risk.api import create_app
from risk.artifacts import API_RETURNS_NAME
from risk.deployed import load_deployed_model
from risk.predict import predict_frame
from risk.schema import read_data_file
from risk.store import RecordsStore
from risk.versions import CURRENT_LINK, VERSIONS_DIR, current_version, read_record
from tests.support import AMBIENT_VARIABLES, COLUMNS, REPO, Project, free_port, in_process, serve, wait_for_http

SECRET = "TOPSECRET-outside-the-data-folders"
ONE_ROW = {"lastmonth_activity": 234, "lastyear_activity": 3, "number_of_employees": 10}
TEST_CSV = "testdata/testdata.csv"


# --- fixtures ---


def add_trap_files(project: Project) -> None:
    """Files the path-escape and bad-input tests aim at: a secret outside the data folders, symlinks to it,
    a non-CSV and malformed CSVs inside them."""
    secret = project.root / "secret.csv"
    secret.write_text(f"{COLUMNS}\n{SECRET},1,2,3,0\n")
    outside = project.root.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.csv").write_text(secret.read_text())
    test = project.root / "testdata"
    (test / "escape.csv").symlink_to(secret)
    (test / "escapedir").symlink_to(outside, target_is_directory=True)
    (test / "loop.csv").symlink_to(test / "loop.csv")
    (test / "notes.txt").write_text("not a data file\n")
    os.mkfifo(test / "pipe.csv")  # opening it for reading would block a careless server
    (test / "records.json").write_text(json.dumps([{**ONE_ROW, "corporation": "json"}]))
    (test / "nofeature.csv").write_text("corporation,lastmonth_activity,lastyear_activity\nabcd,1,2\n")
    (test / "extra.csv").write_text(
        "corporation,lastmonth_activity,lastyear_activity,number_of_employees,colour\nabcd,1,2,3,red\n"
    )
    (test / "letters.csv").write_text(
        "corporation,lastmonth_activity,lastyear_activity,number_of_employees\nabcd,1,abc,3\n"
    )
    (test / "emptycell.csv").write_text(
        "corporation,lastmonth_activity,lastyear_activity,number_of_employees\nabcd,1,2,3\nefgh,4,,6\n"
    )
    (test / "semicolons.csv").write_text(
        "corporation;lastmonth_activity;lastyear_activity;number_of_employees\nabcd;1;2;3\n"
    )


@pytest.fixture(scope="module")
def api_project(deployed_template: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A copy of the deployed practice project (v0001) with the trap files; only read by the servers here."""
    project = deployed_template.copy_to(tmp_path_factory.mktemp("api") / "project")
    add_trap_files(project)
    return project


@pytest.fixture(scope="module")
def url(api_project: Project) -> Iterator[str]:
    """The API built by ``create_app`` for the project's practice config (whose run deployed v0001), in this
    process."""
    with in_process(create_app(api_project.settings(api_project.practice_config))) as base:
        yield base


@pytest.fixture(scope="module")
def gunicorn_url(api_project: Project) -> Iterator[str]:
    """gunicorn with two workers (the metrics add up across them)."""
    with serve(api_project, "gunicorn", workers=2, config=api_project.practice_config) as base:
        yield base


@pytest.fixture(scope="module", params=["gunicorn", "flask"])
def server_url(request: pytest.FixtureRequest, api_project: Project) -> Iterator[str]:
    """The API served by gunicorn (the module's one, see gunicorn_url), then by ``python app.py`` (each test
    using it runs against both)."""
    if request.param == "gunicorn":
        yield request.getfixturevalue("gunicorn_url")
        return
    with serve(api_project, "flask", config=api_project.practice_config) as base:
        yield base


def error_of(response: requests.Response, status: int) -> str:
    """Assert a JSON error with ``status`` (no traceback, no secret) and return its message."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == status
    assert "Traceback" not in response.text and SECRET not in response.text
    return body["error"]


def expected_predictions(project: Project, path: Path) -> list[dict[str, Any]]:
    """What the deployed model predicts for a file, computed here through the pipeline's own functions."""
    frame = read_data_file(path)
    result = predict_frame(frame, load_deployed_model(project.settings(project.practice_config)).model)
    return [
        {"corporation": c, "prediction": int(p), "probability": pytest.approx(q, rel=1e-9)}
        for c, p, q in zip(frame["corporation"], result["prediction"], result["probability"])
    ]


# --- every client shape ---


@pytest.mark.parametrize("key", ["filepath", "file_path", "filename", "fname"])
def test_post_json_path_in_each_key(url: str, api_project: Project, key: str) -> None:
    response = requests.post(f"{url}/prediction", json={key: TEST_CSV}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_version"] == "v0001"
    assert body["source"] == TEST_CSV
    assert body["predictions"] == expected_predictions(api_project, api_project.root / TEST_CSV)
    assert body["rows"] == len(body["predictions"]) == 5


@pytest.mark.parametrize("key", ["filepath", "file_path", "filename", "fname"])
def test_get_query_path_in_each_key(url: str, api_project: Project, key: str) -> None:
    response = requests.get(f"{url}/prediction", params={key: TEST_CSV}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected_predictions(api_project, api_project.root / TEST_CSV)


@pytest.mark.parametrize("multipart", [False, True], ids=["urlencoded", "multipart"])
@pytest.mark.parametrize("key", ["filepath", "fname"])
def test_form_field_path(url: str, key: str, multipart: bool) -> None:
    extra = {"files": {"ignored": ("", b"")}} if multipart else {}
    response = requests.post(f"{url}/prediction", data={key: TEST_CSV}, timeout=30, **extra)
    assert response.status_code == 200, response.text
    assert response.json()["source"] == TEST_CSV


def test_bare_name_is_found_inside_the_data_folders(url: str) -> None:
    response = requests.get(f"{url}/prediction?filename=testdata.csv", timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["source"] == TEST_CSV
    response = requests.get(f"{url}/prediction?filename=dataset1.csv", timeout=30)
    assert response.json()["source"] == "practicedata/dataset1.csv"


def test_json_records_file(url: str) -> None:
    response = requests.get(f"{url}/prediction", params={"fname": "records.json"}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["source"] == "testdata/records.json"
    assert [row["corporation"] for row in response.json()["predictions"]] == ["json"]


def test_absolute_path_inside_a_data_folder(url: str, api_project: Project) -> None:
    path = api_project.root / "practiceingested" / "finaldata.csv"
    response = requests.post(f"{url}/prediction", json={"filepath": str(path)}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["source"] == "practiceingested/finaldata.csv"
    assert response.json()["rows"] == len(pd.read_csv(path))


def test_json_records(url: str, api_project: Project) -> None:
    frame = pd.read_csv(api_project.root / TEST_CSV)
    records = frame.drop(columns=["exited"]).to_dict(orient="records")
    response = requests.post(f"{url}/prediction", json=records, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected_predictions(api_project, api_project.root / TEST_CSV)
    assert response.json()["source"] == "the request body"


def test_json_records_without_corporation_and_a_single_record(url: str, api_project: Project) -> None:
    deployed = load_deployed_model(api_project.settings(api_project.practice_config))
    expected = predict_frame(pd.DataFrame([ONE_ROW]), deployed.model)
    for body in ([ONE_ROW], ONE_ROW):
        response = requests.post(f"{url}/prediction", json=body, timeout=30)
        assert response.status_code == 200, response.text
        [row] = response.json()["predictions"]
        assert row == {
            "prediction": int(expected["prediction"][0]),
            "probability": pytest.approx(float(expected["probability"][0])),
        }


def test_empty_cells_are_imputed_by_the_model_and_flagged(url: str, api_project: Project) -> None:
    """The deployed pipeline fills an empty feature with the training median; the answer says which."""
    deployed = load_deployed_model(api_project.settings(api_project.practice_config))
    response = requests.get(f"{url}/prediction", params={"filepath": "testdata/emptycell.csv"}, timeout=30)
    assert response.status_code == 200, response.text
    first, second = response.json()["predictions"]
    assert "imputed" not in first and second["imputed"] == ["lastyear_activity"]
    expected = predict_frame(pd.read_csv(api_project.root / "testdata" / "emptycell.csv"), deployed.model)
    assert second["probability"] == pytest.approx(float(expected["probability"][1]))
    response = requests.post(
        f"{url}/prediction", json=[{**ONE_ROW, "lastyear_activity": None, "number_of_employees": None}], timeout=30
    )
    assert response.json()["predictions"][0]["imputed"] == ["lastyear_activity", "number_of_employees"]


def test_csv_upload(url: str, api_project: Project) -> None:
    path = api_project.root / TEST_CSV
    with open(path, "rb") as handle:
        response = requests.post(f"{url}/prediction", files={"file": ("mine.csv", handle, "text/csv")}, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["source"] == "the uploaded file 'mine.csv'"
    assert response.json()["predictions"] == expected_predictions(api_project, path)


def test_csv_body(url: str, api_project: Project) -> None:
    path = api_project.root / TEST_CSV
    response = requests.post(
        f"{url}/prediction", data=path.read_bytes(), headers={"Content-Type": "text/csv"}, timeout=30
    )
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == expected_predictions(api_project, path)


def test_clients_that_forget_the_content_type(url: str, api_project: Project) -> None:
    """curl -d '{json}' sends it as a form; requests.get(json=...) sends a body with a GET."""
    response = requests.post(
        f"{url}/prediction",
        data=json.dumps({"filepath": TEST_CSV}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    response = requests.get(f"{url}/prediction", json={"fname": TEST_CSV}, timeout=30)
    assert response.status_code == 200, response.text
    response = requests.post(f"{url}/prediction", data=(api_project.root / TEST_CSV).read_bytes(), timeout=30)
    assert response.status_code == 200, response.text


def test_trailing_slash_is_the_same_endpoint(url: str) -> None:
    response = requests.get(f"{url}/prediction/?filepath={TEST_CSV}", timeout=30)
    assert response.status_code == 200, response.text


# --- errors: each with its status and message ---


PATH_ERRORS = [
    ("/etc/passwd", 403, "is outside the data folders"),
    ("{outside}/secret.csv", 403, "is outside the data folders"),
    ("secret.csv", 404, "no such file"),
    ("../secret.csv", 400, "contains '..'"),
    ("testdata/../secret.csv", 400, "contains '..'"),
    ("testdata/../../../../../../etc/passwd", 400, "contains '..'"),
    ("testdata/escape.csv", 403, "leads through a symlink outside the data folders"),
    ("escape.csv", 403, "leads through a symlink outside the data folders"),
    ("testdata/escapedir/secret.csv", 403, "leads through a symlink outside the data folders"),
    ("testdata/loop.csv", 400, "cannot be resolved"),
    ("http://127.0.0.1:9/testdata.csv", 400, "is a URL"),
    ("file:///etc/passwd", 400, "is a URL"),
    ("testdata/nope.csv", 404, "no such file"),
    ("testdata", 400, "is a folder"),
    ("", 400, "is empty"),
    ("testdata/notes.txt", 400, "is not a CSV file"),
    ("testdata/pipe.csv", 400, "is not a regular file"),
    ("testdata/nofeature.csv", 400, "is missing column(s) number_of_employees"),
    ("testdata/extra.csv", 400, "has unexpected column(s) colour"),
    ("testdata/letters.csv", 400, "non-numeric value 'abc' in column 'lastyear_activity' at line 2"),
    ("testdata/semicolons.csv", 400, "is not comma-separated"),
]


@pytest.mark.parametrize(("path", "status", "message"), PATH_ERRORS, ids=[p or "empty" for p, _, _ in PATH_ERRORS])
def test_bad_paths(url: str, api_project: Project, path: str, status: int, message: str) -> None:
    path = path.format(outside=api_project.root.parent / "outside")
    for response in (
        requests.get(f"{url}/prediction", params={"filepath": path}, timeout=30),
        requests.post(f"{url}/prediction", json={"filepath": path}, timeout=30),
    ):
        assert message in error_of(response, status)


BODY_ERRORS = [
    ({}, 400, "the request is empty"),
    (
        {"data": b"{bad json", "headers": {"Content-Type": "application/json"}},
        400,
        "the request body is not valid JSON (line 1 column 2",
    ),
    ({"json": 42}, 400, "is JSON int, not an object or a list of records"),
    ({"json": {"colour": "red"}}, 400, "neither a file path"),
    ({"json": []}, 400, "holds no records"),
    ({"json": [1, 2]}, 400, "must hold JSON records"),
    ({"json": [{"lastmonth_activity": 1}]}, 400, "is missing column(s) lastyear_activity, number_of_employees"),
    ({"json": [{**ONE_ROW, "colour": 1}]}, 400, "has unexpected column(s) colour"),
    ({"json": [{**ONE_ROW, "lastyear_activity": "many"}]}, 400, "non-numeric value 'many' in column"),
    (
        {"json": [{**ONE_ROW, "lastyear_activity": [1, 2]}]},
        400,
        "has a non-numeric value [1, 2] in column 'lastyear_activity'",
    ),
    ({"json": [{**ONE_ROW, "lastyear_activity": 10**400}]}, 400, "has a non-numeric value 1000000"),
    ({"json": {"filepath": TEST_CSV, **ONE_ROW}}, 400, "has both a file path"),
    ({"json": {"filepath": 7}}, 400, "filepath must be a string"),
    ({"json": {"filepath": "testdata/x\u0000.csv"}}, 400, "NUL byte"),
    ({"json": {"filepath": TEST_CSV}, "params": {"fname": "practicedata/dataset1.csv"}}, 400, "2 different files"),
    ({"json": [ONE_ROW], "params": {"fname": TEST_CSV}}, 400, "both a file path and data"),
    (
        {"data": "[" * 100_000 + "]" * 100_000, "headers": {"Content-Type": "application/json"}},
        400,
        "nested too deeply",
    ),
    ({"data": b"\xff\xfe\x00binary", "headers": {"Content-Type": "application/json"}}, 400, "is not UTF-8 text"),
    ({"data": b"<a/>", "headers": {"Content-Type": "application/xml"}}, 415, "unsupported Content-Type"),
    (
        {"files": {"file": ("model.pkl", b"\x80\x04\x95binary\x00data")}},
        400,
        "the uploaded file 'model.pkl' is not a CSV file",
    ),
    ({"files": {"file": ("data.csv", b"\x80\x04\x95binary\x00data")}}, 400, "is not a text file"),
    ({"files": {"file": ("data.csv", b"")}}, 400, "the uploaded file 'data.csv' is empty"),
    (
        {"files": {"file": ("data.csv", b"a,b\n1,2\n3,4,5,6,7\n")}},
        400,
        "the uploaded file 'data.csv' is not a valid CSV",
    ),
    ({"files": {"a": ("a.csv", b"x"), "b": ("b.csv", b"y")}}, 400, "2 files were uploaded"),
    ({"data": {"colour": "red"}}, 400, "the form has no filepath"),
]


@pytest.mark.parametrize(("kwargs", "status", "message"), BODY_ERRORS, ids=[m for _, _, m in BODY_ERRORS])
def test_bad_bodies(url: str, kwargs: dict[str, Any], status: int, message: str) -> None:
    response = requests.post(f"{url}/prediction", timeout=30, **kwargs)
    assert message in error_of(response, status)


def test_long_values_are_quoted_briefly(url: str) -> None:
    """A client's megabyte path, key or field name comes back cut short, not echoed whole."""
    for kwargs in (
        {"json": {"filepath": "a" * 100_000}},
        {"json": {"k" * 100_000: 1}},
        {"data": {"f" * 100_000: "x"}},
        {"files": {"file": ("n" * 5_000 + ".xlsx", b"x")}},
    ):
        response = requests.post(f"{url}/prediction", timeout=30, **kwargs)
        assert 400 <= response.status_code < 500 and len(response.text) < 1_500, response.text[:300]
        assert "...'" in response.json()["error"]


@pytest.mark.slow
def test_oversized_upload_is_refused_with_413(server_url: str, api_project: Project) -> None:
    url = server_url
    limit = api_project.settings(api_project.practice_config).api_max_upload_bytes
    body = b"x" * (limit + 1)
    message = error_of(
        requests.post(f"{url}/prediction", data=body, headers={"Content-Type": "text/csv"}, timeout=60), 413
    )
    assert f"is {limit + 1} bytes, over the limit of {limit} bytes (api_max_upload_bytes" in message
    message = error_of(requests.post(f"{url}/prediction", files={"file": ("big.csv", body)}, timeout=60), 413)
    assert "api_max_upload_bytes" in message
    message = error_of(requests.post(f"{url}/prediction", files={"filepath": (None, "x" * 600_000)}, timeout=60), 413)
    assert "a form field is over 500000 bytes" in message and "Content-Type: text/csv" in message
    assert requests.get(f"{url}/health", timeout=30).status_code == 200


def test_unknown_endpoint_and_wrong_method(url: str) -> None:
    message = error_of(requests.get(f"{url}/predict", timeout=30), 404)
    endpoints = (
        "/dashboard, /diagnostics, /executiontime, /health, /history, /metrics, /missingdata, /outdatedpackages, "
        "/prediction, /risk, /scoring, /summarystats"
    )
    assert f"no endpoint /predict; the endpoints are {endpoints}" in message
    assert "not allowed" in error_of(requests.delete(f"{url}/prediction", timeout=30), 405)
    assert "not allowed" in error_of(requests.post(f"{url}/scoring", timeout=30), 405)


@pytest.mark.slow
def test_the_secret_is_never_read(gunicorn_url: str, api_project: Project) -> None:
    """However it is asked for, the content of a file outside the data folders never comes back."""
    attempts = [
        "secret.csv",
        str(api_project.root / "secret.csv"),
        "testdata/escape.csv",
        "escape.csv",
        "testdata/escapedir/secret.csv",
        "./secret.csv",
        "testdata/./../secret.csv",
        "//" + str(api_project.root / "secret.csv"),
        "~/../" + str(api_project.root / "secret.csv"),
    ]
    for attempt in attempts:
        for response in (
            requests.get(f"{gunicorn_url}/prediction", params={"filepath": attempt}, timeout=30),
            requests.post(f"{gunicorn_url}/prediction", data={"fname": attempt}, timeout=30),
        ):
            assert 400 <= response.status_code < 500, (attempt, response.text)
            assert SECRET not in response.text


# --- the read-only endpoints ---


def test_scoring_serves_the_recorded_f1(url: str, api_project: Project) -> None:
    settings = api_project.settings(api_project.practice_config)
    record = read_record(settings, "v0001")
    body = requests.get(f"{url}/scoring", timeout=30).json()
    assert body["model_version"] == "v0001"
    assert body["f1"] == pytest.approx(record.f1)
    assert body["deployed_at"] == record.deployed_at
    with RecordsStore(settings.records_db_path, readonly=True) as store:
        test_scores = [s for s in store.scores() if s["kind"] == "test" and s["model_sha256"] == record.model_sha256]
    assert body["scored_at"] == test_scores[0]["scored_at"]
    assert body["test_data"] == TEST_CSV


def test_summarystats_and_diagnostics_serve_the_saved_snapshot(url: str, api_project: Project) -> None:
    settings = api_project.settings(api_project.practice_config)
    with RecordsStore(settings.records_db_path, readonly=True) as store:
        snapshot = store.latest_diagnostics()
    stats = requests.get(f"{url}/summarystats", timeout=30).json()
    assert stats["timestamp"] == snapshot["timestamp"]
    assert stats["summary_statistics"] == snapshot["summary_statistics"]
    assert set(stats["summary_statistics"]) >= {"lastmonth_activity", "lastyear_activity", "number_of_employees"}
    diagnostics = requests.get(f"{url}/diagnostics", timeout=30).json()
    assert diagnostics["timestamp"] == snapshot["timestamp"]
    for key in ("execution_time_seconds", "missing_data_percent", "dependencies"):
        assert diagnostics[key] == snapshot[key]
    assert diagnostics["data_drift"] is None
    assert diagnostics["current_model_version"] == "v0001"


@pytest.mark.parametrize(
    ("endpoint", "key", "with_rows"),
    [
        ("missingdata", "missing_data_percent", True),
        ("executiontime", "execution_time_seconds", False),
        ("outdatedpackages", "dependencies", False),
    ],
)
def test_a_course_client_s_missingdata_executiontime_outdatedpackages_serve_the_saved_snapshot(
    url: str, api_project: Project, endpoint: str, key: str, with_rows: bool
) -> None:
    """Parts of the snapshot one course client asks for one by one, as /summarystats serves its part (nothing is
    recomputed: the timings and package versions are those diagnostics.py saved)."""
    settings = api_project.settings(api_project.practice_config)
    with RecordsStore(settings.records_db_path, readonly=True) as store:
        snapshot = store.latest_diagnostics()
    body = requests.get(f"{url}/{endpoint}", timeout=30).json()
    expected = {"timestamp": snapshot["timestamp"], "model_version": "v0001"}
    if with_rows:
        expected["data_rows"] = 26
    assert body == {**expected, key: snapshot[key]}
    assert list(body) == [*expected, key]
    summary = requests.get(f"{url}/summarystats", timeout=30).json()
    assert list(summary) == ["timestamp", "model_version", "data_rows", "summary_statistics"]


def test_the_snapshot_parts_say_how_to_get_a_snapshot_before_there_is_one(project: Project) -> None:
    with in_process(create_app(project.settings())) as base:
        for endpoint in ("missingdata", "executiontime", "outdatedpackages"):
            message = error_of(requests.get(f"{base}/{endpoint}", timeout=30), 503)
            assert "does not exist" in message and "run fullprocess.py" in message


@pytest.mark.slow
def test_gets_never_write(gunicorn_url: str, api_project: Project) -> None:
    """No GET re-runs a step or writes a file: every project file is unchanged, and none is added."""

    def files() -> dict[str, tuple[int, int]]:
        return {
            str(p): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in api_project.root.rglob("*")
            if p.is_file() and not p.is_symlink()
        }

    before = files()
    for endpoint in (
        *("scoring", "summarystats", "diagnostics", "health", "metrics"),
        *("missingdata", "executiontime", "outdatedpackages"),
    ):
        assert requests.get(f"{gunicorn_url}/{endpoint}", timeout=30).status_code == 200
    assert requests.get(f"{gunicorn_url}/prediction", params={"filepath": TEST_CSV}, timeout=30).ok
    assert files() == before


def test_health(url: str, api_project: Project) -> None:
    body = requests.get(f"{url}/health", timeout=30).json()
    record = read_record(api_project.settings(api_project.practice_config), "v0001")
    assert body["status"] == "ok" and body["model_version"] == "v0001"
    assert body["deployed_at"] == record.deployed_at
    assert body["model_age_seconds"] >= 0
    assert "model_problem" not in body


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from Prometheus text (0 when absent)."""
    shown = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(f"{name}{{{shown}}}" if labels else name) + r" ([0-9.e+-]+)\n"
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


@pytest.mark.slow
def test_metrics_add_up_across_gunicorn_workers(gunicorn_url: str, api_project: Project) -> None:
    before = requests.get(f"{gunicorn_url}/metrics", timeout=30).text
    for _ in range(12):
        assert requests.get(f"{gunicorn_url}/scoring", timeout=30).status_code == 200
    for _ in range(3):
        assert requests.post(f"{gunicorn_url}/prediction", json={"filepath": TEST_CSV}, timeout=30).ok
    assert requests.get(f"{gunicorn_url}/prediction?filepath=/etc/passwd", timeout=30).status_code == 403
    after = requests.get(f"{gunicorn_url}/metrics", timeout=30).text
    counted = "risk_api_requests_total"

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta(counted, endpoint="/scoring", method="GET", status="200") == 12
    assert delta(counted, endpoint="/prediction", method="GET", status="403") == 1
    assert delta("risk_api_predictions_total", model_version="v0001") == 15
    assert delta("risk_api_request_duration_seconds_count", endpoint="/scoring") == 12
    record = read_record(api_project.settings(api_project.practice_config), "v0001")
    assert metric(after, "risk_deployed_model_info", version="v0001") == 1
    assert metric(after, "risk_deployed_model_f1") == pytest.approx(record.f1)
    assert metric(after, "risk_latest_f1", kind="test") == pytest.approx(record.f1)


# --- nothing deployed, a tampered version, the token ---


def test_nothing_deployed_yet(project: Project) -> None:
    with in_process(create_app(project.settings())) as base:
        health = requests.get(f"{base}/health", timeout=30)
        assert health.status_code == 503 and health.json()["model_version"] is None
        assert health.json()["status"] == "unavailable" and "no model is deployed" in health.json()["model_problem"]
        message = error_of(requests.post(f"{base}/prediction", json=[ONE_ROW], timeout=30), 503)
        assert "no model is deployed" in message and "run fullprocess.py" in message
        assert "no model is deployed" in error_of(requests.get(f"{base}/scoring", timeout=30), 503)
        for endpoint in ("diagnostics", "summarystats"):
            message = error_of(requests.get(f"{base}/{endpoint}", timeout=30), 503)
            assert "does not exist" in message and "run fullprocess.py" in message
    assert not project.settings().records_db_path.exists()


class Booby:
    """Unpickling this creates the marker file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def switch_to_tampered_version(project: Project, marker: Path) -> str:
    """Write v0002 as a copy of v0001 whose pickle is replaced (sha256 no longer matches) and make it current."""
    prod = project.settings(project.practice_config).prod_deployment_path
    shutil.copytree(prod / VERSIONS_DIR / "v0001", prod / VERSIONS_DIR / "v0002")
    (prod / VERSIONS_DIR / "v0002" / "trainedmodel.pkl").write_bytes(pickle.dumps(Booby(marker)))
    tmp = prod / ".current.tmp"
    os.symlink(f"{VERSIONS_DIR}/v0002", tmp)
    os.replace(tmp, prod / CURRENT_LINK)
    return "v0002"


def test_a_tampered_version_is_never_unpickled(deployed_template: Project, tmp_path: Path) -> None:
    project = deployed_template.copy_to(tmp_path / "project")
    marker = tmp_path / "unpickled.marker"
    with in_process(create_app(project.settings())) as base:
        assert requests.post(f"{base}/prediction", json=[ONE_ROW], timeout=30).json()["model_version"] == "v0001"
        switch_to_tampered_version(project, marker)
        response = requests.post(f"{base}/prediction", json=[ONE_ROW], timeout=30)
        assert response.status_code == 200 and response.json()["model_version"] == "v0001"
        health = requests.get(f"{base}/health", timeout=30).json()
        assert health["model_version"] == "v0002" and health["serving_version"] == "v0001"
        assert "refusing to unpickle" in health["model_problem"]
    with in_process(create_app(project.settings())) as base:  # a new app: no verified model to fall back on
        message = error_of(requests.post(f"{base}/prediction", json=[ONE_ROW], timeout=30), 503)
        assert "the deployed model v0002 cannot be loaded" in message and "refusing to unpickle" in message
    assert not marker.exists()


def test_bearer_token(api_project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "s3cret-token"
    monkeypatch.setenv("RISK_API_TOKEN", token)
    with in_process(create_app(api_project.settings(api_project.practice_config))) as base:
        assert requests.get(f"{base}/health", timeout=30).status_code == 200
        for method, endpoint in (
            ("POST", "prediction"),
            ("GET", "scoring"),
            ("GET", "summarystats"),
            ("GET", "diagnostics"),
            ("GET", "metrics"),
            ("GET", "nope"),
        ):
            response = requests.request(method, f"{base}/{endpoint}", json=[ONE_ROW], timeout=30)
            assert "needs a bearer token" in error_of(response, 401)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            wrong = requests.request(
                method, f"{base}/{endpoint}", json=[ONE_ROW], timeout=30, headers={"Authorization": "Bearer guessed"}
            )
            assert "the bearer token is wrong" in error_of(wrong, 401)
            basic = requests.request(method, f"{base}/{endpoint}", json=[ONE_ROW], timeout=30, auth=("a", token))
            assert "needs a bearer token" in error_of(basic, 401)
        headers = {"Authorization": f"Bearer {token}"}
        for method, endpoint in (("POST", "prediction"), ("GET", "scoring"), ("GET", "metrics")):
            assert (
                requests.request(method, f"{base}/{endpoint}", json=[ONE_ROW], headers=headers, timeout=30).status_code
                == 200
            )
        assert error_of(requests.get(f"{base}/nope", headers=headers, timeout=30), 404)


# --- serving commands ---


@pytest.mark.slow
def test_python_app_py_binds_the_config_url_on_loopback(deployed_template: Project, tmp_path: Path) -> None:
    port = free_port()
    config = deployed_template.copy_to(tmp_path / "project").edit_config(api_url=f"http://127.0.0.1:{port}/")
    log_path = tmp_path / "app.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--config", str(config)],
            cwd=tmp_path,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process, log_path)
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=30).json()["model_version"] == "v0001"
    finally:
        process.terminate()
        process.wait(timeout=15)
    output = log_path.read_text()
    assert f"Running on http://127.0.0.1:{port}" in output
    assert "0.0.0.0" not in output and "Debug mode: on" not in output


@pytest.mark.slow
def test_gunicorn_conf_binds_the_config_url_with_the_config_workers(deployed_template: Project, tmp_path: Path) -> None:
    port = free_port()
    project = deployed_template.copy_to(tmp_path / "project")
    config = project.edit_config(project.practice_config, api_url=f"http://127.0.0.1:{port}/", api_workers=3)
    log_path = tmp_path / "gunicorn.log"
    env = {k: v for k, v in os.environ.items() if k not in ("WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR")}
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"), "wsgi:app"],
            cwd=tmp_path,
            env={**env, "RISK_CONFIG": str(config)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process, log_path)
        assert requests.get(f"http://127.0.0.1:{port}/prediction?filepath={TEST_CSV}", timeout=30).ok
    finally:
        process.terminate()
        process.wait(timeout=20)
    output = log_path.read_text()
    assert f"Listening at: http://127.0.0.1:{port}" in output
    assert len(re.findall(r"Booting worker with pid", output)) == 3


@pytest.mark.slow
@pytest.mark.parametrize("key", ["url", "api_port"])
def test_a_course_config_s_url_or_api_port_is_where_app_py_gunicorn_and_apicalls_go(
    deployed_template: Project, tmp_path: Path, key: str
) -> None:
    """The course starter's ``url`` (or another solution's ``api_port``), with no ``api_url``: ``python app.py``
    without --port, gunicorn without --bind and apicalls.py without --url all use its port, and say which key."""
    port = free_port()
    project = deployed_template.copy_to(tmp_path / "project")
    value: object = f"http://127.0.0.1:{port}/" if key == "url" else port
    config = project.edit_config(project.practice_config, api_url=None, api_workers=1, **{key: value})
    used = f"API url http://127.0.0.1:{port}/ from {key!r} in config_practice.json"
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT_VARIABLES}
    servers = {
        "app.py": ([sys.executable, str(REPO / "app.py"), "--config", str(config)], {}),
        "gunicorn": (
            [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"), "wsgi:app"],
            {"RISK_CONFIG": str(config)},
        ),
    }
    for name, (command, extra_env) in servers.items():
        log_path = tmp_path / f"{name}.log"
        with open(log_path, "w") as log_file:
            process = subprocess.Popen(
                command, cwd=tmp_path, env={**env, **extra_env}, stdout=log_file, stderr=subprocess.STDOUT
            )
        try:
            wait_for_http(f"http://127.0.0.1:{port}/health", process, log_path)
            if name == "app.py":  # apicalls.py finds the port in the config alone, whichever server listens there
                calls = project.run("apicalls.py", config=config)
                assert used in calls.stderr
                report = (project.settings(config).output_model_path / API_RETURNS_NAME).read_text()
                assert report.startswith(f"API calls to http://127.0.0.1:{port}/ at") and "FAILED" not in report
            else:
                assert requests.get(f"http://127.0.0.1:{port}/scoring", timeout=30).status_code == 200
        finally:
            process.terminate()
            process.wait(timeout=20)
        assert used in log_path.read_text(), name


@pytest.mark.slow
def test_bad_config_gives_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "--config", str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "config file not found" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(REPO / "gunicorn.conf.py"), "wsgi:app"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "RISK_CONFIG": str(tmp_path / "none.json")},
    )
    assert result.returncode == 1
    assert "config file not found" in result.stderr and "set RISK_CONFIG" in result.stderr
    assert "--config" not in result.stderr  # gunicorn's --config is gunicorn.conf.py, not the project's config
    assert "Traceback" not in result.stderr


# --- a redeploy under load ---


def loop_predictions(base: str, stop: threading.Event, seen: list[tuple[int, str]], errors: list[str]) -> None:
    """POST single rows and file paths until ``stop``; record (status, version) or the exception."""
    with requests.Session() as session:
        while not stop.is_set():
            for kwargs in ({"json": [ONE_ROW]}, {"json": {"filepath": TEST_CSV}}):
                try:
                    response = session.post(f"{base}/prediction", timeout=30, **kwargs)
                    seen.append((response.status_code, response.json().get("model_version", response.text)))
                except requests.RequestException as err:
                    errors.append(repr(err))
                time.sleep(0.02)  # leave the two cores some room for the redeploy itself


@pytest.mark.slow
@pytest.mark.parametrize("server", ["gunicorn", "flask"])
def test_redeploy_while_clients_loop(deployed_template: Project, tmp_path: Path, server: str) -> None:
    project = deployed_template.copy_to(tmp_path / "project")
    stop = threading.Event()
    results: list[list[tuple[int, str]]] = [[], []]
    errors: list[str] = []
    with serve(project, server, workers=2) as base:  # each gunicorn worker must see the redeploy
        clients = [threading.Thread(target=loop_predictions, args=(base, stop, seen, errors)) for seen in results]
        for client in clients:
            client.start()
        try:
            for script in ("ingestion.py", "training.py", "scoring.py", "deployment.py"):
                project.run_in_process(script)  # the production config: sourcedata, a new model, version v0002
            assert current_version(project.settings()) == "v0002"
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(s and s[-1][1] == "v0002" for s in results):
                time.sleep(0.05)
        finally:
            stop.set()
            for client in clients:
                client.join(timeout=60)
    assert errors == []
    for seen in results:
        assert seen and all(status == 200 for status, _ in seen), [s for s in seen if s[0] != 200][:3]
        versions = [version for _, version in seen]
        switch = versions.index("v0002")
        assert switch > 0 and set(versions[:switch]) == {"v0001"} and set(versions[switch:]) == {"v0002"}


# --- fuzzing: no input gives a 5xx ---


json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
column_names = st.sampled_from([*COLUMNS.split(","), "filepath", "fname", "colour", ""])
records = st.lists(st.dictionaries(column_names, json_values | st.integers(-(10**6), 10**6), max_size=6), max_size=5)
path_texts = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [TEST_CSV, "testdata.csv", "../secret.csv", "/etc/passwd", "testdata/escape.csv", "testdata", "file:///x"]
    ),
)
content_types = st.sampled_from(
    [
        "application/json",
        "text/csv",
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "",
    ]
)
FUZZ = hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


def assert_no_server_error(response: requests.Response) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code >= 400:
        assert isinstance(body["error"], str) and body["error"]
    else:
        assert body["rows"] == len(body["predictions"]) > 0
    assert SECRET not in response.text


@FUZZ
@given(payload=st.one_of(json_values, records, st.dictionaries(st.sampled_from(["filepath", "file_path"]), path_texts)))
def test_fuzz_json_bodies(url: str, payload: Any) -> None:
    body = json.dumps(payload)  # Python's JSON, NaN and Infinity included (the server's parser accepts them)
    assert_no_server_error(
        requests.post(f"{url}/prediction", data=body, timeout=30, headers={"Content-Type": "application/json"})
    )


@FUZZ
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode), content_type=content_types)
def test_fuzz_raw_bodies(url: str, body: bytes, content_type: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert_no_server_error(requests.post(f"{url}/prediction", data=body, headers=headers, timeout=30))


@FUZZ
@given(
    fields=st.dictionaries(
        st.sampled_from(["filepath", "file_path", "filename", "fname", "x"]), path_texts, max_size=3
    ),
    upload=st.none() | st.tuples(st.text(max_size=12), st.binary(max_size=200)),
    as_query=st.booleans(),
)
def test_fuzz_forms_queries_and_uploads(url: str, fields: dict[str, str], upload: Any, as_query: bool) -> None:
    kwargs: dict[str, Any] = {"params": fields} if as_query else {"data": fields}
    if upload is not None:
        kwargs["files"] = {"file": upload}
    assert_no_server_error(requests.post(f"{url}/prediction", timeout=30, **kwargs))


@pytest.mark.slow
def test_stalled_clients_do_not_block_the_api(gunicorn_url: str) -> None:
    """Clients that send half a request and wait hold a thread each, not a whole gunicorn worker (they hang up
    before the module's other tests use the server)."""
    host, port = gunicorn_url.removeprefix("http://").split(":")
    stalled = []
    for _ in range(4):
        sock = socket.create_connection((host, int(port)))
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # no blank line: the request never ends
        stalled.append(sock)
    try:
        answer = requests.get(f"{gunicorn_url}/health", timeout=5)
        assert answer.status_code == 200 and answer.json()["status"] == "ok"
    finally:
        for sock in stalled:
            sock.close()
