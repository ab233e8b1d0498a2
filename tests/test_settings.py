"""The config loader: paths relative to the config, defaults, unknown keys tolerated, bad keys named."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from risk.config import ConfigError, load_config
from tests.support import REPO, Project


def write_config(folder: Path, **changes: object) -> Path:
    data = json.loads((REPO / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path = folder / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_shipped_configs_are_production_and_practice() -> None:
    production = load_config(REPO / "config.json")
    practice = load_config(REPO / "config_practice.json")
    assert production.input_folder_path == REPO / "sourcedata"
    assert production.output_model_path == REPO / "models"
    assert practice.input_folder_path == REPO / "practicedata"
    assert practice.output_model_path == REPO / "practicemodels"
    # the practice run deploys into production (the walk-through checks its model on sourcedata next), but never
    # touches production's ingested data, store, reports, logs or metrics textfile
    assert practice.prod_deployment_path == production.prod_deployment_path == REPO / "production_deployment"
    assert practice.output_folder_path == REPO / "practiceingested"
    for field in ("output_folder_path", "output_model_path", "records_db_path", "log_folder_path"):
        assert getattr(practice, field) != getattr(production, field), field
    assert practice.metrics_textfile_path.parent != production.metrics_textfile_path.parent
    assert (REPO / "practiceingested" / ".gitkeep").exists()


def test_paths_resolve_against_the_config_folder_not_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    config = write_config(tmp_path, output_folder_path="/srv/risk/ingested")
    monkeypatch.chdir(REPO)
    settings = load_config(config)
    assert settings.input_folder_path == tmp_path / "sourcedata"
    assert settings.test_data_file == tmp_path / "testdata" / "testdata.csv"
    assert settings.output_folder_path == Path("/srv/risk/ingested")  # absolute paths are kept


def test_defaults_fill_optional_keys(tmp_path: Path) -> None:
    config = write_config(tmp_path, model=None, drift_test=None, records_db_path=None, api_url=None)
    settings = load_config(config)
    assert settings.model.as_config() == {
        "C": 1.0,
        "penalty": "l2",
        "solver": "liblinear",
        "random_state": 0,
        "max_iter": 100,
        "tol": 1e-4,
    }
    assert settings.drift_test == "significant"
    assert settings.records_db_path == tmp_path / "ingesteddata" / "records.sqlite"
    assert settings.api_url == "http://127.0.0.1:8000/"


def test_unknown_keys_from_course_configs_are_tolerated(tmp_path: Path) -> None:
    config = write_config(tmp_path, input_file_extension=".csv")
    assert load_config(config).raw["input_file_extension"] == ".csv"


@pytest.mark.parametrize(
    ("keys", "url", "key", "ignored"),
    [
        ({"url": "http://127.0.0.1:8000/"}, "http://127.0.0.1:8000/", "url", ()),  # the course's starter
        ({"url": "http://localhost:5000"}, "http://localhost:5000/", "url", ()),
        ({"api_port": 8123}, "http://127.0.0.1:8123/", "api_port", ()),
        ({"api_port": "8123"}, "http://127.0.0.1:8123/", "api_port", ()),
        ({"url": "http://127.0.0.1:8001/", "api_port": 8123}, "http://127.0.0.1:8001/", "url", ("api_port",)),
        (
            {"api_url": "http://127.0.0.1:8002/", "url": "http://127.0.0.1:8001/", "api_port": 8123},
            "http://127.0.0.1:8002/",
            "api_url",
            ("url", "api_port"),
        ),
        ({}, "http://127.0.0.1:8000/", None, ()),
    ],
)
def test_the_api_url_comes_from_api_url_else_url_else_api_port(
    tmp_path: Path, keys: dict, url: str, key: str | None, ignored: tuple[str, ...]
) -> None:
    settings = load_config(write_config(tmp_path, **{"api_url": None, **keys}))
    assert (settings.api_url, settings.api_url_key, settings.api_url_ignored) == (url, key, ignored)
    line = settings.api_url_line()
    assert line.startswith(f"API url {url} ")
    if key is None:
        assert "the default: config.json sets none of api_url, url, api_port" in line
    else:
        assert f"from {key!r} in config.json" in line
        assert all(repr(other) in line.split("ignored")[1] for other in ignored)


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"api_port": 0}, "key 'api_port' must be a port number from 1 to 65535"),
        ({"api_port": True}, "key 'api_port' must be a port number from 1 to 65535"),
        ({"api_port": "eighty"}, "key 'api_port' must be a port number from 1 to 65535"),
        ({"url": "127.0.0.1:8000"}, "key 'url' must be an http(s) URL"),
    ],
)
def test_a_bad_url_or_api_port_is_named_when_it_would_be_used(tmp_path: Path, keys: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(write_config(tmp_path, api_url=None, **keys))
    load_config(write_config(tmp_path, **keys))  # api_url given: the course key is not used, so not checked


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"input_folder_path": None}, "missing key 'input_folder_path'"),
        ({"test_data_path": 3}, "key 'test_data_path' must be a non-empty string"),
        ({"drift_test": "bayesian"}, "key 'drift_test' must be one of significant, raw, parametric, nonparametric"),
        ({"model": {"C": -1}}, "key 'model.C' must be a number greater than 0"),
        ({"model": {"alpha": 1}}, "key 'model.alpha' is not a supported setting"),
        ({"api_url": "localhost:8000"}, "key 'api_url' must be an http(s) URL"),
        ({"drift_history_size": 0}, "key 'drift_history_size' must be a whole number greater than 0"),
        ({"drift_history_size": 9}, "key 'drift_history_size' must be at least 10"),
        ({"api_url": "http://127.0.0.1:99999/"}, "key 'api_url' must be an http(s) URL with a valid port"),
        ({"api_url": "http://127.0.0.1:abc/"}, "key 'api_url' must be an http(s) URL with a valid port"),
        ({"model": {"solver": "lbfgs", "penalty": "l1"}}, "key 'model.solver' 'lbfgs' does not support penalty 'l1'"),
    ],
)
def test_a_missing_or_invalid_key_is_named(tmp_path: Path, changes: dict, named: str) -> None:
    config = write_config(tmp_path, **changes)
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_config(config)
    assert str(config) in str(caught.value)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{\n  "input_folder_path": "sourcedata",\n}')
    with pytest.raises(ConfigError, match="not valid JSON at line 3"):
        load_config(path)


def test_missing_config_file_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found.*--config"):
        load_config(tmp_path / "nope.json")


@pytest.mark.slow
def test_a_script_with_a_bad_config_exits_2_with_one_clear_line(project: Project) -> None:
    project.edit_config(drift_test="sometimes")
    result = project.run("fullprocess.py", check=False)
    assert result.returncode == 2
    assert (
        "key 'drift_test' must be one of significant, raw, parametric, nonparametric (got 'sometimes')" in result.stderr
    )
    assert "Traceback" not in result.stderr
