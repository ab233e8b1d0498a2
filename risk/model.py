"""The model: the course's LogisticRegression behind a median imputer, built from the config's settings."""

from __future__ import annotations

from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from risk.config import ModelParams


def build_model(params: ModelParams) -> Pipeline:
    """The course's LogisticRegression, behind a median imputer for missing feature values."""
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median")),
            ("classify", LogisticRegression(**params.as_sklearn_kwargs())),
        ]
    )
