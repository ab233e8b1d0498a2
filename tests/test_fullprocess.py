"""The cron job end to end, with the course data: bootstrap, the no-op tick, the course scenario under the course's
raw rule and under the default, drift and no drift, the course's statistical rules on hand-checked numbers,
undefined F1, failures, concurrency and rejected files. The bootstrap, the no-op tick and concurrency run the real
script as subprocesses; the decisions run its ``main()`` in this process (``Project.run_in_process``) on copies of a
project whose production store already knows the practice model (see also tests/test_drift_runs.py for the drift
decisions on synthetic data)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from risk.deployed import load_deployed_model
from risk.lock import run_lock
from risk.schema import FEATURES
from risk.store import ScoreRow
from risk.versions import current_version, versions_dir
from scoring import f1_on_frame
from tests.support import COLUMNS, REPO, Project

COURSE_ARTIFACTS = (
    "ingesteddata/finaldata.csv",
    "ingesteddata/ingestedfiles.txt",
    "models/trainedmodel.pkl",
    "models/latestscore.txt",
    "models/confusionmatrix.png",
)


def fingerprint(root: Path) -> dict[str, tuple[str, int]]:
    """Content hash and mtime of every file under ``root`` (symlinks as their target text); logs and the lock
    file (which holds the pid of the last run) excluded."""
    result = {}
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if relative.startswith("logs") or path.name == ".run.lock" or path.is_dir() and not path.is_symlink():
            continue
        if path.is_symlink():
            result[relative] = (str(path.readlink()), 0)
        else:
            result[relative] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return result


def labelled_batch(project: Project, name: str, agree: bool, rows: int = 40) -> Path:
    """A new source file whose labels agree with the deployed model's predictions (stable) or contradict them."""
    deployed = load_deployed_model(project.settings())
    frame = pd.DataFrame(
        {
            "corporation": [f"{name[:3]}{i}" for i in range(rows)],
            "lastmonth_activity": [(i * 37) % 400 for i in range(rows)],
            "lastyear_activity": [(i * 911) % 6000 for i in range(rows)],
            "number_of_employees": [(i * 13) % 150 for i in range(rows)],
        }
    )
    predicted = deployed.model.predict(frame[list(FEATURES)])
    frame["exited"] = predicted if agree else 1 - predicted
    path = project.root / "sourcedata" / name
    frame.to_csv(path, index=False)
    return path


def only_new_source(project: Project, path: Path) -> None:
    """Leave ``path`` as the only file in sourcedata (the course files would trigger their own check)."""
    for other in (project.root / "sourcedata").iterdir():
        if other != path:
            other.unlink()


@pytest.mark.slow
def test_fresh_project_bootstraps_every_course_artifact_and_a_second_tick_changes_nothing(project: Project) -> None:
    result = project.run("fullprocess.py")
    for artifact in COURSE_ARTIFACTS:
        assert (project.root / artifact).is_file(), artifact
    settings = project.settings()
    assert current_version(settings) == "v0001"
    assert sorted(p.name for p in (versions_dir(settings) / "v0001").iterdir()) == [
        "deployment.json",
        "ingestedfiles.txt",
        "latestscore.txt",
        "trainedmodel.json",
        "trainedmodel.pkl",
        "trainingreference.json",
    ]
    assert (project.root / "production_deployment" / "trainedmodel.pkl").read_bytes() == (
        project.root / "models" / "trainedmodel.pkl"
    ).read_bytes()
    assert "nothing deployed yet: bootstrapping" in result.stderr
    assert "summary: deployed" in result.stderr
    assert "summary: deployed" in (project.root / "logs" / "fullprocess.log").read_text()
    assert "no API answers at http://127.0.0.1:" in result.stderr
    assert f"{sys.executable} app.py --config" in result.stderr  # the interpreter that runs, not a bare python

    before = fingerprint(project.root)
    again = project.run("fullprocess.py")
    assert "nothing to do" in again.stderr
    assert fingerprint(project.root) == before
    with project.store() as store:
        assert [run["outcome"] for run in store.runs()] == ["deployed"]


