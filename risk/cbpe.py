"""Performance before the labels arrive: confidence-based performance estimation (CBPE) of F1.

A model's probabilities say how often it should be right. If client *i* exits with probability ``p_i`` and the
model flags it when ``p_i > threshold``, the expected confusion matrix is

    TP = sum of p_i over flagged clients,  FP = sum of (1 - p_i) over flagged,  FN = sum of p_i over the rest,

and the estimated F1 is ``2 TP / (2 TP + FP + FN)`` (the idea behind NannyML's CBPE). Its interval comes from
what the labels themselves could turn out to be: each label drawn as Bernoulli(``p_i``), F1 recomputed per draw.
This holds only while the probabilities are calibrated and ``P(exited | features)`` has not changed (no concept
drift); :func:`reliability` checks the first on labelled rows, and a realized F1 outside the interval once the
labels arrive is the sign of the second.

The draws are vectorised: F1 depends on the labels only through two sums (exits among flagged clients and among
the rest), and each sum is drawn bin by bin, clients grouped by probability into :data:`FINE_BINS` bins per unit,
as Binomial(clients in the bin, their mean probability). That is the Bernoulli sum exactly when a bin's clients
share one probability, and otherwise overstates its variance by at most ``count / (4 * FINE_BINS**2)``
(negligible: the interval is, if anything, a hair wide). Cost: draws x bins, whatever the number of clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

import numpy as np

FINE_BINS = 200  # probability bins per unit for the drawn label sums (see the module docstring)
DEFAULT_DRAWS = 2000
MIN_RELIABILITY_ROWS = 200  # fewer labelled rows than this cannot say much about calibration


@dataclass(frozen=True)
class F1Estimate:
    """The F1 expected from the probabilities alone, with the interval the labels' randomness allows."""

    f1: float
    low: float
    high: float
    level: float  # of the interval (0.95: 95% of label draws give an F1 within it)
    rows: int
    expected_positives: float  # expected exits: the sum of the probabilities
    predicted_positives: int  # clients the model flags (probability above the threshold)
    threshold: float
    draws: int

    def holds(self, f1: float) -> bool:
        """Whether a realized F1 lies within the interval (outside it: the probabilities no longer hold)."""
        return self.low <= f1 <= self.high

    def as_json(self) -> dict[str, Any]:
        """The estimate as JSON-ready values (for the records store, the API and the report)."""
        return {
            "f1": self.f1,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "rows": self.rows,
            "expected_positives": self.expected_positives,
            "predicted_positives": self.predicted_positives,
            "threshold": self.threshold,
            "draws": self.draws,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> F1Estimate:
        """The estimate written by :meth:`as_json`; ValueError naming the key that is missing."""
        try:
            return cls(
                f1=float(data["f1"]),
                low=float(data["low"]),
                high=float(data["high"]),
                level=float(data["level"]),
                rows=int(data["rows"]),
                expected_positives=float(data["expected_positives"]),
                predicted_positives=int(data["predicted_positives"]),
                threshold=float(data["threshold"]),
                draws=int(data["draws"]),
            )
        except KeyError as err:
            raise ValueError(f"F1 estimate is missing {err.args[0]!r}; write it with F1Estimate.as_json") from None


class Calibration(Enum):
    """Whether labelled rows bear out the probabilities (and so the F1 estimate built on them)."""

    CONSISTENT = "consistent"  # no more error than chance alone gives on this many rows
    MISCALIBRATED = "miscalibrated"
    TOO_FEW_ROWS = "too few rows"


class ReliabilityBin(NamedTuple):
    """One bin of a calibration plot: the probabilities in [low, high) against what happened."""

    low: float
    high: float
    count: int
    mean_predicted: float | None  # None when the bin is empty
    observed_rate: float | None


@dataclass(frozen=True)
class Reliability:
    """Predicted against observed exit rates per probability bin, and a verdict on the F1 estimate."""

    bins: tuple[ReliabilityBin, ...]
    rows: int
    ece: float  # expected calibration error: the row-weighted mean |observed rate - mean predicted| per bin
    chance_median: float  # the ECE calibrated probabilities typically show on this many rows (labels' noise)
    chance_ece: float  # ... and the most they show at ``level`` (above it: miscalibrated)
    level: float
    calibration: Calibration
    verdict: str  # one line a person reads

    def as_json(self) -> dict[str, Any]:
        return {
            "bins": [b._asdict() for b in self.bins],
            "rows": self.rows,
            "ece": self.ece,
            "chance_median": self.chance_median,
            "chance_ece": self.chance_ece,
            "level": self.level,
            "calibration": self.calibration.value,
            "verdict": self.verdict,
        }


def _probability_array(probabilities: object) -> np.ndarray:
    """The probabilities as a flat float array; ValueError if empty, not finite or outside [0, 1]."""
    values = np.asarray(probabilities, dtype="float64").ravel()
    if values.size == 0:
        raise ValueError("no probabilities to estimate from; pass at least one")
    if not np.isfinite(values).all() or values.min() < 0 or values.max() > 1:
        raise ValueError("probabilities must be finite numbers between 0 and 1 (predict_proba's exit column)")
    return values


def _label_array(labels: object, rows: int) -> np.ndarray:
    """The labels as a 0/1 int array of ``rows`` values; ValueError otherwise."""
    values = np.asarray(labels).ravel()
    if values.size != rows:
        raise ValueError(f"{values.size} labels for {rows} probabilities; pass one label per probability")
    if not np.isin(values, (0, 1)).all():
        raise ValueError("labels must be 0 (stayed) or 1 (exited)")
    return values.astype("int64")


def _check_level(level: float, draws: int) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), not {level}")
    if draws < 1:
        raise ValueError(f"draws must be at least 1, not {draws}")


