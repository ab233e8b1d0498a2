"""The records store: what each step records, paging, migration from an older schema, crashes, and readers."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from risk.files import sha256_file
from risk.store import SCHEMA_VERSION, DriftCheckRow, RecordsStore
from tests.support import REPO, Project, flipped_rows

# The schema as released at version 1 (MIGRATIONS[0]), frozen here so the migration test keeps testing an
# upgrade from a real old database even if someone edits the code's copy by mistake.
SCHEMA_V1 = """
CREATE TABLE runs (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, command TEXT NOT NULL,
    outcome TEXT, summary TEXT);
CREATE TABLE ingestions (id INTEGER PRIMARY KEY, run_id INTEGER REFERENCES runs(id), ingested_at TEXT NOT NULL,
    file_name TEXT NOT NULL, location TEXT NOT NULL, sha256 TEXT NOT NULL, size_bytes INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')), reason TEXT,
    rows_read INTEGER NOT NULL DEFAULT 0, rows_kept INTEGER NOT NULL DEFAULT 0,
    duplicates_dropped INTEGER NOT NULL DEFAULT 0);
CREATE INDEX ingestions_by_file ON ingestions (file_name, sha256);
CREATE INDEX ingestions_by_stat ON ingestions (location, size_bytes, mtime_ns);
CREATE TABLE checked_files (file_name TEXT NOT NULL, sha256 TEXT NOT NULL, checked_at TEXT NOT NULL,
    run_id INTEGER REFERENCES runs(id), PRIMARY KEY (file_name, sha256));
CREATE TABLE scores (id INTEGER PRIMARY KEY, scored_at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('test', 'batch')), f1 REAL NOT NULL, rows INTEGER NOT NULL,
    data_path TEXT NOT NULL, model_sha256 TEXT, model_version TEXT);
CREATE TABLE drift_checks (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL, test TEXT NOT NULL,
    deployed_version TEXT, deployed_score REAL, new_score REAL NOT NULL, threshold REAL,
    history_size INTEGER NOT NULL, drift INTEGER NOT NULL, reason TEXT NOT NULL, files TEXT NOT NULL);
CREATE TABLE deployments (id INTEGER PRIMARY KEY, deployed_at TEXT NOT NULL,
    action TEXT NOT NULL CHECK (action IN ('deploy', 'rollback')), version TEXT NOT NULL, previous_version TEXT,
    f1 REAL, model_sha256 TEXT);
CREATE TABLE data_drift_checks (id INTEGER PRIMARY KEY, checked_at TEXT NOT NULL, model_version TEXT,
    verdict TEXT NOT NULL, result TEXT NOT NULL);
CREATE TABLE diagnostics_runs (id INTEGER PRIMARY KEY, run_at TEXT NOT NULL, model_version TEXT,
    snapshot TEXT NOT NULL);
