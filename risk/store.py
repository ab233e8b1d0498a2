"""The records store: one SQLite database holding the history of every run.

Ingestions (per file), scores, drift decisions, deployments and diagnostics runs are rows here; the
course's text artifacts are still written beside it. The schema is versioned with ``PRAGMA user_version``
and migrated forward on open. Every public write is one transaction, so a run killed mid-write leaves no half record.

The store keeps SQLite's rollback journal (``journal_mode = DELETE``), not WAL: a reader (the API, the dashboard)
opens it read-only and then needs no write access to its folder and creates no file, where WAL would have every
reader create (or need write access to) the ``-shm`` and ``-wal`` files. Writes are a few small transactions per
run, so readers waiting out a commit (``busy_timeout``) cost nothing anyone notices.

Standard library only: the cron tick reads it to decide whether there is anything new.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from risk.clock import utc_now

if TYPE_CHECKING:
    from risk.config import Settings
    from risk.snapshot import DiagnosticsSnapshot

BUSY_TIMEOUT_MS = 10_000
LOOKUP_CHUNK = 300  # keys per bulk lookup query (3 x 300 parameters < SQLite's oldest limit of 999)

# Each entry migrates the schema from version i to i + 1. Append, never edit a released entry.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        command TEXT NOT NULL,
        outcome TEXT,
        summary TEXT
    );
    CREATE TABLE ingestions (
        id INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs(id),
        ingested_at TEXT NOT NULL,
        file_name TEXT NOT NULL,
        location TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('accepted', 'rejected')),
        reason TEXT,
        rows_read INTEGER NOT NULL DEFAULT 0,
        rows_kept INTEGER NOT NULL DEFAULT 0,
        duplicates_dropped INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX ingestions_by_file ON ingestions (file_name, sha256);
    CREATE INDEX ingestions_by_stat ON ingestions (location, size_bytes, mtime_ns);
    CREATE TABLE checked_files (
        file_name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        run_id INTEGER REFERENCES runs(id),
        PRIMARY KEY (file_name, sha256)
    );
    CREATE TABLE scores (
        id INTEGER PRIMARY KEY,
        scored_at TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('test', 'batch')),
        f1 REAL NOT NULL,
        rows INTEGER NOT NULL,
        data_path TEXT NOT NULL,
        model_sha256 TEXT,
        model_version TEXT
    );
    CREATE TABLE drift_checks (
        id INTEGER PRIMARY KEY,
        checked_at TEXT NOT NULL,
        test TEXT NOT NULL,
        deployed_version TEXT,
        deployed_score REAL,
        new_score REAL NOT NULL,
        threshold REAL,
        history_size INTEGER NOT NULL,
        drift INTEGER NOT NULL,
        reason TEXT NOT NULL,
        files TEXT NOT NULL
    );
    CREATE TABLE deployments (
        id INTEGER PRIMARY KEY,
        deployed_at TEXT NOT NULL,
        action TEXT NOT NULL CHECK (action IN ('deploy', 'rollback')),
        version TEXT NOT NULL,
        previous_version TEXT,
        f1 REAL,
        model_sha256 TEXT
    );
    CREATE TABLE data_drift_checks (
        id INTEGER PRIMARY KEY,
        checked_at TEXT NOT NULL,
        model_version TEXT,
        verdict TEXT NOT NULL,
        result TEXT NOT NULL
    );
    CREATE TABLE diagnostics_runs (
        id INTEGER PRIMARY KEY,
        run_at TEXT NOT NULL,
        model_version TEXT,
        snapshot TEXT NOT NULL
    );
    """,
    # v2 (history): the deployed model's confusion matrix per version, so the report and the dashboard read
    # it instead of recomputing it; test scores learn the version they were deployed as (backfilled here,
    # kept up to date by record_deployment); an index for the per-kind score history.
    """
    CREATE TABLE evaluations (
        id INTEGER PRIMARY KEY,
        evaluated_at TEXT NOT NULL,
        model_version TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        data_path TEXT NOT NULL,
        rows INTEGER NOT NULL,
        true_negatives INTEGER NOT NULL,
        false_positives INTEGER NOT NULL,
        false_negatives INTEGER NOT NULL,
        true_positives INTEGER NOT NULL,
        precision REAL NOT NULL,
        recall REAL NOT NULL,
        f1 REAL NOT NULL
    );
    CREATE INDEX evaluations_by_version ON evaluations (model_version, id);
    CREATE INDEX scores_by_kind ON scores (kind, id);
    UPDATE scores SET model_version = (
        SELECT d.version FROM deployments d
        WHERE d.action = 'deploy' AND d.model_sha256 = scores.model_sha256 ORDER BY d.id LIMIT 1
    ) WHERE kind = 'test' AND model_version IS NULL AND model_sha256 IS NOT NULL;
    """,
    # v3 (drift decisions you can trust, the risk list): a run's batch scores, drift checks and decided rows are
    # written with it when it completes; a drift check keeps its whole decision (risk/drift.py, JSON) beside the
    # course rule's verdict and what happened next; F1 may be undefined (NULL) and a carried-over check has no
    # verdict, so drift_checks is rebuilt without those NOT NULLs; evaluations learn their kind (``test``: the
    # test file; ``out-of-fold``: the reference the significant rule compares with); rows are known by content
    # (risk/rows.py) once a completed run has decided on them; every risk list written is recorded.
    """
    ALTER TABLE scores ADD COLUMN run_id INTEGER REFERENCES runs(id);
    ALTER TABLE scores ADD COLUMN in_history INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE drift_checks_v3 (
        id INTEGER PRIMARY KEY,
        checked_at TEXT NOT NULL,
        test TEXT NOT NULL,
        deployed_version TEXT,
        deployed_score REAL,
        new_score REAL,
        threshold REAL,
        history_size INTEGER NOT NULL DEFAULT 0,
        drift INTEGER,
        reason TEXT NOT NULL,
        files TEXT NOT NULL,
        run_id INTEGER REFERENCES runs(id),
        raw_drift INTEGER,
        rows INTEGER,
        positives INTEGER,
        next_step TEXT,
        decision TEXT
    );
    INSERT INTO drift_checks_v3 (id, checked_at, test, deployed_version, deployed_score, new_score, threshold,
        history_size, drift, reason, files)
        SELECT id, checked_at, test, deployed_version, deployed_score, new_score, threshold, history_size, drift,
        reason, files FROM drift_checks;
    DROP TABLE drift_checks;
    ALTER TABLE drift_checks_v3 RENAME TO drift_checks;
    ALTER TABLE evaluations ADD COLUMN kind TEXT NOT NULL DEFAULT 'test';
    CREATE TABLE decided_rows (
        row_hash INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs(id)
    ) WITHOUT ROWID;
    CREATE TABLE risk_lists (
        id INTEGER PRIMARY KEY,
        scored_at TEXT NOT NULL,
        run_id INTEGER REFERENCES runs(id),
        model_version TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        book_path TEXT NOT NULL,
        book_sha256 TEXT NOT NULL,
        book_size_bytes INTEGER NOT NULL,
        book_mtime_ns INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        list_path TEXT NOT NULL,
        list_sha256 TEXT NOT NULL,
        summary TEXT NOT NULL
    );
    CREATE INDEX risk_lists_by_book ON risk_lists (book_path, book_size_bytes, book_mtime_ns);
    """,
)
HISTORY_KINDS = ("scores", "drift_checks", "deployments")
SCHEMA_VERSION = len(MIGRATIONS)


