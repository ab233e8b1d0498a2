"""The deployed versions on disk: numbered folders, the ``current`` pointer, and the course's file names.

Layout of ``prod_deployment_path``::

    versions/v0001/  trainedmodel.pkl  trainedmodel.json  latestscore.txt  ingestedfiles.txt  deployment.json
                     trainingreference.json   (the data drift reference; absent in versions made before it existed)
    versions/v0002/  ...
    current -> versions/v0002            the pointer, switched by one atomic rename
    trainedmodel.pkl -> current/trainedmodel.pkl   (and latestscore.txt, ingestedfiles.txt: the course's names)

A version is written into a staging folder, flushed, renamed into place and only then made current, so a reader
(or a run killed at any instant) sees one whole version or the previous one, never a mix. Versions are never
modified after they are written. Loading the model of a version is risk/deployed.py's job. On the tick path
(``current_version``): standard library only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path
from typing import Any, NamedTuple

from risk.artifacts import DEPLOYMENT_RECORD_NAME, INGESTED_FILES_NAME, MODEL_NAME, SCORE_NAME
from risk.clock import utc_now
from risk.config import Settings
from risk.errors import UserFacingError
from risk.files import FILE_MODE, FOLDER_MODE, fsync_dir, make_folder, sha256_file

log = logging.getLogger("risk.versions")

VERSIONS_DIR = "versions"
CURRENT_LINK = "current"
COURSE_FILES = (MODEL_NAME, SCORE_NAME, INGESTED_FILES_NAME)
VERSION_PATTERN = re.compile(r"^v(\d{4,})$")
NUMBERED_PATTERN = re.compile(r"^(?:abandoned-)?v(\d{4,})$")
STAGING_PREFIX = ".staging-"


class VersionUnreadable(UserFacingError):
    """A version's ``deployment.json`` is missing or unreadable."""


