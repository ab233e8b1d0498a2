"""Step 2, training: fit the course's LogisticRegression on ``finaldata.csv``.

Writes ``trainedmodel.pkl`` to ``output_model_path`` and, beside it, ``trainedmodel.json`` (see modelfiles.py):
the model's sha256 (checked before the pickle is ever loaded), the scikit-learn version it was trained with,
the training data and the hyperparameters. Missing feature values are filled with the training median inside the model, so
the same rule applies when it predicts.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import Any

import pandas as pd
import sklearn
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from datafiles import FINAL_DATA_NAME
from ingestion import FEATURES, TARGET, DataFileError, check_schema
from modelfiles import MODEL_NAME, save_model
from plumbing import UserFacingError, make_parser, run_script, sha256_file, utc_now
from settings import ModelParams, Settings

log = logging.getLogger("training")

def build_model(params: ModelParams) -> Pipeline:
    """The course's LogisticRegression, behind a median imputer for missing feature values."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("classify", LogisticRegression(**params.as_sklearn_kwargs())),
        ]
    )


def read_training_data(path: Path) -> pd.DataFrame:
    """``finaldata.csv``, schema-checked; UserFacingError if it is missing or unusable."""
    if not path.exists():
        raise UserFacingError(f"{path} does not exist; run ingestion.py first")
    try:
        frame = check_schema(pd.read_csv(path))
    except DataFileError as err:
        raise UserFacingError(f"{path} {err}") from None
    if frame[TARGET].nunique() < 2:
        raise UserFacingError(f"{path} holds only {TARGET}={frame[TARGET].iloc[0]}; training needs both 0 and 1")
    return frame


def train_model(settings: Settings) -> dict[str, Any]:
    """Fit on ``finaldata.csv`` and save ``trainedmodel.pkl`` + ``trainedmodel.json``; return the metadata."""
    data_path = settings.output_folder_path / FINAL_DATA_NAME
    frame = read_training_data(data_path)
    model = build_model(settings.model)
    model.fit(frame[list(FEATURES)], frame[TARGET])
    metadata = {
        "trained_at": utc_now(),
        "sklearn_version": sklearn.__version__,
        "pandas_version": pd.__version__,
        "python_version": platform.python_version(),
        "training_data": str(data_path),
        "training_data_sha256": sha256_file(data_path),
        "training_rows": len(frame),
        "positive_rate": float(frame[TARGET].mean()),
        "features": list(FEATURES),
        "target": TARGET,
        "hyperparameters": settings.model.as_config(),
    }
    metadata = save_model(model, metadata, settings.output_model_path)
    log.info(
        "trained on %d rows of %s; saved %s (sha256 %s...)",
        len(frame), data_path, settings.output_model_path / MODEL_NAME, metadata["model_sha256"][:12],
    )
    return metadata


def main() -> None:
    parser = make_parser("Train the attrition model on finaldata.csv and save trainedmodel.pkl.")
    args = parser.parse_args()
    raise SystemExit(run_script(args, lambda settings: train_model(settings) and 0))


if __name__ == "__main__":
    main()
