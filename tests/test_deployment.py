"""Deployment: whole versions switched atomically, verified before loading, killable at any instant, rollback."""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from deployment import recover, rollback, store_model_into_pickle
from ingestion import merge_multiple_dataframe
from risk.config import Settings
from risk.deployed import load_deployed_model
from risk.errors import UserFacingError
from risk.lock import run_lock
from risk.modelfiles import ModelIntegrityError, read_score
from risk.versions import current_version, list_versions, versions_dir
from scoring import score_model
from tests.support import REPO, Project
from training import train_model


def train_and_score(project: Project, config: Path | None = None) -> Settings:
    """Run ingestion, training and scoring in-process, leaving a model ready to deploy."""
    settings = project.settings(config)
    with project.store() as store:
        merge_multiple_dataframe(settings, store)
        train_model(settings)
        score_model(settings, store)
    return settings


def deploy(project: Project, config: Path | None = None) -> str:
    settings = train_and_score(project, config)
    with project.store() as store:
        return store_model_into_pickle(settings, store)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_consistent(settings: Settings) -> str:
    """The current version loads, and the course's file names all show that same version. Returns it."""
    deployed = load_deployed_model(settings)
    prod = settings.prod_deployment_path
    assert sha256(prod / "trainedmodel.pkl") == deployed.sha256
    assert read_score(prod / "latestscore.txt") == deployed.score
    assert (prod / "ingestedfiles.txt").read_text().split() == deployed.ingested_files
    for name, digest in deployed.record.files.items():
        assert sha256(deployed.path / name) == digest, name
    row = pd.DataFrame([{"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}])
    assert deployed.model.predict(row).shape == (1,)
    return deployed.version


def test_a_version_holds_the_model_its_score_and_the_ingested_files(project: Project) -> None:
    version = deploy(project, project.practice_config)
    settings = project.settings(project.practice_config)
    prod = settings.prod_deployment_path

    assert version == "v0001" == current_version(settings)
    assert os.readlink(prod / "current") == "versions/v0001"
    for name in ("trainedmodel.pkl", "latestscore.txt", "ingestedfiles.txt"):
        assert (prod / name).is_symlink() and os.readlink(prod / name) == f"current/{name}"
        assert (prod / name).read_bytes() == (versions_dir(settings) / "v0001" / name).read_bytes()
    deployed = load_deployed_model(settings)
    assert deployed.score == pytest.approx(4 / 7)
    assert deployed.ingested_files == ["dataset1.csv", "dataset2.csv"]
    assert deployed.record.sklearn_version and deployed.record.trained_at
    with project.store() as store:
        assert store.deployments()[0] | {"deployed_at": None} == {
            "id": 1,
            "deployed_at": None,
            "action": "deploy",
            "version": "v0001",
            "previous_version": None,
            "f1": deployed.score,
            "model_sha256": deployed.sha256,
        }
    assert_consistent(settings)


def test_a_model_whose_bytes_changed_is_refused(project: Project) -> None:
    deploy(project, project.practice_config)
    settings = project.settings(project.practice_config)
    model = versions_dir(settings) / "v0001" / "trainedmodel.pkl"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError, match="refusing to unpickle"):
        load_deployed_model(settings)


def test_deploying_a_model_without_its_score_is_refused(project: Project) -> None:
    settings = train_and_score(project)
    project.edit_config(model={"C": 0.5})
    train_model(project.settings())  # a new model, not scored
    with project.store() as store, pytest.raises(UserFacingError, match="was not computed for this model"):
        store_model_into_pickle(settings, store)
    assert current_version(settings) is None


def test_nothing_deployed_is_a_clear_error(project: Project) -> None:
    with pytest.raises(UserFacingError, match="no model is deployed .*run fullprocess.py"):
        load_deployed_model(project.settings())


def test_rollback_steps_back_one_version_at_a_time(project: Project) -> None:
    deploy(project, project.practice_config)
    deploy(project)
    settings = project.settings()
    first_score = load_deployed_model(settings, "v0001").score
    assert current_version(settings) == "v0002"

    with project.store() as store:
        assert rollback(settings, store) == "v0001"
        assert read_score(settings.prod_deployment_path / "latestscore.txt") == first_score
        with pytest.raises(UserFacingError, match="nothing to roll back to"):
            rollback(settings, store)
        assert rollback(settings, store, to="v0002") == "v0002"
        actions = [(d["action"], d["version"], d["previous_version"]) for d in store.deployments()]
    assert actions == [
        ("rollback", "v0002", "v0001"),
        ("rollback", "v0001", "v0002"),
        ("deploy", "v0002", "v0001"),
        ("deploy", "v0001", None),
    ]
    assert_consistent(settings)


@pytest.mark.slow
def test_rollback_and_list_from_the_command_line(project: Project) -> None:
    deploy(project, project.practice_config)
    deploy(project)
    result = project.run("deployment.py", "--rollback")
    assert "rolled back from v0002 to v0001" in result.stderr
    listing = project.run("deployment.py", "--list").stdout.splitlines()
    assert [line[:7] for line in listing] == ["* v0001", "  v0002"]
    assert current_version(project.settings()) == "v0001"


def deploy_with_own_store(project: Project, config: Path) -> str:
    """Ingest, train, score and deploy on ``config`` with that config's own records store, as its scripts do."""
    settings = project.settings(config)
    with project.store(config) as store:
        merge_multiple_dataframe(settings, store)
        train_model(settings)
        score_model(settings, store)
        return store_model_into_pickle(settings, store)


def test_a_version_another_config_switched_away_from_is_kept_not_abandoned(project: Project) -> None:
    """Practice and production share prod_deployment_path but not their stores: a version production's store never
    saw, written before the current one was made current, was current once (not an interrupted deployment)."""
    practice = project.settings(project.practice_config)
    assert deploy_with_own_store(project, project.practice_config) == "v0001"
    assert deploy_with_own_store(project, project.config) == "v0002"
    with project.store(project.practice_config) as store:
        assert store_model_into_pickle(practice, store) == "v0003"
        assert rollback(practice, store) == "v0002"
    with project.store() as store:
        assert recover(project.settings(), store) == []
    assert list_versions(practice) == ["v0001", "v0002", "v0003"]
    with project.store(project.practice_config) as store:
        assert rollback(practice, store, "v0003") == "v0003"


@pytest.mark.slow
@pytest.mark.parametrize("point", ["mid-staging", "before-switch", "mid-switch", "before-record"])
def test_a_deployment_killed_at_any_point_leaves_production_whole_and_the_next_run_recovers(
    project: Project, point: str
) -> None:
    deploy(project, project.practice_config)
    settings = train_and_score(project)  # a second model, ready to deploy
    result = subprocess.run(
        [sys.executable, "-m", "tests.faults", str(project.config), point],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr

    expected = "v0002" if point == "before-record" else "v0001"
    assert assert_consistent(settings) == expected

    recovered = project.run("deployment.py")
    assert assert_consistent(settings) == current_version(settings)
    versions = versions_dir(settings)
    assert not [p for p in versions.iterdir() if p.name.startswith(".staging-")]
    assert not list(settings.prod_deployment_path.glob(".*.tmp"))
    if point in ("before-switch", "mid-switch"):
        assert (versions / "abandoned-v0002").is_dir()
        assert "never made current" in recovered.stderr
        assert current_version(settings) == "v0003"
    elif point == "mid-staging":
        assert "removed unfinished deployment" in recovered.stderr
        assert current_version(settings) == "v0002"
    else:
        assert (
            "version v0002 is current but ingesteddata/records.sqlite never recorded deploying it (deployed by another "
            "config sharing production_deployment, by hand, or by an interrupted run); recorded its deployment now"
        ) in recovered.stderr
        assert current_version(settings) == "v0003"
    assert list_versions(settings)[-1] == current_version(settings)
    with project.store() as store:
        recorded = [d["version"] for d in store.deployments()]
    assert recorded == sorted(set(recorded), reverse=True) and recorded[0] == current_version(settings)
    if point == "before-record":
        assert "v0002" in recorded
        with project.store() as store:  # and so a rollback to it works, not "abandoned"
            assert rollback(settings, store) == "v0002"


@pytest.mark.slow
def test_random_sigkills_during_deployments_never_expose_a_mixed_version(project: Project) -> None:
    deploy(project, project.practice_config)
    settings = train_and_score(project)
    chance = random.Random(7)
    for _ in range(12):
        process = subprocess.Popen(
            [sys.executable, str(REPO / "deployment.py"), "--config", str(project.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(chance.uniform(0.05, 0.6))
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert_consistent(settings)
    project.run("deployment.py")
    assert assert_consistent(settings) == list_versions(settings)[-1]


@pytest.mark.slow
def test_a_rollback_while_another_run_holds_the_lock_says_so_and_exits_75(project: Project) -> None:
    deploy(project, project.practice_config)
    deploy(project)
    settings = project.settings()
    with run_lock(settings.lock_path):
        result = project.run("deployment.py", "--rollback", check=False)
    assert result.returncode == 75
    assert "another run is in progress" in result.stderr and "try again when it has finished" in result.stderr
    assert current_version(settings) == "v0002"


def test_ingested_file_names_with_spaces_are_kept_whole(project: Project) -> None:
    project.write_data("sourcedata", "new data.csv", ["spaced,1,2,3,1"])
    deploy(project)
    assert load_deployed_model(project.settings()).ingested_files == ["dataset3.csv", "dataset4.csv", "new data.csv"]
