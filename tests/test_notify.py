"""risk.notify: quiet lines, the Prometheus textfile and the webhook, against real files and real loopback servers."""

from __future__ import annotations

import calendar
import contextlib
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from risk.notify import (
    NOTICE,
    announce,
    post_webhook,
    quiet_lines,
    render_textfile,
    should_post,
    tell_quiet,
    webhook_payload,
    write_textfile,
)
from risk.outcome import EventKind, RunOutcome, RunRecord

TIMEOUT = 0.5
HANG_BOUND = 3.0  # seconds: a bound on a hang (timeout plus generous slack on a shared machine), not a speed claim
STARTED = "2026-11-23T01:02:03Z"
FINISHED = "2026-11-23T01:02:09Z"
FINISHED_UNIX = calendar.timegm((2026, 11, 23, 1, 2, 9))

ALL_METRICS = {
    "risk_last_run_timestamp_seconds",
    "risk_last_run_id",
    "risk_last_run_exit_code",
    "risk_last_run_success",
    "risk_last_run_outcome",
    "risk_drift",
    "risk_new_f1",
    "risk_reference_f1",
    "risk_p_value",
    "risk_batch_rows",
    "risk_batch_positives",
    "risk_data_drift",
    "risk_data_drift_feature",
    "risk_deployed_version_info",
}


# --- records -----------------------------------------------------------------------------------------------


def unchanged_record() -> RunRecord:
    """The cheap tick: nothing new, nothing to tell."""
    return RunRecord(
        run_id=None,
        started_at=STARTED,
        finished_at=FINISHED,
        outcome=RunOutcome.NOTHING_NEW,
        deployed_version="v3",
        previous_version="v3",
    )


def no_drift_record() -> RunRecord:
    """Checked, no drift, data drift report-only: something to read, nothing to page anyone about."""
    record = RunRecord(
        run_id=7,
        started_at=STARTED,
        finished_at=FINISHED,
        outcome=RunOutcome.NO_DRIFT,
        deployed_version="v3",
        previous_version="v3",
        drift_rule="significant",
        drift=False,
        raw_drift=True,
        new_f1=0.78,
        reference_f1=0.80,
        p_value=0.41,
        batch_rows=40,
        batch_positives=12,
        data_drift="drift",
        drifted_features=("lastmonth_activity",),
    )
    record = record.tell(EventKind.DATA_DRIFT, "data drift in lastmonth_activity (report-only)")
    record = record.tell(EventKind.REJECTED_FILE, "rejected bad.csv: column exited missing")
    return record


def drift_record() -> RunRecord:
    """Drift by the acting rule, retrained and redeployed v3 -> v4."""
    record = RunRecord(
        run_id=12,
        started_at=STARTED,
        finished_at=FINISHED,
        outcome=RunOutcome.DEPLOYED,
        deployed_version="v4",
        previous_version="v3",
        drift_rule="significant",
        drift=True,
        raw_drift=False,
        new_f1=0.61,
        reference_f1=0.80,
        p_value=0.0031,
        batch_rows=40,
        batch_positives=12,
        data_drift="drift",
        drifted_features=("lastmonth_activity", "number_of_employees"),
    )
    record = record.tell(EventKind.DRIFT, "drift check (significant) says drift")
    record = record.tell(EventKind.REDEPLOY, "retrained and deployed")
    return record


def record_with(kind: EventKind, message: str, **changes: object) -> RunRecord:
    record = drift_record()._replace(events=(), lines=(), **changes)
    record = record.tell(kind, message)
    return record


# --- quiet lines -------------------------------------------------------------------------------------------


def test_an_unchanged_run_gives_no_quiet_lines_and_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(NOTICE, logger="risk.notify")
    assert quiet_lines(unchanged_record()) == []
    tell_quiet(unchanged_record())
    assert caplog.records == []


