"""Course clients' request shapes, unchanged (re-written from what eleven public course solutions send): the path
keys file_location and dataset_path, in a JSON body and in the query string of a body-less POST, a project path with
a leading slash, an unrecognised query key, a file outside the data folders, and the snapshot's parts a client asks
for by name. In-process (create_app, spoken to with requests); the servers' ports are in tests/test_app.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from risk.api import create_app
from tests.support import COLUMNS, Project, in_process

TEST_ROWS = 5


@pytest.fixture(scope="module")
def course_project(deployed_template: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = deployed_template.copy_to(tmp_path_factory.mktemp("course") / "project")
    (project.root / "secret.csv").write_text(f"{COLUMNS}\nsecret,1,2,3,0\n")  # in the project folder, outside the data
    return project


@pytest.fixture(scope="module")
def url(course_project: Project) -> Iterator[str]:
    with in_process(create_app(course_project.settings(course_project.practice_config))) as base:
        yield base


def predictions(response: requests.Response) -> int:
    assert response.status_code == 200, response.text
    return response.json()["rows"]


@pytest.mark.parametrize("key", ["file_location", "dataset_path", "filepath", "filename"])
def test_a_json_body_naming_the_file_by_each_key(url: str, key: str) -> None:
    assert predictions(requests.post(f"{url}/prediction", json={key: "testdata/testdata.csv"})) == TEST_ROWS


@pytest.mark.parametrize("key", ["file_location", "dataset_path"])
def test_the_key_in_the_query_string_of_a_body_less_post(url: str, key: str) -> None:
    assert predictions(requests.post(f"{url}/prediction", params={key: "testdata/testdata.csv"})) == TEST_ROWS


def test_a_bare_file_name_as_dataset_path(url: str) -> None:
    assert predictions(requests.post(f"{url}/prediction", json={"dataset_path": "testdata.csv"})) == TEST_ROWS


def test_a_project_path_with_a_leading_slash_is_read_from_the_project_folder(url: str) -> None:
    assert predictions(requests.get(f"{url}/prediction", params={"filepath": "/testdata/testdata.csv"})) == TEST_ROWS
    for outside in ("/etc/passwd", "/secret.csv", "/testdata/../secret.csv"):
        response = requests.get(f"{url}/prediction", params={"filepath": outside})
        assert response.status_code in (400, 403) and "secret,1" not in response.text


def test_an_unrecognised_query_key_is_named_with_the_accepted_ones(url: str) -> None:
    response = requests.post(f"{url}/prediction", params={"foo": "bar"})
    assert response.status_code == 400
    message = response.json()["error"]
    assert "its keys are 'foo'" in message and "file_location" in message and "dataset_path" in message


def test_a_file_outside_the_data_folders_says_so_and_how_to_allow_a_folder(url: str) -> None:
    response = requests.post(f"{url}/prediction", json={"filepath": "secret.csv"})
    assert response.status_code == 404 and "secret,1" not in response.text
    message = response.json()["error"]
    assert "inside the data folders" in message and "api_data_folders" in message
    absent = requests.post(f"{url}/prediction", json={"filepath": "absent.csv"}).json()["error"]
    assert absent.replace("absent.csv", "secret.csv") == message  # the same answer: no existence oracle


@pytest.mark.parametrize(
    ("endpoint", "key"),
    [
        ("missingdata", "missing_data_percent"),
        ("executiontime", "execution_time_seconds"),
        ("outdatedpackages", "dependencies"),
    ],
)
def test_the_snapshots_parts_a_course_client_asks_for(
    url: str, course_project: Project, endpoint: str, key: str
) -> None:
    with course_project.store(course_project.practice_config) as store:
        snapshot = store.latest_diagnostics()
    body = requests.get(f"{url}/{endpoint}").json()
    assert body[key] == snapshot[key] and body["model_version"] == snapshot["model_version"]
