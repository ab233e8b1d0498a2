"""Feature-level data drift statistics: compare a batch of rows with a model's training reference.

This module holds the numbers only (numpy and scipy; no files, no model, no config file), so training (which
builds the reference), diagnostics (which compares a batch with the deployed version's reference), the tests
and the Evidently cross-check all use one implementation.

- A **reference** is built once per trained model by :func:`build_reference`: per numeric feature its row count,
  mean and standard deviation, the edges of ``psi_bins`` quantile bins of the training values with the share of
  training rows in each bin (a histogram), and, when the training data has at most ``ks_max_reference_rows``
  rows, the values themselves; plus the training target rate and the model's predicted-positive rate.
- **Per feature** (:func:`compare_feature`): a reference that kept its values (a small one) is compared with the
  two-sample Kolmogorov-Smirnov test (drift when p < ``ks_alpha``); a large one with the Population Stability
  Index over its quantile bins (``psi_watch`` and above is ``watch``, ``psi_drift`` and above is ``drift``).
- **Rates** (:func:`rate_shift`): the target rate and the predicted-positive rate of the batch against the
  reference's, with Fisher's exact test (a shift when p < ``ks_alpha``).
- **Dataset** (:func:`dataset_verdict`): ``drift`` when at least ``feature_share`` of the features drift,
  ``insufficient data`` when the batch is too small to tell (never ``drift``), else ``no drift``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from risk.config import Settings

REFERENCE_FORMAT = 1
DRIFT = "drift"
NO_DRIFT = "no drift"
WATCH = "watch"
INSUFFICIENT = "insufficient data"
NO_REFERENCE = "no reference"
VERDICTS = (DRIFT, NO_DRIFT, INSUFFICIENT, NO_REFERENCE)
KS, PSI = "ks", "psi"
PSI_EPSILON = 1e-4  # share used for an empty bin, so PSI stays finite (the usual convention, Evidently's too)
PSI_ROWS_PER_BIN = 10  # PSI needs about this many batch rows per bin before sampling noise stays below 0.1
FLOAT_TOLERANCE = 1e-12
DEFAULTS = Settings._field_defaults  # one place for the defaults: the config loader's


@dataclass(frozen=True)
class DriftConfig:
    """Thresholds of the data drift check (config keys ``data_drift_*``; see README, "Data drift")."""

    ks_alpha: float = DEFAULTS["data_drift_ks_alpha"]
    psi_watch: float = DEFAULTS["data_drift_psi_watch"]
    psi_drift: float = DEFAULTS["data_drift_psi_drift"]
    psi_bins: int = DEFAULTS["data_drift_psi_bins"]
    ks_max_reference_rows: int = DEFAULTS["data_drift_ks_max_reference_rows"]
    min_rows: int = DEFAULTS["data_drift_min_rows"]
    feature_share: float = DEFAULTS["data_drift_feature_share"]

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftConfig:
        return cls(
            ks_alpha=settings.data_drift_ks_alpha,
            psi_watch=settings.data_drift_psi_watch,
            psi_drift=settings.data_drift_psi_drift,
            psi_bins=settings.data_drift_psi_bins,
            ks_max_reference_rows=settings.data_drift_ks_max_reference_rows,
            min_rows=settings.data_drift_min_rows,
            feature_share=settings.data_drift_feature_share,
        )

    def rows_needed(self, method: str, bins: int) -> int:
        """Batch values a feature test needs: ``min_rows``, and for PSI also PSI_ROWS_PER_BIN per bin."""
        return self.min_rows if method == KS else max(self.min_rows, PSI_ROWS_PER_BIN * bins)


# --- histograms and the two statistics ---


def finite_values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """The values as float64 with missing (NaN) and infinite ones dropped."""
    array = np.asarray(values, dtype="float64")
    return array[np.isfinite(array)]


def quantile_edges(values: np.ndarray, bins: int) -> np.ndarray:
    """Interior edges of ``bins`` quantile bins of ``values`` (ties merge bins, so there may be fewer edges)."""
    if len(values) == 0:
        return np.array([], dtype="float64")
    return np.unique(np.quantile(values, np.arange(1, bins) / bins))


def bin_shares(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Share of ``values`` in each bin ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    edges = np.asarray(edges, dtype="float64")
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def psi(reference_shares: Sequence[float], batch_shares: Sequence[float]) -> float:
    """Population Stability Index: sum of (batch - reference) * ln(batch / reference) over the bins.

    An empty bin counts as PSI_EPSILON of the rows on that side.
    """
    expected = np.clip(np.asarray(reference_shares, dtype="float64"), PSI_EPSILON, None)
    actual = np.clip(np.asarray(batch_shares, dtype="float64"), PSI_EPSILON, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_test(reference: np.ndarray, batch: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value (exact for small samples, scipy's ``auto``)."""
    result = stats.ks_2samp(reference, batch)
    return float(result.statistic), float(result.pvalue)