@pytest.mark.slow
def test_course_scenario_practice_model_then_sourcedata_under_the_raw_rule(production_project: Project) -> None:
    """The practice model (v0001, F1 4/7 on the test data) meets sourcedata: it scores higher there, so the
    raw rule finds no drift and keeps v0001; the files are not reported as new again."""
    settings = production_project.settings()
    deployed = load_deployed_model(settings)
    batch = pd.concat(
        [pd.read_csv(production_project.root / "sourcedata" / n) for n in ("dataset3.csv", "dataset4.csv")]
    )
    expected = f1_on_frame(deployed.model, batch)
    assert expected == pytest.approx(0.6923, abs=1e-4) and deployed.score == pytest.approx(4 / 7)

    production_project.edit_config(drift_test="raw")
    result = production_project.run_in_process("fullprocess.py")

    assert (
        "v0001 on 26 new rows from dataset3.csv, dataset4.csv: drift check (raw): no drift: new F1 0.6923 is not "
        "below deployed score 0.5714" in result.stderr
    )
    assert current_version(settings) == "v0001"
    assert not (production_project.root / "models" / "trainedmodel.pkl").exists()  # no retrain
    with production_project.store() as store:
        check = store.drift_checks()[0]
        assert check["drift"] is False and check["test"] == "raw" and check["files"] == ["dataset3.csv", "dataset4.csv"]
        assert check["new_score"] == pytest.approx(expected) and check["deployed_score"] == pytest.approx(4 / 7)
        assert check["next_step"] == "no drift" and check["rows"] == 26 and check["positives"] == 13
        assert store.scores()[0]["kind"] == "batch" and store.scores()[0]["model_version"] == "v0001"
    assert "nothing to do" in production_project.run_in_process("fullprocess.py").stderr


@pytest.mark.slow
def test_course_scenario_under_the_default_rule_carries_the_26_rows_over_and_shows_the_course_verdict(
    production_project: Project,
) -> None:
    result = production_project.run_in_process("fullprocess.py")
    assert (
        "drift check (significant): carried over: 26 new labelled rows with 13 positives; 100 rows and 10 positives "
        "needed; course rule raw: no drift: new F1 0.6923 is not below deployed score 0.5714" in result.stderr
    )
    assert current_version(production_project.settings()) == "v0001"
    with production_project.store() as store:
        check = store.drift_checks()[0]
        assert check["next_step"] == "carried over" and check["drift"] is None and check["raw_drift"] is False
        assert store.scores(10) == [] or all(s["kind"] == "test" for s in store.scores(10))
        assert store.runs()[0]["outcome"] == "carried over"


@pytest.mark.slow
def test_a_drifting_batch_triggers_retrain_and_the_gate_deploys_the_better_model(production_project: Project) -> None:
    production_project.edit_config(drift_test="raw")
    only_new_source(production_project, labelled_batch(production_project, "contradicting.csv", agree=False))
    result = production_project.run_in_process("fullprocess.py")

    assert "no drift" not in result.stderr and "new F1 0.0000 is below deployed score 0.5714" in result.stderr
    assert "challenger gate: deploy" in result.stderr
    settings = production_project.settings()
    assert current_version(settings) == "v0002"
    assert load_deployed_model(settings).ingested_files == ["contradicting.csv"]
    with production_project.store() as store:
        assert store.drift_checks()[0]["next_step"] == "challenger deployed"
        assert store.drift_checks()[0]["decision"]["gate"]["chosen"] is not None
    for artifact in COURSE_ARTIFACTS:
        assert (production_project.root / artifact).is_file(), artifact
    with production_project.store() as store:
        assert store.drift_checks()[0]["drift"] is True
        assert [d["version"] for d in store.deployments()] == ["v0002", "v0001"]
        assert store.latest_diagnostics()["model_version"] == "v0002"
    assert "summary: deployed" in result.stderr


@pytest.mark.slow
def test_a_stable_batch_does_not_redeploy_and_is_not_new_next_tick(production_project: Project) -> None:
    production_project.edit_config(drift_test="raw")
    only_new_source(production_project, labelled_batch(production_project, "agreeing.csv", agree=True))
    result = production_project.run_in_process("fullprocess.py")
    assert "new F1 1.0000 is not below deployed score 0.5714" in result.stderr
    assert current_version(production_project.settings()) == "v0001"
    assert "nothing to do" in production_project.run_in_process("fullprocess.py").stderr