@pytest.mark.parametrize(
    ("kind", "outcome", "expected"),
    [
        (
            EventKind.DRIFT,
            RunOutcome.DEPLOYED,
            [
                "run 12 drift: the message",
                "rule significant",
                "v3: F1 0.6100 vs 0.8000",
                "p=0.0031",
                "40 rows, 12 positive",
                "next: v4 serves now",
            ],
        ),
        (EventKind.REDEPLOY, RunOutcome.DEPLOYED, ["run 12 redeploy: the message", "v3 -> v4"]),
        (
            EventKind.CHALLENGER_REJECTED,
            RunOutcome.CHALLENGER_REJECTED,
            ["run 12 challenger rejected: the message", "v3: F1 0.6100 vs 0.8000", "next: v3 stays deployed"],
        ),
        (
            EventKind.DATA_DRIFT,
            RunOutcome.NO_DRIFT,
            [
                "run 12 data drift: the message",
                "features: lastmonth_activity, number_of_employees",
                "against v3's training data",
                "next: v3 stays deployed",
            ],
        ),
        (EventKind.REJECTED_FILE, RunOutcome.NO_DRIFT, ["run 12 rejected file: the message", "not ingested"]),
        (EventKind.FAILURE, RunOutcome.FAILED, ["run 12 failure: the message", "v3 still serves", "exit 1"]),
    ],
)
def test_each_event_kind_gives_one_self_contained_line(
    kind: EventKind, outcome: RunOutcome, expected: list[str]
) -> None:
    serving = "v4" if outcome is RunOutcome.DEPLOYED else "v3"
    lines = quiet_lines(record_with(kind, "the message", outcome=outcome, deployed_version=serving))
    assert len(lines) == 1
    for part in expected:
        assert part in lines[0]
    assert "\n" not in lines[0]


def test_a_run_gives_one_line_per_event_in_order() -> None:
    lines = quiet_lines(drift_record())
    assert [line.split(":")[0] for line in lines] == ["run 12 drift", "run 12 redeploy"]


def test_a_multi_line_or_huge_message_stays_one_short_line() -> None:
    record = record_with(
        EventKind.FAILURE, "Traceback:\n  File x\nValueError: " + "boom " * 500, outcome=RunOutcome.FAILED
    )
    [line] = quiet_lines(record)
    assert "\n" not in line
    assert "Traceback: File x ValueError: boom" in line
    assert len(line) < 400


def test_unknown_figures_are_left_out_of_the_line() -> None:
    record = record_with(
        EventKind.DRIFT,
        "drift",
        new_f1=None,
        reference_f1=None,
        p_value=None,
        batch_rows=0,
        drift_rule=None,
        outcome=None,
    )
    assert quiet_lines(record) == ["run 12 drift: drift"]


