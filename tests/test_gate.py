"""The challenger gate and the honest scores it rests on: out-of-fold counts, cross-fitted predictions that never
come from a model that saw the row, the windows candidates train on, and the judgement."""

from __future__ import annotations

import json

import numpy as np
import pytest

from risk.config import ModelParams
from risk.drift import ConfusionCounts
from risk.evaluation import cross_fitted_predictions, fold_count, out_of_fold_counts
from risk.gate import GateResult, candidate_slices, challenger_predictions, judge, sign_flip_p_value, window_rows
from risk.model import build_model
from risk.synthetic import client_rows


def make_model():
    return build_model(ModelParams())


def predictions_with_accuracy(rng: np.random.Generator, y: np.ndarray, accuracy: float) -> np.ndarray:
    """Predictions right on each row with probability ``accuracy`` (independently)."""
    right = rng.random(y.size) < accuracy
    return np.where(right, y, 1 - y)


class RecordingModel:
    """A model that remembers the rows it was fitted on and the rows it predicted (by their first feature)."""

    log: list[RecordingModel]

    def __init__(self, log: list[RecordingModel]) -> None:
        self.seen: set[float] = set()
        self.predicted: set[float] = set()
        log.append(self)

    def fit(self, X: np.ndarray, y: np.ndarray) -> RecordingModel:
        self.seen = set(X[:, 0].tolist())
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        self.predicted |= set(X[:, 0].tolist())
        return (X[:, 1] > 0.5).astype(np.int64)


# --- out-of-fold counts and cross-fitted predictions ---


def test_out_of_fold_counts_cover_every_row_once() -> None:
    rows = client_rows(np.random.default_rng(0), 200, False)
    counts = out_of_fold_counts(make_model, rows[:, 1:4], rows[:, 4], repeats=3)
    assert counts.rows == 200 and counts.positives == int(rows[:, 4].sum())
    assert 0.6 < counts.f1 < 0.9


def test_out_of_fold_counts_on_small_data_use_fewer_folds_or_say_what_is_missing() -> None:
    y = np.array([0] * 10 + [1] * 3)
    X = np.arange(13, dtype=float)[:, None] * [1.0, 0.1, 2.0]
    assert fold_count(y, 5) == 3
    assert out_of_fold_counts(make_model, X, y).rows == 13
    with pytest.raises(ValueError, match="1 with exited=1"):
        out_of_fold_counts(make_model, X, np.array([0] * 12 + [1]))


def test_cross_fitted_predictions_never_come_from_a_model_that_saw_the_row() -> None:
    rng = np.random.default_rng(1)
    X_train = np.column_stack([np.arange(50.0), rng.random(50)])
    y_train = rng.integers(0, 2, 50)
    X_new = np.column_stack([np.arange(100.0, 137.0), rng.random(37)])  # first column: a row id
    y_new = rng.integers(0, 2, 37)
    log: list[RecordingModel] = []
    predicted = cross_fitted_predictions(lambda: RecordingModel(log), X_train, y_train, X_new, y_new, folds=5)
    assert predicted.shape == (37,)
    assert len(log) == 5
    for model in log:
        assert model.predicted and not model.predicted & model.seen
        assert set(X_train[:, 0]) <= model.seen  # every model had all the training rows ...
        assert len(model.seen - set(X_train[:, 0])) >= 37 - 8  # ... and the other folds of the new rows
    assert set().union(*(m.predicted for m in log)) == set(X_new[:, 0])


def test_cross_fitting_handles_a_training_part_with_one_class() -> None:
    X_new = np.arange(20.0)[:, None] * [1.0, 3.0, 0.5]
    y_new = np.array([0] * 19 + [1])  # the fold holding the one exit trains on stayed rows only
    predicted = cross_fitted_predictions(make_model, np.empty((0, 3)), np.empty(0), X_new, y_new, folds=5)
    assert predicted.shape == (20,) and set(predicted.tolist()) <= {0, 1}
    assert predicted[19] == 0  # predicted by a model that never saw an exit: it cannot know one


# --- windows ---


def test_window_is_the_rows_since_the_last_deployment_at_least_the_new_batch() -> None:
    assert window_rows(5000, 1200, None) == slice(3800, 5000)
    assert window_rows(5000, 1200, 2000) == slice(3000, 5000)  # a configured window wins
    assert window_rows(5000, 1200, 300, new_rows=500) == slice(4500, 5000)  # never fewer than the new rows
    assert window_rows(500, 1200, None) == slice(0, 500)  # never more than all rows
    with pytest.raises(ValueError, match="training_window_rows"):
        window_rows(100, 10, 0)


