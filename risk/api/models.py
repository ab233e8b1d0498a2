"""The deployed model in the API: loaded once per version, swapped without a restart when a new one is deployed."""

from __future__ import annotations

import logging
import threading
import time

from risk.api.errors import ApiError
from risk.config import Settings
from risk.deployed import DeployedModel, load_deployed_model
from risk.versions import current_version

log = logging.getLogger("risk.api")

RETRY_FAILED_LOAD_SECONDS = 10.0


class ModelCache:
    """The deployed model, loaded once per version and shared by the requests of one process.

    Each call reads the ``current`` pointer (one readlink). A new version is loaded by one request under a
    lock; meanwhile the other requests are answered by the old model, so nobody sees a half-loaded one.
    A version that fails to load (sha256 mismatch...) is retried at most every RETRY_FAILED_LOAD_SECONDS;
    until then the previous, verified model keeps answering, and ``/health`` reports the problem.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._model: DeployedModel | None = None
        self._failure: tuple[str, str, float] | None = None

    @property
    def loaded(self) -> DeployedModel | None:
        """The model in memory, if any (without checking for a newer version)."""
        return self._model

    def problem(self, version: str | None) -> str | None:
        """Why ``version`` could not be loaded, if its last attempt failed."""
        failure = self._failure
        return failure[1] if failure and failure[0] == version else None

    def current(self) -> DeployedModel:
        """The model of the current deployed version (or the previous one while that loads or if it fails)."""
        version = current_version(self._settings)
        model = self._model
        if model is not None and model.version == version:
            return model
        if version is None:
            raise ApiError(
                503,
                f"no model is deployed in {self._settings.prod_deployment_path}; "
                "run fullprocess.py (or training.py, scoring.py and deployment.py)",
                about_server=True,
            )
        if not self._lock.acquire(blocking=model is None):
            return model  # another request is loading the new version; the old one answers meanwhile
        try:
            return self._load(version)
        finally:
            self._lock.release()

    def _load(self, version: str) -> DeployedModel:
        model = self._model
        if model is not None and model.version == version:
            return model
        failure = self._failure
        if failure and failure[0] == version and time.monotonic() - failure[2] < RETRY_FAILED_LOAD_SECONDS:
            return self._fallback(version, failure[1])
        try:
            loaded = load_deployed_model(self._settings, version)
        except Exception as err:  # noqa: BLE001 - any failure to load leaves the verified model in place
            log.error("cannot load deployed model %s: %s", version, err)
            self._failure = (version, str(err), time.monotonic())
            return self._fallback(version, str(err))
        log.info("loaded deployed model %s (previous in memory: %s)", version, model.version if model else "none")
        self._model, self._failure = loaded, None
        return loaded

    def _fallback(self, version: str, problem: str) -> DeployedModel:
        if self._model is None:
            raise ApiError(503, f"the deployed model {version} cannot be loaded: {problem}", about_server=True)
        return self._model
