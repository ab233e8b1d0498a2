"""The cron job end to end: bootstrap, the no-op tick, the course scenario, drift and no drift, the three drift
tests with hand-checked numbers, failures, concurrency and rejected files. Scripts run as real subprocesses."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fullprocess import drift_decision
from risk.deployed import load_deployed_model
from risk.lock import run_lock
from risk.schema import FEATURES
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


# --- the drift tests, checked by hand ---


@pytest.mark.parametrize(
    ("new", "deployed", "drift"),
    [(0.5, 0.6, True), (0.6, 0.6, False), (0.9, 0.6, False)],
)
def test_raw_rule_is_drift_only_when_lower_than_the_deployed_score(new: float, deployed: float, drift: bool) -> None:
    decision = drift_decision("raw", new, deployed, history=[0.1, 0.2, 0.3])
    assert decision.drift is drift and decision.threshold == deployed and decision.test == "raw"


@pytest.mark.parametrize(("new", "drift"), [(0.49, True), (0.5, False), (0.51, False), (0.99, False)])
def test_parametric_is_two_standard_deviations_below_the_mean(new: float, drift: bool) -> None:
    # history 0.6, 0.7, 0.8: mean 0.7, sample stdev sqrt((0.01 + 0 + 0.01) / 2) = 0.1, threshold 0.7 - 0.2 = 0.5
    decision = drift_decision("parametric", new, 0.9, history=[0.6, 0.7, 0.8])
    assert decision.threshold == pytest.approx(0.5)
    assert decision.drift is drift
    assert "mean 0.7000 - 2 x stdev 0.1000 = 0.5000 of 3 past scores" in decision.reason


@pytest.mark.parametrize(("new", "drift"), [(0.29, True), (0.31, False), (0.95, False)])
def test_nonparametric_is_below_q1_minus_one_and_a_half_iqr(new: float, drift: bool) -> None:
    # history 0.5 .. 0.9: Q1 0.6, Q3 0.8 (linear interpolation), IQR 0.2, threshold 0.6 - 0.3 = 0.3
    decision = drift_decision("nonparametric", new, 0.9, history=[0.9, 0.5, 0.7, 0.6, 0.8])
    assert decision.threshold == pytest.approx(0.3)
    assert decision.drift is drift


def test_nonparametric_quartiles_interpolate_like_numpy() -> None:
    # history 0.2, 0.4, 0.9, 1.0: Q1 at position 0.75 = 0.35, Q3 at 2.25 = 0.925, IQR 0.575, threshold -0.5125
    decision = drift_decision("nonparametric", 0.0, 1.0, history=[0.2, 0.4, 0.9, 1.0])
    assert decision.threshold == pytest.approx(-0.5125)
    assert decision.drift is False  # a wide history tolerates even F1 = 0


@pytest.mark.parametrize("test", ["parametric", "nonparametric"])
def test_statistical_tests_fall_back_to_raw_with_too_little_history(test: str) -> None:
    decision = drift_decision(test, 0.5, 0.6, history=[0.7, 0.8])
    assert decision.drift is True and decision.threshold == 0.6
    assert f"{test} test needs 3 past scores, have 2: used raw" in decision.reason


# --- end to end ---


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
    assert "no API answers at http://127.0.0.1:" in result.stderr and "python app.py" in result.stderr

    before = fingerprint(project.root)
    again = project.run("fullprocess.py")
    assert "nothing to do" in again.stderr
    assert fingerprint(project.root) == before
    with project.store() as store:
        assert [run["outcome"] for run in store.runs()] == ["deployed"]


@pytest.mark.slow
def test_course_scenario_practice_model_then_sourcedata_under_the_raw_rule(deployed_project: Project) -> None:
    """The practice model (v0001, F1 4/7 on the test data) meets sourcedata: it scores higher there, so the
    raw rule finds no drift and keeps v0001; the files are not reported as new again."""
    settings = deployed_project.settings()
    deployed = load_deployed_model(settings)
    batch = pd.concat([pd.read_csv(deployed_project.root / "sourcedata" / n) for n in ("dataset3.csv", "dataset4.csv")])
    expected = f1_on_frame(deployed.model, batch)
    assert expected == pytest.approx(0.6923, abs=1e-4) and deployed.score == pytest.approx(4 / 7)

    result = deployed_project.run("fullprocess.py")

    assert (
        "drift check (raw) of v0001 on 26 new rows: no drift: new F1 0.6923 is not below deployed score 0.5714"
        in result.stderr
    )
    assert current_version(settings) == "v0001"
    assert not (deployed_project.root / "models" / "trainedmodel.pkl").exists()  # no retrain
    with deployed_project.store() as store:
        check = store.drift_checks()[0]
        assert check["drift"] is False and check["test"] == "raw" and check["files"] == ["dataset3.csv", "dataset4.csv"]
        assert check["new_score"] == pytest.approx(expected) and check["deployed_score"] == pytest.approx(4 / 7)
        assert store.scores()[0]["kind"] == "batch" and store.scores()[0]["model_version"] == "v0001"
    assert "nothing to do" in deployed_project.run("fullprocess.py").stderr


@pytest.mark.slow
def test_a_drifting_batch_triggers_retrain_and_redeploy(deployed_project: Project) -> None:
    only_new_source(deployed_project, labelled_batch(deployed_project, "contradicting.csv", agree=False))
    result = deployed_project.run("fullprocess.py")

    assert "no drift" not in result.stderr and "new F1 0.0000 is below deployed score 0.5714" in result.stderr
    settings = deployed_project.settings()
    assert current_version(settings) == "v0002"
    assert load_deployed_model(settings).ingested_files == ["contradicting.csv"]
    for artifact in COURSE_ARTIFACTS:
        assert (deployed_project.root / artifact).is_file(), artifact
    with deployed_project.store() as store:
        assert store.drift_checks()[0]["drift"] is True
        assert [d["version"] for d in store.deployments()] == ["v0002", "v0001"]
        assert store.latest_diagnostics()["model_version"] == "v0002"
    assert "summary: deployed" in result.stderr


@pytest.mark.slow
def test_a_stable_batch_does_not_redeploy_and_is_not_new_next_tick(deployed_project: Project) -> None:
    only_new_source(deployed_project, labelled_batch(deployed_project, "agreeing.csv", agree=True))
    result = deployed_project.run("fullprocess.py")
    assert "new F1 1.0000 is not below deployed score 0.5714" in result.stderr
    assert current_version(deployed_project.settings()) == "v0001"
    assert "nothing to do" in deployed_project.run("fullprocess.py").stderr


@pytest.mark.slow
def test_drift_test_is_chosen_in_config(deployed_project: Project) -> None:
    deployed_project.edit_config(drift_test="parametric")
    only_new_source(deployed_project, labelled_batch(deployed_project, "agreeing.csv", agree=True))
    result = deployed_project.run("fullprocess.py")
    assert "drift check (parametric)" in result.stderr
    assert "parametric test needs 3 past scores, have 1: used raw" in result.stderr


@pytest.mark.slow
def test_a_failed_run_leaves_production_alone_and_the_next_run_retries(deployed_project: Project) -> None:
    only_new_source(deployed_project, labelled_batch(deployed_project, "contradicting.csv", agree=False))
    test_file = deployed_project.root / "testdata" / "testdata.csv"
    good_test_data = test_file.read_text()
    test_file.write_text("corporation,exited\nx,1\n")
    before = fingerprint(deployed_project.root / "production_deployment")

    failed = deployed_project.run("fullprocess.py", check=False)
    assert failed.returncode != 0 and "testdata.csv is missing column(s)" in failed.stderr
    assert fingerprint(deployed_project.root / "production_deployment") == before
    with deployed_project.store() as store:
        assert store.runs()[0]["outcome"] == "failed"

    test_file.write_text(good_test_data)
    retried = deployed_project.run("fullprocess.py")
    assert "1 new file(s)" in retried.stderr and current_version(deployed_project.settings()) == "v0002"


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


@pytest.mark.slow
@pytest.mark.parametrize("test", ["parametric", "nonparametric"])
def test_the_statistical_drift_tests_decide_on_the_score_history(deployed_project: Project, test: str) -> None:
    """With a history of scores (the practice model's 4/7 plus three earlier checks), the configured test sets
    the threshold: a batch the model gets all wrong (F1 0) is far below it, so the model is retrained."""
    with deployed_project.store() as store:
        for f1 in (0.5, 0.6, 0.7):
            store.record_score("batch", f1, 10, "earlier.csv")
    deployed_project.edit_config(drift_test=test)
    only_new_source(deployed_project, labelled_batch(deployed_project, "contradicting.csv", agree=False))

    result = deployed_project.run("fullprocess.py")
    assert f"drift check ({test}) of v0001 on 40 new rows: drift: new F1 0.0000 is below" in result.stderr
    assert "of 4 past scores" in result.stderr and "used raw" not in result.stderr
    with deployed_project.store() as store:
        check = store.drift_checks()[0]
    assert check["test"] == test and check["history_size"] == 4 and check["drift"] is True
    expected = drift_decision(test, 0.0, 4 / 7, [4 / 7, 0.5, 0.6, 0.7]).threshold
    assert check["threshold"] == pytest.approx(expected)
    assert current_version(deployed_project.settings()) == "v0002"


@pytest.mark.slow
def test_a_bad_new_file_is_rejected_by_name_and_good_ones_still_checked(deployed_project: Project) -> None:
    stable = labelled_batch(deployed_project, "agreeing.csv", agree=True)
    only_new_source(deployed_project, stable)
    bad = deployed_project.root / "sourcedata" / "broken.csv"
    bad.write_text(COLUMNS.replace(",", ";") + "\nx;1;2;3;0\n")

    result = deployed_project.run("fullprocess.py")
    assert "rejected broken.csv is not comma-separated (its header uses semicolons" in result.stderr
    assert "new: agreeing.csv; rejected: broken.csv" in result.stderr
    assert "drift check (raw) of v0001 on 40 new rows" in result.stderr
    again = deployed_project.run("fullprocess.py")
    assert "nothing to do" in again.stderr  # the rejected file is not retried until it changes


@pytest.mark.slow
def test_a_batch_without_any_exit_is_not_called_drift(deployed_project: Project) -> None:
    """F1 is undefined when no row has exited=1: scoring it as 0 would redeploy on perfectly predicted data."""
    path = labelled_batch(deployed_project, "stayers.csv", agree=True)
    frame = pd.read_csv(path)
    frame["exited"] = 0
    frame.to_csv(path, index=False)
    only_new_source(deployed_project, path)

    result = deployed_project.run("fullprocess.py")
    assert "skipped: none of the 40 new rows has exited=1, so F1 is undefined" in result.stderr
    assert current_version(deployed_project.settings()) == "v0001"
    with deployed_project.store() as store:
        assert store.drift_checks() == [] and store.runs()[0]["outcome"] == "no drift"


@pytest.mark.slow
def test_an_unreadable_file_is_skipped_with_a_warning_and_the_rest_still_checked(deployed_project: Project) -> None:
    only_new_source(deployed_project, labelled_batch(deployed_project, "agreeing.csv", agree=True))
    (deployed_project.root / "sourcedata" / "unreadable.csv").symlink_to("/proc/self/mem")  # reading fails (EIO)

    result = deployed_project.run("fullprocess.py")
    assert "skipped" in result.stderr and "unreadable.csv: cannot read it" in result.stderr
    assert "drift check (raw) of v0001 on 40 new rows" in result.stderr
    again = deployed_project.run("fullprocess.py")
    assert "unreadable.csv: cannot read it" in again.stderr  # retried (and warned about) every run until fixed
