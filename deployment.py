"""Step 4, deployment: copy the model, its score and the ingested-file list into production as one version.

The versions, the ``current`` pointer and the course's file names are laid out as risk/versions.py describes;
a version is written whole into a staging folder and made current by one rename, so a reader (or a run killed at
any instant) sees one whole version or the previous one. ``--rollback`` points ``current`` back to the previous
version (or ``--to`` one), ``--list`` lists them. Everything that needs the deployed model loads it through
``risk.deployed.load_deployed_model``.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

from risk.artifacts import (
    DEPLOYMENT_RECORD_NAME,
    FINAL_DATA_NAME,
    INGESTED_FILES_NAME,
    METADATA_NAME,
    MODEL_NAME,
    REFERENCE_NAME,
    SCORE_NAME,
)
from risk.cli import make_parser, run_script
from risk.config import Settings
from risk.datasets import read_final_data
from risk.errors import UserFacingError
from risk.files import sha256_file
from risk.modelfiles import ModelIntegrityError, read_metadata, read_score, reference_path
from risk.rows import row_hashes
from risk.store import RecordsStore
from risk.versions import (
    CURRENT_LINK,
    abandon,
    current_version,
    ensure_course_links,
    list_versions,
    next_version,
    read_record,
    switch_current,
    unfinished_staging,
    version_number,
    versions_dir,
    write_version,
)

log = logging.getLogger("deployment")


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


def recover(settings: Settings, store: RecordsStore) -> list[str]:
    """Tidy up after an interrupted deployment; returns what was done. Call with the run lock held.

    Staging folders are removed (they were never visible). A current version the store does not know is recorded
    as deployed: a run died after the switch, or it was deployed by another config sharing ``prod_deployment_path``
    (the practice config: each config has its own store) or by hand. A complete version newer than ``current``
    that was written after ``current`` was made current, and never switched to (the run died between the two
    renames), is renamed ``abandoned-vNNNN``, not deleted; one written before (another config, or a rollback,
    switched away from it) is left as it is.
    """
    notes: list[str] = []
    for leftover in unfinished_staging(settings):
        if leftover.is_symlink():
            leftover.unlink()
        else:
            shutil.rmtree(leftover, ignore_errors=True)
            notes.append(f"removed unfinished deployment {leftover.name} (an earlier run was interrupted)")
    current = current_version(settings)
    current_number = version_number(current) if current else 0
    known = store.deployed_versions()
    if current and current not in known:  # made current by a run that died, another config, or by hand
        record = read_record(settings, current)
        earlier = store.deployments(1)
        store.record_deployment(
            "deploy", current, earlier[0]["version"] if earlier else None, record.f1, record.model_sha256
        )
        known.add(current)
        notes.append(
            f"version {current} is current but {settings.shown_path(settings.records_db_path)} never recorded "
            f"deploying it (deployed by another config sharing {settings.shown_path(settings.prod_deployment_path)}, "
            "by hand, or by an interrupted run); recorded its deployment now"
        )
    for version in list_versions(settings):
        if version_number(version) > current_number and version not in known:
            if written_before_current(settings, version):
                log.info(
                    "%s is newer than the current %s but was written before it was made current; kept", version, current
                )
                continue
            kept = abandon(settings, version)
            notes.append(f"version {version} was written but never made current (interrupted run); kept as {kept}")
    if current:
        ensure_course_links(settings)
    for note in notes:
        log.warning("%s", note)
    return notes


def written_before_current(settings: Settings, version: str) -> bool:
    """True when ``version`` was written before ``current`` was last switched (so a run did not die between writing
    it and switching to it: another config or a rollback switched away from it)."""
    try:
        switched = os.lstat(settings.prod_deployment_path / CURRENT_LINK).st_mtime_ns
    except FileNotFoundError:  # nothing was ever made current
        return False
    return (versions_dir(settings) / version / DEPLOYMENT_RECORD_NAME).stat().st_mtime_ns < switched


def store_model_into_pickle(settings: Settings, store: RecordsStore) -> str:
    """Deploy the model, score and ingested-file list from the output folders as a new version; return it.

    Call with the run lock held (``main`` and ``fullprocess`` do).
    """
    recover(settings, store)
    metadata, f1 = _check_sources(settings, store)
    previous = current_version(settings)
    version = next_version(settings)
    write_version(settings, version, _sources(settings), f1, metadata)
    switch_current(settings, version)
    store.record_deployment("deploy", version, previous, f1, metadata["model_sha256"])
    remember_training_rows(settings, store, metadata)
    log.info(
        "deployed %s (F1 %.4f, model sha256 %s...), previous %s",
        version,
        f1,
        metadata["model_sha256"][:12],
        previous or "none",
    )
    return version


def remember_training_rows(settings: Settings, store: RecordsStore, metadata: dict[str, Any]) -> None:
    """Record the deployed model's training rows as decided (risk/rows.py), so no drift check ever scores a model on
    the rows it learnt from, however it was deployed (by fullprocess.py or by hand)."""
    data = settings.output_folder_path / FINAL_DATA_NAME
    if not data.exists() or sha256_file(data) != metadata.get("training_data_sha256"):
        log.warning("%s changed since the model was trained; its training rows are not recorded", data)
        return
    store.mark_rows_decided(row_hashes(read_final_data(settings)))


def rollback(settings: Settings, store: RecordsStore, to: str | None = None) -> str:
    """Make the previous version (or ``to``) current again, after verifying it; return its name."""
    recover(settings, store)
    current = current_version(settings)
    versions = list_versions(settings)
    if to is None:
        earlier = [v for v in versions if current and version_number(v) < version_number(current)]
        if not earlier:
            raise UserFacingError(
                f"nothing to roll back to: the current version is {current or 'none'} "
                f"and no earlier version exists in {versions_dir(settings)}"
            )
        to = earlier[-1]
    elif to not in versions:
        raise UserFacingError(f"version {to!r} does not exist; choose one of {', '.join(versions) or 'none'}")
    record = read_record(settings, to)
    if sha256_file(versions_dir(settings) / to / MODEL_NAME) != record.model_sha256:
        raise ModelIntegrityError(f"version {to} fails its sha256 check; not switching to it")
    switch_current(settings, to)
    store.record_deployment("rollback", to, current, record.f1, record.model_sha256)
    log.info("rolled back from %s to %s (F1 %.4f)", current, to, record.f1)
    return to


def list_deployed(settings: Settings) -> list[str]:
    """One line per version, oldest first, the current one starred."""
    current = current_version(settings)
    lines = []
    for version in list_versions(settings):
        record = read_record(settings, version)
        marker = "*" if version == current else " "
        lines.append(f"{marker} {version}  deployed {record.deployed_at}  F1 {record.f1:.4f}")
    return lines


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
            print("\n".join(list_deployed(settings)))
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