class IngestionRecord(NamedTuple):
    """What happened to one input file in one ingestion."""

    file_name: str
    location: str
    sha256: str
    size_bytes: int
    mtime_ns: int
    status: str
    reason: str | None = None
    rows_read: int = 0
    rows_kept: int = 0
    duplicates_dropped: int = 0


class ScoreRow(NamedTuple):
    """One F1 score: of a trained model on the test file (``test``) or of the deployed one on new rows (``batch``)."""

    kind: str
    f1: float
    rows: int
    data_path: str
    model_sha256: str | None = None
    model_version: str | None = None
    in_history: bool = True  # a batch score the course's statistical rules may use (not a drifting batch's own)


class DriftCheckRow(NamedTuple):
    """One drift check as stored: the acting rule's figures, the course rule's verdict and what happened next."""

    test: str
    deployed_version: str | None
    deployed_score: float | None
    new_score: float | None  # None when F1 is undefined on the rows (no positives predicted or present)
    threshold: float | None
    history_size: int
    drift: bool | None  # None: carried over, nothing decided
    raw_drift: bool | None
    rows: int
    positives: int
    next_step: str
    reason: str
    files: tuple[str, ...]
    decision: dict[str, Any]  # the whole decision (risk/drift.py DriftDecision.as_json())


class RiskListRow(NamedTuple):
    """A risk list written to ``list_path``: which model ranked which book, and its summary (JSON)."""

    model_version: str
    model_sha256: str
    book_path: str
    book_sha256: str
    book_size_bytes: int
    book_mtime_ns: int
    rows: int
    list_path: str
    list_sha256: str
    summary: dict[str, Any]


