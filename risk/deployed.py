"""The one reader of the deployed model: everything that needs it (the API, diagnostics, reports, the drift
check, the risk list) loads it through :func:`load_deployed_model`.

It reads the ``current`` pointer, the version's ``deployment.json`` and the model's metadata, checks that they
agree with each other (and with the records store when one is given), and unpickles the model only after its
bytes match the recorded sha256 (risk/modelfiles.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from risk.config import Settings
from risk.errors import UserFacingError
from risk.modelfiles import LoadedModel, ModelIntegrityError, load_model
from risk.versions import DeploymentRecord, current_version, read_record, versions_dir


class DeployedModel(NamedTuple):
    """The current production model, loaded and verified, with everything recorded about it."""

    model: Any
    version: str
    record: DeploymentRecord
    metadata: dict[str, Any]  # the model's trainedmodel.json
    path: Path

    @property
    def score(self) -> float:
        """The deployed ``latestscore.txt``: F1 on the test data when this version was made."""
        return self.record.f1

    @property
    def sha256(self) -> str:
        return self.record.model_sha256

    @property
    def ingested_files(self) -> list[str]:
        return list(self.record.ingested_files)


def load_deployed_model(settings: Settings, version: str | None = None) -> DeployedModel:
    """Load the current (or the given) version after verifying its sha256; UserFacingError if none is deployed."""
    version = version or current_version(settings)
    if version is None:
        raise UserFacingError(
            f"no model is deployed in {settings.prod_deployment_path}; run fullprocess.py (or deployment.py)"
        )
    record = read_record(settings, version)
    loaded: LoadedModel = load_model(versions_dir(settings) / version)
    if loaded.sha256 != record.model_sha256:
        raise ModelIntegrityError(f"version {version}: model metadata and deployment record disagree; redeploy")
    return DeployedModel(
        model=loaded.model, version=version, record=record, metadata=loaded.metadata, path=loaded.folder
    )