@pytest.mark.slow
def test_drift_test_is_chosen_in_config(production_project: Project) -> None:
    production_project.edit_config(drift_test="parametric")
    only_new_source(production_project, labelled_batch(production_project, "agreeing.csv", agree=True))
    result = production_project.run_in_process("fullprocess.py")
    assert "drift check (parametric)" in result.stderr
    assert "parametric needs 10 past scores, has 0: used raw" in result.stderr


@pytest.mark.slow
def test_a_failed_run_leaves_production_alone_and_the_next_run_retries(production_project: Project) -> None:
    production_project.edit_config(drift_test="raw")
    only_new_source(production_project, labelled_batch(production_project, "contradicting.csv", agree=False))
    test_file = production_project.root / "testdata" / "testdata.csv"
    good_test_data = test_file.read_text()
    test_file.write_text("corporation,exited\nx,1\n")
    before = fingerprint(production_project.root / "production_deployment")

    failed = production_project.run_in_process("fullprocess.py", check=False)
    assert failed.returncode != 0 and "testdata.csv is missing column(s)" in failed.stderr
    assert fingerprint(production_project.root / "production_deployment") == before
    with production_project.store() as store:
        assert store.runs()[0]["outcome"] == "bad input"  # exit 2: the test file is the user's to fix
        # v0001's test score and training rows are in the practice config's store, which deployed it
        assert store.scores() == [], "a failed run records no batch score"
        assert store.drift_checks() == [] and store.decided_rows() == [], "a failed run decides no rows"

    test_file.write_text(good_test_data)
    retried = production_project.run_in_process("fullprocess.py")
    assert "1 new file(s)" in retried.stderr and current_version(production_project.settings()) == "v0002"
    with production_project.store() as store:
        batch_scores = [s for s in store.scores() if s["kind"] == "batch"]
        assert len(batch_scores) == 1, "the retried batch is scored once"
        assert batch_scores[0]["in_history"] == 0, "a drifting batch's own score stays out of the history"


@pytest.mark.slow
def test_a_run_while_another_holds_the_lock_exits_0_and_touches_nothing(project: Project) -> None:
    settings = project.settings()
    with run_lock(settings.lock_path):
        result = project.run("fullprocess.py")
    assert "another run is in progress" in result.stderr
    assert not (project.root / "ingesteddata").exists() and not settings.records_db_path.exists()


@pytest.mark.slow
def test_a_second_run_started_during_a_first_exits_0_and_only_the_first_deploys(project: Project) -> None:
    command = [sys.executable, str(REPO / "fullprocess.py"), "--config", str(project.config)]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = project.root / "logs" / "fullprocess.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "run 1:" in log.read_text()):  # the first run holds the lock and is working
        assert first.poll() is None and time.monotonic() < deadline, "the first run ended before it started work"
        time.sleep(0.02)
    second = project.run("fullprocess.py")
    _, first_log = first.communicate(timeout=300)

    assert first.returncode == 0 and "summary: deployed" in first_log
    assert "another run is in progress" in second.stderr and "summary" not in second.stderr
    assert [p.name for p in versions_dir(project.settings()).iterdir()] == ["v0001"]
    with project.store() as store:
        assert len(store.runs()) == 1


PAST_SCORES = [0.5, 0.6, 0.7, 0.55, 0.65, 0.6, 0.7, 0.5, 0.6, 0.65]  # ten batch scores of v0001


