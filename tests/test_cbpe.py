"""CBPE: the F1 estimated from probabilities alone, its interval, and the reliability verdict.

The synthetic process (risk.synthetic.client_rows) draws each label from a known P(exited | features), so the
realized F1 of any batch is a draw from exactly what the estimate describes, when the model's probabilities are
that P. A model linear in log activity is the right family and comes out calibrated; the course model (linear
in raw counts) does not, and reliability must say so.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from risk.cbpe import (
    Calibration,
    F1Estimate,
    bernoulli_sums,
    estimate_f1,
    realized_f1,
    reliability,
)
from risk.config import ModelParams
from risk.model import build_model
from risk.schema import FEATURES
from risk.synthetic import client_rows, exit_probability


def features(rows: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(rows[:, 1:4], columns=list(FEATURES))


@pytest.fixture(scope="module")
def training_rows() -> np.ndarray:
    return client_rows(np.random.default_rng(0), 20_000, drift=False)


@pytest.fixture(scope="module")
def calibrated_model(training_rows: np.ndarray) -> Pipeline:
    """Trained on the process, in the process's own family (logistic in log activity): calibrated."""
    model = Pipeline([("log", FunctionTransformer(np.log1p)), ("classify", LogisticRegression(C=1e6))])
    return model.fit(features(training_rows), training_rows[:, 4])


@pytest.fixture(scope="module")
def course_model(training_rows: np.ndarray) -> Pipeline:
    return build_model(ModelParams()).fit(features(training_rows), training_rows[:, 4])


def test_exit_probability_is_the_probability_client_rows_draws_its_labels_from() -> None:
    for drift in (False, True):
        rows = client_rows(np.random.default_rng(7), 5000, drift)
        replay = np.random.default_rng(7)  # the same draws, in client_rows' order: ids, three features, uniforms
        replay.integers(0, 26**5, size=5000)
        for mean, sigma in ((4.5, 1.2), (5.5, 1.3), (3.5, 1.5)):
            replay.lognormal(mean=mean, sigma=sigma, size=5000)
        uniforms = replay.random(5000)
        assert np.array_equal(rows[:, 4], (uniforms < exit_probability(rows[:, 1:4], drift)).astype(np.int64))


def test_estimate_is_the_expected_confusion_matrix_worked_by_hand() -> None:
    estimate = estimate_f1([0.9, 0.8, 0.3, 0.1])
    # flagged 0.9 and 0.8: TP 1.7, FP 0.3; the rest: FN 0.4
    assert estimate.f1 == pytest.approx(2 * 1.7 / (2 * 1.7 + 0.3 + 0.4))
    assert estimate.predicted_positives == 2
    assert estimate.expected_positives == pytest.approx(2.1)
    assert estimate.rows == 4
    assert 0 <= estimate.low <= estimate.f1 <= estimate.high <= 1


def test_nothing_flagged_and_nobody_expected_to_exit_is_f1_zero() -> None:
    estimate = estimate_f1(np.zeros(50))
    assert (estimate.f1, estimate.low, estimate.high) == (0.0, 0.0, 0.0)


def test_certain_probabilities_leave_no_room_in_the_interval() -> None:
    estimate = estimate_f1([1.0, 1.0, 0.0, 0.0, 1.0])
    assert (estimate.f1, estimate.low, estimate.high) == (1.0, 1.0, 1.0)


def test_flag_rule_and_realized_f1_match_the_models_predict(course_model: Pipeline) -> None:
    rows = client_rows(np.random.default_rng(3), 3000, drift=False)
    probabilities = course_model.predict_proba(features(rows))[:, 1]
    expected = f1_score(rows[:, 4], course_model.predict(features(rows)))
    assert realized_f1(rows[:, 4], probabilities) == pytest.approx(expected)
    assert estimate_f1(probabilities).predicted_positives == int(course_model.predict(features(rows)).sum())


def test_the_interval_holds_the_realized_f1_of_a_calibrated_model(calibrated_model: Pipeline) -> None:
    inside = 0
    for seed in range(20):
        batch = client_rows(np.random.default_rng(100 + seed), 2000, drift=False)
        probabilities = calibrated_model.predict_proba(features(batch))[:, 1]
        inside += estimate_f1(probabilities, seed=seed).holds(realized_f1(batch[:, 4], probabilities))
    assert inside >= 17  # a 95% interval: 19 of 20 expected, some slack for the model's own estimation error


def test_after_a_change_of_p_exited_given_features_the_realized_f1_falls_outside(calibrated_model: Pipeline) -> None:
    for seed in range(3):
        batch = client_rows(np.random.default_rng(200 + seed), 2000, drift=True)
        probabilities = calibrated_model.predict_proba(features(batch))[:, 1]
        estimate = estimate_f1(probabilities)
        assert realized_f1(batch[:, 4], probabilities) < estimate.low


