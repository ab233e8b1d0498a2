"""apicalls.py against the real API (gunicorn on a free loopback port), and from fullprocess.py after a deploy."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from apicalls import EndpointFailed, call_all_endpoints
from risk.artifacts import API_RETURNS_NAME
from risk.versions import read_record
from tests.support import AMBIENT_VARIABLES, REPO, Project, free_port, serve

pytestmark = pytest.mark.slow

ENDPOINTS = ("POST /prediction", "GET /scoring", "GET /summarystats", "GET /diagnostics", "GET /health", "GET /metrics")


def sections(report: str) -> dict[str, tuple[str, str]]:
    """The report's calls: ``"GET /scoring"`` -> (the heading's status part, the response text)."""
    found = {}
    for block in report.split("\n== ")[1:]:
        heading, _, body = block.partition("\n")
        call, _, status = heading.partition(" -> ")
        found[" ".join(call.split()[:2])] = (status, body.strip())
    return found


def practice_project(deployed_template: Project, root: Path) -> Project:
    """A copy of the deployed project, its scripts run on the practice config (whose run deployed v0001 and holds
    its records and diagnostics)."""
    project = deployed_template.copy_to(root)
    return dataclasses.replace(project, config=project.practice_config)


@pytest.fixture
def live(deployed_template: Project, tmp_path: Path):
    """A copy of the deployed project whose (practice) config's api_url points at a running gunicorn."""
    project = practice_project(deployed_template, tmp_path / "project")
    with serve(project, "gunicorn") as base:
        project.edit_config(api_url=base + "/")
        yield project


def test_apicalls_writes_every_response(live: Project) -> None:
    result = live.run("apicalls.py")
    settings = live.settings()
    report_path = settings.output_model_path / API_RETURNS_NAME
    assert result.stdout.strip() == str(report_path)
    calls = sections(report_path.read_text())
    assert list(calls) == list(ENDPOINTS)
    assert all(status == "200 OK" for status, _ in calls.values())
    prediction = json.loads(calls["POST /prediction"][1])
    assert prediction["model_version"] == "v0001" and prediction["source"] == "testdata/testdata.csv"
    assert prediction["rows"] == 5
    scoring = json.loads(calls["GET /scoring"][1])
    assert scoring["f1"] == pytest.approx(read_record(settings, "v0001").f1)
    assert "summary_statistics" in json.loads(calls["GET /summarystats"][1])
    assert "execution_time_seconds" in json.loads(calls["GET /diagnostics"][1])
    assert "risk_api_requests_total" in calls["GET /metrics"][1]
    assert call_all_endpoints(settings) == report_path  # the function fullprocess.py calls


def test_api_down_exits_non_zero_and_writes_nothing(deployed_template: Project, tmp_path: Path) -> None:
    project = deployed_template.copy_to(tmp_path / "project")
    url = f"http://127.0.0.1:{free_port()}/"
    project.edit_config(api_url=url)
    result = project.run("apicalls.py", check=False)
    assert result.returncode == 2
    assert f"no API answers at {url}" in result.stderr
    assert f"start it with `{sys.executable} app.py --config config.json`" in result.stderr  # this interpreter
    assert f"then rerun `{sys.executable} apicalls.py --config config.json`" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (project.settings().output_model_path / API_RETURNS_NAME).exists()


def project_venv(root: Path) -> Path:
    """``root/.venv/bin/python``: this test run's virtualenv, as a project's own ``.venv`` (its pyvenv.cfg and lib)."""
    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests do not run in a virtualenv")
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    shutil.copy(Path(sys.prefix) / "pyvenv.cfg", venv / "pyvenv.cfg")
    (venv / "lib").symlink_to(Path(sys.prefix) / "lib", target_is_directory=True)
    (venv / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    return venv / "bin" / "python"


def test_hints_name_the_project_interpreter_relative_to_the_project(deployed_template: Project, tmp_path: Path) -> None:
    """From a fresh clone's ``.venv`` (a bare ``python`` has no pandas there), the hint says ``.venv/bin/python``."""
    project = deployed_template.copy_to(tmp_path / "project")
    project.edit_config(project.practice_config, api_url=f"http://127.0.0.1:{free_port()}/")
    python = project_venv(project.root)
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT_VARIABLES}
    result = subprocess.run(
        [str(python), str(REPO / "apicalls.py"), "--config", "config_practice.json"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert (
        "start it with `.venv/bin/python app.py --config config_practice.json` or gunicorn (see README, 'The API'), "
        "then rerun `.venv/bin/python apicalls.py --config config_practice.json`"
    ) in result.stderr


def test_failing_endpoints_are_named_and_the_token_is_sent(deployed_template: Project, tmp_path: Path) -> None:
    project = practice_project(deployed_template, tmp_path / "project")
    with serve(project, "gunicorn", env={"RISK_API_TOKEN": "tok"}, workers=1) as base:
        project.edit_config(api_url=base + "/")
        result = project.run("apicalls.py", check=False)
        assert result.returncode == 2
        assert (
            "5 of 6 API call(s) failed: POST /prediction answered 401: this API needs a bearer token" in result.stderr
        )
        report = (project.settings().output_model_path / API_RETURNS_NAME).read_text()
        calls = sections(report)
        assert calls["GET /scoring"][0] == "401 UNAUTHORIZED   FAILED" and calls["GET /health"][0] == "200 OK"
        with pytest.raises(EndpointFailed, match="GET /diagnostics answered 401"):
            call_all_endpoints(project.settings())
        project.run("apicalls.py", env={"RISK_API_TOKEN": "tok"})
    calls = sections((project.settings().output_model_path / API_RETURNS_NAME).read_text())
    assert all(status == "200 OK" for status, _ in calls.values())


def test_fullprocess_deploys_and_the_running_api_serves_it(project: Project) -> None:
    """The API starts with nothing deployed; fullprocess bootstraps v0001 and calls it; no restart needed."""
    with serve(project, "gunicorn") as base:
        project.edit_config(api_url=base + "/")
        result = project.run_in_process("fullprocess.py")
        assert f"API answered at {base}/; wrote" in result.stderr
    calls = sections((project.settings().output_model_path / API_RETURNS_NAME).read_text())
    assert all(status == "200 OK" for status, _ in calls.values())
    assert json.loads(calls["POST /prediction"][1])["model_version"] == "v0001"
    assert json.loads(calls["GET /diagnostics"][1])["model_version"] == "v0001"
