"""Scoring: F1 on the test data, in latestscore.txt and in the score history."""

from __future__ import annotations

import pytest

from ingestion import merge_multiple_dataframe
from risk.modelfiles import load_model, read_score
from risk.schema import FEATURES
from scoring import read_test_data, score_model
from tests.support import Project
from training import train_model


def test_f1_matches_a_hand_count_and_is_written_and_recorded(project: Project) -> None:
    settings = project.settings(project.practice_config)
    with project.store() as store:
        merge_multiple_dataframe(settings, store)
        metadata = train_model(settings)
        f1 = score_model(settings, store)
        history = store.scores()

    test = read_test_data(settings)
    predicted = load_model(settings.output_model_path).model.predict(test[list(FEATURES)])
    actual = test["exited"].tolist()
    tp = sum(p == 1 and a == 1 for p, a in zip(predicted, actual))
    fp = sum(p == 1 and a == 0 for p, a in zip(predicted, actual))
    fn = sum(p == 0 and a == 1 for p, a in zip(predicted, actual))
    assert (tp, fp, fn) == (2, 2, 1)  # the practice model on the course's five test rows
    assert f1 == pytest.approx(2 * tp / (2 * tp + fp + fn)) == pytest.approx(4 / 7)

    assert read_score(settings.output_model_path / "latestscore.txt") == f1
    assert (settings.output_model_path / "latestscore.txt").read_text() == f"{f1}\n"
    assert history[0]["kind"] == "test" and history[0]["f1"] == f1 and history[0]["rows"] == 5
    assert history[0]["model_sha256"] == metadata["model_sha256"]


@pytest.mark.parametrize("text", ["0.5", "0.5\n", "f1 score = 0.5", "F1: 0.5"])
def test_course_score_files_in_several_spellings_are_read(tmp_path, text: str) -> None:
    path = tmp_path / "latestscore.txt"
    path.write_text(text)
    assert read_score(path) == 0.5


@pytest.mark.slow
def test_scoring_script_with_bad_test_data_names_the_file(project: Project) -> None:
    project.run_in_process("ingestion.py")
    project.run_in_process("training.py")
    (project.root / "testdata" / "testdata.csv").write_text("corporation,exited\nx,1\n")
    result = project.run("scoring.py", check=False)
    assert result.returncode == 2
    assert "testdata.csv is missing column(s) lastmonth_activity" in result.stderr
    assert not (project.root / "models" / "latestscore.txt").exists()
