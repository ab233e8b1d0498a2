"""Step 4, deployment: copy the model, its score and the ingested-file list into production as one version.

Layout of ``prod_deployment_path``::

    versions/v0001/  trainedmodel.pkl  trainedmodel.json  latestscore.txt  ingestedfiles.txt  deployment.json
                     trainingreference.json   (the data drift reference; absent in versions made before it existed)
    versions/v0002/  ...
    current -> versions/v0002            the pointer, switched by one atomic rename
    trainedmodel.pkl -> current/trainedmodel.pkl   (and latestscore.txt, ingestedfiles.txt: the course's names)

A version is written into a staging folder, flushed, renamed into place and only then made current, so a
reader (or a run killed at any instant) sees one whole version or the previous one, never a mix. Versions are
never modified after they are written; ``--rollback`` points ``current`` back to the previous one.
Everything that needs the deployed model loads it through :func:`load_deployed_model`, which verifies the
recorded sha256 before unpickling. Standard library only.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any, NamedTuple

from datafiles import INGESTED_FILES_NAME
from modelfiles import (
    METADATA_NAME,
    MODEL_NAME,
    REFERENCE_NAME,
    SCORE_NAME,
    LoadedModel,
    ModelIntegrityError,
    load_model,
    read_metadata,
    read_score,
    reference_path,
)
from plumbing import UserFacingError, fsync_dir, make_parser, run_script, sha256_file, utc_now
from records import RecordsStore
from settings import Settings

log = logging.getLogger("deployment")

VERSIONS_DIR = "versions"
CURRENT_LINK = "current"
RECORD_NAME = "deployment.json"
COURSE_FILES = (MODEL_NAME, SCORE_NAME, INGESTED_FILES_NAME)
VERSION_PATTERN = re.compile(r"^v(\d{4,})$")
NUMBERED_PATTERN = re.compile(r"^(?:abandoned-)?v(\d{4,})$")
STAGING_PREFIX = ".staging-"


class DeployedModel(NamedTuple):
    """The current production model, loaded and verified, with everything recorded about it."""

    model: Any
    version: str
    record: dict[str, Any]
    path: Path

    @property
    def score(self) -> float:
        """The deployed ``latestscore.txt``: F1 on the test data when this version was made."""
        return float(self.record["f1"])

    @property
    def sha256(self) -> str:
        return self.record["model_sha256"]

    @property
    def ingested_files(self) -> list[str]:
        return list(self.record["ingested_files"])


def versions_dir(settings: Settings) -> Path:
    return settings.prod_deployment_path / VERSIONS_DIR


def current_version(settings: Settings) -> str | None:
    """The name of the current version (``v0003``), or None when nothing is deployed."""
    try:
        target = os.readlink(settings.prod_deployment_path / CURRENT_LINK)
    except (FileNotFoundError, OSError):
        return None
    name = Path(target).name
    return name if VERSION_PATTERN.match(name) else None


def list_versions(settings: Settings) -> list[str]:
    """Complete versions, oldest first (staging and abandoned folders are not versions)."""
    folder = versions_dir(settings)
    if not folder.is_dir():
        return []
    names = [p.name for p in folder.iterdir() if VERSION_PATTERN.match(p.name) and (p / RECORD_NAME).exists()]
    return sorted(names, key=_number)


def _number(name: str) -> int:
    match = NUMBERED_PATTERN.match(name)
    return int(match.group(1)) if match else 0


def read_record(settings: Settings, version: str) -> dict[str, Any]:
    """The ``deployment.json`` of one version."""
    path = versions_dir(settings) / version / RECORD_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as err:
        raise ModelIntegrityError(f"deployment record {path} is unreadable ({err}); roll back or redeploy") from None


def load_deployed_model(settings: Settings, version: str | None = None) -> DeployedModel:
    """Load the current (or the given) version after verifying its sha256; UserFacingError if none is deployed."""
    version = version or current_version(settings)
    if version is None:
        raise UserFacingError(
            f"no model is deployed in {settings.prod_deployment_path}; run fullprocess.py (or deployment.py)"
        )
    record = read_record(settings, version)
    loaded: LoadedModel = load_model(versions_dir(settings) / version)
    if loaded.sha256 != record["model_sha256"]:
        raise ModelIntegrityError(f"version {version}: model metadata and deployment record disagree; redeploy")
    return DeployedModel(model=loaded.model, version=version, record=record, path=loaded.folder)


# --- writing a version ---


def _sources(settings: Settings) -> dict[str, Path]:
    """The files a version is made of, from the output folders (with the data drift reference when the
    model's metadata records one; models trained before references were kept have none)."""
    sources = {
        MODEL_NAME: settings.output_model_path / MODEL_NAME,
        METADATA_NAME: settings.output_model_path / METADATA_NAME,
        SCORE_NAME: settings.output_model_path / SCORE_NAME,
        INGESTED_FILES_NAME: settings.output_folder_path / INGESTED_FILES_NAME,
    }
    try:
        reference = reference_path(settings.output_model_path, read_metadata(settings.output_model_path))
    except UserFacingError:
        reference = None  # no or unreadable metadata: _check_sources says so
    if reference is not None:
        sources[REFERENCE_NAME] = reference
    return sources


def _check_sources(settings: Settings, store: RecordsStore) -> tuple[dict[str, Any], float]:
    """Verify the model matches its metadata and the score belongs to this model; return both."""
    for name, path in _sources(settings).items():
        if not path.exists():
            raise UserFacingError(f"cannot deploy: {path} is missing; run the step that writes {name} first")
    metadata = read_metadata(settings.output_model_path)
    actual = sha256_file(settings.output_model_path / MODEL_NAME)
    if actual != metadata["model_sha256"]:
        raise ModelIntegrityError(
            f"cannot deploy: {settings.output_model_path / MODEL_NAME} does not match the sha256 in "
            f"{METADATA_NAME}; retrain with training.py"
        )
    reference = reference_path(settings.output_model_path, metadata)
    if reference is not None and sha256_file(reference) != metadata["reference_sha256"]:
        raise ModelIntegrityError(
            f"cannot deploy: {reference} does not match the sha256 in {METADATA_NAME}; retrain with training.py"
        )
    f1 = read_score(settings.output_model_path / SCORE_NAME)
    latest = store.latest_test_score()
    if latest is None or latest["model_sha256"] != actual:
        raise UserFacingError(
            f"cannot deploy: {settings.output_model_path / SCORE_NAME} was not computed for this model; "
            "run scoring.py first"
        )
    return metadata, f1


def _next_version(settings: Settings) -> str:
    folder = versions_dir(settings)
    numbers = [_number(p.name) for p in folder.iterdir()] if folder.is_dir() else []
    return f"v{max(numbers, default=0) + 1:04d}"


def _write_staging(settings: Settings, staging: Path, version: str, metadata: dict[str, Any], f1: float) -> None:
    import shutil  # here, not at the top: the cron tick imports this module and never copies

    staging.mkdir(parents=True)
    sources = _sources(settings)
    for name, source in sources.items():
        shutil.copyfile(source, staging / name)
    ingested = (staging / INGESTED_FILES_NAME).read_text(encoding="utf-8").splitlines()
    record = {
        "version": version,
        "deployed_at": utc_now(),
        "f1": f1,
        "model_sha256": metadata["model_sha256"],
        "trained_at": metadata.get("trained_at"),
        "sklearn_version": metadata.get("sklearn_version"),
        "ingested_files": ingested,
        "files": {name: sha256_file(staging / name) for name in sources},
    }
    (staging / RECORD_NAME).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    for path in staging.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    fsync_dir(staging)


def _replace_link(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` with one atomic rename of a fresh symlink over it."""
    tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    os.symlink(target, tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def _switch_current(settings: Settings, version: str) -> None:
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


def recover(settings: Settings, store: RecordsStore) -> list[str]:
    """Tidy up after an interrupted deployment; returns what was done. Call with the run lock held.

    Staging folders are removed (they were never visible). A current version the store does not know (the run
    died after the switch) is recorded as deployed. A complete version newer than ``current`` that was never
    switched to (the run died between the two renames) is renamed ``abandoned-vNNNN``, not deleted.
    """
    import shutil  # not needed by the cron tick

    notes: list[str] = []
    folder = versions_dir(settings)
    if not folder.is_dir():
        return notes
    for path in folder.iterdir():
        if path.name.startswith(STAGING_PREFIX):
            shutil.rmtree(path, ignore_errors=True)
            notes.append(f"removed unfinished deployment {path.name} (an earlier run was interrupted)")
    for tmp in settings.prod_deployment_path.glob(".*.tmp"):
        if tmp.is_symlink():
            tmp.unlink()
    current = current_version(settings)
    current_number = _number(current) if current else 0
    known = store.deployed_versions()
    if current and current not in known:  # the run died after the switch, before telling the store
        record = read_record(settings, current)
        earlier = store.deployments(1)
        store.record_deployment("deploy", current, earlier[0]["version"] if earlier else None,
                                record.get("f1"), record["model_sha256"])
        known.add(current)
        notes.append(f"version {current} was made current by an interrupted run; recorded its deployment now")
    for version in list_versions(settings):
        if _number(version) > current_number and version not in known:
            os.replace(folder / version, folder / f"abandoned-{version}")
            notes.append(f"version {version} was written but never made current (interrupted run); "
                         f"kept as abandoned-{version}")
    if current:
        ensure_course_links(settings)
    for note in notes:
        log.warning("%s", note)
    return notes


def store_model_into_pickle(settings: Settings, store: RecordsStore) -> str:
    """Deploy the model, score and ingested-file list from the output folders as a new version; return it.

    Call with the run lock held (``main`` and ``fullprocess`` do).
    """
    recover(settings, store)
    metadata, f1 = _check_sources(settings, store)
    previous = current_version(settings)
    version = _next_version(settings)
    staging = versions_dir(settings) / f"{STAGING_PREFIX}{version}-{os.getpid()}"
    try:
        _write_staging(settings, staging, version, metadata, f1)
    except BaseException:
        import shutil  # not needed by the cron tick

        shutil.rmtree(staging, ignore_errors=True)
        raise
    os.rename(staging, versions_dir(settings) / version)
    fsync_dir(versions_dir(settings))
    _switch_current(settings, version)
    store.record_deployment("deploy", version, previous, f1, metadata["model_sha256"])
    log.info("deployed %s (F1 %.4f, model sha256 %s...), previous %s", version, f1,
             metadata["model_sha256"][:12], previous or "none")
    return version


def rollback(settings: Settings, store: RecordsStore, to: str | None = None) -> str:
    """Make the previous version (or ``to``) current again, after verifying it; return its name."""
    recover(settings, store)
    current = current_version(settings)
    versions = list_versions(settings)
    if to is None:
        earlier = [v for v in versions if current and _number(v) < _number(current)]
        if not earlier:
            raise UserFacingError(f"nothing to roll back to: the current version is {current or 'none'} "
                                  f"and no earlier version exists in {versions_dir(settings)}")
        to = earlier[-1]
    elif to not in versions:
        raise UserFacingError(f"version {to!r} does not exist; choose one of {', '.join(versions) or 'none'}")
    record = read_record(settings, to)
    if sha256_file(versions_dir(settings) / to / MODEL_NAME) != record["model_sha256"]:
        raise ModelIntegrityError(f"version {to} fails its sha256 check; not switching to it")
    _switch_current(settings, to)
    store.record_deployment("rollback", to, current, record.get("f1"), record["model_sha256"])
    log.info("rolled back from %s to %s (F1 %s)", current, to, record.get("f1"))
    return to


def main() -> None:
    parser = make_parser("Deploy the trained model, its score and the ingested-file list as a new version.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--rollback", action="store_true", help="make the previous version current again")
    action.add_argument("--list", action="store_true", help="list the versions and which one is current")
    parser.add_argument("--to", metavar="VERSION", help="with --rollback: the version to switch to (e.g. v0002)")
    args = parser.parse_args()
    if args.to and not args.rollback:
        parser.error("--to goes with --rollback")

    def step(settings: Settings) -> int:
        if args.list:
            current = current_version(settings)
            for version in list_versions(settings):
                record = read_record(settings, version)
                marker = "*" if version == current else " "
                print(f"{marker} {version}  deployed {record['deployed_at']}  F1 {record['f1']:.4f}")
            return 0
        with RecordsStore(settings.records_db_path) as store:
            if args.rollback:
                rollback(settings, store, args.to)
            else:
                store_model_into_pickle(settings, store)
        return 0

    raise SystemExit(run_script(args, step, take_lock=not args.list))


if __name__ == "__main__":
    main()
