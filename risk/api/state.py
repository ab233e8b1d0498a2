"""What the views of one app share (settings, the model cache, metrics, the token), kept in the app itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app

from risk.api.metrics import ApiMetrics
from risk.api.models import ModelCache
from risk.config import Settings

STATE_KEY = "risk_api"


@dataclass(frozen=True)
class ApiState:
    """What the endpoints of one app share: settings, the model cache, metrics and the optional token."""

    settings: Settings
    models: ModelCache
    metrics: ApiMetrics
    token: str | None


def api_state() -> ApiState:
    """The state of the app handling the current request (for blueprints such as the dashboard)."""
    return current_app.extensions[STATE_KEY]


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view as reachable without the bearer token."""
    view.public = True  # type: ignore[attr-defined]
    return view