class DeploymentRecord(NamedTuple):
    """A version's ``deployment.json``: what was deployed, when, and the sha256 of each of its files."""

    version: str
    deployed_at: str
    f1: float  # the course's latestscore.txt: F1 on the test data when the version was made
    model_sha256: str
    trained_at: str | None
    sklearn_version: str | None
    ingested_files: tuple[str, ...]
    files: dict[str, str]  # file name -> sha256

    def as_json(self) -> dict[str, Any]:
        return {**self._asdict(), "ingested_files": list(self.ingested_files)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeploymentRecord:
        return cls(
            version=str(data["version"]),
            deployed_at=str(data["deployed_at"]),
            f1=float(data["f1"]),
            model_sha256=str(data["model_sha256"]),
            trained_at=data.get("trained_at"),
            sklearn_version=data.get("sklearn_version"),
            ingested_files=tuple(data.get("ingested_files") or ()),
            files=dict(data.get("files") or {}),
        )


def versions_dir(settings: Settings) -> Path:
    return settings.prod_deployment_path / VERSIONS_DIR


def current_version(settings: Settings) -> str | None:
    """The name of the current version (``v0003``), or None when nothing is deployed."""
    try:
        target = os.readlink(settings.prod_deployment_path / CURRENT_LINK)
    except OSError:
        return None
    name = Path(target).name
    return name if VERSION_PATTERN.match(name) else None


def list_versions(settings: Settings) -> list[str]:
    """Complete versions, oldest first (staging and abandoned folders are not versions)."""
    folder = versions_dir(settings)
    if not folder.is_dir():
        return []
    names = [
        p.name for p in folder.iterdir() if VERSION_PATTERN.match(p.name) and (p / DEPLOYMENT_RECORD_NAME).exists()
    ]
    return sorted(names, key=version_number)


def version_number(name: str) -> int:
    """12 for ``v0012`` (and for ``abandoned-v0012``), 0 for anything else."""
    match = NUMBERED_PATTERN.match(name)
    return int(match.group(1)) if match else 0


def read_record(settings: Settings, version: str) -> DeploymentRecord:
    """The ``deployment.json`` of one version; VersionUnreadable when it is missing or unreadable."""
    path = versions_dir(settings) / version / DEPLOYMENT_RECORD_NAME
    try:
        return DeploymentRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise VersionUnreadable(f"deployment record {path} is unreadable ({err}); roll back or redeploy") from None


def next_version(settings: Settings) -> str:
    folder = versions_dir(settings)
    numbers = [version_number(p.name) for p in folder.iterdir()] if folder.is_dir() else []
    return f"v{max(numbers, default=0) + 1:04d}"


# --- writing a version ---


def write_version(
    settings: Settings, version: str, sources: dict[str, Path], f1: float, metadata: dict[str, Any]
) -> DeploymentRecord:
    """Copy ``sources`` (file name -> path) into a new version folder, with its ``deployment.json``; not current yet.

    The files are copied into a staging folder and flushed, and the folder is renamed into place in one step.
    """
    folder = make_folder(versions_dir(settings))
    staging = folder / f"{STAGING_PREFIX}{version}-{os.getpid()}"
    try:
        staging.mkdir()
        os.chmod(staging, FOLDER_MODE)  # whatever the umask: the model loader refuses what others can write
        for name, source in sources.items():
            shutil.copyfile(source, staging / name)
            os.chmod(staging / name, FILE_MODE)
        ingested = (staging / INGESTED_FILES_NAME).read_text(encoding="utf-8").splitlines()
        record = DeploymentRecord(
            version=version,
            deployed_at=utc_now(),
            f1=f1,
            model_sha256=metadata["model_sha256"],
            trained_at=metadata.get("trained_at"),
            sklearn_version=metadata.get("sklearn_version"),
            ingested_files=tuple(ingested),
            files={name: sha256_file(staging / name) for name in sources},
        )
        (staging / DEPLOYMENT_RECORD_NAME).write_text(json.dumps(record.as_json(), indent=2) + "\n", encoding="utf-8")
        os.chmod(staging / DEPLOYMENT_RECORD_NAME, FILE_MODE)
        for path in staging.iterdir():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.rename(staging, folder / version)
    fsync_dir(folder)
    return record


def _replace_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` with one atomic rename of a fresh symlink over it."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def switch_current(settings: Settings, version: str) -> None:
    """Make ``version`` current (one rename) and keep the course's file names pointing through ``current``."""
    _replace_link(settings.prod_deployment_path / CURRENT_LINK, f"{VERSIONS_DIR}/{version}")
    ensure_course_links(settings)


def ensure_course_links(settings: Settings) -> None:
    """Make ``trainedmodel.pkl``, ``latestscore.txt`` and ``ingestedfiles.txt`` resolve through ``current``.

    A regular file left there by an older, course-style deployment is kept as ``<name>.legacy``.
    """
    prod = settings.prod_deployment_path
    for name in COURSE_FILES:
        link = prod / name
        target = f"{CURRENT_LINK}/{name}"
        if link.is_symlink() and os.readlink(link) == target:
            continue
        if link.exists() and not link.is_symlink():
            os.replace(link, link.with_name(f"{name}.legacy"))
            log.warning("kept the course-style %s as %s.legacy; %s now points to the current version", link, name, name)
        _replace_link(link, target)


def unfinished_staging(settings: Settings) -> list[Path]:
    """Staging folders and temporary links an interrupted deployment left (never visible to readers)."""
    folder = versions_dir(settings)
    found = [p for p in folder.iterdir() if p.name.startswith(STAGING_PREFIX)] if folder.is_dir() else []
    return found + [p for p in settings.prod_deployment_path.glob(".*.tmp") if p.is_symlink()]


def abandon(settings: Settings, version: str) -> str:
    """Rename a version that was written but never made current to ``abandoned-vNNNN``; return the new name."""
    name = f"abandoned-{version}"
    os.replace(versions_dir(settings) / version, versions_dir(settings) / name)
    return name