# --- the reference ---


def feature_reference(values: Sequence[float] | np.ndarray, config: DriftConfig) -> dict[str, Any]:
    """What one feature of the training data looks like: counts, moments, quantile histogram, small-data values."""
    raw = np.asarray(values, dtype="float64")
    clean = finite_values(raw)
    edges = quantile_edges(clean, config.psi_bins)
    return {
        "rows": int(len(clean)),
        "missing": int(len(raw) - len(clean)),
        "mean": _plain(clean.mean()) if len(clean) else None,
        "std": _plain(clean.std(ddof=1)) if len(clean) > 1 else None,
        "bin_edges": [float(edge) for edge in edges],
        "bin_shares": [float(share) for share in bin_shares(clean, edges)],
        "values": [float(v) for v in np.sort(clean)] if len(clean) <= config.ks_max_reference_rows else None,
    }


def rate_reference(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    """Rows, positives and rate of a 0/1 column (the target, or the model's predictions)."""
    clean = finite_values(values)
    positives = int(np.count_nonzero(clean == 1))
    return {"rows": int(len(clean)), "positives": positives, "rate": positives / len(clean) if len(clean) else None}


def build_reference(
    features: Mapping[str, Sequence[float] | np.ndarray],
    target: Sequence[float] | np.ndarray,
    predictions: Sequence[float] | np.ndarray,
    config: DriftConfig,
) -> dict[str, Any]:
    """The reference kept with a trained model (JSON-able): one entry per feature, the target and predicted rates."""
    return {
        "format": REFERENCE_FORMAT,
        "rows": int(len(np.asarray(target))),
        "psi_bins": config.psi_bins,
        "ks_max_reference_rows": config.ks_max_reference_rows,
        "features": {name: feature_reference(values, config) for name, values in features.items()},
        "target": rate_reference(target),
        "predictions": rate_reference(predictions),
    }


# --- comparisons ---


def compare_feature(
    reference: Mapping[str, Any], batch: Sequence[float] | np.ndarray, config: DriftConfig
) -> dict[str, Any]:
    """Test one feature of the batch against its reference entry; ``status``: drift, watch, no drift or
    insufficient data."""
    values = finite_values(batch)
    kept = reference.get("values")
    method = KS if kept is not None and reference["rows"] <= config.ks_max_reference_rows else PSI
    bins = len(reference["bin_shares"])
    needed = config.rows_needed(method, bins)
    result: dict[str, Any] = {
        "method": method,
        "reference_rows": reference["rows"],
        "batch_rows": int(len(values)),
        "reference_mean": reference["mean"],
        "batch_mean": _plain(values.mean()) if len(values) else None,
        "statistic": None,
        "p_value": None,
        "threshold": config.ks_alpha if method == KS else config.psi_drift,
    }
    if len(values) < needed or reference["rows"] < config.min_rows:
        short = (
            f"{len(values)} batch values, {needed} needed"
            if len(values) < needed
            else f"{reference['rows']} reference values, {config.min_rows} needed"
        )
        return {**result, "status": INSUFFICIENT, "detail": short}
    if method == KS:
        statistic, p_value = ks_test(np.asarray(kept, dtype="float64"), values)
        status = DRIFT if p_value < config.ks_alpha else NO_DRIFT
        detail = f"KS D={statistic:.3f} p={p_value:.4g} ({'<' if status == DRIFT else '>='} alpha {config.ks_alpha:g})"
        return {**result, "statistic": statistic, "p_value": p_value, "status": status, "detail": detail}
    value = psi(reference["bin_shares"], bin_shares(values, reference["bin_edges"]))
    status = DRIFT if value >= config.psi_drift else WATCH if value >= config.psi_watch else NO_DRIFT
    detail = f"PSI {value:.3f} over {bins} bins (watch {config.psi_watch:g}, drift {config.psi_drift:g})"
    return {**result, "statistic": value, "status": status, "detail": detail}


def rate_shift(
    reference: Mapping[str, Any], batch: Sequence[float] | np.ndarray, config: DriftConfig
) -> dict[str, Any]:
    """Shift of a 0/1 rate (target or predictions) from the reference, with Fisher's exact test."""
    now = rate_reference(batch)
    result: dict[str, Any] = {
        "reference_rate": reference["rate"],
        "batch_rate": now["rate"],
        "shift": None,
        "p_value": None,
        "reference_rows": reference["rows"],
        "batch_rows": now["rows"],
    }
    if now["rows"] < config.min_rows or reference["rows"] < config.min_rows:
        return {**result, "status": INSUFFICIENT}
    table = [
        [reference["positives"], reference["rows"] - reference["positives"]],
        [now["positives"], now["rows"] - now["positives"]],
    ]
    p_value = float(stats.fisher_exact(table).pvalue)
    return {
        **result,
        "shift": now["rate"] - reference["rate"],
        "p_value": p_value,
        "status": DRIFT if p_value < config.ks_alpha else NO_DRIFT,
    }


def dataset_verdict(features: Mapping[str, Mapping[str, Any]], share: float) -> tuple[str, str]:
    """The dataset verdict and why: drift when at least ``share`` of the features drift.

    Features without enough data count as not drifted only when they could not change the verdict; otherwise
    the verdict is ``insufficient data`` (never ``drift`` on too little data, never a ``no drift`` that the
    untested features could overturn).
    """
    total = len(features)
    drifted = [name for name, result in features.items() if result["status"] == DRIFT]
    untested = [name for name, result in features.items() if result["status"] == INSUFFICIENT]
    needed = math.ceil(share * total - FLOAT_TOLERANCE)
    listed = f" ({', '.join(drifted)})" if drifted else ""
    rule = f"{needed} needed for drift ({share:.0%} of {total})"
    if len(drifted) >= needed and total:
        return DRIFT, f"{len(drifted)} of {total} features drifted{listed}; {rule}"
    if len(drifted) + len(untested) >= needed or not total:
        details = "; ".join(f"{name}: {features[name]['detail']}" for name in untested)
        return INSUFFICIENT, f"too few rows to tell: {details or 'no features'}"
    return NO_DRIFT, f"{len(drifted)} of {total} features drifted{listed}; {rule}"


def compare_with_reference(
    reference: Mapping[str, Any],
    batch: Mapping[str, Sequence[float] | np.ndarray],
    config: DriftConfig,
    target: Sequence[float] | np.ndarray | None = None,
    predictions: Sequence[float] | np.ndarray | None = None,
) -> dict[str, Any]:
    """The whole check (JSON-able): per-feature tests, target and predicted-positive rate shifts, the verdict.

    ``batch`` maps each reference feature to the batch's values; a reference feature missing from the batch
    is a KeyError (the caller checked the schema).
    """
    features = {name: compare_feature(entry, batch[name], config) for name, entry in reference["features"].items()}
    verdict, reason = dataset_verdict(features, config.feature_share)
    rows = max((len(np.asarray(values)) for values in batch.values()), default=0)
    drifted = [name for name, result in features.items() if result["status"] == DRIFT]
    return {
        "verdict": verdict,
        "reason": reason,
        "batch_rows": int(rows),
        "reference_rows": reference["rows"],
        "drifted_features": drifted,
        "drift_share": len(drifted) / len(features) if features else 0.0,
        "features": features,
        "target_rate": rate_shift(reference["target"], target, config) if target is not None else None,
        "predicted_positive_rate": (
            rate_shift(reference["predictions"], predictions, config) if predictions is not None else None
        ),
        "config": asdict(config),
    }


def without_reference(batch_rows: int, config: DriftConfig, reason: str) -> dict[str, Any]:
    """The result, in the shape of :func:`compare_with_reference`, when there is no reference to compare with."""
    return {
        "verdict": NO_REFERENCE,
        "reason": reason,
        "batch_rows": int(batch_rows),
        "reference_rows": None,
        "drifted_features": [],
        "drift_share": 0.0,
        "features": {},
        "target_rate": None,
        "predicted_positive_rate": None,
        "config": asdict(config),
    }


def summary_line(result: Mapping[str, Any]) -> str:
    """One line for a run summary: the verdict, each feature's status and statistic, the two rate shifts."""
    head = f"{result['verdict']} ({result['reason']})"
    features = result.get("features") or {}
    parts = [f"{name} {r['status']} [{r['detail']}]" for name, r in features.items()]
    for key, label in (("target_rate", "target rate"), ("predicted_positive_rate", "predicted-positive rate")):
        shift = result.get(key)
        if shift and shift["batch_rate"] is not None and shift["reference_rate"] is not None:
            p = f", p={shift['p_value']:.3g}" if shift["p_value"] is not None else ""
            parts.append(f"{label} {shift['reference_rate']:.2f} -> {shift['batch_rate']:.2f} ({shift['status']}{p})")
    return head + ("; " + "; ".join(parts) if parts else "")


def _plain(value: float) -> float | None:
    """A float fit for JSON (NaN becomes None)."""
    value = float(value)
    return None if math.isnan(value) else value
