"""The files of a model folder: ``trainedmodel.pkl``, its ``trainedmodel.json``, ``latestscore.txt`` and the
data drift reference ``trainingreference.json``.

One place saves and loads them, for ``output_model_path`` and for every deployed version alike. A pickle is
only unpickled after its bytes match the sha256 recorded in the metadata, and a model trained with another
scikit-learn version is flagged. scikit-learn is imported by unpickling, when a model is loaded.
"""

from __future__ import annotations

import json
import logging
import pickle
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, NamedTuple

from risk.artifacts import METADATA_NAME, MODEL_NAME, REFERENCE_NAME, SCORE_NAME
from risk.errors import UserFacingError
from risk.files import atomic_write_bytes, atomic_write_text, sha256_bytes

log = logging.getLogger("modelfiles")


class ModelIntegrityError(UserFacingError):
    """A model file is missing or does not match the sha256 recorded for it; it was not unpickled."""


class LoadedModel(NamedTuple):
    """A model loaded from a folder, with its metadata."""

    model: Any
    metadata: dict[str, Any]
    folder: Path

    @property
    def sha256(self) -> str:
        return self.metadata["model_sha256"]

    @property
    def sklearn_mismatch(self) -> bool:
        """True when the installed scikit-learn differs from the one the model was trained with."""
        return self.metadata.get("sklearn_version") != installed_version("scikit-learn")


def installed_version(package: str) -> str | None:
    """The installed version of a distribution, or None if it is not installed."""
    try:
        return package_metadata.version(package)
    except package_metadata.PackageNotFoundError:
        return None


def save_model(model: Any, metadata: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Write the pickle, then its metadata carrying the pickle's sha256; both atomically."""
    data = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    atomic_write_bytes(folder / MODEL_NAME, data)
    metadata = {**metadata, "model_file": MODEL_NAME, "model_sha256": sha256_bytes(data)}
    atomic_write_text(folder / METADATA_NAME, json.dumps(metadata, indent=2) + "\n")
    return metadata


def read_metadata(folder: Path) -> dict[str, Any]:
    """The ``trainedmodel.json`` of a model folder; UserFacingError if it is missing or unreadable."""
    path = folder / METADATA_NAME
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserFacingError(f"no trained model in {folder} ({METADATA_NAME} is missing); run training.py") from None
    except json.JSONDecodeError as err:
        raise UserFacingError(f"{path} is not valid JSON ({err.msg}); retrain with training.py") from None
    if not isinstance(metadata, dict) or "model_sha256" not in metadata:
        raise UserFacingError(f"{path} does not record the model's sha256; retrain with training.py")
    return metadata


def load_verified_pickle(path: Path, expected_sha256: str) -> Any:
    """Unpickle ``path`` only if its bytes hash to ``expected_sha256`` (the same bytes are hashed and loaded)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(f"model file {path} does not exist") from None
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"model file {path} has sha256 {actual[:12]}..., but {expected_sha256[:12]}... was recorded; "
            "refusing to unpickle it (retrain with training.py or roll back with deployment.py --rollback)"
        )
    return pickle.loads(data)


def load_model(folder: Path) -> LoadedModel:
    """Load the model in ``folder`` after verifying its sha256; warn if scikit-learn's version changed."""
    metadata = read_metadata(folder)
    model = load_verified_pickle(folder / metadata.get("model_file", MODEL_NAME), metadata["model_sha256"])
    loaded = LoadedModel(model=model, metadata=metadata, folder=folder)
    if loaded.sklearn_mismatch:
        log.warning(
            "model in %s was trained with scikit-learn %s but %s is installed; retrain to be safe",
            folder,
            metadata.get("sklearn_version"),
            installed_version("scikit-learn"),
        )
    return loaded


def write_score(folder: Path, f1: float) -> Path:
    """Write ``latestscore.txt``: the F1 score alone, as the course reads it."""
    return atomic_write_text(folder / SCORE_NAME, f"{f1}\n")


def read_score(path: Path) -> float:
    """Parse a ``latestscore.txt`` (the course's bare number; ``f1 = 0.5`` style is accepted too)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise UserFacingError(f"{path} does not exist; run scoring.py") from None
    try:
        return float(text.replace("=", " ").replace(":", " ").split()[-1])
    except (ValueError, IndexError):
        raise UserFacingError(f"{path} does not hold an F1 score (found {text[:40]!r}); run scoring.py") from None


def write_reference(folder: Path, reference: dict[str, Any]) -> dict[str, str]:
    """Write the data drift reference atomically; returns the metadata entries that record it (name, sha256)."""
    data = (json.dumps(reference, separators=(",", ":")) + "\n").encode("utf-8")
    atomic_write_bytes(folder / REFERENCE_NAME, data)
    return {"reference_file": REFERENCE_NAME, "reference_sha256": sha256_bytes(data)}


def reference_path(folder: Path, metadata: dict[str, Any]) -> Path | None:
    """The reference file recorded in a model's metadata, or None for a model trained before references were kept."""
    return folder / metadata["reference_file"] if metadata.get("reference_sha256") else None


def read_reference(folder: Path, metadata: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The data drift reference of a model folder after checking its recorded sha256; None if it has none."""
    metadata = read_metadata(folder) if metadata is None else metadata
    path = reference_path(folder, metadata)
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelIntegrityError(
            f"data drift reference {path} is missing but recorded in {METADATA_NAME}; "
            "retrain with training.py or roll back with deployment.py --rollback"
        ) from None
    if sha256_bytes(data) != metadata["reference_sha256"]:
        raise ModelIntegrityError(
            f"data drift reference {path} does not match the sha256 recorded in {METADATA_NAME}; "
            "retrain with training.py or roll back with deployment.py --rollback"
        )
    return json.loads(data)
