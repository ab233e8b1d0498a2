"""Model drift by F1: the one drift-decision record and the rules that make it.

Four rules, named once in :class:`DriftRule`:

- ``significant`` (the default): drift only when the deployed model's F1 on the new labelled rows is
  significantly below its *reference* F1 (its confusion counts on rows it did not train on: out-of-fold counts,
  :func:`risk.evaluation.out_of_fold_counts`). One-sided test at ``alpha`` by a parametric bootstrap *under the
  null hypothesis*: both count vectors are redrawn from one multinomial (the pooled counts), so the test carries
  the sampling noise of the batch and of the reference. It decides only on enough evidence (``min_rows`` rows
  with ``min_positives`` positives); with less the batch is carried over to the next tick.
- ``raw``, ``parametric``, ``nonparametric``: the course's rules, exactly as taught (see :func:`raw_verdict`,
  :func:`parametric_verdict`, :func:`nonparametric_verdict`). They decide on any batch with a defined F1.

Every :class:`DriftDecision` carries the course rule's (``raw``) verdict on the same rows beside the acting one,
so people can see where the two disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

DEFAULT_MIN_ROWS = 100
DEFAULT_MIN_POSITIVES = 10
DEFAULT_ALPHA = 0.05
DEFAULT_MIN_HISTORY = 10
DEFAULT_DRAWS = 10_000
DEFAULT_SEED = 0
FIRST_DRAWS = 2_000  # enough to tell a clear no-drift (p above 0.25) at alpha 0.05 before drawing the rest
# Added to each pooled cell before the null bootstrap draws counts from it: a cell seen zero times still gets a
# small probability, so the null distribution never pretends a kind of error cannot happen (Jeffreys' prior).
POOLED_PSEUDO_COUNT = 0.5


class DriftRule(StrEnum):
    """The drift rules a config may name (``drift_test``); the value is the name."""

    SIGNIFICANT = "significant"
    RAW = "raw"
    PARAMETRIC = "parametric"
    NONPARAMETRIC = "nonparametric"


DRIFT_RULES: tuple[str, ...] = tuple(rule.value for rule in DriftRule)
DEFAULT_RULE = DriftRule.SIGNIFICANT
COURSE_RULES = (DriftRule.RAW, DriftRule.PARAMETRIC, DriftRule.NONPARAMETRIC)


@dataclass(frozen=True)
class ConfusionCounts:
    """A model's confusion counts on labelled rows (``exited`` = 1 is the positive class)."""

    tn: int
    fp: int
    fn: int
    tp: int

    def __post_init__(self) -> None:
        for name in ("tn", "fp", "fn", "tp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"confusion count {name} must be a whole number of at least 0, not {value!r}")
            object.__setattr__(self, name, int(value))

    @classmethod
    def from_labels(cls, y_true: Any, y_pred: Any) -> ConfusionCounts:
        """Counts from true labels and predictions (0/1 each, same length)."""
        truth = np.asarray(y_true).astype(bool).ravel()
        predicted = np.asarray(y_pred).astype(bool).ravel()
        if truth.shape != predicted.shape:
            raise ValueError(f"{truth.size} labels but {predicted.size} predictions; they must pair up row by row")
        tp = int(np.count_nonzero(truth & predicted))
        fp = int(np.count_nonzero(~truth & predicted))
        fn = int(np.count_nonzero(truth & ~predicted))
        return cls(tn=truth.size - tp - fp - fn, fp=fp, fn=fn, tp=tp)

    @property
    def rows(self) -> int:
        return self.tn + self.fp + self.fn + self.tp

    @property
    def positives(self) -> int:
        """Rows with ``exited`` = 1."""
        return self.tp + self.fn

    @property
    def f1(self) -> float | None:
        """F1 of the positive class; None only when there is nothing to score (no positives, none predicted).

        A model that predicted positives where none exited scores 0.0: that is a defined, bad score.
        """
        denominator = 2 * self.tp + self.fp + self.fn
        return None if denominator == 0 else 2 * self.tp / denominator

    def __add__(self, other: ConfusionCounts) -> ConfusionCounts:
        """Pooled counts (a carried-over batch plus the new one)."""
        return ConfusionCounts(self.tn + other.tn, self.fp + other.fp, self.fn + other.fn, self.tp + other.tp)

    def as_array(self) -> np.ndarray:
        """The counts in the order tn, fp, fn, tp."""
        return np.array([self.tn, self.fp, self.fn, self.tp], dtype=np.int64)

    def as_json(self) -> dict[str, int]:
        return {"tn": self.tn, "fp": self.fp, "fn": self.fn, "tp": self.tp}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ConfusionCounts:
        return cls(tn=data["tn"], fp=data["fp"], fn=data["fn"], tp=data["tp"])


@dataclass(frozen=True)
class RuleVerdict:
    """One rule's verdict on one batch, with the numbers behind it and one line that says it."""

    rule: str  # the rule asked for; ``reason`` says when it fell back to raw
    drift: bool
    new_f1: float
    threshold: float  # what new_f1 was compared with: the cut line, or for ``significant`` the reference F1
    p_value: float | None  # of the significance test (``significant`` only)
    history_size: int  # past scores the rule was given
    reason: str

    def __post_init__(self) -> None:  # numpy scalars in, plain JSON-ready values kept
        object.__setattr__(self, "drift", bool(self.drift))
        object.__setattr__(self, "new_f1", float(self.new_f1))
        object.__setattr__(self, "threshold", float(self.threshold))
        object.__setattr__(self, "p_value", None if self.p_value is None else float(self.p_value))
        object.__setattr__(self, "history_size", int(self.history_size))

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "drift": self.drift,
            "new_f1": self.new_f1,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "history_size": self.history_size,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RuleVerdict:
        return cls(
            rule=data["rule"],
            drift=bool(data["drift"]),
            new_f1=float(data["new_f1"]),
            threshold=float(data["threshold"]),
            p_value=None if data["p_value"] is None else float(data["p_value"]),
            history_size=int(data["history_size"]),
            reason=data["reason"],
        )


@dataclass(frozen=True)
class DriftDecision:
    """What one tick decided about model drift: the acting verdict and the course rule's beside it."""

    rule: str
    verdict: RuleVerdict | None  # None when the batch is carried over (too little evidence, or F1 undefined)
    raw: RuleVerdict | None  # the course rule on the same rows; None only when F1 is undefined on them
    batch: ConfusionCounts
    reference: ConfusionCounts | None  # what ``significant`` compares with, as given
    min_rows: int
    min_positives: int
    carried_over: bool
    reason: str  # the acting verdict's reason, or why the batch is carried over

    @property
    def drift(self) -> bool:
        """True only when the acting rule said drift (a carried-over batch is not drift)."""
        return self.verdict is not None and self.verdict.drift

    @property
    def new_f1(self) -> float | None:
        return self.batch.f1

    @property
    def reference_f1(self) -> float | None:
        """What the acting rule compared the new F1 with."""
        return None if self.verdict is None else self.verdict.threshold

    @property
    def p_value(self) -> float | None:
        return None if self.verdict is None else self.verdict.p_value

    @property
    def next_reference(self) -> ConfusionCounts | None:
        """The reference for the next decision while the same model stays deployed: this one plus the batch.

        Once decided, a batch is more of what the reference is meant to be: the deployed model's counts on rows
        it did not train on (its own, not the fold models'), so the test sharpens tick by tick. Every decided
        batch joins, drifting ones included, so the reference is not biased upwards by keeping only the batches
        that passed; a change no retrained model beats thus becomes the reference and stops alarming. Carried-
        over rows join when they are decided. After a redeploy start again from the new model's out-of-fold counts.
        """
        if self.reference is None or self.carried_over:
            return self.reference
        return self.reference + self.batch

    def line(self) -> str:
        """One line a person reads: rule, verdict, numbers, rows and positives, the course rule beside."""
        evidence = f"{self.batch.rows} new labelled rows with {self.batch.positives} positives"
        if self.rule == DriftRule.SIGNIFICANT.value:
            evidence += f" ({self.min_rows} rows and {self.min_positives} positives needed)"
        text = f"drift check ({self.rule}): {self.reason}"
        if not self.carried_over:
            text += f"; on {evidence}"
        if self.rule != DriftRule.RAW.value:
            text += f"; course rule raw: {self.raw.reason if self.raw else 'undecided (F1 undefined)'}"
        return text

    def as_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "verdict": None if self.verdict is None else self.verdict.as_json(),
            "raw": None if self.raw is None else self.raw.as_json(),
            "batch": self.batch.as_json(),
            "reference": None if self.reference is None else self.reference.as_json(),
            "min_rows": self.min_rows,
            "min_positives": self.min_positives,
            "carried_over": self.carried_over,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DriftDecision:
        return cls(
            rule=data["rule"],
            verdict=None if data["verdict"] is None else RuleVerdict.from_json(data["verdict"]),
            raw=None if data["raw"] is None else RuleVerdict.from_json(data["raw"]),
            batch=ConfusionCounts.from_json(data["batch"]),
            reference=None if data["reference"] is None else ConfusionCounts.from_json(data["reference"]),
            min_rows=int(data["min_rows"]),
            min_positives=int(data["min_positives"]),
            carried_over=bool(data["carried_over"]),
            reason=data["reason"],
        )


# --- the course rules ---


def _compared(drift: bool, new_f1: float, what: str, threshold: float) -> str:
    relation = "is below" if drift else "is not below"
    return f"{'drift' if drift else 'no drift'}: new F1 {new_f1:.4f} {relation} {what} {threshold:.4f}"


def raw_verdict(
    new_f1: float, deployed_score: float, history_size: int = 0, prefix: str = "", rule: str = DriftRule.RAW.value
) -> RuleVerdict:
    """The course rule: drift when the new F1 is below the deployed model's test score (``latestscore.txt``)."""
    drift = new_f1 < deployed_score
    reason = prefix + _compared(drift, new_f1, "deployed score", deployed_score)
    return RuleVerdict(rule, drift, new_f1, deployed_score, None, history_size, reason)


def _fallback_prefix(rule: DriftRule, history: Sequence[float], min_history: int) -> str:
    return f"{rule.value} needs {min_history} past scores, has {len(history)}: used raw; "


def parametric_verdict(
    new_f1: float, deployed_score: float, history: Sequence[float], min_history: int = DEFAULT_MIN_HISTORY
) -> RuleVerdict:
    """The course's parametric rule: drift when the new F1 is below mean - 2 std of past scores (``np.std``)."""
    if len(history) < min_history:
        prefix = _fallback_prefix(DriftRule.PARAMETRIC, history, min_history)
        return raw_verdict(new_f1, deployed_score, len(history), prefix, DriftRule.PARAMETRIC.value)
    scores = np.asarray(history, dtype=float)
    mean, std = float(np.mean(scores)), float(np.std(scores))  # ddof=0, numpy's default, as the course does
    threshold = mean - 2 * std
    drift = new_f1 < threshold
    what = f"mean - 2 std of {len(scores)} past scores (mean {mean:.4f}, std {std:.4f})"
    reason = _compared(drift, new_f1, what, threshold)
    return RuleVerdict(DriftRule.PARAMETRIC.value, drift, new_f1, threshold, None, len(scores), reason)


def nonparametric_verdict(
    new_f1: float, deployed_score: float, history: Sequence[float], min_history: int = DEFAULT_MIN_HISTORY
) -> RuleVerdict:
    """The course's non-parametric rule: drift when the new F1 is below Q1 - 1.5 IQR of past scores."""
    if len(history) < min_history:
        prefix = _fallback_prefix(DriftRule.NONPARAMETRIC, history, min_history)
        return raw_verdict(new_f1, deployed_score, len(history), prefix, DriftRule.NONPARAMETRIC.value)
    scores = np.asarray(history, dtype=float)
    q1, q3 = (float(q) for q in np.quantile(scores, [0.25, 0.75]))  # numpy's default (linear) quartiles
    threshold = q1 - 1.5 * (q3 - q1)
    drift = new_f1 < threshold
    what = f"Q1 - 1.5 IQR of {len(scores)} past scores (Q1 {q1:.4f}, Q3 {q3:.4f})"
    reason = _compared(drift, new_f1, what, threshold)
    return RuleVerdict(DriftRule.NONPARAMETRIC.value, drift, new_f1, threshold, None, len(scores), reason)


# --- the significance test ---


def f1_of_counts(counts: np.ndarray) -> np.ndarray:
    """F1 of each row of an array of counts (columns tn, fp, fn, tp); NaN where undefined."""
    tp = counts[..., 3].astype(float)
    denominator = 2 * tp + counts[..., 1] + counts[..., 2]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), np.nan)


