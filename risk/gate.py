"""The challenger gate: after drift, deploy a retrained model only when the fresh rows show it is better.

After drift the product trains candidates on different rows (:func:`candidate_slices`): ``all`` the data (the
course's way), a recent ``window`` (follows a gradual change) and the ``new`` rows the drift was found on
(follows a sudden one: retraining on everything cannot follow a reversed concept). Each candidate is scored on
the fresh rows by cross-fitting (:func:`challenger_predictions`), the deployed model (the champion) by its own
predictions, and :func:`judge` decides.

The test (one-sided, paired, per candidate): a sign-flip permutation test of F1(candidate) - F1(champion) on
the fresh rows. Under "the two models are interchangeable" each row's two predictions may be swapped; the
p-value is the share of random swaps giving a difference at least the observed one. It is exact at any size
(with few rows where the two disagree it simply cannot reach ``alpha``), needs only the four counts of
disagreeing rows (so it costs the same at any size), and answers the question asked: better on these rows
than chance allows. A candidate passes at ``alpha / k`` (Bonferroni over the ``k`` eligible candidates), so
picking the best of several does not raise the chance of deploying one that is not better above ``alpha``.
A candidate that predicts one class for every fresh row while the champion does not is never chosen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from risk.drift import ConfusionCounts, f1_of_counts
from risk.evaluation import DEFAULT_FOLDS, ModelFactory, cross_fitted_predictions

DEFAULT_ALPHA = 0.05
DEFAULT_DRAWS = 10_000
DEFAULT_SEED = 0
ALL, WINDOW, NEW = "all", "window", "new"
NEAR_DUPLICATE = 0.9  # a window with at least this share of a kept candidate's rows is left out


# --- which rows each candidate trains on ---


def window_rows(
    n_rows_in_order: int, since_last_deploy: int, training_window_rows: int | None, *, new_rows: int = 0
) -> slice:
    """The recent window of the data (rows in arrival order) a challenger trains on.

    With ``training_window_rows`` (a config setting) the newest that many rows; without it, the rows that
    arrived since the last deployment (``since_last_deploy``, the new batch included). Never fewer than the
    ``new_rows`` the drift was found on, never more than all rows.
    """
    if n_rows_in_order < 0 or since_last_deploy < 0 or new_rows < 0:
        raise ValueError("row counts must be at least 0")
    if training_window_rows is not None and training_window_rows < 1:
        raise ValueError(f"training_window_rows must be at least 1 (or null), not {training_window_rows}")
    wanted = since_last_deploy if training_window_rows is None else training_window_rows
    size = min(n_rows_in_order, max(wanted, new_rows))
    return slice(n_rows_in_order - size, n_rows_in_order)


def candidate_slices(
    n_rows_in_order: int, since_last_deploy: int, new_rows: int, training_window_rows: int | None = None
) -> dict[str, slice]:
    """The rows each challenger trains on: ``all``, the recent ``window``, and the ``new`` rows.

    ``new`` (the rows the drift was decided on, carried-over ones included) must be the last rows. A window
    within 10% of the rows of one kept before it is left out (the windows are nested, so it would train nearly
    the same model): the selection correction is not spent on near-duplicates, nor the training time.
    """
    if not 0 < new_rows <= n_rows_in_order:
        raise ValueError(f"new_rows must be between 1 and the {n_rows_in_order} rows, not {new_rows}")
    slices = {ALL: slice(0, n_rows_in_order)}
    window = window_rows(n_rows_in_order, since_last_deploy, training_window_rows, new_rows=new_rows)
    newest = slice(n_rows_in_order - new_rows, n_rows_in_order)
    for name, rows in ((WINDOW, window), (NEW, newest)):
        size = rows.stop - rows.start
        if all(size < NEAR_DUPLICATE * (kept.stop - kept.start) for kept in slices.values()):
            slices[name] = rows
    return slices


def challenger_predictions(
    make_model: ModelFactory,
    X: Any,
    y: Any,
    new_rows: int,
    slices: Mapping[str, slice],
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Each candidate's cross-fitted predictions on the ``new_rows`` last rows of ``X``, ``y`` (arrival order)."""
    features, labels = np.asarray(X, dtype=float), np.asarray(y).ravel()
    start_new = labels.size - new_rows
    predictions = {}
    for name, rows in slices.items():
        if rows.stop != labels.size or rows.start > start_new:
            raise ValueError(f"candidate {name!r} must train on rows ending with the {new_rows} new ones")
        older = slice(rows.start, start_new)
        predictions[name] = cross_fitted_predictions(
            make_model, features[older], labels[older], features[start_new:], labels[start_new:], folds, seed
        )
    return predictions


# --- the judgement ---


