"""The one reader of the deployed model: everything that needs it (the API, diagnostics, reports, the drift
check, the risk list) loads it through :func:`load_deployed_model`.

It reads the ``current`` pointer, the version's ``deployment.json`` and the model's metadata, checks that they
agree with each other and with the sha256 the records store recorded when the version was deployed, and unpickles
the model only after its bytes match (risk/modelfiles.py). Before anything is read, the deployment folder, the
version's folder and its files must be changeable by trusted users only: the running user, root, or the owner of
the config file (whose settings name the folder, so it is trusted anyway: that is how a read-only API user
loads what the pipeline's user deployed). A pickle others could write would run their code.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any, NamedTuple

from risk.artifacts import DEPLOYMENT_RECORD_NAME
from risk.config import Settings
from risk.errors import UserFacingError
from risk.modelfiles import (
    LoadedModel,
    ModelIntegrityError,
    check_trusted_folder,
    load_model,
    read_metadata,
    read_trusted_file,
    trusted_owners,
)
from risk.store import RecordsStore, StoreUnreadable, reading
from risk.versions import DeploymentRecord, VersionUnreadable, current_version, versions_dir

log = logging.getLogger("risk.deployed")


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


def load_deployed_model(
    settings: Settings, version: str | None = None, store: RecordsStore | Path | None = None
) -> DeployedModel:
    """Load the current (or the given) version after the checks above; UserFacingError if none is deployed.

    ``store``: the records store (open, or its path; by default ``records_db_path``, opened read-only).
    """
    version = version or current_version(settings)
    if version is None:
        raise UserFacingError(
            f"no model is deployed in {settings.prod_deployment_path}; run fullprocess.py (or deployment.py)"
        )
    folder = versions_dir(settings) / version
    trusted = deployment_owners(settings)
    for checked in (settings.prod_deployment_path, folder.parent, folder):
        check_trusted_folder(checked, trusted)
    record = read_trusted_record(folder, version, trusted)
    metadata = read_metadata(folder, trusted)
    if metadata["model_sha256"] != record.model_sha256:
        raise ModelIntegrityError(f"version {version}: model metadata and deployment record disagree; redeploy")
    check_recorded(settings, version, record.model_sha256, store)
    loaded: LoadedModel = load_model(folder, metadata, trusted)
    return DeployedModel(
        model=loaded.model, version=version, record=record, metadata=loaded.metadata, path=loaded.folder
    )


def deployment_owners(settings: Settings) -> frozenset[int]:
    """Who may have written a deployed version: the running user, root and the config file's owner."""
    try:
        return trusted_owners([os.stat(settings.config_path).st_uid])
    except OSError:
        return trusted_owners()


def read_trusted_record(folder: Path, version: str, trusted: frozenset[int]) -> DeploymentRecord:
    """A version's ``deployment.json``, from a file only trusted users can change."""
    path = folder / DEPLOYMENT_RECORD_NAME
    try:
        return DeploymentRecord.from_json(json.loads(read_trusted_file(path, trusted).decode("utf-8")))
    except ModelIntegrityError as err:
        if os.path.lexists(path):
            raise
        raise VersionUnreadable(f"deployment record {path} is unreadable ({err}); roll back or redeploy") from None
    except (ValueError, KeyError, TypeError) as err:
        raise VersionUnreadable(f"deployment record {path} is unreadable ({err}); roll back or redeploy") from None


def check_recorded(settings: Settings, version: str, sha256: str, store: RecordsStore | Path | None) -> None:
    """ModelIntegrityError when the records store recorded another model sha256 for ``version`` than its files.

    A version the store does not know (a deployment killed between switching ``current`` and recording it, which
    the next deployment.py run records), or a store that is missing or unreadable, is only warned about: the
    folder checks are what keep others from writing a version; this one catches a model swapped in a version
    the store knows.
    """
    path = store.path if isinstance(store, RecordsStore) else Path(store or settings.records_db_path)
    try:
        if isinstance(store, RecordsStore):
            recorded: set[str] | None = store.deployed_sha256s(version)
        else:
            with reading(path) as opened:
                recorded = opened.deployed_sha256s(version) if opened is not None else None
    except (StoreUnreadable, sqlite3.Error) as err:
        log.warning("version %s not checked against the records store %s: %s", version, path, err)
        return
    if not recorded:
        where = f"{path} does not exist" if recorded is None else f"not in the deployments of {path}"
        log.warning(
            "version %s is not in the records store (%s): an interrupted deployment? running deployment.py records it",
            version,
            where,
        )
        return
    if recorded != {sha256}:
        raise ModelIntegrityError(
            f"version {version}: its model has sha256 {sha256[:12]}... but the records store ({path}) recorded "
            f"{', '.join(sorted(r[:12] + '...' for r in recorded))} when it was deployed; refusing to unpickle it "
            "(roll back with deployment.py --rollback, or deploy again with fullprocess.py)"
        )
