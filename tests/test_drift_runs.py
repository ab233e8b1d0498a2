"""The drift decisions of ``fullprocess.py`` runs (its ``main()`` in this process, ``Project.run_in_process``;
the quiet tick as cron runs it, its own process), on synthetic clients (risk/synthetic.py) in temp projects:
rows new by content, small batches carried over and pooled, the default rule's verdicts on unchanged and changed
data, the 5-row test file's F1-0 lock-in, the challenger gate, ``--force``, and what people hear: the quiet lines,
the Prometheus textfile and the webhook."""

from __future__ import annotations

import http.server
import json
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.metrics import f1_score

from risk.deployed import load_deployed_model
from risk.schema import FEATURES
from risk.synthetic import client_rows, csv_text
from risk.versions import current_version
from tests.support import Project, make_project, shared_template

pytestmark = pytest.mark.slow

BASE_ROWS = 2000


def write_clients(path: Path, rows: np.ndarray) -> Path:
    path.write_text(csv_text(rows))
    return path


def flipped(rows: np.ndarray, share: float, rng: np.random.Generator) -> np.ndarray:
    out = rows.copy()
    chosen = rng.random(len(out)) < share
    out[chosen, 4] = 1 - out[chosen, 4]
    return out


def build_synthetic(root: Path) -> None:
    project = make_project(root)
    for path in (project.root / "sourcedata").iterdir():
        path.unlink()
    rng = np.random.default_rng(1)
    write_clients(project.root / "sourcedata" / "base.csv", client_rows(rng, BASE_ROWS, drift=False))
    write_clients(project.root / "testdata" / "testdata.csv", client_rows(np.random.default_rng(2), 1000, False))
    project.run_in_process("fullprocess.py")
    assert current_version(project.settings()) == "v0001"


