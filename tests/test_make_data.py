"""benchmarks/make_data.py (risk/synthetic.py): seeded synthetic course data, reproducible byte for byte, with the duplicate rate
and the drift it is asked for, and accepted as it is by ingestion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from risk.synthetic import make_data, make_test_file
from tests.support import COLUMNS, REPO, Project


def read_all(paths: list[Path]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)


def test_the_same_arguments_write_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    first = make_data(tmp_path / "a", files=3, rows=200, duplicate_rate=0.1, seed=7)
    again = make_data(tmp_path / "b", files=3, rows=200, duplicate_rate=0.1, seed=7)
    other = make_data(tmp_path / "c", files=3, rows=200, duplicate_rate=0.1, seed=8)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in again]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other]


def test_files_rows_and_schema_are_as_asked(tmp_path: Path) -> None:
    paths = make_data(tmp_path, files=12, rows=50, seed=1)
    assert [p.name for p in paths] == [f"data{i:04d}.csv" for i in range(12)]
    assert sorted(tmp_path.iterdir()) == paths
    for path in paths:
        lines = path.read_text().splitlines()
        assert lines[0] == COLUMNS and len(lines) == 51
    frame = read_all(paths)
    assert frame["corporation"].str.fullmatch(r"[a-z]{5}").all()
    assert set(frame["exited"]) == {0, 1}
    assert (frame[["lastmonth_activity", "lastyear_activity"]] >= 0).all().all()
    assert (frame["number_of_employees"] >= 1).all()


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.3])
def test_each_file_after_the_first_repeats_the_asked_share_of_earlier_rows(tmp_path: Path, rate: float) -> None:
    files, rows = 6, 400
    frame = read_all(make_data(tmp_path, files=files, rows=rows, duplicate_rate=rate, seed=3))
    assert int(frame.duplicated().sum()) == (files - 1) * round(rows * rate)


def test_drift_reverses_the_activity_exit_relationship(tmp_path: Path) -> None:
    def correlation(frame: pd.DataFrame) -> float:
        return float(np.corrcoef(np.log1p(frame["lastmonth_activity"]), frame["exited"])[0, 1])

    stable = read_all(make_data(tmp_path / "stable", files=2, rows=2000, seed=4))
    drifted = read_all(make_data(tmp_path / "drifted", files=2, rows=2000, seed=4, drift=True))
    assert correlation(stable) < -0.2 and correlation(drifted) > 0.2
    test = pd.read_csv(make_test_file(tmp_path / "test" / "testdata.csv", rows=3000, drift=True, seed=5))
    assert len(test) == 3000 and correlation(test) > 0.2


@pytest.mark.parametrize(("files", "rows", "rate"), [(0, 10, 0.1), (2, 0, 0.1), (2, 10, 1.0), (2, 10, -0.1)])
def test_impossible_requests_are_refused(tmp_path: Path, files: int, rows: int, rate: float) -> None:
    with pytest.raises(ValueError):
        make_data(tmp_path, files=files, rows=rows, duplicate_rate=rate)


def test_the_generated_files_are_ingested_as_they_are(project: Project) -> None:
    from ingestion import merge_multiple_dataframe

    source = project.root / "sourcedata"
    for path in source.iterdir():
        path.unlink()
    make_data(source, files=4, rows=300, duplicate_rate=0.1, seed=9)
    with project.store() as store:
        result = merge_multiple_dataframe(project.settings(), store)
    assert len(result.accepted) == 4 and not result.rejected
    assert [r.duplicates_dropped for r in result.records] == [0, 30, 30, 30]


def test_command_line_writes_the_data_and_a_test_file(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.make_data",
            "--files",
            "3",
            "--rows",
            "20",
            "--drift",
            "--out",
            str(tmp_path / "data"),
            "--test-file",
            str(tmp_path / "test.csv"),
            "--test-rows",
            "15",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "wrote 3 file(s) x 20 rows" in result.stdout
    assert len(list((tmp_path / "data").glob("*.csv"))) == 3
    assert len(pd.read_csv(tmp_path / "test.csv")) == 15
    refused = subprocess.run(
        [sys.executable, "-m", "benchmarks.make_data", "--files", "0"], cwd=REPO, capture_output=True, text=True
    )
    assert refused.returncode == 2 and "files and rows must be at least 1" in refused.stderr
