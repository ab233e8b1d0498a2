"""The files of a model folder: ``trainedmodel.pkl``, its ``trainedmodel.json``, ``latestscore.txt`` and the
data drift reference ``trainingreference.json``.

One place saves and loads them, for ``output_model_path`` and for every deployed version alike. Unpickling runs
whatever code the pickle names, so a pickle is only unpickled when

- it and its metadata are regular files, in a folder, that only a trusted user can change: owned by the running
  user or root (or another owner the caller trusts), and writable by neither group nor others, as ssh demands of
  keys (the sha256 beside the pickle catches corruption, not tampering: whoever can write one can write both);
- the metadata names a file beside it (``model_file`` is a plain name, never a path);
- its bytes match the sha256 recorded in the metadata (the same bytes are hashed and unpickled).

What comes out must be a trained model for the schema's features, and a model trained with another scikit-learn
version is flagged. scikit-learn is imported by unpickling, when a model is loaded.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import stat
from collections.abc import Iterable
from importlib import metadata as package_metadata
from pathlib import Path
from typing import Any, NamedTuple

from risk.artifacts import METADATA_NAME, MODEL_NAME, REFERENCE_NAME, SCORE_NAME
from risk.errors import UserFacingError
from risk.files import atomic_write_bytes, atomic_write_text, sha256_bytes

log = logging.getLogger("modelfiles")


class ModelIntegrityError(UserFacingError):
    """A model file is missing or does not match the sha256 recorded for it; it was not unpickled."""


class UnsafeModelFile(ModelIntegrityError):
    """A model file or folder others could change (owner or permissions); it was not unpickled."""


class NotAModel(ModelIntegrityError):
    """A pickle that matches its hashes but does not hold a trained model for the schema's features."""


# --- who may have written a model ---


def trusted_owners(also: Iterable[int] = ()) -> frozenset[int]:
    """The users whose files may be unpickled: the running user, root, and ``also``."""
    return frozenset({os.geteuid(), 0, *also})


def _user_name(uid: int) -> str:
    try:
        import pwd  # POSIX only, and only needed for this message

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def check_trusted(path: Path, status: os.stat_result, trusted: frozenset[int]) -> None:
    """UnsafeModelFile when ``path`` (its ``status``) is not owned by a trusted user or is writable by group or
    others: anyone who could change it could make the API (or cron, often as root) run their code."""
    kind = "folder" if stat.S_ISDIR(status.st_mode) else "file"
    if status.st_uid not in trusted:
        running = _user_name(os.geteuid())
        raise UnsafeModelFile(
            f"refusing to unpickle a model from {path}: the {kind} is owned by {_user_name(status.st_uid)}, not "
            f"by {running} or root, so its owner could change it; make it yours (as root: chown "
            f"{os.geteuid()} {path}) or deploy again as this user"
        )
    writable = [who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if status.st_mode & bit]
    if writable:
        raise UnsafeModelFile(
            f"refusing to unpickle a model from {path}: the {kind} is writable by {' and '.join(writable)}, so "
            f"they could replace the model with code of their own; run chmod go-w {path}"
        )


def check_trusted_folder(folder: Path, trusted: frozenset[int]) -> None:
    """:func:`check_trusted` for a folder (symlinks followed: the folder itself is what matters)."""
    try:
        status = os.stat(folder)
    except OSError as err:
        raise ModelIntegrityError(f"model folder {folder} cannot be read ({err.strerror or err})") from None
    check_trusted(folder, status, trusted)