"""

V1_ROWS = {
    "runs": [(1, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z", "fullprocess", "deployed", "run 1: ...")],
    "ingestions": [
        (1, 1, "2026-01-01T00:00:01Z", "a.csv", "/data/a.csv", "aa" * 32, 120, 1, "accepted", None, 10, 9, 1)
    ],
    "checked_files": [("a.csv", "aa" * 32, "2026-01-01T00:01:00Z", 1)],
    "scores": [
        (1, "2026-01-01T00:00:02Z", "test", 0.5, 5, "testdata.csv", "m1" * 32, None),
        (2, "2026-01-02T00:00:00Z", "batch", 0.4, 9, "b.csv", "m1" * 32, "v0001"),
        (3, "2026-01-02T00:00:01Z", "test", 0.7, 5, "testdata.csv", "m2" * 32, None),
    ],
    "drift_checks": [
        (
            1,
            "2026-01-02T00:00:00Z",
            "raw",
            "v0001",
            0.5,
            0.4,
            0.5,
            1,
            1,
            "drift: new F1 0.4000 is below deployed score 0.5000",
            '["b.csv"]',
        )
    ],
    "deployments": [
        (1, "2026-01-01T00:00:03Z", "deploy", "v0001", None, 0.5, "m1" * 32),
        (2, "2026-01-02T00:00:02Z", "deploy", "v0002", "v0001", 0.7, "m2" * 32),
    ],
    "data_drift_checks": [(1, "2026-01-02T00:00:00Z", "v0001", "no drift", '{"verdict": "no drift"}')],
    "diagnostics_runs": [(1, "2026-01-01T00:00:04Z", "v0001", '{"timestamp": "2026-01-01T00:00:04Z"}')],
}


def make_v1_database(path: Path) -> None:
    """A records store as version 1 of the code left it: old schema, rollback journal, some history."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_V1)
    for table, rows in V1_ROWS.items():
        conn.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))})", rows)
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def table_rows(path: Path, table: str, columns: int) -> list[tuple]:
    """The first ``columns`` columns of every row of a table, in id order, read with plain sqlite3."""
    conn = sqlite3.connect(path)
    try:
        return [tuple(row[:columns]) for row in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


# --- what each step records ---


@pytest.mark.slow
def test_each_step_records_its_history(project: Project) -> None:
    """Each course script's ``main()`` in turn, in this process (each has tests of its own process elsewhere)."""
    settings = project.settings()
    project.run_in_process("ingestion.py")
    with project.store() as store:
        ingestions = {row["file_name"]: row for row in store.ingestions()}
    assert set(ingestions) == {"dataset3.csv", "dataset4.csv"}
    for name, row in ingestions.items():
        source = settings.input_folder_path / name
        assert row["status"] == "accepted" and row["reason"] is None
        assert row["sha256"] == sha256_file(source)
        assert row["location"] == str(source)
        assert row["rows_read"] == len(source.read_text().splitlines()) - 1
        assert row["rows_kept"] + row["duplicates_dropped"] <= row["rows_read"]

    project.run_in_process("training.py")
    project.run_in_process("scoring.py")
    model_sha = json.loads((settings.output_model_path / "trainedmodel.json").read_text())["model_sha256"]
    with project.store() as store:
        [test_score] = store.scores()
    assert (test_score["kind"], test_score["model_sha256"], test_score["model_version"]) == ("test", model_sha, None)
    assert test_score["f1"] == pytest.approx(float((settings.output_model_path / "latestscore.txt").read_text()))

    project.run_in_process("deployment.py")
    with project.store() as store:
        [deployment] = store.deployments()
        [test_score] = store.scores()
    assert (deployment["action"], deployment["version"], deployment["previous_version"]) == ("deploy", "v0001", None)
    assert (deployment["f1"], deployment["model_sha256"]) == (test_score["f1"], model_sha)
    assert test_score["model_version"] == "v0001", "a deploy names the version on its model's test score"

    project.run_in_process("diagnostics.py")
    with project.store() as store:
        [snapshot] = store.diagnostics_history()
    assert snapshot["model_version"] == "v0001"
    assert snapshot == json.loads((settings.output_model_path / "diagnostics.json").read_text())

    project.run_in_process("reporting.py")
    with project.store() as store:
        evaluation = store.latest_evaluation("v0001")
    test_rows = len(settings.test_data_file.read_text().splitlines()) - 1
    counts = [evaluation[k] for k in ("true_negatives", "false_positives", "false_negatives", "true_positives")]
    assert sum(counts) == evaluation["rows"] == test_rows
    assert evaluation["f1"] == pytest.approx(deployment["f1"]), "the report's F1 is the scoring step's F1"
    assert (settings.output_model_path / "report.pdf").read_bytes().startswith(b"%PDF")
    assert (settings.output_model_path / "confusionmatrix.png").read_bytes().startswith(b"\x89PNG")

    project.edit_config(drift_test="raw")  # the course's rule decides on the 26 flipped rows
    quiet = project.run_in_process("fullprocess.py")  # the files deployed by hand hold the model's own training rows
    assert "no new rows to check v0001 against" in quiet.stderr
    flipped = [
        row
        for name in ("dataset3.csv", "dataset4.csv")
        for row in flipped_rows(settings.input_folder_path / name, f"f{name[7]}-")
    ]
    project.write_data("sourcedata", "dataset5.csv", flipped)  # labels the model learnt, flipped: it drifts
    project.run_in_process("fullprocess.py")
    with project.store() as store:
        [drift] = store.drift_checks()
        batch = [s for s in store.scores() if s["kind"] == "batch"]
        runs = store.runs()
        deployments = store.deployments()
    assert (drift["files"], drift["drift"], drift["deployed_version"]) == (["dataset5.csv"], True, "v0001")
    assert drift["new_score"] < drift["threshold"] and drift["rows"] == 26
    assert [(s["model_version"], s["f1"], s["data_path"], s["in_history"]) for s in batch] == [
        ("v0001", drift["new_score"], "dataset5.csv", 0),  # a drifting batch's score stays out of the history
    ]
    assert [(run["command"], run["outcome"]) for run in runs] == [
        ("fullprocess", "challenger rejected"),  # 26 rows cannot show a retrained model is better: kept
        ("fullprocess", "nothing new"),
    ]
    assert [d["version"] for d in deployments] == ["v0001"]
    project.run_in_process("fullprocess.py", "--force")  # an operator deploys a retrained model regardless
    with project.store() as store:
        deployments = store.deployments()
        assert store.runs()[0]["command"] == "fullprocess --force"
    assert [d["version"] for d in deployments] == ["v0002", "v0001"]

    project.run_in_process("deployment.py", "--rollback")
    with project.store() as store:
        latest = store.deployments()[0]
    assert (latest["action"], latest["version"], latest["previous_version"]) == ("rollback", "v0001", "v0002")


# --- history queries ---


def test_history_pages_newest_first_with_totals(tmp_path: Path) -> None:
    with RecordsStore(tmp_path / "records.sqlite") as store:
        ids = [store.record_score("test", i / 10, 5, "testdata.csv") for i in range(5)]
        first, total = store.history_page("scores", limit=2)
        last, _ = store.history_page("scores", limit=2, offset=4)
        beyond, _ = store.history_page("scores", limit=2, offset=5)
        with pytest.raises(ValueError, match="unknown history kind 'runs'"):
            store.history_page("runs", limit=2)
    assert total == 5
    assert [row["id"] for row in first] == ids[::-1][:2]
    assert [row["f1"] for row in first] == [0.4, 0.3]
    assert [row["id"] for row in last] == [ids[0]]
    assert beyond == []


def test_drift_pages_decode_their_fields(tmp_path: Path) -> None:
    checks = [
        DriftCheckRow(
            "raw",
            "v0001",
            0.6,
            0.5,
            0.6,
            2,
            True,
            True,
            40,
            12,
            "challenger rejected",
            "drift: ...",
            ("x.csv",),
            {"rule": "raw", "gate": {"chosen": None}},
        ),
        DriftCheckRow(
            "significant",
            "v0001",
            0.6,
            None,
            None,
            0,
            None,
            None,
            20,
            0,
            "carried over",
            "carried over",
            ("y.csv",),
            {"rule": "significant"},
        ),
    ]
    with RecordsStore(tmp_path / "records.sqlite") as store:
        for check in checks:
            store.record_drift_check(check)
        [carried, decided], total = store.history_page("drift_checks", limit=5)
    assert total == 2
    assert decided["drift"] is True and decided["raw_drift"] is True and decided["files"] == ["x.csv"]
    assert decided["decision"]["gate"] == {"chosen": None} and decided["next_step"] == "challenger rejected"
    assert carried["drift"] is None and carried["new_score"] is None and carried["next_step"] == "carried over"


def test_a_read_snapshot_sees_one_committed_state_and_a_commit_waits_for_it(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    with RecordsStore(path) as writer, RecordsStore(path, readonly=True) as reader:
        writer.record_score("test", 0.5, 5, "first.csv")
        with reader.read_snapshot():
            assert [row["data_path"] for row in reader.scores()] == ["first.csv"]

            def commit() -> None:
                with RecordsStore(path) as other:
                    other.record_score("test", 0.6, 5, "second.csv")

            committing = threading.Thread(target=commit)
            committing.start()
            committing.join(timeout=0.5)
            assert committing.is_alive()  # the commit waits for the snapshot (within the busy timeout)
            assert reader.history_page("scores", 10) == (reader.scores(), 1)
        committing.join(timeout=30)
        assert not committing.is_alive()
        assert [row["data_path"] for row in reader.scores()] == ["second.csv", "first.csv"]


# --- migration ---


def test_migrates_a_version_1_database_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    make_v1_database(path)
    with RecordsStore(path, readonly=True) as reader:  # an API reading before the cron run migrated it
        assert reader.schema_version == 1
        assert reader.latest_evaluation("v0002") is None
        assert [row["version"] for row in reader.history_page("deployments", 10)[0]] == ["v0002", "v0001"]

    with RecordsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 3
        assert [row["version"] for row in store.deployments()] == ["v0002", "v0001"]
        assert store.checked_files() == {("a.csv", "aa" * 32)}
        scores = {row["id"]: row["model_version"] for row in store.scores()}
        store.record_evaluation(
            {
                "model_version": "v0002",
                "model_sha256": "m2" * 32,
                "data_path": "testdata.csv",
                "rows": 5,
                "true_negatives": 1,
                "false_positives": 1,
                "false_negatives": 1,
                "true_positives": 2,
                "precision": 2 / 3,
                "recall": 2 / 3,
                "f1": 2 / 3,
            }
        )
        assert store.latest_evaluation("v0002")["true_positives"] == 2
    assert scores == {1: "v0001", 2: "v0001", 3: "v0002"}, "test scores learn the version their model became"

    for table, rows in V1_ROWS.items():
        kept = table_rows(path, table, len(rows[0]))
        if table == "scores":
            kept = [row[:-1] for row in kept]
            rows = [row[:-1] for row in rows]
        assert kept == rows, f"{table} rows changed by the migration"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_refuses_a_database_from_newer_code(tmp_path: Path) -> None:
    path = tmp_path / "records.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer than this code"):
        RecordsStore(path)


# --- crashes and concurrency ---

WRITER = textwrap.dedent(
    """
    import sqlite3
    import sys
    sys.path.insert(0, {repo!r})
    from pathlib import Path
    from risk.store import RecordsStore

    store = RecordsStore(Path({db!r}))
    store.record_score("test", 0.5, 5, "committed.csv")
    if {exclusive!r}:  # the strongest lock SQLite has: in rollback-journal mode it shuts every reader out
        conn = sqlite3.connect({db!r}, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
    else:  # the store's own write transaction, as every step uses it
        conn = store.transaction().__enter__()
    for statement, rows in {statements!r}:
        conn.executemany(statement, rows)
    print("in transaction", flush=True)
    sys.stdin.readline()  # hold the transaction open until told (or killed)
    conn.execute("COMMIT")
    print("committed", flush=True)
    """
)
PENDING_SCORE = (
    "INSERT INTO scores (scored_at, kind, f1, rows, data_path) VALUES ('t', 'test', ?, 1, ?)",
    [(0.9, "pending.csv")],
)


def start_writer(db: Path, statements: list[tuple[str, list[tuple]]], exclusive: bool = False) -> subprocess.Popen[str]:
    """A process that commits one score, then runs ``statements`` in a write transaction it holds open."""
    script = WRITER.format(repo=str(REPO), db=str(db), statements=statements, exclusive=exclusive)
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    line = process.stdout.readline()
    if line.strip() != "in transaction":
        process.kill()
        raise AssertionError(f"writer did not start its transaction: {line!r} {process.stderr.read()}")
    return process


def test_a_run_killed_mid_transaction_leaves_no_half_record(tmp_path: Path) -> None:
    db = tmp_path / "records.sqlite"
    statements = [
        ("INSERT INTO deployments (deployed_at, action, version, f1) VALUES ('t', 'deploy', ?, 0.9)", [("v0009",)]),
        (
            "INSERT INTO scores (scored_at, kind, f1, rows, data_path) VALUES ('t', 'batch', ?, 1, 'x')",
            [(i / 100,) for i in range(100)],
        ),
    ]
    writer = start_writer(db, statements)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    with RecordsStore(db) as store:
        assert [row["data_path"] for row in store.scores()] == ["committed.csv"]
        assert store.deployments() == []
        store.record_deployment("deploy", "v0001", None, 0.5, None)  # and it takes writes again
        assert [row["version"] for row in store.deployments()] == ["v0001"]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_readers_read_while_a_run_holds_a_write_transaction_and_create_no_file(tmp_path: Path) -> None:
    db = tmp_path / "records.sqlite"
    writer = start_writer(db, [PENDING_SCORE])
    try:
        before = sorted(p.name for p in tmp_path.iterdir())
        with RecordsStore(db, readonly=True) as reader:
            # The store's write transactions hold SQLite's RESERVED lock until they commit: readers go on reading.
            assert [row["data_path"] for row in reader.scores()] == ["committed.csv"]
            assert sorted(p.name for p in tmp_path.iterdir()) == before  # no -shm, no -wal: nothing of the reader's
            writer.stdin.write("\n")
            writer.stdin.flush()
            assert writer.stdout.readline().strip() == "committed"
            assert writer.wait(timeout=30) == 0
            assert [row["data_path"] for row in reader.scores()] == ["pending.csv", "committed.csv"]
    finally:
        if writer.poll() is None:
            writer.kill()