def drop_p_value(
    batch: ConfusionCounts,
    reference: ConfusionCounts,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
    stop_above: float | None = None,
) -> float:
    """One-sided p-value for "the batch F1 is below the reference F1", both counts being samples.

    A parametric bootstrap under the null hypothesis: both count vectors are redrawn, at their own sizes, from
    the pooled cell shares (plus :data:`POOLED_PSEUDO_COUNT` per cell), and the p-value is the share of draws
    whose F1 drop (reference minus batch) is at least the observed one, counted as (1 + hits) / (1 + draws) so
    it is never 0. Drawing under the null (rather than reading a percentile interval of the observed drop)
    keeps the test's size near ``alpha`` at small batches, where F1's sampling distribution is skewed.

    With ``stop_above`` the drawing stops after the first :data:`FIRST_DRAWS` when the p-value over all
    ``draws`` is already sure to exceed it (the usual no-drift case): the verdict at that level is the one all the
    draws would give, and the p-value reported is the estimate from the draws made.
    """
    observed = reference.f1 - batch.f1  # type: ignore[operator]  # callers check that both are defined
    pooled = batch.as_array() + reference.as_array() + POOLED_PSEUDO_COUNT
    shares = pooled / pooled.sum()
    rng = np.random.default_rng(seed)
    enough = math.inf if stop_above is None else stop_above * (1 + draws) - 1  # more hits: p > stop_above
    hits = drawn = 0
    while drawn < draws:
        size = min(FIRST_DRAWS, draws) if drawn == 0 else draws - drawn  # a first look, then all the rest
        drop = f1_of_counts(rng.multinomial(reference.rows, shares, size=size)) - f1_of_counts(
            rng.multinomial(batch.rows, shares, size=size)
        )
        # a draw with an undefined F1 (nothing predicted, nothing exited) counts as a hit: the cautious side
        hits += int(np.count_nonzero(np.nan_to_num(drop, nan=np.inf) >= observed - 1e-12))
        drawn += size
        if hits > enough:
            break
    return (1 + hits) / (1 + drawn)


