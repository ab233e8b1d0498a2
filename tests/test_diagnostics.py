"""Diagnostics: predictions, summary, missing data, timings, dependency status, and the saved snapshot."""

from __future__ import annotations

import http.server
import json
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from diagnostics import (
    dataframe_summary,
    execution_time,
    missing_data,
    model_predictions,
    outdated_packages_list,
    requirement_names,
    run_diagnostics,
)
from risk.deployed import load_deployed_model
from risk.modelfiles import installed_version
from risk.schema import FEATURES, DataFileError
from risk.snapshot import DiagnosticsSnapshot
from tests.support import Project


@pytest.mark.slow
def test_model_predictions_give_one_class_per_row(deployed_project: Project) -> None:
    settings = deployed_project.settings()
    test = pd.read_csv(settings.test_data_file)
    predictions = model_predictions(test, settings)
    assert len(predictions) == len(test) == 5 and set(predictions) <= {0, 1}
    model = load_deployed_model(settings).model
    assert predictions == model.predict(test[list(FEATURES)]).tolist()
    with pytest.raises(DataFileError, match="is missing column"):
        model_predictions(test.drop(columns=["number_of_employees"]), settings)


def test_summary_and_missing_data_of_finaldata(project: Project) -> None:
    out = project.root / "ingesteddata"
    out.mkdir()
    pd.DataFrame(
        {
            "corporation": ["a", "b", "c", None],
            "lastmonth_activity": [1.0, 2.0, 9.0, None],
            "lastyear_activity": [10, 20, 30, 40],
            "number_of_employees": [5, 5, 5, 5],
            "exited": [0, 1, 1, 0],
        }
    ).to_csv(out / "finaldata.csv", index=False)
    settings = project.settings()

    summary = dataframe_summary(settings)
    assert set(summary) == {"lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"}
    assert summary["lastmonth_activity"] == {
        "mean": 4.0,
        "median": 2.0,
        "std": pytest.approx(4.3588989),
        **{"p10": 1.2, "p25": 1.5, "p75": 5.5, "p90": pytest.approx(7.6)},  # linear percentiles of 1, 2, 9
    }
    assert summary["lastyear_activity"]["median"] == 25.0
    assert summary["number_of_employees"]["std"] == 0.0
    assert missing_data(settings) == {
        "corporation": 25.0,
        "lastmonth_activity": 25.0,
        "lastyear_activity": 0.0,
        "number_of_employees": 0.0,
        "exited": 0.0,
    }


@pytest.mark.slow
def test_execution_time_times_the_real_steps_without_touching_real_outputs(project: Project) -> None:
    timings = execution_time(project.settings())
    assert set(timings) == {"ingestion_seconds", "training_seconds"}
    assert all(seconds > 0 for seconds in timings.values())
    assert not (project.root / "ingesteddata").exists() and not (project.root / "models").exists()


def test_a_step_that_fails_on_the_scratch_copy_is_timed_as_none_with_a_warning(
    project: Project, caplog: pytest.LogCaptureFixture
) -> None:
    for data_file in (project.root / "sourcedata").iterdir():
        data_file.unlink()  # nothing to ingest, so nothing to train on
    with caplog.at_level(logging.INFO):
        timings = execution_time(project.settings())
    assert timings == {"ingestion_seconds": None, "training_seconds": None}
    warnings = [record.getMessage() for record in caplog.records]
    assert [line.split(":")[0] for line in warnings] == ["timing ingestion", "timing training"], warnings
    assert "no valid data files in" in warnings[0] and "run ingestion.py first" in warnings[1]
    assert not logging.root.manager.disable, "the steps' own log records are silenced only while they are timed"


class FakeIndex(http.server.BaseHTTPRequestHandler):
    """A package index on loopback answering the PyPI JSON API for two packages."""

    latest = {"pandas": "99.0.0", "flask": None}

    def do_GET(self) -> None:
        name = self.path.strip("/").split("/")[-2]
        version = self.latest[name] if name in self.latest else installed_version(name)
        if version is None:
            self.send_error(404)
            return
        body = json.dumps({"info": {"version": version}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_index() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeIndex)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/pypi"
    server.shutdown()


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers: what a hung network looks like."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/pypi"
    listener.close()


def requirements(project: Project, text: str) -> None:
    (project.root / "requirements.txt").write_text(text)


def test_dependency_status_against_a_package_index(project: Project, fake_index: str) -> None:
    requirements(
        project, "# runtime\npandas==3.1.1\nscikit-learn==1.9.1  # pinned\n\n-r other.txt\nflask\nnot-a-real-pkg-xyz\n"
    )
    project.edit_config(package_index_url=fake_index)
    rows = {row["package"]: row for row in outdated_packages_list(project.settings())}
    assert list(rows) == ["pandas", "scikit-learn", "flask", "not-a-real-pkg-xyz"]
    assert rows["pandas"] == {
        "package": "pandas",
        "installed": installed_version("pandas"),
        "latest": "99.0.0",
        "status": "outdated",
    }
    assert rows["scikit-learn"]["status"] == "up to date"
    assert rows["flask"]["latest"] == "unknown" and rows["flask"]["status"] == "unknown"
    assert rows["not-a-real-pkg-xyz"]["installed"] is None and rows["not-a-real-pkg-xyz"]["status"] == "not installed"


def test_dependency_check_says_unknown_instead_of_hanging(project: Project, silent_server: str) -> None:
    requirements(project, "pandas\nflask\nrequests\n")
    project.edit_config(package_index_url=silent_server, dependency_check_timeout_seconds=0.5)
    rows = outdated_packages_list(project.settings())
    assert [(r["package"], r["latest"], r["status"]) for r in rows] == [
        ("pandas", "unknown", "unknown"),
        ("flask", "unknown", "unknown"),
        ("requests", "unknown", "unknown"),
    ]


def test_requirement_names_skip_options_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("numpy==2.4.6\n# comment\n-r dev.txt\n--index-url x\nFlask[async]>=3  # web\n\n")
    assert requirement_names(path) == ["numpy", "Flask"]


@pytest.mark.slow
def test_a_diagnostics_run_is_saved_as_one_snapshot(deployed_project: Project) -> None:
    practice = deployed_project.practice_config  # the config whose run deployed v0001 and ingested its data
    settings = deployed_project.settings(practice)
    with deployed_project.store(practice) as store:
        snapshot = run_diagnostics(settings, store).as_json()
        assert store.latest_diagnostics() == snapshot
    saved = json.loads((settings.output_model_path / "diagnostics.json").read_text())
    assert saved == snapshot and DiagnosticsSnapshot.from_json(saved).as_json() == snapshot
    assert snapshot["model_version"] == "v0001" and snapshot["timestamp"].endswith("Z")
    assert snapshot["summary_statistics"]["lastmonth_activity"]["mean"] == pytest.approx(
        pd.read_csv(settings.output_folder_path / "finaldata.csv")["lastmonth_activity"].mean()
    )
    assert snapshot["missing_data_percent"]["exited"] == 0.0
    assert snapshot["execution_time_seconds"]["training_seconds"] > 0
    assert {row["status"] for row in snapshot["dependencies"]} == {"unknown"}  # the test index port is closed
    assert snapshot["test_predictions"]["rows"] == 5


@pytest.mark.slow
def test_diagnostics_script_prints_the_snapshot(deployed_project: Project) -> None:
    result = deployed_project.run("diagnostics.py", config=deployed_project.practice_config)
    assert json.loads(result.stdout)["model_version"] == "v0001"
