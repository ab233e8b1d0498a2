"""The drift rules: the course's three exactly as taught, the significant rule's evidence minimum and error rates,
and the decision record people read and the store keeps."""

from __future__ import annotations

import json

import numpy as np
import pytest

from risk.drift import (
    DRIFT_RULES,
    ConfusionCounts,
    DriftDecision,
    DriftRule,
    decide,
    nonparametric_verdict,
    parametric_verdict,
)

REFERENCE = ConfusionCounts(tn=392, fp=146, fn=84, tp=378)  # out-of-fold counts of a 1,000-row training set
SHARES = np.array(REFERENCE.as_array()) / REFERENCE.rows


def counts_with_f1(tp: int, errors: int, tn: int = 10) -> ConfusionCounts:
    """Counts whose F1 is 2 tp / (2 tp + errors), the errors split between fp and fn."""
    return ConfusionCounts(tn=tn, fp=errors // 2, fn=errors - errors // 2, tp=tp)


# --- the record ---


def test_f1_is_undefined_only_when_nothing_was_predicted_or_exited() -> None:
    assert ConfusionCounts(tn=38, fp=0, fn=0, tp=0).f1 is None
    assert ConfusionCounts(tn=0, fp=38, fn=0, tp=0).f1 == 0.0  # predicted exits, none happened: a defined 0
    assert ConfusionCounts(tn=0, fp=0, fn=3, tp=0).f1 == 0.0
    assert ConfusionCounts(tn=9, fp=4, fn=4, tp=9).f1 == pytest.approx(18 / 26)


def test_counts_from_labels() -> None:
    counts = ConfusionCounts.from_labels([1, 1, 0, 0, 1, 0], [1, 0, 1, 0, 1, 0])
    assert counts == ConfusionCounts(tn=2, fp=1, fn=1, tp=2)
    assert (counts.rows, counts.positives) == (6, 3)
    with pytest.raises(ValueError, match="pair up"):
        ConfusionCounts.from_labels([1, 0], [1])


def test_counts_refuse_negative_numbers() -> None:
    with pytest.raises(ValueError, match="fp"):
        ConfusionCounts(tn=1, fp=-1, fn=0, tp=0)


def test_rule_names_are_listed_once() -> None:
    assert DRIFT_RULES == ("significant", "raw", "parametric", "nonparametric")
    assert {rule.value for rule in DriftRule} == set(DRIFT_RULES)
    with pytest.raises(ValueError, match="significant, raw, parametric, nonparametric"):
        decide("zscore", counts_with_f1(9, 8), 0.5, REFERENCE, [])


def test_decision_survives_json() -> None:
    decision = decide("significant", counts_with_f1(60, 100, tn=140), 0.7, REFERENCE, [0.7, 0.71])
    text = json.dumps(decision.as_json())
    assert DriftDecision.from_json(json.loads(text)) == decision
    carried = decide("significant", counts_with_f1(4, 6, tn=28), 0.7, REFERENCE, [])
    assert DriftDecision.from_json(json.loads(json.dumps(carried.as_json()))) == carried


# --- the course rules ---


def test_raw_course_walkthrough_26_rows_is_no_drift() -> None:
    batch = ConfusionCounts(tn=9, fp=4, fn=4, tp=9)  # 26 new rows, F1 0.6923
    decision = decide("raw", batch, 0.5714, None, [])
    assert not decision.drift and not decision.carried_over
    assert decision.reason == "no drift: new F1 0.6923 is not below deployed score 0.5714"
    assert decision.raw == decision.verdict


def test_raw_drift_when_below() -> None:
    decision = decide("raw", ConfusionCounts(tn=9, fp=5, fn=5, tp=7), 0.5714, None, [])  # F1 14/24 = 0.5833
    assert not decision.drift
    decision = decide("raw", ConfusionCounts(tn=9, fp=6, fn=6, tp=5), 0.5714, None, [])  # F1 10/22 = 0.4545
    assert decision.drift and "drift: new F1 0.4545 is below deployed score 0.5714" in decision.line()


def test_parametric_uses_numpy_std_with_ddof_0() -> None:
    history = [0.6, 0.7, 0.8, 0.7, 0.6, 0.7, 0.8, 0.7, 0.6, 0.8]  # mean 0.7, np.std 0.0775 (sample std 0.0816)
    verdict = parametric_verdict(0.54, 0.9, history)
    assert verdict.threshold == pytest.approx(0.7 - 2 * np.sqrt(0.006))  # 0.5451; ddof 1 would give 0.5367
    assert verdict.drift  # 0.54 < 0.5451; with the sample std (0.5367) it would not be
    decision = decide("parametric", counts_with_f1(27, 46), 0.9, None, history)  # F1 54/100
    assert decision.drift and decision.verdict.history_size == 10
    assert "mean - 2 std of 10 past scores" in decision.reason


def test_nonparametric_uses_numpy_linear_quartiles() -> None:
    history = [0.90, 0.50, 0.60, 0.62, 0.64, 0.66, 0.68, 0.70, 0.72, 0.74]  # order does not matter
    verdict = nonparametric_verdict(0.48, 0.9, history)
    # linear quartiles: Q1 = 0.62 + 0.25 * 0.02 = 0.625, Q3 = 0.70 + 0.75 * 0.02 = 0.715, IQR 0.09
    assert verdict.threshold == pytest.approx(0.625 - 1.5 * 0.09)  # 0.49; Tukey's hinges would give 0.47
    assert verdict.drift
    decision = decide("nonparametric", counts_with_f1(12, 26, tn=5), 0.9, None, history)  # F1 24/50 = 0.48
    assert decision.drift and "Q1 0.6250, Q3 0.7150" in decision.reason


def test_course_rules_use_the_lower_tail_only() -> None:
    history = [0.5] * 5 + [0.6] * 5
    assert not parametric_verdict(0.99, 0.5, history).drift
    assert not nonparametric_verdict(0.99, 0.5, history).drift


@pytest.mark.parametrize("rule", ["parametric", "nonparametric"])
def test_too_short_history_falls_back_to_raw_and_says_so(rule: str) -> None:
    batch = ConfusionCounts(tn=9, fp=6, fn=6, tp=5)  # F1 0.4545
    decision = decide(rule, batch, 0.5714, None, [0.2, 0.3, 0.25])
    assert decision.drift  # raw: 0.4545 < 0.5714, although far above the three past scores
    assert decision.reason.startswith(f"{rule} needs 10 past scores, has 3: used raw; drift: new F1 0.4545")
    assert decide(rule, batch, 0.5714, None, [0.2] * 9, min_history=9).verdict.threshold != 0.5714


def test_course_rules_decide_small_batches_and_defined_zero_f1() -> None:
    none_exited = ConfusionCounts(tn=0, fp=38, fn=0, tp=0)  # 38 rows all predicted 1, none exited: F1 0.0
    decision = decide("raw", none_exited, 0.5714, None, [])
    assert decision.drift and not decision.carried_over and decision.new_f1 == 0.0


def test_undefined_f1_is_carried_over_by_every_rule() -> None:
    quiet = ConfusionCounts(tn=38, fp=0, fn=0, tp=0)
    for rule in DRIFT_RULES:
        decision = decide(rule, quiet, 0.5714, REFERENCE, [])
        assert decision.carried_over and decision.verdict is None and decision.raw is None
        assert not decision.drift


# --- the significant rule ---


def test_significant_carries_over_too_few_rows_or_positives_with_the_counts_in_the_line() -> None:
    few = ConfusionCounts(tn=30, fp=4, fn=1, tp=3)  # 38 rows, 4 positives
    decision = decide("significant", few, 0.5714, REFERENCE, [])
    assert decision.carried_over and not decision.drift and decision.verdict is None
    assert "carried over: 38 new labelled rows with 4 positives; 100 rows and 10 positives needed" in decision.line()
    assert decision.raw is not None and decision.raw.new_f1 == pytest.approx(6 / 11)  # the course rule beside
    assert "course rule raw: drift: new F1 0.5455 is below deployed score 0.5714" in decision.line()
    rare = ConfusionCounts(tn=180, fp=11, fn=5, tp=4)  # 200 rows, 9 positives
    assert decide("significant", rare, 0.5714, REFERENCE, []).carried_over
    enough = ConfusionCounts(tn=80, fp=10, fn=5, tp=5)  # 100 rows, 10 positives: decided
    assert not decide("significant", enough, 0.5714, REFERENCE, []).carried_over


def test_decided_batches_join_the_reference_carried_ones_wait() -> None:
    batch = ConfusionCounts(tn=40, fp=16, fn=10, tp=34)
    assert decide("significant", batch, 0.7, REFERENCE, []).next_reference == REFERENCE + batch
    few = ConfusionCounts(tn=30, fp=4, fn=1, tp=3)
    assert decide("significant", few, 0.7, REFERENCE, []).next_reference == REFERENCE
    assert decide("raw", batch, 0.7, None, []).next_reference is None


def test_significant_needs_reference_counts() -> None:
    with pytest.raises(ValueError, match="reference counts"):
        decide("significant", counts_with_f1(60, 100, tn=140), 0.7, None, [])


def test_significant_ignores_a_noisy_dip_the_course_rule_calls_drift() -> None:
    batch = ConfusionCounts(tn=40, fp=16, fn=10, tp=34)  # 100 rows, F1 0.7234 < reference 0.7667
    decision = decide("significant", batch, 0.7667, REFERENCE, [])
    assert not decision.drift and decision.p_value > 0.05
    assert decision.raw.drift  # the course rule redeploys on the same rows
    assert "but not significantly" in decision.reason and "course rule raw: drift" in decision.line()


def test_significant_decision_is_reproducible() -> None:
    batch = ConfusionCounts(tn=40, fp=20, fn=12, tp=28)
    first = decide("significant", batch, 0.7, REFERENCE, [])
    assert decide("significant", batch, 0.7, REFERENCE, []) == first


def null_batch(rng: np.random.Generator, rows: int) -> ConfusionCounts:
    return ConfusionCounts(*rng.multinomial(rows, SHARES))


@pytest.mark.parametrize("rows", [100, 1000])
def test_significant_false_alarm_rate_is_at_most_alpha_on_unchanged_data(rows: int) -> None:
    rng = np.random.default_rng(rows)
    trials = 600
    alarms = 0
    for trial in range(trials):
        reference = null_batch(rng, 500)  # the reference is a sample too: its noise must be accounted for
        alarms += decide("significant", null_batch(rng, rows), 0.77, reference, [], draws=1000, seed=trial).drift
    assert alarms / trials <= 0.05 + 0.02  # 0.02: about 2.3 standard errors of the Monte Carlo estimate


def test_significant_power_on_a_real_drop() -> None:
    rng = np.random.default_rng(5)
    flipped = SHARES[[2, 3, 0, 1]] * 0.3 + SHARES * 0.7  # 30% of labels flipped (tn<->fn, fp<->tp)
    detected = 0
    for trial in range(200):
        batch = ConfusionCounts(*rng.multinomial(300, flipped))
        detected += decide("significant", batch, 0.77, null_batch(rng, 1000), [], draws=1000, seed=trial).drift
    assert detected / 200 >= 0.9
