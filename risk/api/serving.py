"""Serving the model: ``/prediction`` (class and attrition probability per row, for every client shape, see
risk/api/inputs.py) and ``/scoring`` (the deployed version's F1 on the test data, as recorded when deployed).

Fast where it counts, with the same checks and answers. For the project's own model (imputer + logistic
regression) the probabilities come from its fitted numbers (risk.predict.linear_parts), as predict_proba computes
them but without sklearn's per-call validation; JSON records that are plain (risk.schema.plain_records: what
check_schema would take as they are) then skip the frame too: a single row costs little more than ``/health``.
Anything else takes the general path: check_schema on a frame (which names any problem), and for another kind
of model its own predict_proba. The answer is written as JSON text a column at a time (risk/api/answer.py), not
as a dict per row handed to Flask's JSON encoder.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from flask import Blueprint, Response, current_app, jsonify, request

from risk.api.answer import JSON_SEPARATORS, Predictions
from risk.api.errors import ApiError
from risk.api.inputs import PredictionInput, prediction_input
from risk.api.records import scored_at
from risk.api.state import api_state
from risk.predict import linear_parts, linear_predictions, predict_frame
from risk.schema import FEATURES, ID_COLUMN, DataFileError, check_schema, plain_records

blueprint = Blueprint("serving", __name__)

STREAM_ROWS = 10_000  # answers with more rows are streamed, this many rows at a time


def checked_rows(data: PredictionInput) -> pd.DataFrame:
    """The rows schema-checked (``exited`` and ``corporation`` optional); ApiError 400 naming the problem."""
    try:
        return check_schema(data.raw_frame(), require_target=False, require_id=False)
    except DataFileError as err:
        raise ApiError(400, f"{data.subject} {err}") from None


def predict(data: PredictionInput, model: Any) -> Predictions:
    """Schema-check the rows and run them through the model once (an empty feature is filled in by the model's
    own imputer, the training median)."""
    parts = linear_parts(model)
    records = data.records
    if parts is not None and records is not None:
        plain = plain_records(records)
        if plain is not None:
            ids = None if plain.ids is None else pa.array(plain.ids, type=pa.string())
            classes, probabilities = linear_predictions(plain.features, parts)
            return Predictions(ids, classes, probabilities, np.isnan(plain.features))
    clean = checked_rows(data)
    ids = pa.array(clean[ID_COLUMN]) if ID_COLUMN in clean.columns else None
    if parts is None:  # another kind of model: its own predict_proba, on the frame as checked
        result = predict_frame(clean, model)
        missing = clean[list(FEATURES)].isna().to_numpy()
        return Predictions(ids, result["prediction"].to_numpy(), result["probability"].to_numpy(), missing)
    features = np.column_stack([clean[name].to_numpy(dtype="float64", na_value=np.nan) for name in FEATURES])
    classes, probabilities = linear_predictions(features, parts)
    return Predictions(ids, classes, probabilities, np.isnan(features))


def prediction_response(head: dict[str, Any], predictions: Predictions) -> Response:
    """``head`` and ``"predictions": [...]`` as one compact JSON object, the text written here (Flask's JSON
    provider would encode a dict per row). A large answer is streamed a block of rows at a time: one big request
    holds its columns and one block of text, not the whole text at once (a 10 MiB upload held 230 MB that way;
    several at once took gigabytes)."""
    provider = current_app.json
    ensure_ascii = getattr(provider, "ensure_ascii", True)
    opening = (provider.dumps(head, separators=JSON_SEPARATORS)[:-1] + ',"predictions":[').encode()
    closing = b"]}\n"
    response_class = current_app.response_class
    if len(predictions) <= STREAM_ROWS:
        body = b"".join((opening, predictions.rows_json(ensure_ascii=ensure_ascii), closing))
        return response_class(body, mimetype="application/json")

    def text() -> Iterator[bytes]:
        yield opening
        for start in range(0, len(predictions), STREAM_ROWS):
            yield (b"," if start else b"") + predictions.rows_json(start, start + STREAM_ROWS, ensure_ascii)
        yield closing

    return response_class(text(), mimetype="application/json")


@blueprint.route("/prediction", methods=["GET", "POST"])
def prediction() -> Response:
    state = api_state()
    data = prediction_input(request, state.settings)
    deployed = state.models.current()
    predictions = predict(data, deployed.model)
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
