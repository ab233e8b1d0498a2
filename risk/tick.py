"""The cheap tick: is there anything new to work on? Answered from file names, sizes, hashes and the store.

Cron runs ``fullprocess.py`` every ten minutes and nearly every tick finds nothing new, so this path (this module
and what it imports: risk.config, risk.store, risk.inputscan, risk.versions, risk.files, risk.lock, risk.logs,
risk.cli, risk.outcome) uses only the standard library and avoids its slow modules: no dataclasses (it imports
inspect; these modules use NamedTuples), no tempfile (random), no logging.handlers (socket). pandas,
scikit-learn and matplotlib are imported only by the steps, once there is work. ``tests/test_tick_cost.py``
holds the line.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from risk.config import Settings
from risk.errors import UserFacingError
from risk.inputscan import DataFile, new_files, scan_folder
from risk.store import RecordsStore
from risk.versions import current_version


class Tick(NamedTuple):
    """What a tick found: the input files, those no completed run has checked, and the deployed version."""

    files: list[DataFile]
    fresh: list[DataFile]
    deployed_version: str | None
    repair: bool  # a run was killed before it finished: its diagnostics and reports must be redone
    book_changed: bool = False  # the client book (or the deployed version) changed since the last risk list
    # the deployed version was made current outside this store's runs (another config sharing prod_deployment_path,
    # such as the practice config, or by hand): it is recorded, diagnosed and reported on this config's data
    unrecorded: bool = False

    @property
    def nothing_new(self) -> bool:
        return (
            not self.fresh
            and self.deployed_version is not None
            and not self.repair
            and not self.book_changed
            and not self.unrecorded
        )


def book_changed(settings: Settings, store: RecordsStore, version: str | None) -> bool:
    """Whether the risk list is stale: the book's path, size or mtime differ from the last list's, or another
    version is deployed. A configured book that does not exist changes nothing (the run that ranks says why)."""
    book = settings.client_book_path
    if book is None or version is None:
        return False
    try:
        stat = os.stat(book)
    except OSError:
        return False
    return store.latest_risk_list_key() != (str(book), stat.st_size, stat.st_mtime_ns, version)


def look(settings: Settings, store: RecordsStore) -> Tick:
    """Scan the input folder against the store; UserFacingError when there is no input folder or nothing at all."""
    folder = settings.input_folder_path
    if not folder.is_dir():
        raise UserFacingError(
            f"the input folder {folder} does not exist (input_folder_path in {settings.config_path}); "
            "create it or fix the path"
        )
    files = scan_folder(folder, store)
    deployed = current_version(settings)
    unrecorded = deployed is not None and deployed not in store.deployed_versions()
    tick = Tick(
        files,
        new_files(files, store),
        deployed,
        store.unfinished_runs() > 0,
        book_changed(settings, store, deployed),
        unrecorded,
    )
    if not files and tick.deployed_version is None:
        raise UserFacingError(f"no data files in {folder} and no model deployed; add data")
    return tick
