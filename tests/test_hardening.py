"""Issue 12, hardening: each finding of the attacker's and the careless operator's tour, held by a test.

In-process where the behaviour is the app's or a module's; the real scripts as subprocesses where it is about
them (exit codes, one clear line); the real gunicorn over HTTP for the read-only API user. The hostile-input
suite (fuzzing, wide headers and chunked bodies on the real servers, ingestion under a memory cap) is
tests/test_hostile.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ingestion import merge_multiple_dataframe
from risk.api import create_app
from risk.api.serving import STREAM_ROWS
from risk.config import ConfigError, load_config
from risk.deployed import load_deployed_model
from risk.fastread import read_files
from risk.inputscan import scan_folder
from risk.modelfiles import ModelIntegrityError, NotAModel, UnsafeModelFile
from risk.predict import predict_frame
from risk.schema import MAX_FIELDS, check_schema, parse_csv_text
from risk.store import RecordsStore
from risk.versions import CURRENT_LINK, VERSIONS_DIR
from tests.support import (
    AMBIENT_VARIABLES,
    COLUMNS,
    REPO,
    Project,
    free_port,
    gunicorn_command,
    in_process,
    running_server,
)

ONE_ROW = {"lastmonth_activity": 234, "lastyear_activity": 3, "number_of_employees": 10}
TEST_CSV = "testdata/testdata.csv"
SCRIPT_TIMEOUT = 120


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the variables tests set themselves, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if k not in AMBIENT_VARIABLES}, **extra}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a run that failed as a user's mistake should: no traceback, one line."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def unprivileged() -> list[str]:
    """A command prefix under which the command obeys file permissions: for root, setpriv dropping the
    capabilities that override them (root's own 0555 folder is then read-only to it); nothing for other users."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a folder unwritable to the server")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner"]


@contextlib.contextmanager
def read_only(*paths: Path) -> Iterator[None]:
    """Make ``paths`` (recursively) read-only while inside; restore their modes after."""
    modes = {p: p.lstat().st_mode for root in paths for p in [root, *root.rglob("*")] if not p.is_symlink()}
    try:
        for path in modes:
            os.chmod(path, modes[path] & ~0o222)
        yield
    finally:
        for path, mode in modes.items():
            os.chmod(path, mode)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- 1 and 2: chunked bodies and wide headers on the real servers are in tests/test_hostile.py ---


def test_a_wide_header_in_the_input_folder_is_rejected_by_name_with_the_count_and_limit(project: Project) -> None:
    wide = project.root / "sourcedata" / "wide.csv"
    wide.write_text(",".join(["a"] * 5_000) + "\n" + ",".join(["1"] * 5_000) + "\n")
    with project.store() as store:
        result = merge_multiple_dataframe(project.settings(), store)
    reasons = {record.file_name: record.reason for record in result.rejected}
    assert f"wide.csv has more than {MAX_FIELDS} fields on its header line (5,000 counted" in reasons["wide.csv"]
    assert f"the limit is {MAX_FIELDS}" in reasons["wide.csv"]
    assert "remove the other columns" in reasons["wide.csv"]
    assert result.accepted == ["dataset3.csv", "dataset4.csv"]


def test_json_records_with_more_keys_than_the_limit_are_refused_before_a_frame_is_built(project: Project) -> None:
    many = [{f"key{i}": i} for i in range(50_000)]  # one column per key: 50,000 x 50,000 cells if built
    with in_process(create_app(project.settings())) as base:
        response = requests.post(f"{base}/prediction", json=many, timeout=30)
        assert response.status_code == 400
        message = response.json()["error"]
        assert f"has more than {MAX_FIELDS} distinct keys in its records (50,000 counted" in message
        one = requests.post(f"{base}/prediction", json={**ONE_ROW, **{f"k{i}": 1 for i in range(5_000)}}, timeout=30)
        assert one.status_code == 400 and f"more than {MAX_FIELDS} distinct keys" in one.json()["error"]


# --- 3: what one request may read ---


def test_a_path_named_file_over_the_limit_is_refused_with_413_before_it_is_read(deployed_project: Project) -> None:
    limit = 2_000
    settings = deployed_project.settings()._replace(api_max_upload_bytes=limit)
    big = deployed_project.root / "testdata" / "big.csv"
    big.write_text(COLUMNS + "\n" + "".join(f"c{i},1,2,3,0\n" for i in range(300)))
    with in_process(create_app(settings)) as base:
        response = requests.get(f"{base}/prediction", params={"filepath": "testdata/big.csv"}, timeout=30)
        assert response.status_code == 413, response.text
        message = response.json()["error"]
        assert f"testdata/big.csv is {big.stat().st_size} bytes, over the limit of {limit} bytes" in message
        assert "api_max_upload_bytes" in message
        assert requests.get(f"{base}/prediction", params={"filepath": TEST_CSV}, timeout=30).status_code == 200


def test_a_large_answer_is_streamed_with_every_row_as_computed(deployed_project: Project) -> None:
    """Answers over STREAM_ROWS rows are written a block at a time (so a big request does not hold every row
    object and the whole text at once); the JSON is the one the pipeline's own functions give."""
    count = STREAM_ROWS * 2 + 17
    lines = [f"c{i},{i % 300},{i % 7},{i % 50}" if i % 13 else f"c{i},,{i % 7}," for i in range(count)]
    text = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\n" + "\n".join(lines) + "\n"
    settings = deployed_project.settings()
    clean = check_schema(parse_csv_text(text), require_target=False)
    expected = predict_frame(clean, load_deployed_model(settings).model)
    with in_process(create_app(settings)) as base:
        response = requests.post(
            f"{base}/prediction", data=text.encode(), headers={"Content-Type": "text/csv"}, timeout=60
        )
    body = response.json()
    assert response.status_code == 200 and body["rows"] == len(body["predictions"]) == count
    assert [row["corporation"] for row in body["predictions"]] == clean["corporation"].tolist()
    assert [row["prediction"] for row in body["predictions"]] == expected["prediction"].tolist()
    assert [row["probability"] for row in body["predictions"]] == expected["probability"].tolist()
    imputed = [i for i, row in enumerate(body["predictions"]) if "imputed" in row]
    assert imputed == [i for i in range(count) if i % 13 == 0]
    assert body["predictions"][0]["imputed"] == ["lastmonth_activity", "number_of_employees"]


# --- 4: a deployment folder others can write ---


class Booby:
    """Unpickling this creates the marker file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def deploy_pickle(project: Project, payload: bytes, recorded_sha256: str | None = None) -> Path:
    """Make v0002 current: v0001's files with ``payload`` as the pickle, its metadata and deployment.json agreeing
    with it, and the store recording ``recorded_sha256`` (by default the payload's) as its deploy. Returns it."""
    settings = project.settings()
    prod = settings.prod_deployment_path
    version = prod / VERSIONS_DIR / "v0002"
    shutil.copytree(prod / VERSIONS_DIR / "v0001", version)
    (version / "trainedmodel.pkl").write_bytes(payload)
    digest = sha256(payload)
    for name in ("trainedmodel.json", "deployment.json"):
        data = json.loads((version / name).read_text())
        data["model_sha256"] = digest
        if name == "deployment.json":
            data["version"] = "v0002"
            data["files"]["trainedmodel.pkl"] = digest
        (version / name).write_text(json.dumps(data))
    with RecordsStore(settings.records_db_path) as store:
        store.record_deployment("deploy", "v0002", "v0001", 0.5, recorded_sha256 or digest)
    tmp = prod / ".current.tmp"
    os.symlink(f"{VERSIONS_DIR}/v0002", tmp)
    os.replace(tmp, prod / CURRENT_LINK)
    return version


def make_unsafe(project: Project, version: Path, how: str, marker: Path) -> str:
    """Weaken v0002 in one way; returns the words the refusal must contain."""
    prod = project.settings().prod_deployment_path
    if how == "group-writable pickle":
        os.chmod(version / "trainedmodel.pkl", 0o664)
        return f"writable by group, so they could replace the model with code of their own; run chmod go-w {version / 'trainedmodel.pkl'}"
    if how == "world-writable version folder":
        os.chmod(version, 0o757)
        return "the folder is writable by others"
    if how == "group-writable deployment folder":
        os.chmod(prod, 0o775)
        return f"chmod go-w {prod}"
    if how == "writable metadata":
        os.chmod(version / "trainedmodel.json", 0o666)
        return "writable by group and others"
    if how == "pickle owned by another user":
        if os.geteuid() != 0:
            pytest.skip("only root can give a file to another user")
        os.chown(version / "trainedmodel.pkl", 54321, -1)
        return "is owned by uid 54321, not by"
    if how == "symlinked pickle":
        outside = marker.parent / "elsewhere.pkl"
        (version / "trainedmodel.pkl").rename(outside)
        (version / "trainedmodel.pkl").symlink_to(outside)
        return "it is a symlink"
    if how == "model_file outside the version":
        outside = marker.parent / "elsewhere.pkl"
        shutil.copy(version / "trainedmodel.pkl", outside)
        metadata = json.loads((version / "trainedmodel.json").read_text())
        metadata["model_file"] = str(outside)
        (version / "trainedmodel.json").write_text(json.dumps(metadata))
        return "which is not a file beside it; model_file must be a plain name"
    raise AssertionError(how)


UNSAFE = [
    "group-writable pickle",
    "world-writable version folder",
    "group-writable deployment folder",
    "writable metadata",
    "pickle owned by another user",
    "symlinked pickle",
    "model_file outside the version",
]


@pytest.mark.parametrize("how", UNSAFE)
def test_a_model_others_could_have_written_is_never_unpickled(
    deployed_project: Project, tmp_path: Path, how: str
) -> None:
    marker = tmp_path / "unpickled.marker"
    version = deploy_pickle(deployed_project, pickle.dumps(Booby(marker)))
    words = make_unsafe(deployed_project, version, how, marker)
    with pytest.raises(ModelIntegrityError) as refused:
        load_deployed_model(deployed_project.settings())
    assert words in str(refused.value)
    if how != "model_file outside the version":
        assert isinstance(refused.value, UnsafeModelFile) and "refusing to unpickle" in str(refused.value)
    assert not marker.exists()


def test_the_same_booby_trap_with_safe_files_is_unpickled_so_the_refusals_are_the_checks(
    deployed_project: Project, tmp_path: Path
) -> None:
    """The control for the test above: consistent hashes and safe permissions do load the pickle (it is the
    owner's to deploy), so each refusal there comes from the one weakness it adds."""
    marker = tmp_path / "unpickled.marker"
    deploy_pickle(deployed_project, pickle.dumps(Booby(marker)))
    with pytest.raises(NotAModel):
        load_deployed_model(deployed_project.settings())
    assert marker.exists()


def test_a_model_the_records_store_recorded_otherwise_is_never_unpickled(
    deployed_project: Project, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled.marker"
    deploy_pickle(deployed_project, pickle.dumps(Booby(marker)), recorded_sha256="0" * 64)
    with pytest.raises(ModelIntegrityError, match="the records store .* recorded 000000000000... when it was deployed"):
        load_deployed_model(deployed_project.settings())
    store = RecordsStore(deployed_project.settings().records_db_path, readonly=True)
    with store, pytest.raises(ModelIntegrityError, match="refusing to unpickle"):  # an open store is checked too
        load_deployed_model(deployed_project.settings(), store=store)
    with in_process(create_app(deployed_project.settings())) as base:
        response = requests.post(f"{base}/prediction", json=[ONE_ROW], timeout=30)
        assert response.status_code == 503 and "recorded 000000000000..." in response.json()["error"]
    assert not marker.exists()


def test_the_api_says_which_file_to_chmod(
    deployed_project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "unpickled.marker"
    version = deploy_pickle(deployed_project, pickle.dumps(Booby(marker)))
    os.chmod(version / "trainedmodel.pkl", 0o666)
    with in_process(create_app(deployed_project.settings())) as base:
        response = requests.post(f"{base}/prediction", json=[ONE_ROW], timeout=30)
        assert response.status_code == 503
        assert "chmod go-w production_deployment/versions/v0002/trainedmodel.pkl" in response.json()["error"]
        assert str(deployed_project.root) not in response.text  # an open API shows no absolute server path
    monkeypatch.setenv("RISK_API_TOKEN", "s3cret")
    with in_process(create_app(deployed_project.settings())) as base:  # a token holder sees the full path
        headers = {"Authorization": "Bearer s3cret"}
        response = requests.post(f"{base}/prediction", json=[ONE_ROW], headers=headers, timeout=30)
        assert f"chmod go-w {version / 'trainedmodel.pkl'}" in response.json()["error"]
    assert not marker.exists()


@pytest.mark.slow
def test_the_pipelines_own_deploys_pass_the_checks_under_a_group_writable_umask(project: Project) -> None:
    """umask 002 (Debian's per-user groups) would make copied files 0664 and new folders 0775, which the loader
    refuses; the pipeline sets its own modes, so what it deploys loads."""
    command = [sys.executable, str(REPO / "fullprocess.py"), "--config", str(project.practice_config)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=clean_env(), preexec_fn=lambda: os.umask(0o002)
    )
    assert result.returncode == 0, result.stderr
    settings = project.settings()
    deployed = load_deployed_model(settings)
    for path in (settings.prod_deployment_path, deployed.path.parent, deployed.path, *deployed.path.iterdir()):
        assert path.stat().st_mode & 0o022 == 0, oct(path.stat().st_mode)
    with in_process(create_app(settings)) as base:
        assert requests.post(f"{base}/prediction", json=[ONE_ROW], timeout=30).status_code == 200


# --- 5: the API as a user who cannot write the project ---


@contextlib.contextmanager
def unprivileged_gunicorn(project: Project, log_path: Path, workers: int = 2) -> Iterator[str]:
    """The real gunicorn serving ``project`` under :func:`unprivileged` (two workers: their shared metrics need a
    folder they can write); yields its base URL."""
    port = free_port()
    command = [*unprivileged(), *gunicorn_command(port, workers)]
    env = clean_env(RISK_CONFIG=str(project.config), PYTHONDONTWRITEBYTECODE="1")
    with running_server(command, port, log_path, REPO, env) as url:
        yield url


def every_file(root: Path) -> dict[str, tuple[int, int, int]]:
    return {str(p): (p.lstat().st_mtime_ns, p.lstat().st_size, p.lstat().st_mode) for p in root.rglob("*")}


GETS = (
    "health",
    "scoring",
    "summarystats",
    "diagnostics",
    "metrics",
    "dashboard",
    "history",
    f"prediction?filepath={TEST_CSV}",
)


@pytest.mark.slow
def test_a_read_only_project_serves_every_get_and_no_get_creates_a_file(
    history_project: Project, tmp_path: Path
) -> None:
    project = history_project.copy_to(tmp_path / "project")
    with read_only(project.root), unprivileged_gunicorn(project, tmp_path / "gunicorn.log") as url:
        before = every_file(project.root)
        for endpoint in GETS:
            response = requests.get(f"{url}/{endpoint}", timeout=30)
            assert response.status_code == 200, (endpoint, response.text[:300])
        metrics = requests.get(f"{url}/metrics", timeout=30).text
        assert 'risk_latest_f1{kind="test"}' in metrics and 'risk_deployed_model_info{version="v0002"} 1.0' in metrics
        assert every_file(project.root) == before


@pytest.mark.slow
def test_metrics_and_scoring_answer_when_the_store_cannot_be_read(history_project: Project, tmp_path: Path) -> None:
    project = history_project.copy_to(tmp_path / "project")
    store = project.settings().records_db_path
    with unprivileged_gunicorn(project, tmp_path / "gunicorn.log", workers=1) as url:
        assert requests.post(f"{url}/prediction", json=[ONE_ROW], timeout=30).status_code == 200
        os.chmod(store, 0)
        try:
            metrics = requests.get(f"{url}/metrics", timeout=30)
            assert metrics.status_code == 200, metrics.text
            assert (
                "risk_api_requests_total" in metrics.text
                and 'risk_deployed_model_info{version="v0002"}' in metrics.text
            )
            scoring = requests.get(f"{url}/scoring", timeout=30)
            assert scoring.status_code == 200 and scoring.json()["scored_at"] is None, scoring.text
            summary = requests.get(f"{url}/summarystats", timeout=30)
            assert summary.status_code == 503 and "cannot be read" in summary.json()["error"]
        finally:
            os.chmod(store, 0o644)


# --- 8: config values, config files and log folders ---


def write_config(project: Project, **changes: Any) -> Path:
    return project.edit_config(**changes)


RAW = "@raw@"


@pytest.mark.parametrize(
    ("key", "raw", "named"),
    [
        ("api_timeout_seconds", "NaN", "NaN is not a number in JSON"),
        ("api_timeout_seconds", "Infinity", "Infinity is not a number in JSON"),
        ("model.C", "-Infinity", "-Infinity is not a number in JSON"),
        (
            "data_drift_psi_bins",
            "1000000000",
            "key 'data_drift_psi_bins' must be a whole number of at least 2 and at most 1000",
        ),
        (
            "api_max_upload_bytes",
            "10000000000000",
            "key 'api_max_upload_bytes' must be a whole number greater than 0 and at most 1073741824",
        ),
        ("api_workers", "100000", "key 'api_workers' must be a whole number greater than 0 and at most 64"),
        ("drift_history_size", "1e9", "key 'drift_history_size' must be a whole number"),
        (
            "api_timeout_seconds",
            "1" + "0" * 400,
            "key 'api_timeout_seconds' must be a number greater than 0 and at most 3600",
        ),
        (
            "model.max_iter",
            "10000000000",
            "key 'model.max_iter' must be a whole number greater than 0 and at most 1000000",
        ),
        ("model.random_state", "-1", "key 'model.random_state' must be a whole number from 0 to 4294967295, or null"),
        ("input_folder_path", '"source\\u0000data"', "key 'input_folder_path' must not contain a NUL byte"),
    ],
)
def test_config_values_must_be_finite_and_sane(project: Project, key: str, raw: str, named: str) -> None:
    data = json.loads(project.config.read_text())
    *parents, name = key.split(".")
    holder = data
    for parent in parents:
        holder = holder[parent]
    holder[name] = RAW
    project.config.write_text(json.dumps(data, indent=2).replace(f'"{RAW}"', raw))
    with pytest.raises(ConfigError) as refused:
        load_config(project.config)
    assert named in str(refused.value) and str(project.config) in str(refused.value)


def test_a_config_that_is_not_utf8_is_named(project: Project) -> None:
    project.config.write_bytes(project.config.read_bytes().replace(b'"sourcedata"', b'"source\xe9data"'))
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte \d+: b'\\xe9'\); re-save it as UTF-8"):
        load_config(project.config)


@pytest.mark.slow
def test_a_script_with_a_non_utf8_or_nan_config_exits_2_with_one_clear_line(project: Project) -> None:
    project.config.write_bytes(project.config.read_bytes().replace(b'"sourcedata"', b'"source\xe9data"'))
    result = project.run("ingestion.py", check=False, timeout=SCRIPT_TIMEOUT)
    assert result.returncode == 2 and "re-save it as UTF-8" in one_line_error(result)
    project.config.write_text(project.config.read_text(encoding="latin-1").replace("source\xe9data", "sourcedata"))
    project.config.write_text(
        project.config.read_text().replace('"api_timeout_seconds": 5', '"api_timeout_seconds": NaN')
    )
    result = project.run("apicalls.py", check=False, timeout=SCRIPT_TIMEOUT)
    assert result.returncode == 2 and "NaN is not a number in JSON" in one_line_error(result)


@pytest.mark.slow
def test_an_unwritable_log_folder_exits_2_with_one_clear_line(project: Project) -> None:
    logs = project.root / "logs"
    logs.mkdir()
    command = [*unprivileged(), sys.executable, str(REPO / "fullprocess.py"), "--config", str(project.config)]
    with read_only(logs):
        result = subprocess.run(command, capture_output=True, text=True, timeout=SCRIPT_TIMEOUT, env=clean_env())
    assert result.returncode == 2
    line = one_line_error(result)
    assert f"cannot write the log file {logs / 'fullprocess.log'} (Permission denied)" in line
    assert "set log_folder_path in the config" in line


# --- 9: the token ---


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("", "RISK_API_TOKEN is set but empty"),
        ("   ", "RISK_API_TOKEN is set but empty"),
        (" s3cret ", "RISK_API_TOKEN has blanks or a newline around the token"),
        ("s3cret\n", "RISK_API_TOKEN has blanks or a newline around the token"),
        ("s3c ret", "RISK_API_TOKEN holds characters an HTTP header cannot carry"),
    ],
)
def test_an_empty_or_padded_token_refuses_to_start(
    deployed_project: Project, monkeypatch: pytest.MonkeyPatch, value: str, named: str
) -> None:
    monkeypatch.setenv("RISK_API_TOKEN", value)
    with pytest.raises(ConfigError, match=named):
        create_app(deployed_project.settings())


def test_a_log_line_says_whether_the_api_is_open_or_token_protected(
    deployed_project: Project, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("RISK_API_TOKEN", raising=False)
    with caplog.at_level(logging.INFO, logger="risk.api"):
        create_app(deployed_project.settings())
    assert "the API is open: RISK_API_TOKEN is not set" in caplog.text
    caplog.clear()
    monkeypatch.setenv("RISK_API_TOKEN", "s3cret")
    with caplog.at_level(logging.INFO, logger="risk.api"):
        create_app(deployed_project.settings())
    assert "the API is token-protected" in caplog.text and "s3cret" not in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("server", ["flask", "gunicorn"])
def test_the_servers_refuse_an_empty_token_with_one_clear_line(deployed_project: Project, server: str) -> None:
    if server == "flask":
        command = [
            sys.executable,
            str(REPO / "app.py"),
            "--config",
            str(deployed_project.config),
            "--port",
            str(free_port()),
        ]
    else:
        command = gunicorn_command(free_port(), workers=1)
    env = clean_env(RISK_CONFIG=str(deployed_project.config), RISK_API_TOKEN="")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30, cwd=REPO, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{server} started and served with an empty RISK_API_TOKEN")
    assert result.returncode != 0 and (server == "gunicorn" or result.returncode == 2)
    assert "RISK_API_TOKEN is set but empty" in one_line_error(result)


# --- 10: /health tells the truth ---


def test_health_is_unavailable_503_when_nothing_can_serve(project: Project) -> None:
    with in_process(create_app(project.settings())) as base:
        response = requests.get(f"{base}/health", timeout=30)
        prediction = requests.post(f"{base}/prediction", json=[ONE_ROW], timeout=30)
    assert prediction.status_code == 503
    assert response.status_code == 503 and response.json()["status"] == "unavailable"
    assert "no model is deployed in production_deployment" in response.json()["model_problem"]
    assert str(project.root) not in response.text


def test_health_is_degraded_while_an_older_model_serves_and_unavailable_without_one(
    deployed_project: Project, tmp_path: Path
) -> None:
    with in_process(create_app(deployed_project.settings())) as base:
        assert requests.get(f"{base}/health", timeout=30).json()["status"] == "ok"
        deploy_pickle(deployed_project, pickle.dumps({"not": "a model"}))
        health = requests.get(f"{base}/health", timeout=30)
        assert health.status_code == 200, health.text
        body = health.json()
        assert body["status"] == "degraded" and body["model_version"] == "v0002" and body["serving_version"] == "v0001"
        assert "holds a dict, not a model with predict_proba" in body["model_problem"]
        assert str(deployed_project.root) not in health.text and "production_deployment/versions/v0002" in health.text
    with in_process(create_app(deployed_project.settings())) as base:  # a fresh app: nothing verified to fall back on
        health = requests.get(f"{base}/health", timeout=30)
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        prediction = requests.post(f"{base}/prediction", json=[ONE_ROW], timeout=30)
        assert prediction.status_code == 503 and "not a model" in prediction.json()["error"]


def test_health_without_the_token_is_terse_and_with_it_detailed(
    deployed_project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RISK_API_TOKEN", "s3cret")
    deploy_pickle(deployed_project, pickle.dumps(["not a model"]))
    with in_process(create_app(deployed_project.settings())) as base:
        terse = requests.get(f"{base}/health", timeout=30)
        assert terse.status_code == 503 and terse.json() == {"status": "unavailable", "model_version": "v0002"}
        wrong = requests.get(f"{base}/health", headers={"Authorization": "Bearer guess"}, timeout=30)
        assert wrong.json() == terse.json()
        full = requests.get(f"{base}/health", headers={"Authorization": "Bearer s3cret"}, timeout=30)
        assert full.status_code == 503 and "holds a list" in full.json()["model_problem"]


# --- 11: smaller ---


@pytest.mark.parametrize("reader", ["fast", "plain"])
def test_a_file_that_changes_after_the_scan_is_recorded_as_the_bytes_read(project: Project, reader: str) -> None:
    folder = project.root / "sourcedata"
    growing = folder / "dataset4.csv"
    [scanned] = [file for file in scan_folder(folder) if file.name == "dataset4.csv"]
    growing.write_text(growing.read_text() + "grew1,1,2,3,0\ngrew2,4,5,6,1\n")  # after the scan, before the read
    result = read_files([scanned], reader)
    [read] = result.accepted
    assert read.sha256 == sha256(growing.read_bytes()) != scanned.sha256
    assert read.size_bytes == growing.stat().st_size
    assert result.rows_read == [len(growing.read_text().splitlines()) - 1]


def test_a_file_name_with_a_line_break_is_refused_by_name_and_the_others_are_ingested(project: Project) -> None:
    project.write_data("sourcedata", "two\nlines.csv", ["nl1,1,2,3,0"])
    with project.store() as store:
        result = merge_multiple_dataframe(project.settings(), store)
    [refused] = result.rejected
    assert refused.file_name == "two\nlines.csv"
    assert "'two\\nlines.csv' has a line break" in refused.reason and "rename the file" in refused.reason
    listed = (project.root / "ingesteddata" / "ingestedfiles.txt").read_text().splitlines()
    assert listed == ["dataset3.csv", "dataset4.csv"]


def test_a_symlinked_folder_answers_the_same_whether_or_not_a_file_is_behind_it(deployed_project: Project) -> None:
    outside = deployed_project.root.parent / "outside"
    outside.mkdir()
    (outside / "there.csv").write_text(f"{COLUMNS}\nx,1,2,3,0\n")
    (deployed_project.root / "testdata" / "linked").symlink_to(outside, target_is_directory=True)
    with in_process(create_app(deployed_project.settings())) as base:
        answers = [
            requests.get(f"{base}/prediction", params={"filepath": f"testdata/linked/{name}"}, timeout=30)
            for name in ("there.csv", "absent.csv")
        ]
    assert [a.status_code for a in answers] == [403, 403]
    there, absent = (a.json()["error"] for a in answers)
    assert there.replace("there.csv", "X") == absent.replace("absent.csv", "X")