class RecordsStore:
    """The SQLite records store at one path; open it, use it, ``close()`` it (or use ``with``)."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        """Open the store; created and migrated unless ``readonly`` (then it must exist: FileNotFoundError)."""
        self.path = path
        self.readonly = readonly
        if readonly:
            if not path.exists():
                raise FileNotFoundError(f"records store {path} does not exist yet; run fullprocess.py")
            uri = f"{path.resolve().as_uri()}?mode=ro"
            self._conn = sqlite3.connect(
                uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if not readonly:
            self._conn.execute("PRAGMA journal_mode = DELETE")  # see the module docstring: readers write nothing
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self.migrate()

    def __enter__(self) -> RecordsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._conn.close()

    # --- schema ---

    @property
    def schema_version(self) -> int:
        return self._conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self) -> None:
        """Bring the schema up to SCHEMA_VERSION, one transaction per step."""
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self.path} has schema version {current}, newer than this code ({SCHEMA_VERSION}); upgrade the code"
            )
        for version in range(current, SCHEMA_VERSION):
            with self.transaction() as conn:
                if conn.execute("PRAGMA user_version").fetchone()[0] != version:
                    continue  # another process migrated meanwhile
                for statement in _split_sql(MIGRATIONS[version]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")

    # --- transactions ---

    def transaction(self) -> _Transaction:
        """``with store.transaction() as conn:`` runs statements in one IMMEDIATE transaction."""
        return _Transaction(self._conn)

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Reads inside see one committed state (one read transaction; nests)."""
        if self._conn.in_transaction:
            yield
            return
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        with self.transaction() as conn:
            return _insert(conn, table, row)

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        return [dict(row) for row in self._conn.execute(sql, params)]

    # --- runs ---

    def start_run(self, command: str) -> int:
        return self._insert("runs", {"started_at": utc_now(), "command": command})

    def finish_run(
        self,
        run_id: int,
        outcome: str,
        summary: str,
        checked: Iterable[tuple[str, str]] = (),
        *,
        decided_rows: Iterable[int] = (),
        scores: Sequence[ScoreRow] = (),
        drift_checks: Sequence[DriftCheckRow] = (),
    ) -> None:
        """Close a run and, in the same transaction, write what only a completed run may leave: its files marked
        as checked (later ticks skip them), the rows it decided on, its batch scores and its drift checks."""
        now = utc_now()
        with self.transaction() as conn:
            conn.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, summary = ? WHERE id = ?",
                (now, outcome, summary, run_id),
            )
            conn.executemany(
                "INSERT OR REPLACE INTO checked_files (file_name, sha256, checked_at, run_id) VALUES (?, ?, ?, ?)",
                [(name, sha, now, run_id) for name, sha in checked],
            )
            conn.executemany(
                "INSERT OR IGNORE INTO decided_rows (row_hash, run_id) VALUES (?, ?)",
                ((int(row_hash), run_id) for row_hash in decided_rows),
            )
            for score in scores:
                _insert(conn, "scores", _score_row(score, now, run_id))
            for check in drift_checks:
                _insert(conn, "drift_checks", _drift_check_row(check, now, run_id))

    def unfinished_runs(self) -> int:
        """Runs that started and never finished: with the run lock held, runs that were killed."""
        return self._conn.execute("SELECT COUNT(*) FROM runs WHERE finished_at IS NULL").fetchone()[0]

    def mark_interrupted_runs(self, current_run: int | None = None) -> list[int]:
        """Runs that started and never finished (killed) get the outcome ``interrupted``; returns their ids."""
        with self.transaction() as conn:
            ids = [
                row[0]
                for row in conn.execute("SELECT id FROM runs WHERE finished_at IS NULL AND id IS NOT ?", (current_run,))
            ]
            conn.executemany(
                "UPDATE runs SET outcome = 'interrupted', finished_at = started_at, "
                "summary = COALESCE(summary, '') || ? WHERE id = ?",
                [("killed before it finished; recorded by a later run", run_id) for run_id in ids],
            )
        return ids

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,))

    # --- ingestion ---

    def record_ingestions(self, records: Sequence[IngestionRecord], run_id: int | None = None) -> None:
        """Write one ingestion's per-file records in a single transaction."""
        now = utc_now()
        rows = [{"run_id": run_id, "ingested_at": now, **record._asdict()} for record in records]
        if not rows:
            return
        columns = list(rows[0])
        sql = f"INSERT INTO ingestions ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
        with self.transaction() as conn:
            conn.executemany(sql, [tuple(row[c] for c in columns) for row in rows])

    def ingestions(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM ingestions ORDER BY id DESC LIMIT ?", (limit,))

    def cached_sha256(self, location: str, size_bytes: int, mtime_ns: int) -> str | None:
        """The sha256 recorded for a file with this location, size and mtime, if any (saves re-hashing)."""
        row = self._conn.execute(
            "SELECT sha256 FROM ingestions WHERE location = ? AND size_bytes = ? AND mtime_ns = ? "
            "ORDER BY id DESC LIMIT 1",
            (location, size_bytes, mtime_ns),
        ).fetchone()
        return row[0] if row else None

    def rejection_reason(self, file_name: str, sha256: str) -> str | None:
        """Why this exact file (name and content) was rejected before, or None if it never was."""
        row = self._conn.execute(
            "SELECT reason FROM ingestions WHERE file_name = ? AND sha256 = ? AND status = 'rejected' "
            "ORDER BY id DESC LIMIT 1",
            (file_name, sha256),
        ).fetchone()
        return row[0] if row else None

    def cached_sha256s(self, stats: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int, int], str]:
        """:meth:`cached_sha256` for many files at once: {(location, size, mtime): sha256} of those recorded."""
        sql = (
            "WITH w(location, size_bytes, mtime_ns) AS ({values}) SELECT w.location, w.size_bytes, w.mtime_ns, "
            "(SELECT i.sha256 FROM ingestions i WHERE i.location = w.location AND i.size_bytes = w.size_bytes "
            "AND i.mtime_ns = w.mtime_ns ORDER BY i.id DESC LIMIT 1) FROM w"
        )
        return {(loc, size, mtime): sha for loc, size, mtime, sha in self._lookup(sql, stats) if sha is not None}

    def rejection_reasons(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """:meth:`rejection_reason` for many files at once: {(name, sha256): reason} of those rejected before."""
        sql = (
            "WITH w(file_name, sha256) AS ({values}) SELECT w.file_name, w.sha256, (SELECT i.reason "
            "FROM ingestions i WHERE i.file_name = w.file_name AND i.sha256 = w.sha256 AND i.status = 'rejected' "
            "ORDER BY i.id DESC LIMIT 1) FROM w"
        )
        return {(name, sha): reason for name, sha, reason in self._lookup(sql, keys) if reason is not None}

    def _lookup(self, sql: str, keys: Sequence[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """Run ``sql`` (with ``{values}`` for a VALUES list) over ``keys`` in chunks that fit SQLite's limits."""
        for start in range(0, len(keys), LOOKUP_CHUNK):
            chunk = keys[start : start + LOOKUP_CHUNK]
            width = len(chunk[0])
            values = "VALUES " + ", ".join(["(" + ", ".join("?" * width) + ")"] * len(chunk))
            yield from (
                tuple(row) for row in self._conn.execute(sql.format(values=values), [v for key in chunk for v in key])
            )

    def checked_files(self) -> set[tuple[str, str]]:
        """(name, sha256) of every file a completed run has already checked."""
        return {(row[0], row[1]) for row in self._conn.execute("SELECT file_name, sha256 FROM checked_files")}

    # --- scores ---

    def record_score(
        self,
        kind: str,
        f1: float,
        rows: int,
        data_path: str,
        model_sha256: str | None = None,
        model_version: str | None = None,
    ) -> int:
        """Record a test score now (a run's batch scores are written by :meth:`finish_run`)."""
        row = ScoreRow(kind, f1, rows, data_path, model_sha256, model_version)
        with self.transaction() as conn:
            return _insert(conn, "scores", _score_row(row, utc_now(), None))

    def batch_score_history(self, model_version: str, limit: int) -> list[float]:
        """The course rules' history: the last ``limit`` batch F1 scores of this version, oldest first (test-file
        scores and drifting batches' own scores left out; batch scores exist only for completed runs)."""
        rows = self._conn.execute(
            "SELECT f1 FROM scores WHERE kind = 'batch' AND in_history = 1 AND model_version = ? "
            "ORDER BY id DESC LIMIT ?",
            (model_version, limit),
        ).fetchall()
        return [row[0] for row in reversed(rows)]

    def latest_test_score(self) -> dict[str, Any] | None:
        """The newest score of a trained model on the test data (what ``latestscore.txt`` should hold)."""
        rows = self._rows("SELECT * FROM scores WHERE kind = 'test' ORDER BY id DESC LIMIT 1")
        return rows[0] if rows else None

    def scores(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM scores ORDER BY id DESC LIMIT ?", (limit,))

    # --- drift ---

    def record_drift_check(self, check: DriftCheckRow, run_id: int | None = None) -> int:
        """Record a drift check now (a pipeline run's checks are written by :meth:`finish_run`)."""
        with self.transaction() as conn:
            return _insert(conn, "drift_checks", _drift_check_row(check, utc_now(), run_id))

    def decided_batches(self, model_version: str) -> list[dict[str, int]]:
        """The confusion counts of every batch decided on while ``model_version`` stayed deployed (no drift, or a
        rejected challenger), oldest first: they join the significant rule's reference (risk/drift.py)."""
        rows = self._conn.execute(
            "SELECT decision FROM drift_checks WHERE deployed_version = ? AND next_step IN "
            "('no drift', 'challenger rejected') AND decision IS NOT NULL ORDER BY id",
            (model_version,),
        ).fetchall()
        return [json.loads(row[0])["batch"] for row in rows]

    # --- rows known by content ---

    def decided_rows(self) -> list[tuple[int, int | None]]:
        """(content hash, run) of every row a completed run has decided on or trained on (risk/rows.py)."""
        return [(row[0], row[1]) for row in self._conn.execute("SELECT row_hash, run_id FROM decided_rows")]

    def mark_rows_decided(self, hashes: Iterable[int]) -> None:
        """Record rows as decided outside a pipeline run (the rows a model deployed by hand was trained on)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO decided_rows (row_hash, run_id) VALUES (?, NULL)",
                ((int(row_hash),) for row_hash in hashes),
            )

    def last_deploying_run(self) -> int | None:
        """The newest run whose outcome was a deployment (its decided rows are the current model's own)."""
        row = self._conn.execute(
            "SELECT MAX(id) FROM runs WHERE outcome IN ('deployed', 'deployed with errors')"
        ).fetchone()
        return row[0]

    # --- risk lists ---

    def record_risk_list(self, row: RiskListRow, run_id: int | None = None) -> int:
        data = {"scored_at": utc_now(), "run_id": run_id, **row._asdict(), "summary": json.dumps(row.summary)}
        return self._insert("risk_lists", data)

    def latest_risk_list_key(self) -> tuple[str, int, int, str] | None:
        """(book path, size, mtime, model version) of the newest risk list: what the tick compares the book's stat
        and the deployed version with to know whether the list is stale."""
        if self.schema_version < 3:
            return None
        row = self._conn.execute(
            "SELECT book_path, book_size_bytes, book_mtime_ns, model_version FROM risk_lists ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def risk_lists(self, limit: int = 2) -> list[dict[str, Any]]:
        """The newest risk lists, newest first, each with its summary decoded."""
        if self.schema_version < 3:
            return []
        rows = self._rows("SELECT * FROM risk_lists ORDER BY id DESC LIMIT ?", (limit,))
        return [{**row, "summary": json.loads(row["summary"])} for row in rows]

    def drift_checks(self, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM drift_checks ORDER BY id DESC LIMIT ?", (limit,))
        return [_decode_drift_check(row) for row in rows]

    # --- deployments ---

    def record_deployment(
        self,
        action: str,
        version: str,
        previous_version: str | None,
        f1: float | None,
        model_sha256: str | None,
    ) -> int:
        """Record a deploy or rollback; a deploy also names the version on its model's test scores."""
        row = {
            "deployed_at": utc_now(),
            "action": action,
            "version": version,
            "previous_version": previous_version,
            "f1": f1,
            "model_sha256": model_sha256,
        }
        with self.transaction() as conn:
            row_id = _insert(conn, "deployments", row)
            if action == "deploy" and model_sha256:
                conn.execute(
                    "UPDATE scores SET model_version = ? WHERE kind = 'test' AND model_sha256 = ? "
                    "AND model_version IS NULL",
                    (version, model_sha256),
                )
            return row_id

    def deployed_versions(self) -> set[str]:
        """Every version ever switched to by a deploy or rollback."""
        return {row[0] for row in self._conn.execute("SELECT DISTINCT version FROM deployments")}

    def deployed_sha256s(self, version: str) -> set[str]:
        """The model sha256s recorded for ``version`` by its deploy and any rollbacks to it (one, normally)."""
        rows = self._conn.execute(
            "SELECT DISTINCT model_sha256 FROM deployments WHERE version = ? AND model_sha256 IS NOT NULL", (version,)
        )
        return {row[0] for row in rows}

    def deployments(self, limit: int = 100) -> list[dict[str, Any]]:
        return self._rows("SELECT * FROM deployments ORDER BY id DESC LIMIT ?", (limit,))

    # --- data drift ---

    def record_data_drift(self, result: dict[str, Any]) -> int:
        """Record one feature-level data drift check (``result`` must hold ``verdict``; stored whole as JSON)."""
        return self._insert(
            "data_drift_checks",
            {
                "checked_at": result.get("timestamp") or utc_now(),
                "model_version": result.get("model_version"),
                "verdict": result["verdict"],
                "result": json.dumps(result),
            },
        )

    def latest_data_drift(self) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT result FROM data_drift_checks ORDER BY id DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    # --- diagnostics ---

    def record_diagnostics(self, snapshot: DiagnosticsSnapshot) -> int:
        """Record one diagnostics snapshot (risk/snapshot.py); readers get its JSON document back."""
        return self._insert(
            "diagnostics_runs",
            {
                "run_at": snapshot.timestamp,
                "model_version": snapshot.model_version,
                "snapshot": json.dumps(snapshot.as_json()),
            },
        )

    def latest_diagnostics(self) -> dict[str, Any] | None:
        row = self._conn.execute("SELECT snapshot FROM diagnostics_runs ORDER BY id DESC LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def diagnostics_history(self, limit: int = 50) -> list[dict[str, Any]]:
        """The most recent ``limit`` diagnostics snapshots, oldest first (for trends)."""
        rows = self._conn.execute("SELECT snapshot FROM diagnostics_runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [json.loads(row[0]) for row in reversed(rows)]

    # --- evaluations (schema v2) ---

    def record_evaluation(self, evaluation: dict[str, Any]) -> int:
        """Record a model's confusion matrix and precision/recall/F1 on the test data."""
        return self._insert("evaluations", {"evaluated_at": utc_now(), **evaluation})

    def latest_evaluation(self, model_version: str | None = None) -> dict[str, Any] | None:
        """The newest evaluation (of ``model_version`` when given), or None."""
        if self.schema_version < 2:
            return None  # a read-only reader of a store the cron run has not migrated yet
        where, params = ("WHERE model_version = ?", (model_version,)) if model_version else ("", ())
        rows = self._rows(f"SELECT * FROM evaluations {where} ORDER BY id DESC LIMIT 1", params)
        return rows[0] if rows else None

    # --- history views ---

    def history_page(self, kind: str, limit: int, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
        """One page of the ``kind`` history (one of HISTORY_KINDS), newest first, and the total row count."""
        if kind not in HISTORY_KINDS:
            raise ValueError(f"unknown history kind {kind!r}; use one of {', '.join(HISTORY_KINDS)}")
        with self.read_snapshot():
            rows = self._rows(f"SELECT * FROM {kind} ORDER BY id DESC LIMIT ? OFFSET ?", (limit, offset))
            total = self._conn.execute(f"SELECT COUNT(*) FROM {kind}").fetchone()[0]
        if kind == "drift_checks":
            rows = [_decode_drift_check(row) for row in rows]
        return rows, total

    def latest_ingestion_per_file(self) -> list[dict[str, Any]]:
        """The newest ingestion record of each file name, by name: what the input folder last gave."""
        return self._rows(
            "SELECT * FROM ingestions WHERE id IN (SELECT MAX(id) FROM ingestions GROUP BY file_name) "
            "ORDER BY file_name"
        )


class _Transaction:
    """BEGIN IMMEDIATE on enter; COMMIT on success, ROLLBACK on any exception."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._conn.execute("ROLLBACK" if exc_type else "COMMIT")


def _insert(conn: sqlite3.Connection, table: str, row: dict[str, Any]) -> int:
    columns = list(row)
    cursor = conn.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
        tuple(row[c] for c in columns),
    )
    return int(cursor.lastrowid)


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))


def _unflag(value: int | None) -> bool | None:
    return None if value is None else bool(value)


def _score_row(score: ScoreRow, now: str, run_id: int | None) -> dict[str, Any]:
    return {"scored_at": now, "run_id": run_id, **score._asdict(), "in_history": int(score.in_history)}


def _drift_check_row(check: DriftCheckRow, now: str, run_id: int | None) -> dict[str, Any]:
    return {
        "checked_at": now,
        "run_id": run_id,
        **check._asdict(),
        "drift": _flag(check.drift),
        "raw_drift": _flag(check.raw_drift),
        "files": json.dumps(list(check.files)),
        "decision": json.dumps(check.decision, default=_plain_json),
    }


def _plain_json(value: Any) -> Any:
    """numpy scalars (a bool or a float64 from a computation) as the plain values JSON knows."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _decode_drift_check(row: dict[str, Any]) -> dict[str, Any]:
    """A drift_checks row with ``drift`` and ``raw_drift`` as bools (or None), ``files`` as a list and
    ``decision`` decoded (None for checks made before v3)."""
    decision = row.get("decision")
    return {
        **row,
        "drift": _unflag(row["drift"]),
        "raw_drift": _unflag(row.get("raw_drift")),
        "files": json.loads(row["files"]),
        "decision": json.loads(decision) if decision else None,
    }


def _split_sql(script: str) -> Iterator[str]:
    """The statements of a migration script (our migrations hold no semicolons inside literals)."""
    for statement in script.split(";"):
        if statement.strip():
            yield statement


def with_store(step: Callable[[Settings, RecordsStore], object]) -> Callable[[Settings], int]:
    """Adapt a step that needs the records store to ``plumbing.run_script``'s ``step(settings)`` shape."""

    def run(settings: Settings) -> int:
        with RecordsStore(settings.records_db_path) as store:
            step(settings, store)
        return 0

    return run


class StoreUnreadable(RuntimeError):
    """The records store exists but SQLite cannot read it (corrupt, locked beyond the busy timeout...)."""


@contextlib.contextmanager
def reading(path: Path) -> Iterator[RecordsStore | None]:
    """The store opened read-only for one reader (an API request): None when it does not exist yet.

    Never creates or writes anything; any SQLite error is raised as StoreUnreadable naming the file.
    """
    try:
        store = RecordsStore(path, readonly=True)
    except FileNotFoundError:
        yield None
        return
    except sqlite3.Error as err:
        raise StoreUnreadable(f"the records store {path} cannot be read ({err})") from None
    try:
        yield store
    except sqlite3.Error as err:
        raise StoreUnreadable(f"the records store {path} cannot be read ({err})") from None
    finally:
        store.close()
