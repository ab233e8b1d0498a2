"""Ingestion: merged output, per-file records, and every kind of bad file rejected without losing good ones."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from ingestion import merge_multiple_dataframe
from risk.errors import UserFacingError
from risk.schema import DataFileError, check_schema, parse_csv_text
from tests.support import COLUMNS, Project

# The practice data, checked by hand: dataset2.csv repeats 10 rows of dataset1.csv.
PRACTICE_FILES = {"dataset1.csv": (17, 17, 0), "dataset2.csv": (19, 9, 10)}  # rows read, kept, duplicates

BAD_FILES = {
    "wrong_columns.csv": (b"id,activity,exited\nabc,1,0\n", "is missing column(s) corporation, lastmonth_activity"),
    "semicolons.csv": (
        COLUMNS.replace(",", ";").encode() + b"\nabc;1;2;3;0\n",
        "is not comma-separated (its header uses semicolons",
    ),
    "tabs.csv": (
        COLUMNS.replace(",", "\t").encode() + b"\nabc\t1\t2\t3\t0\n",
        "is not comma-separated (its header uses tabs",
    ),
    "extra_column.csv": (COLUMNS.encode() + b",notes\nabc,1,2,3,0,hi\n", "has unexpected column(s) notes"),
    "non_numeric.csv": (
        COLUMNS.encode() + b"\nabc,1,2,3,0\ndef,12,lots,4,1\n",
        "has a non-numeric value 'lots' in column 'lastyear_activity' at line 3",
    ),
    "target_two.csv": (COLUMNS.encode() + b"\nabc,1,2,3,2\n", "has 2 in column 'exited' at line 2; exited must be 0"),
    "target_missing.csv": (COLUMNS.encode() + b"\nabc,1,2,3,\n", "has an empty cell in column 'exited' at line 2"),
    "empty.csv": (b"", "is empty; it needs a header line and data rows"),
    "header_only.csv": (COLUMNS.encode() + b"\n", "has a header but no data rows"),
    "ragged.csv": (COLUMNS.encode() + b"\nabc,1,2,3,0,7,8\n", "is not a valid CSV"),
    "picture.csv": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a text file (it holds binary data)"),
    "spreadsheet.xlsx": (b"PK\x03\x04 not really a spreadsheet", "has an unsupported type '.xlsx'"),
    "latin1.csv": (
        COLUMNS.encode() + "\nsoci\u00e9t\u00e9,1,2,3,0\n".encode("latin-1"),
        "has bytes that are not UTF-8 text",
    ),
    "not_records.json": (b'{"corporation": "abc"}', "must hold JSON records: a list of objects"),
    "broken.json": (b'[{"corporation": "abc",', "is not valid JSON"),
    "list_value.json": (
        b'[{"corporation": "a", "lastmonth_activity": [1, 2], "lastyear_activity": 2, "number_of_employees": 3, '
        b'"exited": 0}]',
        "has a non-numeric value [1, 2] in column 'lastmonth_activity' at line 2",
    ),
    "huge_value.json": (
        b'[{"corporation": "a", "lastmonth_activity": 1, "lastyear_activity": 1'
        + b"0" * 400
        + b', "number_of_employees": 3, "exited": 0}]',
        "has a non-numeric value 1000000000",
    ),
    "boolean.json": (
        b'[{"corporation": "a", "lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": true, '
        b'"exited": 0}]',
        "has true/false values in column 'number_of_employees'",
    ),
}


def digest_folder(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def ingest(project: Project, config: Path | None = None):
    settings = project.settings(config)
    with project.store(config) as store:
        return merge_multiple_dataframe(settings, store), settings


def test_practice_data_is_merged_deduplicated_and_recorded(project: Project) -> None:
    result, settings = ingest(project, project.practice_config)

    final = pd.read_csv(settings.output_folder_path / "finaldata.csv")
    assert list(final.columns) == COLUMNS.split(",")
    assert len(final) == 26 and not final.duplicated().any()
    assert (settings.output_folder_path / "ingestedfiles.txt").read_text() == "dataset1.csv\ndataset2.csv\n"

    with project.store(project.practice_config) as store:
        records = {r["file_name"]: r for r in store.ingestions()}
    for name, (read, kept, dropped) in PRACTICE_FILES.items():
        record = records[name]
        source = project.root / "practicedata" / name
        assert (record["rows_read"], record["rows_kept"], record["duplicates_dropped"]) == (read, kept, dropped)
        assert record["status"] == "accepted" and record["reason"] is None
        assert record["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert record["location"] == str(source.resolve())
        assert record["ingested_at"].endswith("Z")
    assert set(result.source.unique()) == set(PRACTICE_FILES)


def test_every_bad_file_is_rejected_by_name_while_good_files_are_ingested(project: Project) -> None:
    source = project.root / "sourcedata"
    for name, (content, _) in BAD_FILES.items():
        (source / name).write_bytes(content)
    (source / "records.json").write_text(
        json.dumps(
            [
                {
                    "corporation": "json1",
                    "lastmonth_activity": 5,
                    "lastyear_activity": 50,
                    "number_of_employees": 7,
                    "exited": 1,
                },
            ]
        )
    )
    before = digest_folder(source)

    result, settings = ingest(project)

    assert sorted(result.accepted) == ["dataset3.csv", "dataset4.csv", "records.json"]
    reasons = {r.file_name: r.reason for r in result.rejected}
    assert set(reasons) == set(BAD_FILES)
    for name, (_, message) in BAD_FILES.items():
        assert reasons[name].startswith(f"{name} "), reasons[name]
        assert message in reasons[name], (name, reasons[name])
    final = pd.read_csv(settings.output_folder_path / "finaldata.csv")
    assert len(final) == 11 + 15 + 1 and "json1" in set(final["corporation"])
    assert digest_folder(source) == before  # sources are never modified, moved or deleted


def test_a_rejected_file_is_not_retried_until_its_content_changes(project: Project) -> None:
    bad = project.write_data("sourcedata", "late.csv", ["abc,1,2,3,7"])
    ingest(project)
    ingest(project)
    with project.store() as store:
        assert [r["status"] for r in store.ingestions() if r["file_name"] == "late.csv"] == ["rejected"]

    bad.write_text(bad.read_text().replace(",7", ",1"))
    result, _ = ingest(project)
    assert "late.csv" in result.accepted
    with project.store() as store:
        assert [r["status"] for r in store.ingestions() if r["file_name"] == "late.csv"] == ["accepted", "rejected"]


def test_a_folder_with_no_valid_file_is_an_error_that_says_what_to_add(project: Project) -> None:
    for path in (project.root / "sourcedata").iterdir():
        path.unlink()
    project.write_data("sourcedata", "only_bad.csv", ["abc,x,2,3,0"])
    with pytest.raises(UserFacingError, match="no valid data files in .*add CSV files with columns corporation"):
        ingest(project)
    with project.store() as store:
        assert store.ingestions()[0]["status"] == "rejected"  # the rejection is still recorded


def test_missing_feature_values_are_kept_as_missing_not_rejected(project: Project) -> None:
    project.write_data("sourcedata", "gaps.csv", ["gap1,,20,3,0", "gap2,4,NA,5,1"])
    result, _ = ingest(project)
    assert "gaps.csv" in result.accepted
    gaps = result.data[result.data["corporation"].isin(["gap1", "gap2"])]
    assert gaps["lastmonth_activity"].isna().sum() == 1 and gaps["lastyear_activity"].isna().sum() == 1


def test_columns_in_another_order_and_padded_headers_are_accepted() -> None:
    frame = parse_csv_text("exited, number_of_employees,lastyear_activity,lastmonth_activity,corporation\n1,2,3,4,x\n")
    clean = check_schema(frame)
    assert list(clean.columns) == COLUMNS.split(",")
    assert clean.iloc[0].tolist() == ["x", 4, 3, 2, 1]


def test_schema_without_target_for_prediction_requests() -> None:
    frame = pd.DataFrame({"lastmonth_activity": [1], "lastyear_activity": [2], "number_of_employees": [3]})
    assert list(check_schema(frame, require_target=False, require_id=False).columns) == [
        "lastmonth_activity",
        "lastyear_activity",
        "number_of_employees",
    ]
    with pytest.raises(DataFileError, match="is missing column"):
        check_schema(frame)


@pytest.mark.slow
def test_ingestion_script_runs_on_its_own(project: Project) -> None:
    project.write_data("sourcedata", "bad.csv", ["abc,1,2,3,9"])
    result = project.run("ingestion.py")
    assert "rejected" in result.stderr and "bad.csv has 9 in column 'exited'" in result.stderr
    assert (project.root / "ingesteddata" / "finaldata.csv").exists()


def test_schema_check_keeps_values_of_a_frame_with_any_row_labels() -> None:
    frame = parse_csv_text(f"{COLUMNS}\na,1,2,3,0\nb,4,5,6,1\n").set_axis([17, 42])
    clean = check_schema(frame)
    assert clean["lastmonth_activity"].tolist() == [1, 4] and clean["exited"].tolist() == [0, 1]
