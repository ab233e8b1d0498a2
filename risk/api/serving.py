"""Serving the model: ``/prediction`` (class and attrition probability per row, for every client shape, see
risk/api/inputs.py) and ``/scoring`` (the deployed version's F1 on the test data, as recorded when deployed)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from flask import Blueprint, Response, jsonify, request

from risk.api.errors import ApiError
from risk.api.inputs import PredictionInput, prediction_input
from risk.api.records import scored_at
from risk.api.state import api_state
from risk.deployed import DeployedModel
from risk.predict import predict_frame
from risk.schema import FEATURES, ID_COLUMN, DataFileError, check_schema

blueprint = Blueprint("serving", __name__)


def checked_rows(data: PredictionInput) -> pd.DataFrame:
    """The rows schema-checked (``exited`` and ``corporation`` optional); ApiError 400 naming the problem."""
    try:
        return check_schema(data.frame, require_target=False, require_id=False)
    except DataFileError as err:
        raise ApiError(400, f"{data.subject} {err}") from None


def predict_rows(data: PredictionInput, deployed: DeployedModel) -> list[dict[str, Any]]:
    """Per row: ``corporation`` (when sent), the predicted class and the attrition probability.

    An empty feature is filled in by the model's own imputer (the training median); such a row lists the
    columns it lacked under ``imputed``.
    """
    clean = checked_rows(data)
    result = predict_frame(clean, deployed.model)
    columns: dict[str, list[Any]] = {}
    if ID_COLUMN in clean.columns:
        columns[ID_COLUMN] = clean[ID_COLUMN].astype(object).where(clean[ID_COLUMN].notna(), None).tolist()
    columns["prediction"] = result["prediction"].tolist()
    columns["probability"] = result["probability"].tolist()
    rows = [dict(zip(columns, values)) for values in zip(*columns.values())]
    missing = clean[list(FEATURES)].isna().to_numpy()
    for position in np.flatnonzero(missing.any(axis=1)):
        rows[position]["imputed"] = [FEATURES[i] for i in np.flatnonzero(missing[position])]
    return rows


@blueprint.route("/prediction", methods=["GET", "POST"])
def prediction() -> Response:
    state = api_state()
    data = prediction_input(request, state.settings)
    deployed = state.models.current()
    rows = predict_rows(data, deployed)
    state.metrics.predictions.labels(deployed.version).inc(len(rows))
    return jsonify({"model_version": deployed.version, "source": data.subject, "rows": len(rows), "predictions": rows})


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