def read_trusted_file(path: Path, trusted: frozenset[int]) -> bytes:
    """The bytes of a regular file (never through a symlink) that only trusted users can change."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ModelIntegrityError(f"model file {path} does not exist") from None
    except OSError as err:
        if os.path.islink(path):
            raise UnsafeModelFile(
                f"refusing to unpickle a model from {path}: it is a symlink; a model folder holds the files "
                "themselves (retrain with training.py or deploy again)"
            ) from None
        raise ModelIntegrityError(f"model file {path} cannot be read ({err.strerror or err})") from None
    with os.fdopen(fd, "rb") as handle:
        status = os.fstat(handle.fileno())  # the file opened, not whatever the name points to by now
        if not stat.S_ISREG(status.st_mode):
            raise UnsafeModelFile(f"refusing to unpickle a model from {path}: it is not a regular file")
        check_trusted(path, status, trusted)
        return handle.read()


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


def read_metadata(folder: Path, trusted: frozenset[int] | None = None) -> dict[str, Any]:
    """The ``trainedmodel.json`` of a model folder; UserFacingError if it is missing or unreadable.

    With ``trusted`` (before loading the model it describes) the file must be one only those users can change.
    """
    path = folder / METADATA_NAME
    if not os.path.lexists(path):
        raise UserFacingError(f"no trained model in {folder} ({METADATA_NAME} is missing); run training.py")
    try:
        raw = path.read_bytes() if trusted is None else read_trusted_file(path, trusted)
    except OSError as err:
        raise UserFacingError(f"{path} cannot be read ({err.strerror or err}); retrain with training.py") from None
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        detail = err.msg if isinstance(err, json.JSONDecodeError) else "it is not UTF-8"
        raise UserFacingError(f"{path} is not valid JSON ({detail}); retrain with training.py") from None
    if not isinstance(metadata, dict) or not isinstance(metadata.get("model_sha256"), str):
        raise UserFacingError(f"{path} does not record the model's sha256; retrain with training.py")
    return metadata


def load_verified_pickle(path: Path, expected_sha256: str, trusted: frozenset[int] | None = None) -> Any:
    """Unpickle ``path`` only if its folder and it are trusted (:func:`check_trusted`; by default the running user
    and root) and its bytes hash to ``expected_sha256`` (the same bytes are checked, hashed and loaded)."""
    trusted = trusted_owners() if trusted is None else trusted
    check_trusted_folder(path.parent, trusted)
    data = read_trusted_file(path, trusted)
    actual = sha256_bytes(data)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"model file {path} has sha256 {actual[:12]}..., but {expected_sha256[:12]}... was recorded; "
            "refusing to unpickle it (retrain with training.py or roll back with deployment.py --rollback)"
        )
    return pickle.loads(data)


def model_file(folder: Path, metadata: dict[str, Any]) -> Path:
    """The pickle a model's metadata names: a plain file name in ``folder`` (never a path elsewhere)."""
    name = metadata.get("model_file", MODEL_NAME)
    if not isinstance(name, str) or not name or name in (".", "..") or Path(name).name != name or "\x00" in name:
        raise ModelIntegrityError(
            f"{folder / METADATA_NAME} names the model file {str(name)[:80]!r}, which is not a file beside it; "
            f"model_file must be a plain name such as {MODEL_NAME} (retrain with training.py)"
        )
    return folder / name


def check_is_model(model: Any, path: Path) -> None:
    """NotAModel unless ``model`` is a trained classifier for the schema's features (what /prediction calls)."""
    from risk.schema import FEATURES  # here: the schema imports pandas, which deploying and rolling back never need

    problem = None
    if not callable(getattr(model, "predict_proba", None)):
        problem = f"holds a {type(model).__name__}, not a model with predict_proba"
    elif not hasattr(model, "classes_"):
        problem = "holds a model that was never trained (it has no classes_)"
    elif getattr(model, "n_features_in_", len(FEATURES)) != len(FEATURES):
        problem = f"holds a model for {model.n_features_in_} features, not the {len(FEATURES)} of the schema"
    if problem:
        raise NotAModel(
            f"deployed file {path} {problem}; deploy a model trained by training.py "
            "(fullprocess.py), or roll back with deployment.py --rollback"
        )


def load_model(
    folder: Path, metadata: dict[str, Any] | None = None, trusted: frozenset[int] | None = None
) -> LoadedModel:
    """Load the model in ``folder`` after checking who can change it and its sha256 (``metadata``: its
    trainedmodel.json when already read and checked; ``trusted``: the owners allowed, by default the running user
    and root); NotAModel when the pickle is not a trained model; warn if scikit-learn's version changed."""
    trusted = trusted_owners() if trusted is None else trusted
    if metadata is None:
        check_trusted_folder(folder, trusted)
        metadata = read_metadata(folder, trusted)
    path = model_file(folder, metadata)
    model = load_verified_pickle(path, metadata["model_sha256"], trusted)
    check_is_model(model, path)
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
