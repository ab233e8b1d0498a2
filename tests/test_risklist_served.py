"""The risk list the pipeline keeps: refresh_risk_list (rank, write, record) and ``GET /risk`` in-process.

The project is the session's ``risk_list_project``: the history project with the bundled book ranked by v0001,
then by the current v0002, through refresh_risk_list as the pipeline does.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import requests

from risk.api import create_app
from risk.deployed import load_deployed_model
from risk.overview import latest_risk_list
from risk.risklist import (
    COLUMNS,
    TRACKED_TOP,
    TypicalClient,
    changes,
    rank_clients,
    read_book,
    read_risklist,
    refresh_risk_list,
)
from risk.store import RecordsStore
from tests.conftest import BUNDLED_BOOK
from tests.support import Project, in_process

pytestmark = pytest.mark.slow

CLIENT_FIELDS = ["rank", "corporation", "probability", "band", "reason"]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_of(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ranked(risk_list_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A copy of the risk list project this module may read (never changed by its tests)."""
    return risk_list_project.copy_to(tmp_path_factory.mktemp("risk-api") / "project")


@pytest.fixture(scope="module")
def api(ranked: Project) -> Iterator[str]:
    """The app on the ranked project, spoken to in-process."""
    with in_process(create_app(ranked.settings())) as base:
        yield base


def the_list(project: Project) -> pd.DataFrame:
    return read_risklist(project.settings().output_model_path / "risklist.csv")


def csv_frame(response: requests.Response) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(response.content), dtype={"corporation": "str"}, keep_default_na=False)


# --- refresh_risk_list ---


def test_refresh_writes_the_list_and_records_it_with_its_top_100_and_calibration(ranked: Project) -> None:
    settings = ranked.settings()
    path = settings.output_model_path / "risklist.csv"
    frame = the_list(ranked)
    deployed = load_deployed_model(settings)
    with RecordsStore(settings.records_db_path, readonly=True) as store:
        latest, previous = store.risk_lists(2)
    assert (latest["model_version"], previous["model_version"]) == (deployed.version, "v0001")
    assert latest["model_sha256"] == deployed.sha256
    assert latest["list_sha256"] == sha256_of(path)
    assert Path(latest["list_path"]).parts[-2:] == path.parts[-2:]  # written in the original, before the copy
    assert latest["book_sha256"] == sha256_of(BUNDLED_BOOK) and latest["book_path"] == str(BUNDLED_BOOK)
    assert latest["book_size_bytes"] == BUNDLED_BOOK.stat().st_size
    assert latest["rows"] == len(frame) == 10_000
    assert tuple(frame.columns) == COLUMNS and (frame["model_version"] == deployed.version).all()

    summary = latest["summary"]
    assert summary["top_100"] == frame["corporation"].iloc[:TRACKED_TOP].tolist()
    assert summary["estimate"]["rows"] == 10_000
    assert summary["estimate"]["low"] <= summary["estimate"]["f1"] <= summary["estimate"]["high"]
    calibration = summary["calibration"]
    assert calibration["rows"] == deployed.metadata["training_rows"] == calibration["training_rows"]
    assert sum(b["count"] for b in calibration["bins"]) == calibration["rows"] and calibration["verdict"]


def test_refresh_computes_the_typical_client_for_a_model_that_records_none(ranked: Project, tmp_path: Path) -> None:
    project = ranked.copy_to(tmp_path / "project")
    settings = project.settings()
    deployed = load_deployed_model(settings)
    recorded = the_list(project)
    old_model = deployed._replace(metadata={k: v for k, v in deployed.metadata.items() if k != "typical_client"})
    with project.store() as store:
        risk_list = refresh_risk_list(settings, store, old_model, BUNDLED_BOOK)
    # v0002 was trained on all ingested rows, so their quartiles are the typical client it recorded
    pd.testing.assert_frame_equal(risk_list.frame, recorded)
    assert TypicalClient.from_json(deployed.metadata["typical_client"]).rows == deployed.metadata["training_rows"]