@pytest.fixture(scope="session")
def synthetic_template(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project whose model (v0001) was trained on 2,000 synthetic clients, with a 1,000-row test file (built
    once per run, never changed)."""
    return shared_template(tmp_path_factory, "synthetic", build_synthetic)


@pytest.fixture
def synthetic(synthetic_template: Project, tmp_path: Path) -> Project:
    return synthetic_template.copy_to(tmp_path / "project")


def drift_checks(project: Project) -> list[dict]:
    with project.store() as store:
        return store.drift_checks()


def test_appended_rows_and_renamed_copies_give_exactly_their_new_rows(synthetic: Project) -> None:
    base = synthetic.root / "sourcedata" / "base.csv"
    extra = client_rows(np.random.default_rng(50), 3, drift=False)
    with open(base, "a") as handle:
        handle.write(csv_text(extra[:2]).split("\n", 1)[1])  # two rows appended to an ingested file
    result = synthetic.run_in_process("fullprocess.py")
    assert "on 2 new rows from base.csv" in result.stderr and "carried over: 2 new labelled rows" in result.stderr

    copy = synthetic.root / "sourcedata" / "aaa_renamed_copy.csv"  # sorts before base.csv
    shutil.copy(base, copy)
    with open(copy, "a") as handle:
        handle.write(csv_text(extra[2:]).split("\n", 1)[1])  # and one more new row
    again = synthetic.run_in_process("fullprocess.py")
    assert "carried over: 3 new labelled rows" in again.stderr  # the 2 carried over and the 1 new: pooled
    assert [c["rows"] for c in drift_checks(synthetic)] == [3, 2]


def test_small_batches_are_carried_over_then_pooled_until_there_is_enough_evidence(synthetic: Project) -> None:
    rng = np.random.default_rng(60)
    write_clients(synthetic.root / "sourcedata" / "part1.csv", client_rows(rng, 60, drift=False))
    first = synthetic.run_in_process("fullprocess.py")
    assert (
        "carried over: 60 new labelled rows with" in first.stderr and "100 rows and 10 positives needed" in first.stderr
    )
    assert "the 60 new rows are kept for the next tick" in first.stderr
    write_clients(synthetic.root / "sourcedata" / "part2.csv", client_rows(rng, 60, drift=False))
    second = synthetic.run_in_process("fullprocess.py")
    assert "on 120 new rows from part1.csv, part2.csv: drift check (significant): no drift" in second.stderr
    assert current_version(synthetic.settings()) == "v0001"
    latest, carried = drift_checks(synthetic)
    assert (carried["next_step"], carried["rows"]) == ("carried over", 60)
    assert (latest["next_step"], latest["rows"], latest["drift"]) == ("no drift", 120, False)
    assert "nothing to do" in synthetic.run_in_process("fullprocess.py").stderr


def test_the_default_rule_keeps_the_model_on_unchanged_data_and_states_its_numbers(synthetic: Project) -> None:
    write_clients(synthetic.root / "sourcedata" / "same.csv", client_rows(np.random.default_rng(70), 1000, False))
    result = synthetic.run("fullprocess.py", "--quiet")  # as cron runs it: its own process, everything it writes
    assert result.stderr == ""  # an unchanged tick says nothing under --quiet (cron mails nothing)
    [check] = drift_checks(synthetic)
    decision = check["decision"]
    assert check["drift"] is False and check["rows"] == 1000 and decision["verdict"]["p_value"] > 0.05
    assert decision["reference"]["tp"] + decision["reference"]["fn"] > 100  # the reference rests on hundreds of rows
    assert decision["raw"] is not None  # the course rule's verdict beside it


def test_flipped_labels_are_detected_and_the_better_model_is_deployed(synthetic: Project) -> None:
    rng = np.random.default_rng(80)
    write_clients(synthetic.root / "sourcedata" / "flipped.csv", flipped(client_rows(rng, 1000, False), 0.5, rng))
    result = synthetic.run_in_process("fullprocess.py", "--quiet")
    notices = [line for line in result.stderr.splitlines() if " NOTICE " in line]
    drift = [line for line in notices if "run 2 drift:" in line]
    redeploy = [line for line in notices if "run 2 redeploy:" in line]
    assert len(drift) == 1 and "drift check (significant): drift" in drift[0] and "1000 new labelled rows" in drift[0]
    assert len(redeploy) == 1 and "deployed v0002" in redeploy[0]
    [check] = drift_checks(synthetic)
    assert check["next_step"] == "challenger deployed" and check["decision"]["gate"]["chosen"] is not None
    assert current_version(synthetic.settings()) == "v0002"


def test_a_reversed_boundary_is_followed_by_a_model_trained_on_the_new_rows(synthetic: Project) -> None:
    write_clients(synthetic.root / "sourcedata" / "reversed.csv", client_rows(np.random.default_rng(90), 1000, True))
    result = synthetic.run_in_process("fullprocess.py")
    assert "challenger gate: deploy new" in result.stderr or "challenger gate: deploy window" in result.stderr
    assert current_version(synthetic.settings()) == "v0002"


def test_a_rejected_challenger_leaves_the_deployed_version_and_is_recorded(synthetic: Project) -> None:
    """Under the course's raw rule a batch from the same distribution that scores a little below the test file
    fires; the retrained candidates are no better on the new rows, so the gate keeps v0001."""
    synthetic.edit_config(drift_test="raw")
    deployed = load_deployed_model(synthetic.settings())
    rng = np.random.default_rng(100)
    while True:  # a same-distribution batch on which the deployed model happens to score below its test F1
        rows = client_rows(rng, 300, drift=False)
        frame = pd.DataFrame(rows[:, 1:4], columns=list(FEATURES))
        if f1_score(rows[:, 4], deployed.model.predict(frame)) < deployed.score - 0.01:
            break
    write_clients(synthetic.root / "sourcedata" / "same.csv", rows)
    result = synthetic.run_in_process("fullprocess.py", "--quiet")
    [line] = [line for line in result.stderr.splitlines() if "challenger rejected" in line]
    assert "v0001 stays deployed" in line and "keep the champion" in line
    assert current_version(synthetic.settings()) == "v0001"
    check = drift_checks(synthetic)[0]
    assert check["next_step"] == "challenger rejected" and check["drift"] is True
    gate = check["decision"]["gate"]
    assert gate["chosen"] is None and gate["rows"] == 300 and {c["name"] for c in gate["candidates"]} >= {"all"}
    assert "nothing to do" in synthetic.run_in_process("fullprocess.py").stderr  # those rows are not decided again


def test_the_five_row_test_file_no_longer_locks_the_check(synthetic: Project) -> None:
    """A model scoring F1 0 on a 5-row test file: raw can never fire again (0 is not below 0); the default rule
    compares with the out-of-fold reference and sees the flipped batch."""
    settings = synthetic.settings()
    prod = settings.prod_deployment_path / "versions" / "v0001"
    record = json.loads((prod / "deployment.json").read_text())
    rng = np.random.default_rng(110)
    batch = flipped(client_rows(rng, 1000, False), 1.0, rng)
    write_clients(synthetic.root / "sourcedata" / "flipped.csv", batch)
    record_zero = {**record, "f1": 0.0}
    (prod / "deployment.json").write_text(json.dumps(record_zero))  # as if its 5-row test score had been 0

    synthetic.edit_config(drift_test="raw")
    raw_copy = synthetic.copy_to(synthetic.root.parent / "raw")
    raw = raw_copy.run_in_process("fullprocess.py")
    assert "is not below deployed score 0.0000" in raw.stderr  # the course rule, exact: no drift

    synthetic.edit_config(drift_test="significant")
    default = synthetic.run_in_process("fullprocess.py")
    assert "drift check (significant): drift" in default.stderr
    assert re.search(r"course rule raw: no drift: new F1 0\.\d{4} is not below deployed score 0\.0000", default.stderr)


# --- what people hear ---


def test_the_textfile_is_written_every_run_and_parses(synthetic: Project) -> None:
    textfile = synthetic.settings().metrics_textfile_path
    write_clients(synthetic.root / "sourcedata" / "same.csv", client_rows(np.random.default_rng(120), 500, False))
    synthetic.run_in_process("fullprocess.py")
    families = {f.name: f for f in text_string_to_metric_families(textfile.read_text())}
    outcome = {s.labels["outcome"]: s.value for s in families["risk_last_run_outcome"].samples}
    assert outcome["no drift"] == 1 and sum(outcome.values()) == 1
    assert families["risk_batch_rows"].samples[0].value == 500
    assert families["risk_new_f1"].samples[0].value > 0
    drift = {s.labels["role"]: s.value for s in families["risk_drift"].samples}
    assert drift["acting"] == 0
    synthetic.run_in_process("fullprocess.py")  # the no-op tick writes it too
    families = {f.name: f for f in text_string_to_metric_families(textfile.read_text())}
    outcome = {s.labels["outcome"]: s.value for s in families["risk_last_run_outcome"].samples}
    assert outcome["nothing new"] == 1


class Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []
    hang = False

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.hang:
            time.sleep(30)
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[tuple[str, type[Hook]]]:
    handler = type("H", (Hook,), {"received": [], "hang": False})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()


def test_force_deploys_regardless_says_so_and_the_webhook_hears_of_it_and_a_hanging_one_costs_only_its_timeout(
    synthetic: Project, hook: tuple[str, type[Hook]]
) -> None:
    url, handler = hook
    synthetic.edit_config(alert_webhook_url=url, alert_webhook_timeout_seconds=1)
    forced = synthetic.run_in_process("fullprocess.py", "--force")
    assert "--force with no new rows: retraining on all the rows and deploying" in forced.stderr
    assert "deployed v0002 (forced by --force)" in forced.stderr
    assert current_version(synthetic.settings()) == "v0002"
    [payload] = handler.received
    assert payload["outcome"] == "deployed" and payload["deployed_version"] == "v0002"
    assert [event["kind"] for event in payload["events"]] == ["redeploy"]

    handler.hang = True
    started = time.monotonic()
    result = synthetic.run_in_process("fullprocess.py", "--force")
    assert time.monotonic() - started < 25  # the run went on after the 1 s timeout, not the server's 30 s
    assert "webhook" in result.stderr and current_version(synthetic.settings()) == "v0003"
