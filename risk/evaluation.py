"""Honest scores of a model configuration: predictions on rows the model that made them never saw.

- :func:`out_of_fold_counts`: confusion counts on the training rows from models trained on the other folds;
  the *reference* the ``significant`` drift rule compares a new batch with (``risk.drift``).
- :func:`cross_fitted_predictions`: each new row predicted by a model trained on the training rows plus the
  *other* folds of the new rows; how the challenger gate (``risk.gate``) scores a candidate on the very rows it
  will be trained on.

``make_model`` is a zero-argument factory returning an unfitted estimator with ``fit``/``predict`` (for the
product: ``lambda: build_model(settings.model)``). Features are a 2-D array (rows x features, the
``risk.schema.FEATURES`` columns), labels 0/1.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from risk.drift import ConfusionCounts

log = logging.getLogger(__name__)

ModelFactory = Callable[[], Any]
DEFAULT_FOLDS = 5
# Out-of-fold counts of a small training set depend on how the rows fall into folds; averaging the counts over
# repeated splits removes most of that partition noise, which the drift test would otherwise not account for
# (measured: one 5-fold split made the test fire 6-7% on unchanged data at alpha 0.05 with 36 or 100 training
# rows, five splits 4.3-5.0%; one split of 1,000 rows 4.1-4.9%).
REPEAT_ROWS = 2000  # repeats: ceil(REPEAT_ROWS / rows), between 1 and MAX_REPEATS
MAX_REPEATS = 5


class ConstantModel:
    """Stands in for a model when a training part holds one class only: it predicts that class."""

    def __init__(self, label: int) -> None:
        self.label = int(label)

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.label, dtype=np.int64)


def fit_model(make_model: ModelFactory, X: np.ndarray, y: np.ndarray) -> Any:
    """A fitted model from the factory; a :class:`ConstantModel` when ``y`` holds one class only."""
    classes = np.unique(y)
    if classes.size == 1:
        return ConstantModel(classes[0])
    return make_model().fit(X, y)


def _labels(y: Any) -> np.ndarray:
    labels = np.asarray(y).ravel().astype(np.int64)
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 (stayed) or 1 (exited)")
    return labels


def _features(X: Any, rows: int, what: str) -> np.ndarray:
    features = np.asarray(X, dtype=float)
    if features.ndim != 2 or features.shape[0] != rows:
        raise ValueError(f"{what} must be a 2-D array with one row per label ({rows}), not shape {features.shape}")
    return features


def fold_count(y: Any, folds: int = DEFAULT_FOLDS) -> int:
    """How many stratified folds ``y`` allows: ``folds``, fewer when a class has fewer rows; ValueError below 2."""
    if folds < 2:
        raise ValueError(f"folds must be at least 2, not {folds}")
    counts = np.bincount(_labels(y), minlength=2)
    smallest = int(counts.min())
    if smallest < 2:
        raise ValueError(
            f"out-of-fold counts need at least 2 rows of each class; the training rows have {counts[0]} with "
            f"exited=0 and {counts[1]} with exited=1: add labelled rows of the missing class"
        )
    return min(folds, smallest)


def default_repeats(rows: int) -> int:
    """Repeated splits for ``rows`` training rows: 5 up to 400 rows, down to 1 from 2,000 rows."""
    return max(1, min(MAX_REPEATS, math.ceil(REPEAT_ROWS / max(rows, 1))))


def _whole_counts(mean: np.ndarray, rows: int) -> ConfusionCounts:
    """Averaged counts rounded to whole numbers that still add up to ``rows`` (largest remainders round up)."""
    whole = np.floor(mean).astype(np.int64)
    short = rows - int(whole.sum())
    whole[np.argsort(-(mean - whole), kind="stable")[:short]] += 1
    return ConfusionCounts(*(int(v) for v in whole))


def out_of_fold_counts(
    make_model: ModelFactory, X: Any, y: Any, folds: int = DEFAULT_FOLDS, seed: int = 0, repeats: int | None = None
) -> ConfusionCounts:
    """Confusion counts of the configuration on its training rows, each row predicted by a model that did not see it.

    Stratified ``folds`` (fewer, with a warning, when a class has fewer rows; ValueError below 2 of a class),
    repeated ``repeats`` times with different shuffles (default :func:`default_repeats`) and averaged, so the
    counts add up to the rows once.
    """
    labels = _labels(y)
    features = _features(X, labels.size, "X")
    used = fold_count(labels, folds)
    if used < folds:
        log.warning("out-of-fold counts: %d folds, not %d (a class has only %d rows)", used, folds, used)
    rounds = default_repeats(labels.size) if repeats is None else repeats
    if rounds < 1:
        raise ValueError(f"repeats must be at least 1, not {rounds}")
    total = np.zeros(4)
    for round_index in range(rounds):
        predicted = np.empty(labels.size, dtype=np.int64)
        splitter = StratifiedKFold(n_splits=used, shuffle=True, random_state=seed + round_index)
        for train, held_out in splitter.split(features, labels):
            predicted[held_out] = fit_model(make_model, features[train], labels[train]).predict(features[held_out])
        total += ConfusionCounts.from_labels(labels, predicted).as_array()
    return _whole_counts(total / rounds, labels.size)


def _new_row_folds(labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Folds of the new rows: stratified when each class fills every fold, else plain shuffled folds."""
    splits = min(folds, labels.size)
    if splits < 2:
        return [np.arange(labels.size)]
    counts = np.bincount(labels, minlength=2)
    if counts.min() >= splits:
        splitter: StratifiedKFold | KFold = StratifiedKFold(n_splits=splits, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_splits=splits, shuffle=True, random_state=seed)
    return [held_out for _, held_out in splitter.split(np.zeros(labels.size), labels)]


def cross_fitted_predictions(
    make_model: ModelFactory,
    X_train: Any,
    y_train: Any,
    X_new: Any,
    y_new: Any,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> np.ndarray:
    """Predictions on each new row by a model trained on the training rows plus the other folds of the new rows.

    So no prediction comes from a model that saw its row, yet each model has seen almost all the new data (the
    candidate that will be deployed sees all of it). A training part with one class only predicts that class;
    with one new row (or ``folds`` cut to 1) the row is predicted from the training rows alone.
    """
    train_labels, new_labels = _labels(y_train), _labels(y_new)
    train_features = _features(X_train, train_labels.size, "X_train") if train_labels.size else None
    new_features = _features(X_new, new_labels.size, "X_new")
    if new_labels.size == 0:
        return np.empty(0, dtype=np.int64)
    predicted = np.empty(new_labels.size, dtype=np.int64)
    for held_out in _new_row_folds(new_labels, folds, seed):
        seen = np.ones(new_labels.size, dtype=bool)
        seen[held_out] = False
        parts_X = [new_features[seen]] if train_features is None else [train_features, new_features[seen]]
        parts_y = [new_labels[seen]] if train_features is None else [train_labels, new_labels[seen]]
        fit_y = np.concatenate(parts_y)
        if fit_y.size == 0:
            raise ValueError("cross-fitting one new row needs training rows: pass the rows the model trains on")
        model = fit_model(make_model, np.concatenate(parts_X), fit_y)
        predicted[held_out] = model.predict(new_features[held_out])
    return predicted
