"""Step 2, training: fit the course's LogisticRegression on ``finaldata.csv``.

Writes ``trainedmodel.pkl`` to ``output_model_path`` and, beside it, ``trainedmodel.json`` (see modelfiles.py):
the model's sha256 (checked before the pickle is ever loaded), the scikit-learn version it was trained with,
the training data and the hyperparameters. ``trainingreference.json`` keeps what the training data looked like
(per-feature histograms, the values themselves when there are few, the target and predicted-positive rates) for
the data drift check; its sha256 is recorded in the metadata too. Missing feature values are filled with the
training median inside the model, so the same rule applies when it predicts.
"""

from __future__ import annotations

import logging
import platform
from typing import Any

import pandas as pd
import sklearn
from sklearn.pipeline import Pipeline

from risk.artifacts import FINAL_DATA_NAME, MODEL_NAME, REFERENCE_NAME
from risk.cli import make_parser, run_script
from risk.clock import utc_now
from risk.config import Settings
from risk.datadrift import DriftConfig, build_reference
from risk.datasets import read_training_data
from risk.drift import ConfusionCounts
from risk.evaluation import out_of_fold_counts
from risk.files import sha256_file
from risk.model import build_model
from risk.modelfiles import save_model, write_reference
from risk.risklist import typical_client
from risk.schema import FEATURES, TARGET, feature_arrays

log = logging.getLogger("training")


def training_reference(model: Pipeline, frame: pd.DataFrame, settings: Settings) -> dict[str, Any]:
    """The data drift reference of a model fitted on ``frame`` (see datadrift.build_reference)."""
    features = feature_arrays(frame)
    predictions = model.predict(frame[list(FEATURES)])
    return build_reference(features, frame[TARGET].to_numpy(), predictions, DriftConfig.from_settings(settings))


REFERENCE_MAX_ROWS = 50_000  # out-of-fold rows: far more than the reference's precision needs, a fraction of 1M


def reference_counts(settings: Settings, frame: pd.DataFrame) -> ConfusionCounts | None:
    """How the model configuration does on rows it did not train on: out-of-fold confusion counts on ``frame``
    (risk/evaluation.py), the reference the ``significant`` drift rule compares new rows with; None (with a
    warning) when a class has too few rows to hold any out.

    On more than REFERENCE_MAX_ROWS rows, on a seeded random sample of that many: the fold models then learn from
    40,000 rows, where a three-feature logistic regression has long stopped improving, and the five extra fits
    cost a fraction of training on a million rows.
    """
    if len(frame) > REFERENCE_MAX_ROWS:
        frame = frame.sample(n=REFERENCE_MAX_ROWS, random_state=0)
    try:
        return out_of_fold_counts(lambda: build_model(settings.model), frame[list(FEATURES)], frame[TARGET])
    except ValueError as err:
        log.warning("no out-of-fold reference for this model (%s); the significant drift rule needs one", err)
        return None


def train_model(settings: Settings, frame: pd.DataFrame | None = None, rows_label: str = "") -> dict[str, Any]:
    """Fit on ``finaldata.csv`` (or on ``frame``, some of its rows: ``rows_label`` says which); save
    ``trainedmodel.pkl``, ``trainedmodel.json`` (with the reference counts and the typical client) and the data
    drift reference. Returns the metadata.
    """
    data_path = settings.output_folder_path / FINAL_DATA_NAME
    frame = read_training_data(settings) if frame is None else frame
    model = build_model(settings.model)
    model.fit(frame[list(FEATURES)], frame[TARGET])
    counts = reference_counts(settings, frame)
    reference = write_reference(settings.output_model_path, training_reference(model, frame, settings))
    metadata = {
        "trained_at": utc_now(),
        "sklearn_version": sklearn.__version__,
        "pandas_version": pd.__version__,
        "python_version": platform.python_version(),
        "training_data": str(data_path),
        "training_data_sha256": sha256_file(data_path),
        "training_rows": len(frame),
        "training_rows_label": rows_label or "all ingested rows",
        "positive_rate": float(frame[TARGET].mean()),
        "reference_counts": counts.as_json() if counts else None,  # out-of-fold: the significant rule's reference
        "reference_f1": counts.f1 if counts else None,
        "typical_client": typical_client(frame).as_json(),  # what the risk list's reasons compare with
        "features": list(FEATURES),
        "target": TARGET,
        "hyperparameters": settings.model.as_config(),
        **reference,
    }
    metadata = save_model(model, metadata, settings.output_model_path)
    log.info(
        "trained on %d rows (%s) of %s, out-of-fold F1 %s; saved %s (sha256 %s...) and %s",
        len(frame),
        rows_label or "all",
        data_path,
        "undefined" if counts is None or counts.f1 is None else f"{counts.f1:.4f}",
        settings.output_model_path / MODEL_NAME,
        metadata["model_sha256"][:12],
        REFERENCE_NAME,
    )
    return metadata


def main() -> None:
    parser = make_parser("Train the attrition model on finaldata.csv and save trainedmodel.pkl.")
    args = parser.parse_args()
    raise SystemExit(run_script(args, lambda settings: train_model(settings) and 0))


if __name__ == "__main__":
    main()
