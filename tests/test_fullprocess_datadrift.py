"""fullprocess.py and data drift, end to end: the script's ``main()`` in this process (``Project.run_in_process``) on
copies of the deployed projects (tests/conftest.py)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from risk.artifacts import FINAL_DATA_NAME, METADATA_NAME, REFERENCE_NAME, SNAPSHOT_NAME
from risk.deployed import load_deployed_model
from risk.modelfiles import read_reference
from risk.schema import FEATURES, TARGET
from risk.versions import current_version
from tests.support import Project

pytestmark = pytest.mark.slow


def data_drift_checks(project: Project, config: Path | None = None) -> list[dict]:
    """Every recorded data drift check, oldest first (read straight from the SQLite file)."""
    with sqlite3.connect(project.settings(config).records_db_path) as conn:
        rows = conn.execute("SELECT model_version, verdict, result FROM data_drift_checks ORDER BY id").fetchall()
    return [{"model_version": v, "verdict": verdict, **json.loads(result)} for v, verdict, result in rows]


def write_batch(project: Project, name: str, prefix: str, scale: float) -> pd.DataFrame:
    """The deployed model's training rows under new ids, features times ``scale``, labelled with the deployed
    model's own predictions (so its F1 on the batch is 1.0 and the F1 check sees no drift)."""
    settings = project.settings(project.practice_config)
    training = pd.read_csv(settings.output_folder_path / FINAL_DATA_NAME)
    training = training[training["corporation"].str.len() == 4]  # the course rows, not earlier batches
    batch = training.copy()
    batch["corporation"] = prefix + batch["corporation"]
    batch[list(FEATURES)] = batch[list(FEATURES)] * scale
    batch[TARGET] = load_deployed_model(settings).model.predict(batch[list(FEATURES)])
    assert batch[TARGET].sum() > 0, "the batch needs predicted positives for an F1 of 1.0"
    batch.to_csv(settings.input_folder_path / name, index=False)
    return batch


def test_the_course_run_records_data_drift_and_prints_it(production_project: Project) -> None:
    """Practice model deployed, then sourcedata arrives: the F1 rule sees no drift, the features do."""
    project = production_project
    project.edit_config(drift_test="raw")  # the course's rule decides on the 26 rows (the default carries them over)
    result = project.run_in_process("fullprocess.py")
    assert "drift check (raw): no drift" in result.stderr
    assert (
        "data drift of 26 new rows vs v0001 training reference (26 rows): drift (3 of 3 features drifted"
        in result.stderr
    )
    assert "no drift: v0001 stays deployed (data drift is report-only" in result.stderr
    summary = result.stderr[result.stderr.index("summary: no drift") :]
    assert "data drift of 26 new rows" in summary and "data drift check" in summary  # the summary and its timing
    [check] = data_drift_checks(project)
    assert check["verdict"] == "drift" and check["model_version"] == "v0001"
    assert check["files"] == ["dataset3.csv", "dataset4.csv"]
    assert check["drifted_features"] == list(FEATURES)
    assert {f["method"] for f in check["features"].values()} == {"ks"}
    assert current_version(project.settings()) == "v0001"
    with project.store() as store:
        assert store.latest_data_drift() == {k: v for k, v in check.items() if k != "model_version"} | {
            "model_version": "v0001"
        }
    project.run_in_process("fullprocess.py")  # nothing new: no second check
    assert len(data_drift_checks(project)) == 1


def test_data_drift_alone_retrains_only_when_config_says_so(deployed_project: Project) -> None:
    project = deployed_project  # the practice run deployed v0001
    config = project.practice_config
    project.edit_config(config, drift_test="raw")  # the course's rule decides on the 26-row batches

    project.edit_config(config, data_drift_triggers_retrain=True)
    write_batch(project, "stable.csv", "s", scale=1)
    stable = project.run_in_process("fullprocess.py", config=config)
    assert "no drift: v0001 stays deployed\n" in stable.stderr
    assert data_drift_checks(project, config)[-1]["verdict"] == "no drift"

    project.edit_config(config, data_drift_triggers_retrain=None)  # back to the default: report only
    write_batch(project, "drifted1.csv", "d", scale=10)
    reported = project.run_in_process("fullprocess.py", config=config)
    assert "drift check (raw): no drift: new F1 1.0000" in reported.stderr
    assert "no drift: v0001 stays deployed (data drift is report-only" in reported.stderr
    assert data_drift_checks(project, config)[-1]["verdict"] == "drift"
    assert current_version(project.settings(config)) == "v0001"

    project.edit_config(config, data_drift_triggers_retrain=True)
    write_batch(project, "drifted2.csv", "e", scale=10)
    retrained = project.run_in_process("fullprocess.py", config=config)
    assert "retraining on data drift alone (data_drift_triggers_retrain is true)" in retrained.stderr
    # the model still predicts these rows perfectly: no retrained candidate can beat it, so the gate keeps it
    assert (
        "challenger gate: keep the champion" in retrained.stderr and "summary: challenger rejected" in retrained.stderr
    )
    settings = project.settings(config)
    assert current_version(settings) == "v0001"
    checks = data_drift_checks(project, config)
    assert [c["verdict"] for c in checks] == ["no drift", "drift", "drift"]
    assert checks[-1]["model_version"] == "v0001" and checks[-1]["files"] == ["drifted2.csv"]

    forced = project.run_in_process("fullprocess.py", "--force", config=config)  # an operator's call: deploy regardless
    assert "summary: deployed" in forced.stderr and "forced by --force" in forced.stderr
    assert current_version(settings) == "v0002"
    # the new version has its own reference (all rows it was trained on) and the snapshot carries the check
    reference = read_reference(load_deployed_model(settings).path)
    assert reference["rows"] == 26 * 4
    snapshot = json.loads((settings.output_model_path / SNAPSHOT_NAME).read_text())
    assert snapshot["data_drift"]["verdict"] == "drift" and snapshot["data_drift"]["files"] == ["drifted2.csv"]


def test_a_version_without_reference_records_no_reference(production_project: Project) -> None:
    """A version deployed before references were kept: the check says so and the run goes on."""
    project = production_project
    version = load_deployed_model(project.settings()).path
    metadata = json.loads((version / METADATA_NAME).read_text())
    del metadata["reference_file"], metadata["reference_sha256"]
    (version / METADATA_NAME).write_text(json.dumps(metadata))
    (version / REFERENCE_NAME).unlink()
    result = project.run_in_process("fullprocess.py")
    assert (
        "data drift of 26 new rows vs v0001 training reference: no reference (v0001 was deployed before"
        in result.stderr
    )
    assert [c["verdict"] for c in data_drift_checks(project)] == ["no reference"]


def test_a_broken_reference_fails_the_data_drift_check_loudly_but_not_the_f1_check(production_project: Project) -> None:
    project = production_project
    project.edit_config(drift_test="raw")
    reference = load_deployed_model(project.settings()).path / REFERENCE_NAME
    reference.write_text("{}")
    result = project.run_in_process("fullprocess.py", check=False)
    assert result.returncode == 1
    assert "data drift check FAILED" in result.stderr and "does not match the sha256" in result.stderr
    assert "drift check (raw): no drift" in result.stderr
    assert data_drift_checks(project) == []
    assert project.run_in_process("fullprocess.py").returncode == 0  # the files were checked: no retry storm