def test_tell_quiet_logs_every_line_at_notice(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(NOTICE, logger="risk.notify")
    tell_quiet(drift_record())
    assert [r.getMessage() for r in caplog.records] == quiet_lines(drift_record())
    assert {(r.name, r.levelno, r.levelname) for r in caplog.records} == {("risk.notify", NOTICE, "NOTICE")}
    assert logging.INFO < NOTICE < logging.WARNING  # above what --quiet hides, below warnings


# --- textfile ----------------------------------------------------------------------------------------------


def families(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Parsed with prometheus_client's own parser: metric name -> [(labels, value)]."""
    parsed = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge"
        parsed[family.name] = [(sample.labels, sample.value) for sample in family.samples]
    return parsed


def single(parsed: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    [(labels, value)] = parsed[name]
    assert labels == {}
    return value


def test_the_textfile_has_every_metric_with_the_right_values() -> None:
    parsed = families(render_textfile(drift_record()))
    assert set(parsed) == ALL_METRICS
    assert single(parsed, "risk_last_run_timestamp_seconds") == FINISHED_UNIX
    assert single(parsed, "risk_last_run_id") == 12
    assert single(parsed, "risk_last_run_exit_code") == 0
    assert single(parsed, "risk_last_run_success") == 1
    assert single(parsed, "risk_new_f1") == 0.61
    assert single(parsed, "risk_reference_f1") == 0.80
    assert single(parsed, "risk_p_value") == 0.0031
    assert single(parsed, "risk_batch_rows") == 40
    assert single(parsed, "risk_batch_positives") == 12
    drift = {(labels["role"], labels["rule"]): value for labels, value in parsed["risk_drift"]}
    assert drift == {("acting", "significant"): 1, ("course", "raw"): 0}
    assert parsed["risk_data_drift"] == [({"verdict": "drift"}, 1)]
    assert parsed["risk_data_drift_feature"] == [
        ({"feature": "lastmonth_activity"}, 1),
        ({"feature": "number_of_employees"}, 1),
    ]
    assert parsed["risk_deployed_version_info"] == [({"version": "v4"}, 1)]


@pytest.mark.parametrize("outcome", list(RunOutcome))
def test_the_outcome_is_one_hot_over_every_outcome(outcome: RunOutcome) -> None:
    parsed = families(render_textfile(unchanged_record()._replace(outcome=outcome)))
    samples = {labels["outcome"]: value for labels, value in parsed["risk_last_run_outcome"]}
    assert set(samples) == {each.value for each in RunOutcome}
    assert sum(samples.values()) == 1
    assert samples[outcome.value] == 1
    assert single(parsed, "risk_last_run_exit_code") == outcome.exit_code
    assert single(parsed, "risk_last_run_success") == (1 if outcome.exit_code == 0 else 0)


def test_a_verdict_other_than_drift_is_zero_with_its_label() -> None:
    parsed = families(render_textfile(no_drift_record()._replace(data_drift="insufficient data", drifted_features=())))
    assert parsed["risk_data_drift"] == [({"verdict": "insufficient data"}, 0)]
    assert "risk_data_drift_feature" not in parsed


def test_unknown_figures_are_omitted_not_nan() -> None:
    record = RunRecord(
        run_id=None, started_at=STARTED, outcome=RunOutcome.CARRIED_OVER, deployed_version="v3", new_f1=float("nan")
    )
    text = render_textfile(record)
    parsed = families(text)
    assert set(parsed) == {
        "risk_last_run_timestamp_seconds",
        "risk_last_run_exit_code",
        "risk_last_run_success",
        "risk_last_run_outcome",
        "risk_batch_rows",
        "risk_batch_positives",
        "risk_deployed_version_info",
    }
    assert single(parsed, "risk_last_run_timestamp_seconds") == calendar.timegm((2026, 11, 23, 1, 2, 3))
    assert "NaN" not in text and "risk_new_f1" not in text


def test_a_run_without_an_outcome_has_no_outcome_metrics() -> None:
    parsed = families(render_textfile(RunRecord(run_id=3, started_at=STARTED)))
    assert set(parsed) == {
        "risk_last_run_timestamp_seconds",
        "risk_last_run_id",
        "risk_batch_rows",
        "risk_batch_positives",
    }


def test_label_values_with_quotes_backslashes_and_newlines_survive() -> None:
    version = 'v"4"\nbeta\\x'
    feature = 'odd "name"\nwith\\slash'
    record = drift_record()._replace(deployed_version=version, drifted_features=(feature,), drift_rule='a"b')
    text = render_textfile(record)
    parsed = families(text)
    assert parsed["risk_deployed_version_info"] == [({"version": version}, 1)]
    assert parsed["risk_data_drift_feature"] == [({"feature": feature}, 1)]
    assert ("acting", 'a"b') in {(labels["role"], labels["rule"]) for labels, _ in parsed["risk_drift"]}
    assert all(line.startswith(("#", "risk_")) for line in text.splitlines())  # no raw newline split a sample


def test_numpy_figures_render_and_serialise() -> None:
    record = drift_record()._replace(
        drift=np.bool_(True),
        raw_drift=np.bool_(False),
        new_f1=np.float64(0.61),
        batch_rows=np.int64(40),
        batch_positives=np.int64(12),
    )
    parsed = families(render_textfile(record))
    assert single(parsed, "risk_batch_rows") == 40 and single(parsed, "risk_new_f1") == 0.61
    payload = json.loads(json.dumps(webhook_payload(record), allow_nan=False))
    assert payload["drift"]["drift"] is True and payload["drift"]["batch_rows"] == 40


def test_write_textfile_makes_the_folder_and_leaves_only_the_file(tmp_path: Path) -> None:
    path = tmp_path / "textfile" / "collector" / "risk.prom"
    assert write_textfile(path, drift_record()) == path
    assert path.read_text(encoding="utf-8") == render_textfile(drift_record())
    assert list(path.parent.iterdir()) == [path]
    assert path.stat().st_mode & 0o777 == 0o644  # node_exporter, another user, must read it


def test_write_textfile_replaces_an_existing_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "risk.prom"
    path.write_text("# old\n" + "risk_old 1\n" * 5000)
    old_inode = path.stat().st_ino
    write_textfile(path, unchanged_record())
    assert path.read_text(encoding="utf-8") == render_textfile(unchanged_record())
    assert path.stat().st_ino != old_inode  # a new file renamed over the old one, not the old one rewritten
    assert list(tmp_path.iterdir()) == [path]


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "risk.prom"
    path.mkdir()
    (path / "keep").write_text("x")  # a non-empty folder where the file should go: os.replace must fail
    with pytest.raises(OSError):
        write_textfile(path, drift_record())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["risk.prom"]
    assert [p.name for p in path.iterdir()] == ["keep"]


def test_a_textfile_not_named_prom_is_written_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_textfile(tmp_path / "risk.txt", unchanged_record())
    assert path.exists()
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert ".prom" in warning.getMessage()


# --- webhook servers ---------------------------------------------------------------------------------------


class Receiver(BaseHTTPRequestHandler):
    """Answers every POST with the server's status; keeps (path, headers, body) of each."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))  # type: ignore[attr-defined]
        status = self.server.status  # type: ignore[attr-defined]
        self.send_response(status)
        if 300 <= status < 400:
            self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_GET(self) -> None:
        self.server.received.append((self.path, dict(self.headers), b""))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def receiver(status: int = 200) -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    server.received = []  # type: ignore[attr-defined]
    server.status = status  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def url_of(server: ThreadingHTTPServer, path: str = "/hooks/risk") -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{path}"


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose kernel completes the TCP handshake (listen backlog) but nobody ever reads or answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        yield sock.getsockname()[1]


@contextlib.contextmanager
def trickler() -> Iterator[int]:
    """Accepts, starts an answer, then sends one byte of a header line every 50 ms, never finishing it."""
    stop = threading.Event()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    sock.settimeout(5)

    def trickle() -> None:
        with contextlib.suppress(OSError):
            connection, _ = sock.accept()
            with connection:
                connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not stop.wait(0.05):
                    connection.sendall(b"a")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        sock.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback servers only: an ambient proxy setting must not route the tests elsewhere."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == "risk.notify"]


# --- webhook -----------------------------------------------------------------------------------------------


def test_the_payload_reaches_a_real_server(caplog: pytest.LogCaptureFixture) -> None:
    with receiver() as server:
        assert post_webhook(url_of(server), drift_record(), TIMEOUT) is True
    [(path, headers, body)] = server.received
    assert path == "/hooks/risk"
    assert headers["Content-Type"] == "application/json"
    payload = json.loads(body)
    assert payload == webhook_payload(drift_record())
    assert payload["format"] == 1
    assert (payload["outcome"], payload["exit_code"], payload["succeeded"]) == ("deployed", 0, True)
    assert (payload["deployed_version"], payload["previous_version"]) == ("v4", "v3")
    assert payload["drift"] == {
        "rule": "significant",
        "drift": True,
        "raw_drift": False,
        "new_f1": 0.61,
        "reference_f1": 0.8,
        "p_value": 0.0031,
        "batch_rows": 40,
        "batch_positives": 12,
    }
    assert payload["data_drift"] == {"verdict": "drift", "features": ["lastmonth_activity", "number_of_employees"]}
    assert payload["events"] == [
        {"kind": "drift", "message": "drift check (significant) says drift"},
        {"kind": "redeploy", "message": "retrained and deployed"},
    ]
    assert payload["text"].splitlines() == quiet_lines(drift_record())
    assert warnings_of(caplog) == []


def test_unknown_figures_are_null_in_the_payload() -> None:
    record = record_with(
        EventKind.FAILURE, "boom", new_f1=float("nan"), reference_f1=None, p_value=None, drift=None, outcome=None
    )
    payload = json.loads(json.dumps(webhook_payload(record), allow_nan=False))
    assert payload["drift"]["new_f1"] is None and payload["drift"]["drift"] is None
    assert payload["outcome"] is None and payload["exit_code"] is None


def assert_fails_within_bound(url: str, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    started = time.monotonic()
    ok = post_webhook(url, drift_record(), TIMEOUT)
    elapsed = time.monotonic() - started
    assert ok is False
    assert elapsed < HANG_BOUND, f"post_webhook took {elapsed:.2f} s on a {TIMEOUT} s timeout"
    [warning] = warnings_of(caplog)
    assert url.rsplit("/", 2)[0] in warning  # the origin, scheme://host:port
    assert reason in warning


def test_a_server_that_accepts_and_never_answers_costs_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with silent_listener() as port:
        assert_fails_within_bound(f"http://127.0.0.1:{port}/hook", caplog, f"within {TIMEOUT:g} s")


def test_a_server_that_trickles_bytes_costs_the_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with trickler() as port:
        assert_fails_within_bound(f"http://127.0.0.1:{port}/hook", caplog, f"within {TIMEOUT:g} s")


def test_a_closed_port_fails_at_once_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    assert_fails_within_bound(f"http://127.0.0.1:{closed_port()}/hook", caplog, "refused")


def test_an_error_status_is_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    with receiver(status=500) as server:
        assert_fails_within_bound(url_of(server, "/h/x"), caplog, "HTTP 500")


def test_a_redirect_is_a_failure_not_a_silent_get(caplog: pytest.LogCaptureFixture) -> None:
    with receiver(status=302) as server:
        assert_fails_within_bound(url_of(server, "/h/x"), caplog, "HTTP 302")
    assert [path for path, _, _ in server.received] == ["/h/x"]  # nothing followed to /elsewhere


def test_the_warning_hides_the_secret_path(caplog: pytest.LogCaptureFixture) -> None:
    post_webhook(f"http://user:pw@127.0.0.1:{closed_port()}/services/T0/SECRETTOKEN", drift_record(), TIMEOUT)
    [warning] = warnings_of(caplog)
    assert "SECRETTOKEN" not in warning and "pw" not in warning


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.org/x",
        "127.0.0.1:8000/x",
        "http://[::1",
        "http:///nohost",
        "http://127.0.0.1:99999/x",
    ],
)
def test_only_http_urls_are_posted_to(url: str, caplog: pytest.LogCaptureFixture) -> None:
    assert post_webhook(url, drift_record(), TIMEOUT) is False
    [warning] = warnings_of(caplog)
    assert "webhook URL" in warning and "fix" in warning


def test_should_post_only_for_drift_redeploy_rejection_or_failure() -> None:
    assert not should_post(unchanged_record())
    assert not should_post(no_drift_record())  # data drift and a rejected file: quiet lines, no page
    for kind in (EventKind.DRIFT, EventKind.REDEPLOY, EventKind.CHALLENGER_REJECTED, EventKind.FAILURE):
        assert should_post(record_with(kind, "x"))


# --- announce ----------------------------------------------------------------------------------------------


def test_announce_tells_writes_and_posts_a_drift_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(NOTICE, logger="risk.notify")
    path = tmp_path / "metrics" / "risk.prom"
    with receiver() as server:
        announce(drift_record(), textfile=path, webhook_url=url_of(server), webhook_timeout=TIMEOUT)
    assert len(server.received) == 1
    assert families(path.read_text())["risk_deployed_version_info"] == [({"version": "v4"}, 1)]
    assert [r.getMessage() for r in caplog.records if r.levelno == NOTICE] == quiet_lines(drift_record())


def test_announce_does_not_post_a_no_drift_run(tmp_path: Path) -> None:
    with receiver() as server:
        announce(
            no_drift_record(), textfile=tmp_path / "risk.prom", webhook_url=url_of(server), webhook_timeout=TIMEOUT
        )
    assert server.received == []
    assert (tmp_path / "risk.prom").exists()


def test_announce_survives_an_unwritable_textfile(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    with receiver() as server:
        announce(drift_record(), textfile=blocker / "risk.prom", webhook_url=url_of(server), webhook_timeout=TIMEOUT)
    assert len(server.received) == 1  # the webhook still went out
    [warning] = warnings_of(caplog)
    assert "not-a-folder" in warning and "not written" in warning


def test_announce_with_nothing_configured_only_tells(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(NOTICE, logger="risk.notify")
    announce(drift_record(), textfile=None, webhook_url=None, webhook_timeout=TIMEOUT)
    assert len(caplog.records) == 2 and not warnings_of(caplog)


def test_the_textfile_timestamp_falls_back_to_started_at() -> None:
    parsed = families(render_textfile(drift_record()._replace(finished_at=None)))
    assert math.isclose(single(parsed, "risk_last_run_timestamp_seconds"), calendar.timegm((2026, 11, 23, 1, 2, 3)))