def test_entrants_come_from_the_two_recorded_top_100s(ranked: Project) -> None:
    settings = ranked.settings()
    v0001 = load_deployed_model(settings, "v0001")
    typical = TypicalClient.from_json(v0001.metadata["typical_client"])
    before = rank_clients(v0001.model, read_book(BUNDLED_BOOK), typical, "v0001", "-").frame
    with RecordsStore(settings.records_db_path, readonly=True) as store:
        view = latest_risk_list(settings, store)
    expected = changes(before, view.frame, TRACKED_TOP)
    assert expected, "the two models rank the book differently"
    assert [(e.rank, e.corporation) for e in view.entrants] == [(e.rank, e.corporation) for e in expected]
    assert all(e.previous_rank is None for e in view.entrants), "outside the previous top 100"
    assert view.previous_model_version == "v0001"


# --- GET /risk ---


def test_risk_answers_the_latest_list_with_its_estimate(ranked: Project, api: str) -> None:
    frame = the_list(ranked)
    with RecordsStore(ranked.settings().records_db_path, readonly=True) as store:
        latest = store.risk_lists(1)[0]
    response = requests.get(f"{api}/risk")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["model_version"] == latest["model_version"] == frame["model_version"].iloc[0]
    assert body["scored_at"] == latest["summary"]["scored_at"]
    assert body["book"] == {"path": str(BUNDLED_BOOK), "sha256": sha256_of(BUNDLED_BOOK), "rows": 10_000}
    assert body["rows"] == 10_000 and body["matching"] == 10_000
    assert (body["top"], body["offset"], body["band"], body["returned"], body["next_offset"]) == (
        100,
        0,
        None,
        100,
        100,
    )
    estimate = body["estimate"]
    assert estimate["low"] <= estimate["f1"] <= estimate["high"] and estimate["level"] == 0.95
    assert estimate["rests_on_clients"] == 10_000 and "rests on 10,000 clients" in estimate["summary"]
    assert body["realized_f1"] is None
    assert body["calibration"]["verdict"] == latest["summary"]["calibration"]["verdict"]
    assert [c["corporation"] for c in body["clients"]] == frame["corporation"].iloc[:100].tolist()


def test_top_10_is_the_csvs_first_ten(api: str) -> None:
    top = requests.get(f"{api}/risk", params={"top": 10}).json()["clients"]
    download = requests.get(f"{api}/risk", params={"format": "csv"})
    assert download.status_code == 200 and download.headers["Content-Type"].startswith("text/csv")
    first_ten = csv_frame(download).iloc[:10][CLIENT_FIELDS].to_dict(orient="records")
    assert top == first_ten


def test_the_csv_download_is_the_list_file(ranked: Project, api: str) -> None:
    path = ranked.settings().output_model_path / "risklist.csv"
    by_format = requests.get(f"{api}/risk", params={"format": "csv"})
    by_accept = requests.get(f"{api}/risk", headers={"Accept": "text/csv"})
    assert by_format.content == by_accept.content == path.read_bytes()
    assert by_format.headers["Content-Disposition"] == 'attachment; filename="risklist-v0002.csv"'
    browser = requests.get(f"{api}/risk", headers={"Accept": "text/html,*/*;q=0.8"})
    assert browser.headers["Content-Type"].startswith("application/json")


