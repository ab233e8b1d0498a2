"""Training: the course's LogisticRegression from config, saved with its sha256 and library versions."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
import sklearn

from ingestion import merge_multiple_dataframe
from risk.errors import UserFacingError
from risk.modelfiles import ModelIntegrityError, load_model
from risk.schema import FEATURES
from tests.support import Project
from training import train_model


def ingest_and_train(project: Project) -> dict:
    settings = project.settings()
    with project.store() as store:
        merge_multiple_dataframe(settings, store)
    return train_model(settings)


def test_model_and_metadata_are_saved_with_hash_and_versions(project: Project) -> None:
    metadata = ingest_and_train(project)
    folder = project.root / "models"
    model_bytes = (folder / "trainedmodel.pkl").read_bytes()
    on_disk = json.loads((folder / "trainedmodel.json").read_text())

    assert on_disk == metadata
    assert metadata["model_sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert metadata["sklearn_version"] == sklearn.__version__
    assert metadata["training_rows"] == 26
    assert metadata["hyperparameters"] == {
        "C": 1.0,
        "penalty": "l2",
        "solver": "liblinear",
        "random_state": 0,
        "max_iter": 100,
        "tol": 0.0001,
    }
    model = load_model(folder).model
    classifier = model[-1]
    assert classifier.C == 1.0 and classifier.solver == "liblinear" and classifier.l1_ratio == 0.0
    assert list(model.feature_names_in_) == list(FEATURES)


def test_hyperparameters_come_from_config(project: Project) -> None:
    project.edit_config(
        model={"C": 0.001, "penalty": "l1", "solver": "liblinear", "random_state": 0, "max_iter": 50, "tol": 0.01}
    )
    ingest_and_train(project)
    classifier = load_model(project.root / "models").model[-1]
    assert (classifier.C, classifier.l1_ratio, classifier.max_iter, classifier.tol) == (0.001, 1.0, 50, 0.01)


def test_missing_feature_values_are_imputed_with_the_training_median(project: Project) -> None:
    project.write_data("sourcedata", "gaps.csv", ["gap1,,20,3,0"])
    ingest_and_train(project)
    model = load_model(project.root / "models").model
    final = pd.read_csv(project.root / "ingesteddata" / "finaldata.csv")
    assert model[0].statistics_[0] == final["lastmonth_activity"].median()
    row = pd.DataFrame([{"lastmonth_activity": None, "lastyear_activity": 20, "number_of_employees": 3}])
    assert model.predict(row).shape == (1,)


def test_a_tampered_model_is_never_unpickled(project: Project) -> None:
    ingest_and_train(project)
    path = project.root / "models" / "trainedmodel.pkl"
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(ModelIntegrityError, match="refusing to unpickle"):
        load_model(path.parent)


def test_training_without_ingested_data_says_to_run_ingestion(project: Project) -> None:
    with pytest.raises(UserFacingError, match="finaldata.csv does not exist; run ingestion.py first"):
        train_model(project.settings())


@pytest.mark.slow
def test_training_script_runs_on_its_own(project: Project) -> None:
    project.run_in_process("ingestion.py")
    result = project.run("training.py")
    assert "trained on 26 rows" in result.stderr
    assert (project.root / "models" / "trainedmodel.pkl").exists()