@dataclass(frozen=True)
class CandidateScore:
    """One candidate against the champion on the fresh rows."""

    name: str
    counts: ConfusionCounts
    f1: float | None
    difference: float | None  # F1(candidate) - F1(champion); None when either F1 is undefined
    p_value: float | None  # one-sided paired test that the candidate is better; None when not tested
    discordant_rows: int  # fresh rows where the candidate and the champion predict differently
    one_class: bool  # predicts the same class for every fresh row
    passed: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "counts": self.counts.as_json(),
            "f1": self.f1,
            "difference": self.difference,
            "p_value": self.p_value,
            "discordant_rows": self.discordant_rows,
            "one_class": self.one_class,
            "passed": self.passed,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CandidateScore:
        return cls(
            name=data["name"],
            counts=ConfusionCounts.from_json(data["counts"]),
            f1=data["f1"],
            difference=data["difference"],
            p_value=data["p_value"],
            discordant_rows=int(data["discordant_rows"]),
            one_class=bool(data["one_class"]),
            passed=bool(data["passed"]),
        )


@dataclass(frozen=True)
class GateResult:
    """The gate's decision: the candidate to deploy (None: keep the champion), with every number behind it."""

    chosen: str | None
    forced: bool  # the caller deployed ``chosen`` regardless of the test
    champion_counts: ConfusionCounts
    champion_f1: float | None
    candidates: tuple[CandidateScore, ...]
    alpha: float
    level: float  # the level each candidate is tested at: alpha / eligible candidates
    rows: int
    positives: int
    reason: str

    def candidate(self, name: str) -> CandidateScore:
        for score in self.candidates:
            if score.name == name:
                return score
        raise KeyError(f"no candidate {name!r}; candidates: {', '.join(s.name for s in self.candidates)}")

    def line(self) -> str:
        """One line a person reads: the decision and each candidate's numbers."""
        return f"challenger gate: {self.reason}"

    def as_json(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen,
            "forced": self.forced,
            "champion_counts": self.champion_counts.as_json(),
            "champion_f1": self.champion_f1,
            "candidates": [score.as_json() for score in self.candidates],
            "alpha": self.alpha,
            "level": self.level,
            "rows": self.rows,
            "positives": self.positives,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GateResult:
        return cls(
            chosen=data["chosen"],
            forced=bool(data["forced"]),
            champion_counts=ConfusionCounts.from_json(data["champion_counts"]),
            champion_f1=data["champion_f1"],
            candidates=tuple(CandidateScore.from_json(score) for score in data["candidates"]),
            alpha=float(data["alpha"]),
            level=float(data["level"]),
            rows=int(data["rows"]),
            positives=int(data["positives"]),
            reason=data["reason"],
        )


def _paired_counts(y: np.ndarray, candidate: np.ndarray, champion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows both models share as tn/fp/fn/tp, disagreeing rows by kind) for the sign-flip test.

    Disagreeing kinds: exited and only the candidate says so; exited and only the champion does; stayed and only
    the candidate says exited; stayed and only the champion does. Swapping a row's predictions turns the first
    kind into the second and the third into the fourth.
    """
    agree = candidate == champion
    shared = ConfusionCounts.from_labels(y[agree], candidate[agree]).as_array()
    exited, flagged = y == 1, candidate == 1
    kinds = np.array(
        [
            np.count_nonzero(~agree & exited & flagged),
            np.count_nonzero(~agree & exited & ~flagged),
            np.count_nonzero(~agree & ~exited & flagged),
            np.count_nonzero(~agree & ~exited & ~flagged),
        ]
    )
    return shared, kinds


def _f1_pairs(shared: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 of candidate and champion for arrays of disagreeing-row counts (last axis: the four kinds)."""
    only_cand_tp, only_champ_tp, only_cand_fp, only_champ_fp = (kinds[..., i] for i in range(4))
    tn, fp, fn, tp = shared
    candidate = np.stack([tn + only_champ_fp, fp + only_cand_fp, fn + only_champ_tp, tp + only_cand_tp], axis=-1)
    champion = np.stack([tn + only_cand_fp, fp + only_champ_fp, fn + only_cand_tp, tp + only_champ_tp], axis=-1)
    return f1_of_counts(candidate), f1_of_counts(champion)


def sign_flip_p_value(
    y: np.ndarray, candidate: np.ndarray, champion: np.ndarray, draws: int = DEFAULT_DRAWS, seed: int = DEFAULT_SEED
) -> float:
    """One-sided p-value that the candidate's F1 beats the champion's by more than swapping predictions explains."""
    shared, kinds = _paired_counts(y, candidate, champion)
    cand_f1, champ_f1 = _f1_pairs(shared, kinds)
    observed = float(np.nan_to_num(cand_f1 - champ_f1, nan=0.0))
    rng = np.random.default_rng(seed)
    swapped = rng.binomial(kinds, 0.5, size=(draws, 4))  # how many rows of each kind swap predictions
    # a swapped row of kind 0 becomes kind 1 and back, likewise kinds 2 and 3
    permuted = kinds - swapped + swapped[:, [1, 0, 3, 2]]
    cand_draw, champ_draw = _f1_pairs(shared, permuted)
    differences = np.nan_to_num(cand_draw - champ_draw, nan=0.0)
    hits = np.count_nonzero(differences >= observed - 1e-12)
    return (1 + hits) / (1 + draws)


def _one_class(predictions: np.ndarray) -> bool:
    return predictions.size > 0 and bool(np.all(predictions == predictions[0]))


def _score(
    name: str,
    y: np.ndarray,
    predictions: np.ndarray,
    champion: np.ndarray,
    champion_f1: float | None,
    eligible: bool,
    level: float,
    draws: int,
    seed: int,
) -> CandidateScore:
    counts = ConfusionCounts.from_labels(y, predictions)
    f1 = counts.f1
    difference = None if f1 is None or champion_f1 is None else f1 - champion_f1
    p_value = None
    if eligible and difference is not None:
        p_value = sign_flip_p_value(y, predictions, champion, draws, seed) if difference > 0 else 1.0
    passed = p_value is not None and difference is not None and difference > 0 and p_value <= level
    return CandidateScore(
        name,
        counts,
        f1,
        difference,
        p_value,
        int(np.count_nonzero(predictions != champion)),
        _one_class(predictions),
        passed,
    )


def _describe(score: CandidateScore, level: float) -> str:
    f1 = "undefined" if score.f1 is None else f"{score.f1:.4f}"
    text = f"{score.name} F1 {f1}"
    if score.difference is not None:
        text += f" ({score.difference:+.4f}"
        text += (
            f", p {score.p_value:.4f} {'<=' if score.passed else '>'} {level:.4g})"
            if score.p_value is not None
            else ", not tested)"
        )
    if score.one_class:
        text += " [predicts one class]"
    return text


def judge(
    y_new: Any,
    champion_pred: Any,
    candidates: Mapping[str, Any],
    *,
    alpha: float = DEFAULT_ALPHA,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    forced: str | None = None,
) -> GateResult:
    """Choose the candidate to deploy, or none, from predictions on the fresh rows (see the module docstring).

    ``candidates`` maps names to cross-fitted predictions on the same rows as ``y_new``. The chosen one is the
    best-scoring candidate that passed; ``forced`` names a candidate to deploy regardless (the numbers are still
    computed and carried).
    """
    if not candidates:
        raise ValueError("the gate needs at least one candidate")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), not {alpha}")
    if forced is not None and forced not in candidates:
        raise ValueError(f"forced candidate {forced!r} is not among the candidates {', '.join(candidates)}")
    y = np.asarray(y_new).ravel().astype(np.int64)
    champion = np.asarray(champion_pred).ravel().astype(np.int64)
    predictions = {name: np.asarray(p).ravel().astype(np.int64) for name, p in candidates.items()}
    for name, values in {"champion": champion, **predictions}.items():
        if values.shape != y.shape:
            raise ValueError(f"{name} has {values.size} predictions for {y.size} fresh rows; they must pair up")
    champion_counts = ConfusionCounts.from_labels(y, champion)
    champion_f1 = champion_counts.f1
    champion_one_class = _one_class(champion)
    eligible = {name: not (_one_class(p) and not champion_one_class) for name, p in predictions.items()}
    level = alpha / max(1, sum(eligible.values()))
    scores = tuple(
        _score(name, y, p, champion, champion_f1, eligible[name], level, draws, seed + index)
        for index, (name, p) in enumerate(predictions.items())
    )
    passed = [s for s in scores if s.passed]
    best = max(passed, key=lambda s: s.f1 or 0.0).name if passed else None
    chosen = forced if forced is not None else best
    reason = _reason(chosen, forced is not None, best, champion_f1, y, scores, level)
    return GateResult(
        chosen,
        forced is not None,
        champion_counts,
        champion_f1,
        scores,
        alpha,
        level,
        int(y.size),
        int(np.count_nonzero(y == 1)),
        reason,
    )


def _reason(
    chosen: str | None,
    forced: bool,
    best: str | None,
    champion_f1: float | None,
    y: np.ndarray,
    scores: tuple[CandidateScore, ...],
    level: float,
) -> str:
    numbers = "; ".join(_describe(s, level) for s in scores)
    champion = "undefined" if champion_f1 is None else f"{champion_f1:.4f}"
    on = f"on {y.size} fresh rows with {int(np.count_nonzero(y == 1))} positives: champion F1 {champion}; {numbers}"
    if forced:
        verdict = f"deploy {chosen} (forced; the test {'chose ' + best if best else 'chose none'})"
    elif chosen is not None:
        verdict = f"deploy {chosen}: significantly better than the champion"
    elif champion_f1 is None:
        verdict = "keep the champion: F1 is undefined on the fresh rows (no exited=1 and none predicted)"
    else:
        verdict = "keep the champion: no candidate is significantly better"
    return f"{verdict} {on}"