def test_band_offset_and_top_select_rows_in_rank_order(ranked: Project, api: str) -> None:
    frame = the_list(ranked)
    band3 = frame.loc[frame["band"] == 3]
    body = requests.get(f"{api}/risk", params={"band": 3, "offset": 5, "top": 7}).json()
    assert (body["band"], body["matching"], body["returned"]) == (3, len(band3), 7)
    assert [c["rank"] for c in body["clients"]] == band3["rank"].iloc[5:12].tolist()
    assert body["next_offset"] == 12
    last = requests.get(f"{api}/risk", params={"band": 3, "offset": len(band3) - 2}).json()
    assert last["returned"] == 2 and last["next_offset"] is None
    beyond = requests.get(f"{api}/risk", params={"offset": 10_000}).json()
    assert beyond["clients"] == [] and beyond["next_offset"] is None
    csv = csv_frame(requests.get(f"{api}/risk", params={"band": 10, "top": 3, "format": "csv"}))
    assert csv["rank"].tolist() == frame.loc[frame["band"] == 10, "rank"].iloc[:3].tolist()
    assert tuple(csv.columns) == COLUMNS


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"top": "0"}, "'top' must be a whole number from 1 to 10000 (got '0')"),
        ({"top": "10001"}, "'top' must be a whole number from 1 to 10000"),
        ({"top": "ten"}, "'top' must be a whole number"),
        ({"offset": "-1"}, "'offset' must be a whole number from 0 to 1000000000"),
        ({"band": "0"}, "'band' must be a whole number from 1 to 10 (got '0')"),
        ({"band": "11"}, "'band' must be a whole number from 1 to 10"),
        ({"band": ""}, "'band' must be a whole number from 1 to 10"),
        ({"format": "xml"}, "'format' must be one of json, csv (got 'xml')"),
        ({"format": "csv", "top": "0"}, "'top' must be a whole number from 1 to 1000000000"),
        ({"bnad": "1"}, "unknown query parameter 'bnad'; /risk takes top, offset, band, format"),
        ([("top", "1"), ("top", "2")], "'top' is given 2 times"),
    ],
)
def test_bad_parameters_get_a_json_400_naming_them(api: str, query, message: str) -> None:
    response = requests.get(f"{api}/risk", params=query)
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("application/json")
    assert message in response.json()["error"]


def test_risk_gets_never_write(ranked: Project, api: str) -> None:
    before = file_digests(ranked.root)
    for query in ({}, {"format": "csv"}, {"band": 2, "top": 5}, {"top": "0"}):
        requests.get(f"{api}/risk", params=query)
    assert file_digests(ranked.root) == before


@pytest.mark.parametrize("store", ["none", "without lists"])
def test_no_list_yet_is_a_503_saying_to_run_fullprocess(store: str, request: pytest.FixtureRequest) -> None:
    # no store at all, or the store of the practice-deployed project (the practice config ranks no book)
    where: Project = request.getfixturevalue("project" if store == "none" else "deployed_project")
    store_existed = where.settings().records_db_path.exists()
    with in_process(create_app(where.settings())) as base:
        response = requests.get(f"{base}/risk")
        csv = requests.get(f"{base}/risk", params={"format": "csv"})
    for answer in (response, csv):
        assert answer.status_code == 503 and answer.headers["Content-Type"].startswith("application/json")
        assert "no risk list yet: run fullprocess.py" in answer.json()["error"]
    assert where.settings().records_db_path.exists() == store_existed, "a GET creates no store"
    assert not (where.settings().output_model_path / "risklist.csv").exists()


def test_a_missing_or_replaced_list_file_is_a_503(ranked: Project, tmp_path: Path) -> None:
    project = ranked.copy_to(tmp_path / "project")
    path = project.settings().output_model_path / "risklist.csv"
    with in_process(create_app(project.settings())) as base:
        assert requests.get(f"{base}/risk").status_code == 200
        path.write_bytes(path.read_bytes().replace(b",1,", b",2,", 1))  # not the list the store recorded
        replaced = requests.get(f"{base}/risk")
        path.unlink()
        missing = requests.get(f"{base}/risk")
    assert replaced.status_code == 503 and "is not the one recorded last" in replaced.json()["error"]
    assert "retry in a moment" in replaced.json()["error"]
    assert missing.status_code == 503 and f"the risk list {path} is missing" in missing.json()["error"]