def test_more_clients_narrow_the_interval(calibrated_model: Pipeline) -> None:
    batch = client_rows(np.random.default_rng(5), 8000, drift=False)
    probabilities = calibrated_model.predict_proba(features(batch))[:, 1]
    small, large = estimate_f1(probabilities[:2000]), estimate_f1(probabilities)
    assert (large.high - large.low) < 0.7 * (small.high - small.low)  # about half: 1/sqrt(4)


def test_same_seed_same_interval_other_seed_other_draws() -> None:
    probabilities = np.random.default_rng(1).random(500)
    assert estimate_f1(probabilities, seed=4) == estimate_f1(probabilities, seed=4)
    assert estimate_f1(probabilities, seed=4).low != estimate_f1(probabilities, seed=5).low


def test_binned_label_sums_have_the_bernoulli_mean_and_variance() -> None:
    probabilities = np.random.default_rng(2).beta(0.7, 1.3, size=3000)
    groups = (probabilities > 0.5).astype(np.int64)
    sums = bernoulli_sums(probabilities, groups, 2, 20_000, np.random.default_rng(3))
    for group in (0, 1):
        p = probabilities[groups == group]
        assert sums[:, group].mean() == pytest.approx(p.sum(), rel=0.002)
        assert sums[:, group].var() == pytest.approx((p * (1 - p)).sum(), rel=0.05)


def test_estimate_round_trips_through_json() -> None:
    estimate = estimate_f1(np.random.default_rng(1).random(100))
    assert F1Estimate.from_json(json.loads(json.dumps(estimate.as_json()))) == estimate
    with pytest.raises(ValueError, match="missing 'low'"):
        F1Estimate.from_json({k: v for k, v in estimate.as_json().items() if k != "low"})


@pytest.mark.parametrize("bad", [[], [0.2, 1.5], [0.1, float("nan")], [-0.1]])
def test_probabilities_must_be_between_0_and_1(bad: list[float]) -> None:
    with pytest.raises(ValueError, match="probabilit"):
        estimate_f1(bad)


def test_labels_must_match_the_probabilities() -> None:
    with pytest.raises(ValueError, match="3 labels for 2 probabilities"):
        realized_f1([0, 1, 1], [0.2, 0.8])
    with pytest.raises(ValueError, match="0 \\(stayed\\) or 1"):
        reliability([0.2, 0.8], [0, 2])


def test_reliability_bins_by_hand() -> None:
    result = reliability([0.05, 0.15, 0.12, 0.95], [0, 1, 0, 1], bins=10)
    assert [b.count for b in result.bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert result.bins[1].mean_predicted == pytest.approx(0.135)
    assert result.bins[1].observed_rate == 0.5
    assert result.bins[2].mean_predicted is None and result.bins[2].observed_rate is None
    # ECE: (1*|0-0.05| + 2*|0.5-0.135| + 1*|1-0.95|) / 4
    assert result.ece == pytest.approx((0.05 + 2 * 0.365 + 0.05) / 4)
    assert result.calibration is Calibration.TOO_FEW_ROWS
    assert "too few labelled rows (4)" in result.verdict
    json.dumps(result.as_json())


def test_reliability_calls_calibrated_probabilities_consistent_bar_the_tests_false_alarms() -> None:
    verdicts = []
    for seed in range(20):
        rows = client_rows(np.random.default_rng(20 + seed), 5000, drift=False)
        verdicts.append(reliability(exit_probability(rows[:, 1:4], drift=False), rows[:, 4], draws=500, seed=seed))
    consistent = [r for r in verdicts if r.calibration is Calibration.CONSISTENT]
    assert len(consistent) >= 17  # a test at 5%: about one false alarm in 20
    assert all(r.ece <= r.chance_ece for r in consistent)
    assert consistent[0].verdict.startswith("probabilities consistent with the outcomes")
    assert all(sum(b.count for b in r.bins) == 5000 for r in verdicts)


def test_reliability_calls_overconfident_probabilities_miscalibrated() -> None:
    rows = client_rows(np.random.default_rng(12), 5000, drift=False)
    true = exit_probability(rows[:, 1:4], drift=False)
    overconfident = 1 / (1 + np.exp(-3 * np.log(true / (1 - true))))
    result = reliability(overconfident, rows[:, 4])
    assert result.calibration is Calibration.MISCALIBRATED
    assert result.ece > result.chance_ece
    assert "the F1 estimate is biased" in result.verdict


def test_the_course_model_is_miscalibrated_on_the_synthetic_process(course_model: Pipeline) -> None:
    """Why risk bands are deciles and why the F1 estimate comes with a verdict: linear in raw counts, the course
    model's probabilities are off where activity is high or low, and its CBPE estimate is biased with them."""
    rows = client_rows(np.random.default_rng(13), 5000, drift=False)
    probabilities = course_model.predict_proba(features(rows))[:, 1]
    assert reliability(probabilities, rows[:, 4]).calibration is Calibration.MISCALIBRATED