def test_candidate_slices_leave_out_duplicates() -> None:
    assert candidate_slices(5000, 3000, 1000) == {
        "all": slice(0, 5000),
        "window": slice(2000, 5000),
        "new": slice(4000, 5000),
    }
    assert candidate_slices(5000, 1000, 1000) == {"all": slice(0, 5000), "window": slice(4000, 5000)}
    assert candidate_slices(1000, 1000, 1000) == {"all": slice(0, 1000)}
    assert candidate_slices(5000, 4600, 1000) == {"all": slice(0, 5000), "new": slice(4000, 5000)}  # 92% of all


def test_challenger_predictions_follow_a_reversed_concept_only_from_recent_rows() -> None:
    rng = np.random.default_rng(2)
    old, new = client_rows(rng, 2000, False), client_rows(rng, 1000, True)
    rows = np.concatenate([old, new])
    slices = candidate_slices(len(rows), since_last_deploy=1000, new_rows=1000)
    predictions = challenger_predictions(make_model, rows[:, 1:4], rows[:, 4], 1000, slices)
    f1 = {name: ConfusionCounts.from_labels(new[:, 4], p).f1 for name, p in predictions.items()}
    assert f1["window"] > 0.6 > 0.3 > f1["all"]


# --- the judgement ---


def test_gate_rejects_a_worse_candidate_and_accepts_a_clearly_better_one() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 1000)
    champion = predictions_with_accuracy(rng, y, 0.80)
    result = judge(y, champion, {"all": predictions_with_accuracy(rng, y, 0.70)})
    assert result.chosen is None and result.candidate("all").difference < 0
    assert result.reason.startswith("keep the champion: no candidate is significantly better")
    result = judge(
        y, champion, {"all": predictions_with_accuracy(rng, y, 0.70), "window": predictions_with_accuracy(rng, y, 0.90)}
    )
    assert result.chosen == "window" and result.level == pytest.approx(0.025)  # two candidates: alpha / 2
    assert result.candidate("window").p_value <= 0.001
    assert "deploy window" in result.line() and "champion F1" in result.line()


def test_gate_never_chooses_a_candidate_that_predicts_one_class() -> None:
    rng = np.random.default_rng(4)
    y = (rng.random(500) < 0.7).astype(np.int64)  # predicting "exited" for all scores F1 0.82 here
    champion = predictions_with_accuracy(rng, y, 0.6)
    result = judge(y, champion, {"all": np.ones(500, dtype=np.int64)})
    assert result.candidate("all").f1 > result.champion_f1
    assert result.chosen is None and result.candidate("all").one_class and not result.candidate("all").passed


def test_gate_needs_more_disagreeing_rows_than_a_handful() -> None:
    y = np.array([1, 0, 1, 1, 0])
    result = judge(y, np.array([0, 1, 0, 1, 0]), {"all": y.copy()})  # perfect, but on 3 disagreeing rows
    assert result.chosen is None and result.candidate("all").p_value > 0.05


def test_forced_deployment_still_carries_the_numbers() -> None:
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 300)
    champion = predictions_with_accuracy(rng, y, 0.85)
    result = judge(y, champion, {"all": predictions_with_accuracy(rng, y, 0.75)}, forced="all")
    assert result.chosen == "all" and result.forced
    assert result.candidate("all").p_value is not None and result.champion_f1 is not None
    assert "forced; the test chose none" in result.reason
    assert GateResult.from_json(json.loads(json.dumps(result.as_json()))) == result
    with pytest.raises(ValueError, match="not among the candidates"):
        judge(y, champion, {"all": champion}, forced="window")


def test_sign_flip_test_passes_an_equally_good_candidate_at_most_alpha() -> None:
    rng = np.random.default_rng(6)
    passes = 0
    trials = 400
    for trial in range(trials):
        y = rng.integers(0, 2, 200)
        champion, candidate = (predictions_with_accuracy(rng, y, 0.75) for _ in range(2))
        passes += sign_flip_p_value(y, candidate, champion, draws=500, seed=trial) <= 0.05
    assert passes / trials <= 0.05 + 0.025