def _f1(true_positives: np.ndarray | float, flagged: np.ndarray | float, missed: np.ndarray | float) -> np.ndarray:
    """F1 from exits among flagged clients, flagged clients and exits among the rest (0 when undefined)."""
    # 2TP / (2TP + FP + FN) with FP = flagged - TP; zero when nothing is flagged and nobody exits, as scoring does
    denominator = np.asarray(true_positives + flagged + missed, dtype="float64")
    numerator = np.asarray(2.0 * true_positives, dtype="float64")
    return np.divide(
        numerator, denominator, out=np.zeros(np.broadcast(numerator, denominator).shape), where=denominator > 0
    )


def bernoulli_sums(
    probabilities: np.ndarray, groups: np.ndarray, group_count: int, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """Draws of the sum of Bernoulli(p) labels within each group: an array (draws, group_count).

    Vectorised by probability bins (see the module docstring): cost is draws x occupied bins.
    """
    fine = np.minimum((probabilities * FINE_BINS).astype("int64"), FINE_BINS - 1)
    key = groups.astype("int64") * FINE_BINS + fine
    counts = np.bincount(key, minlength=group_count * FINE_BINS)
    sums = np.bincount(key, weights=probabilities, minlength=group_count * FINE_BINS)
    occupied = np.flatnonzero(counts)
    means = np.clip(sums[occupied] / counts[occupied], 0.0, 1.0)
    drawn = rng.binomial(counts[occupied], means, size=(draws, occupied.size)).astype("float64")
    membership = np.zeros((occupied.size, group_count))
    membership[np.arange(occupied.size), occupied // FINE_BINS] = 1.0
    return drawn @ membership


def estimate_f1(
    probabilities: object,
    threshold: float = 0.5,
    *,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    level: float = 0.95,
) -> F1Estimate:
    """CBPE estimate of F1 for clients flagged when their probability is above ``threshold``.

    ``probabilities`` are the model's exit probabilities (predict_proba's column for exited=1). The flag rule
    is ``p > threshold``, as LogisticRegression.predict flags (decision above 0, i.e. p above 0.5). The interval
    holds ``level`` of the F1 values the labels, drawn Bernoulli(p), give; ``seed`` makes it reproducible.
    """
    p = _probability_array(probabilities)
    _check_level(level, draws)
    flagged = p > threshold
    flagged_count = int(flagged.sum())
    expected_tp = float(p[flagged].sum())
    expected_fn = float(p[~flagged].sum())
    sums = bernoulli_sums(p, flagged.astype("int64"), 2, draws, np.random.default_rng(seed))
    drawn_f1 = _f1(sums[:, 1], flagged_count, sums[:, 0])
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(drawn_f1, [tail, 1.0 - tail])
    return F1Estimate(
        f1=float(_f1(expected_tp, flagged_count, expected_fn)),
        low=float(low),
        high=float(high),
        level=level,
        rows=int(p.size),
        expected_positives=expected_tp + expected_fn,
        predicted_positives=flagged_count,
        threshold=threshold,
        draws=draws,
    )


def realized_f1(labels: object, probabilities: object, threshold: float = 0.5) -> float:
    """F1 of the flag rule ``p > threshold`` against the labels that arrived (0 when undefined, as scoring)."""
    p = _probability_array(probabilities)
    y = _label_array(labels, p.size)
    flagged = p > threshold
    return float(_f1(float(y[flagged].sum()), float(flagged.sum()), float(y[~flagged].sum())))


def _bin_index(p: np.ndarray, bins: int) -> np.ndarray:
    """Equal-width bin of each probability (1.0 falls in the last bin)."""
    return np.minimum((p * bins).astype("int64"), bins - 1)


def _ece(predicted_sum: np.ndarray, observed_sum: np.ndarray, rows: float) -> np.ndarray:
    """ECE from per-bin totals (bins on the last axis): sum over bins of |observed - predicted| / rows."""
    return np.abs(observed_sum - predicted_sum).sum(axis=-1) / rows


def _verdict(calibration: Calibration, ece: float, chance_median: float, chance_ece: float, rows: int) -> str:
    if calibration is Calibration.TOO_FEW_ROWS:
        return (
            f"too few labelled rows ({rows:,}) to judge calibration (at least {MIN_RELIABILITY_ROWS:,} are "
            f"needed); the F1 estimate rests on the probabilities alone"
        )
    chance = f"calibrated probabilities show {chance_median:.3f} by chance on {rows:,} rows, up to {chance_ece:.3f}"
    if calibration is Calibration.CONSISTENT:
        return (
            f"probabilities consistent with the outcomes: ECE {ece:.3f} ({chance}); "
            f"the F1 estimate can be relied on while the data look like this"
        )
    return (
        f"probabilities miscalibrated: ECE {ece:.3f} ({chance}); "
        f"the F1 estimate is biased: wait for the labels, or recalibrate the model"
    )


def reliability(
    probabilities: object,
    labels: object,
    bins: int = 10,
    *,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    level: float = 0.95,
) -> Reliability:
    """Per-bin mean predicted against observed exit rate, the ECE against its noise, and a verdict.

    The ECE is never 0 on finite data (the labels are random), so a bare number cannot say whether the
    probabilities can bear the F1 estimate. Its uncertainty here is what perfectly calibrated probabilities show
    on the same rows: labels drawn Bernoulli(p) ``draws`` times, the median and ``level`` quantile of their ECE.
    The verdict is "miscalibrated" when the ECE is above that quantile (a test at 1 - ``level``).
    """
    p = _probability_array(probabilities)
    y = _label_array(labels, p.size)
    _check_level(level, draws)
    if bins < 1:
        raise ValueError(f"bins must be at least 1, not {bins}")
    rng = np.random.default_rng(seed)
    index = _bin_index(p, bins)
    count = np.bincount(index, minlength=bins)
    predicted_sum = np.bincount(index, weights=p, minlength=bins)
    observed_sum = np.bincount(index, weights=y, minlength=bins).astype("float64")
    ece = float(_ece(predicted_sum, observed_sum, p.size))
    chance = _ece(predicted_sum, bernoulli_sums(p, index, bins, draws, rng), p.size)
    chance_median, chance_ece = (float(v) for v in np.quantile(chance, [0.5, level]))
    if p.size < MIN_RELIABILITY_ROWS:
        calibration = Calibration.TOO_FEW_ROWS
    else:
        calibration = Calibration.CONSISTENT if ece <= chance_ece else Calibration.MISCALIBRATED
    table = tuple(
        ReliabilityBin(
            low=b / bins,
            high=(b + 1) / bins,
            count=int(count[b]),
            mean_predicted=float(predicted_sum[b] / count[b]) if count[b] else None,
            observed_rate=float(observed_sum[b] / count[b]) if count[b] else None,
        )
        for b in range(bins)  # one per bin, not per row
    )
    return Reliability(
        bins=table,
        rows=int(p.size),
        ece=ece,
        chance_median=chance_median,
        chance_ece=chance_ece,
        level=level,
        calibration=calibration,
        verdict=_verdict(calibration, ece, chance_median, chance_ece, int(p.size)),
    )