@pytest.mark.slow
@pytest.mark.parametrize("test", ["parametric", "nonparametric"])
def test_the_course_statistical_rules_decide_on_the_current_models_batch_scores(
    production_project: Project, test: str
) -> None:
    """With ten past batch scores of v0001 (and scores that must not count: another version's, a drifting
    batch's, a test score), the rule sets its threshold by the course's formula on those ten alone."""
    with production_project.store() as store:
        rows = [ScoreRow("batch", f1, 10, "earlier.csv", None, "v0001") for f1 in PAST_SCORES]
        rows += [
            ScoreRow("batch", 0.99, 10, "other.csv", None, "v0000"),
            ScoreRow("batch", 0.01, 10, "drifting.csv", None, "v0001", in_history=False),
        ]
        run_id = store.start_run("earlier")
        store.finish_run(run_id, "no drift", "seeded", scores=rows)
        store.record_score("test", 0.95, 5, "testdata.csv", None, "v0001")
    production_project.edit_config(drift_test=test)
    only_new_source(production_project, labelled_batch(production_project, "contradicting.csv", agree=False))

    result = production_project.run_in_process("fullprocess.py")
    history = np.array(PAST_SCORES)
    if test == "parametric":
        threshold = history.mean() - 2 * np.std(history)  # numpy's default std (ddof 0), as the course
    else:
        q1, q3 = np.quantile(history, [0.25, 0.75])
        threshold = q1 - 1.5 * (q3 - q1)
    assert f"drift check ({test}): drift: new F1 0.0000 is below" in result.stderr
    assert f"{threshold:.4f}" in result.stderr and "of 10 past scores" in result.stderr
    assert "used raw" not in result.stderr
    with production_project.store() as store:
        check = store.drift_checks()[0]
    assert check["test"] == test and check["history_size"] == 10 and check["drift"] is True
    assert check["threshold"] == pytest.approx(threshold)


@pytest.mark.slow
def test_a_bad_new_file_is_rejected_by_name_and_good_ones_still_checked(production_project: Project) -> None:
    production_project.edit_config(drift_test="raw")
    stable = labelled_batch(production_project, "agreeing.csv", agree=True)
    only_new_source(production_project, stable)
    bad = production_project.root / "sourcedata" / "broken.csv"
    bad.write_text(COLUMNS.replace(",", ";") + "\nx;1;2;3;0\n")

    result = production_project.run_in_process("fullprocess.py")
    assert "rejected broken.csv is not comma-separated (its header uses semicolons" in result.stderr
    assert "v0001 on 40 new rows from agreeing.csv: drift check (raw)" in result.stderr
    again = production_project.run_in_process("fullprocess.py")
    assert "nothing to do" in again.stderr  # the rejected file is not retried until it changes


@pytest.mark.slow
def test_a_batch_without_any_exit_has_f1_zero_when_the_model_predicted_exits(production_project: Project) -> None:
    """F1 is undefined only when TP + FP + FN = 0: 38 rows all predicted to exit, none did, is F1 0, decided."""
    production_project.edit_config(drift_test="raw")
    path = labelled_batch(production_project, "stayers.csv", agree=True, rows=200)
    frame = pd.read_csv(path)
    predicted_exits = frame[frame["exited"] == 1].head(38).assign(exited=0)
    predicted_exits.to_csv(path, index=False)
    only_new_source(production_project, path)

    result = production_project.run_in_process("fullprocess.py")
    assert "v0001 on 38 new rows from stayers.csv: drift check (raw): drift: new F1 0.0000 is below" in result.stderr
    with production_project.store() as store:
        check = store.drift_checks()[0]
        assert check["new_score"] == 0.0 and check["rows"] == 38 and check["positives"] == 0


@pytest.mark.slow
def test_f1_is_undefined_only_without_any_positive_and_then_the_rows_are_carried_over(
    production_project: Project,
) -> None:
    production_project.edit_config(drift_test="raw")
    path = labelled_batch(production_project, "quiet.csv", agree=True, rows=200)
    frame = pd.read_csv(path)
    frame[frame["exited"] == 0].head(30).to_csv(path, index=False)  # predicted to stay, and stayed
    only_new_source(production_project, path)
    result = production_project.run_in_process("fullprocess.py")
    assert "carried over: F1 is undefined on 30 new labelled rows" in result.stderr
    assert current_version(production_project.settings()) == "v0001"


@pytest.mark.slow
def test_an_unreadable_file_is_skipped_with_a_warning_and_the_rest_still_checked(production_project: Project) -> None:
    only_new_source(production_project, labelled_batch(production_project, "agreeing.csv", agree=True))
    (production_project.root / "sourcedata" / "unreadable.csv").symlink_to("/proc/self/mem")  # reading fails (EIO)

    result = production_project.run_in_process("fullprocess.py")
    assert "skipped" in result.stderr and "unreadable.csv: cannot read it" in result.stderr
    assert "v0001 on 40 new rows from agreeing.csv: drift check" in result.stderr
    again = production_project.run_in_process("fullprocess.py")
    assert "unreadable.csv: cannot read it" in again.stderr  # retried (and warned about) every run until fixed
