"""Serving the model: ``/prediction`` (class and attrition probability per row, for every client shape, see
risk/api/inputs.py) and ``/scoring`` (the deployed version's F1 on the test data, as recorded when deployed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from flask import Blueprint, Response, current_app, jsonify, request

from risk.api.errors import ApiError
from risk.api.inputs import PredictionInput, prediction_input
from risk.api.records import scored_at
from risk.api.state import api_state
from risk.deployed import DeployedModel
from risk.predict import predict_frame
from risk.schema import FEATURES, ID_COLUMN, DataFileError, check_schema

blueprint = Blueprint("serving", __name__)

STREAM_ROWS = 10_000  # answers with more rows are streamed, this many rows at a time


def checked_rows(data: PredictionInput) -> pd.DataFrame:
    """The rows schema-checked (``exited`` and ``corporation`` optional); ApiError 400 naming the problem."""
    try:
        return check_schema(data.frame, require_target=False, require_id=False)
    except DataFileError as err:
        raise ApiError(400, f"{data.subject} {err}") from None


class Predictions(NamedTuple):
    """The model's answer for each row of a request, as columns (rows are built a block at a time)."""

    ids: pd.Series | None  # ``corporation``, when sent
    classes: np.ndarray
    probabilities: np.ndarray
    missing: np.ndarray  # rows x features: which features were empty (filled by the model's imputer)

    def __len__(self) -> int:
        return len(self.classes)

    def rows(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Per row from ``start`` to ``stop``: ``corporation`` (when sent), the predicted class, the attrition
        probability and, for a row that lacked features, which ones under ``imputed``."""
        stop = len(self) if stop is None else min(stop, len(self))
        columns: dict[str, list[Any]] = {}
        if self.ids is not None:
            ids = self.ids.iloc[start:stop]
            columns[ID_COLUMN] = ids.astype(object).where(ids.notna(), None).tolist()
        columns["prediction"] = self.classes[start:stop].tolist()
        columns["probability"] = self.probabilities[start:stop].tolist()
        rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
        missing = self.missing[start:stop]
        for position in np.flatnonzero(missing.any(axis=1)):
            rows[position]["imputed"] = [FEATURES[i] for i in np.flatnonzero(missing[position])]
        return rows


def predict(data: PredictionInput, deployed: DeployedModel) -> Predictions:
    """Schema-check the rows and run them through the model once (an empty feature is filled in by the model's
    own imputer, the training median)."""
    clean = checked_rows(data)
    result = predict_frame(clean, deployed.model)
    return Predictions(
        ids=clean[ID_COLUMN] if ID_COLUMN in clean.columns else None,
        classes=result["prediction"].to_numpy(),
        probabilities=result["probability"].to_numpy(),
        missing=clean[list(FEATURES)].isna().to_numpy(),
    )


def prediction_response(head: dict[str, Any], predictions: Predictions) -> Response:
    """``head`` and ``"predictions": [...]`` as one JSON object. A large answer is streamed a block of rows at a
    time: one big request holds its columns and one block of row objects, not every row object and the whole
    text at once (a 10 MiB upload held 230 MB that way; several at once took gigabytes)."""
    if len(predictions) <= STREAM_ROWS:
        return jsonify({**head, "predictions": predictions.rows()})
    dumps = current_app.json.dumps

    def text() -> Iterator[str]:
        yield dumps(head, separators=(",", ":"))[:-1] + ',"predictions":['
        for start in range(0, len(predictions), STREAM_ROWS):
            yield ("," if start else "") + dumps(predictions.rows(start, start + STREAM_ROWS), separators=(",", ":"))[
                1:-1
            ]
        yield "]}\n"

    return Response(text(), mimetype="application/json")


@blueprint.route("/prediction", methods=["GET", "POST"])
def prediction() -> Response:
    state = api_state()
    data = prediction_input(request, state.settings)
    deployed = state.models.current()
    predictions = predict(data, deployed)
    state.metrics.predictions.labels(deployed.version).inc(len(predictions))
    head = {"model_version": deployed.version, "source": data.subject, "rows": len(predictions)}
    return prediction_response(head, predictions)


@blueprint.get("/scoring")
def scoring() -> Response:
    state = api_state()
    deployed = state.models.current()
    record = deployed.record
    return jsonify(
        {
            "model_version": deployed.version,
            "f1": record.f1,
            "scored_at": scored_at(state.settings, deployed.sha256),
            "deployed_at": record.deployed_at,
            "test_data": state.settings.shown_path(state.settings.test_data_file),
        }
    )
