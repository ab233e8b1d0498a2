"""Predictions of a model on rows the schema has checked: one pass through the model for class and probability.

:func:`linear_parts` takes apart the project's own model (a median imputer before a binary logistic regression,
risk/model.py) so the API can compute its probabilities straight from the fitted numbers, without sklearn's
per-call validation (which costs more than the arithmetic for a few rows); any other model goes through
``predict_proba``.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from risk.schema import FEATURES, TARGET


def is_sklearn(obj: Any, package: str, name: str) -> bool:
    """Whether ``obj`` is exactly scikit-learn's ``sklearn.<package>...<name>`` (a subclass is not). Checked by
    name: serving must not import scikit-learn, and with it scipy, before it unpickles a model."""
    cls = type(obj)
    return cls.__name__ == name and (cls.__module__ + ".").startswith(f"sklearn.{package}.")


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


class LinearParts(NamedTuple):
    """The fitted numbers of a median-imputer + binary logistic-regression pipeline (the model's own arrays)."""

    fill: np.ndarray  # the imputer's value per feature (the training medians)
    coef_t: np.ndarray  # the regression's coefficients, features x 1 (``coef_.T``, as sklearn multiplies them)
    intercept: np.ndarray  # shape (1,)
    classes: tuple[int, int]  # model.classes_: the negative class, then the positive one


def linear_parts(model: Any) -> LinearParts | None:
    """The parts of ``model`` when it is exactly a SimpleImputer (NaN as missing, no indicator) then a binary
    LogisticRegression on FEATURES with finite fitted numbers and integer classes; None for anything else (a
    subclass, another step, another shape), which must go through its own ``predict_proba``."""
    if not is_sklearn(model, "pipeline", "Pipeline") or len(model.steps) != 2:
        return None
    imputer, regression = (step for _, step in model.steps)
    if not is_sklearn(imputer, "impute", "SimpleImputer") or not is_sklearn(
        regression, "linear_model", "LogisticRegression"
    ):
        return None
    missing = imputer.missing_values
    if imputer.add_indicator or not (isinstance(missing, float) and math.isnan(missing)):
        return None
    fill = getattr(imputer, "statistics_", None)
    coef = getattr(regression, "coef_", None)
    intercept = getattr(regression, "intercept_", None)
    classes = getattr(regression, "classes_", None)
    names = getattr(imputer, "feature_names_in_", None)
    if fill is None or coef is None or intercept is None or classes is None:
        return None
    if names is not None and tuple(names) != FEATURES:
        return None
    count = len(FEATURES)
    arrays = (fill, coef, intercept)
    if any(array.dtype != np.float64 for array in arrays) or not all(np.isfinite(array).all() for array in arrays):
        return None
    if fill.shape != (count,) or coef.shape != (1, count) or intercept.shape != (1,):
        return None
    if classes.shape != (2,) or not np.issubdtype(classes.dtype, np.integer):
        return None
    return LinearParts(fill=fill, coef_t=coef.T, intercept=intercept, classes=(int(classes[0]), int(classes[1])))


def linear_predictions(features: np.ndarray, parts: LinearParts) -> tuple[np.ndarray, np.ndarray]:
    """Class and positive-class probability per row of ``features`` (rows x FEATURES, float64, NaN where empty),
    computed as the pipeline's ``predict_proba`` computes them on a checked frame, operation for operation: the
    rows in a column-major matrix (what sklearn gets from a DataFrame), empty cells set to the imputer's values,
    ``X @ coef_.T + intercept_``, expit; the class is the argmax of ``[1 - p, p]``. So the numbers are the same
    bits as ``predict_proba`` on the same rows (the matrix product's rounding depends on the batch's shape, so a
    row alone and in a batch may differ in the last bit, under sklearn as here)."""
    count = len(features)
    matrix = np.empty((len(FEATURES), count), dtype="float64").T  # column-major, as np.asarray(DataFrame) is
    for column, fill in enumerate(parts.fill.tolist()):
        values = features[:, column]
        matrix[:, column] = np.where(np.isnan(values), fill, values)
    scores = (matrix @ parts.coef_t + parts.intercept).reshape(-1)
    # scipy's own expit, as predict_proba uses (the same bits); imported here: `import app` loads no scipy, and
    # by now unpickling the model (scikit-learn) has loaded it anyway
    from scipy.special import expit

    probabilities = expit(scores)
    negative, positive = parts.classes
    classes = np.where(probabilities > 1 - probabilities, positive, negative)
    return classes, probabilities
