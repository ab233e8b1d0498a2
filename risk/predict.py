"""Predictions of a model on rows the schema has checked: one pass through the model for class and probability."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from risk.schema import FEATURES, TARGET


def predict_frame(clean: pd.DataFrame, model: Any) -> pd.DataFrame:
    """Class and attrition probability per row of a frame already checked by ``risk.schema.check_schema``.

    One pass through the model: the class is the likelier one of ``predict_proba`` (what ``predict`` returns).
    """
    probabilities = model.predict_proba(clean[list(FEATURES)])
    classes = model.classes_[probabilities.argmax(axis=1)]
    return pd.DataFrame({"prediction": classes.astype(int), "probability": probabilities[:, 1]})


def predicted_classes(model: Any, clean: pd.DataFrame) -> np.ndarray:
    """The predicted class (0/1) of each row of a checked frame."""
    return predict_frame(clean, model)["prediction"].to_numpy()


def labels(clean: pd.DataFrame) -> np.ndarray:
    """The ``exited`` labels of a checked frame as integers."""
    return clean[TARGET].to_numpy(dtype="int64")