def significant_verdict(
    batch: ConfusionCounts,
    reference: ConfusionCounts,
    history_size: int = 0,
    alpha: float = DEFAULT_ALPHA,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> RuleVerdict:
    """Drift when the batch F1 is significantly below the reference F1 (one-sided, at ``alpha``)."""
    new_f1, reference_f1 = batch.f1, reference.f1
    if new_f1 is None or reference_f1 is None:
        raise ValueError("the significant rule needs a defined F1 on both the batch and the reference")
    p_value = drop_p_value(batch, reference, draws, seed, stop_above=alpha) if new_f1 < reference_f1 else 1.0
    drift = p_value <= alpha
    against = f"reference F1 {reference_f1:.4f} ({reference.rows} out-of-sample rows)"
    if drift:
        reason = f"drift: new F1 {new_f1:.4f} is significantly below {against}: p {p_value:.4f} <= alpha {alpha:g}"
    elif new_f1 < reference_f1:
        reason = (
            f"no drift: new F1 {new_f1:.4f} is below {against}, but not significantly: "
            f"p {p_value:.4f} > alpha {alpha:g}"
        )
    else:
        reason = f"no drift: new F1 {new_f1:.4f} is not below {against}"
    return RuleVerdict(DriftRule.SIGNIFICANT.value, drift, new_f1, reference_f1, p_value, history_size, reason)


# --- the decision ---


def parse_rule(rule: DriftRule | str) -> DriftRule:
    """The rule named; ValueError naming the choices otherwise."""
    try:
        return DriftRule(rule)
    except ValueError:
        raise ValueError(f"unknown drift rule {rule!r}; choose one of {', '.join(DRIFT_RULES)}") from None


def check_settings(*, alpha: float, min_rows: int, min_positives: int, min_history: int, draws: int) -> None:
    """ValueError naming the setting when a drift setting is out of range."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), not {alpha}")
    for name, value, least in (
        ("min_rows", min_rows, 1),
        ("min_positives", min_positives, 1),
        ("min_history", min_history, 2),
        ("draws", draws, 100),
    ):
        if value < least:
            raise ValueError(f"{name} must be at least {least}, not {value}")


def _evidence_shortfall(batch: ConfusionCounts, min_rows: int, min_positives: int) -> str | None:
    if batch.rows >= min_rows and batch.positives >= min_positives:
        return None
    return (
        f"carried over: {batch.rows} new labelled rows with {batch.positives} positives; "
        f"{min_rows} rows and {min_positives} positives needed"
    )


def decide(
    rule: DriftRule | str,
    batch: ConfusionCounts,
    deployed_score: float,
    reference: ConfusionCounts | None,
    history: Sequence[float],
    *,
    min_rows: int = DEFAULT_MIN_ROWS,
    min_positives: int = DEFAULT_MIN_POSITIVES,
    alpha: float = DEFAULT_ALPHA,
    min_history: int = DEFAULT_MIN_HISTORY,
    draws: int = DEFAULT_DRAWS,
    seed: int = DEFAULT_SEED,
) -> DriftDecision:
    """Decide drift on one batch (the deployed model's counts on the new labelled rows, carried-over ones included).

    ``deployed_score`` is the deployed model's test-file F1 (the course's ``latestscore.txt``, for ``raw`` and the
    fallbacks); ``reference`` its out-of-fold counts (``significant`` only, required there); ``history`` the past
    batch scores of the deployed model (``parametric``, ``nonparametric``). The evidence minimum applies to
    ``significant`` only; the course rules decide on any batch with a defined F1. A batch with F1 undefined
    (no positives and none predicted) is carried over whatever the rule.
    """
    chosen = parse_rule(rule)
    check_settings(alpha=alpha, min_rows=min_rows, min_positives=min_positives, min_history=min_history, draws=draws)
    if chosen is DriftRule.SIGNIFICANT and (reference is None or reference.f1 is None):
        raise ValueError(
            "the significant drift rule needs the deployed model's reference counts with a defined F1 "
            "(out-of-fold counts on its training rows, with exited=1 rows among them); retrain to record them"
        )
    new_f1 = batch.f1
    raw = None if new_f1 is None else raw_verdict(new_f1, deployed_score, len(history))
    if chosen is DriftRule.SIGNIFICANT:
        shortfall = _evidence_shortfall(batch, min_rows, min_positives)
    elif new_f1 is None:
        shortfall = f"carried over: F1 is undefined on {batch.rows} new labelled rows (no positives, none predicted)"
    else:
        shortfall = None
    if shortfall is not None:
        return DriftDecision(chosen.value, None, raw, batch, reference, min_rows, min_positives, True, shortfall)
    verdict = _verdict(chosen, batch, deployed_score, reference, history, alpha, min_history, draws, seed)
    return DriftDecision(chosen.value, verdict, raw, batch, reference, min_rows, min_positives, False, verdict.reason)


def _verdict(
    rule: DriftRule,
    batch: ConfusionCounts,
    deployed_score: float,
    reference: ConfusionCounts | None,
    history: Sequence[float],
    alpha: float,
    min_history: int,
    draws: int,
    seed: int,
) -> RuleVerdict:
    new_f1 = batch.f1
    assert new_f1 is not None  # decide() carries undefined batches over before asking a rule
    if rule is DriftRule.SIGNIFICANT:
        assert reference is not None
        return significant_verdict(batch, reference, len(history), alpha, draws, seed)
    if rule is DriftRule.PARAMETRIC:
        return parametric_verdict(new_f1, deployed_score, history, min_history)
    if rule is DriftRule.NONPARAMETRIC:
        return nonparametric_verdict(new_f1, deployed_score, history, min_history)
    return raw_verdict(new_f1, deployed_score, len(history))
