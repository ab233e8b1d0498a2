"""The cheap tick: is there anything new to work on? Answered from file names, sizes, hashes and the store.

Cron runs ``fullprocess.py`` every ten minutes and nearly every tick finds nothing new, so this path (this module
and what it imports: risk.config, risk.store, risk.inputscan, risk.versions, risk.files, risk.lock, risk.logs,
risk.cli, risk.outcome) uses only the standard library and avoids its slow modules: no dataclasses (it imports
inspect; these modules use NamedTuples), no tempfile (random), no logging.handlers (socket). pandas,
scikit-learn and matplotlib are imported only by the steps, once there is work. ``tests/test_tick_cost.py``
holds the line.
"""

from __future__ import annotations

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
    # the deployed version was made current outside this store's runs (another config sharing prod_deployment_path,
    # such as the practice config, or by hand): it is recorded, diagnosed and reported on this config's data
    unrecorded: bool = False

    @property
    def nothing_new(self) -> bool:
        return not self.fresh and self.deployed_version is not None and not self.repair and not self.unrecorded


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
    tick = Tick(files, new_files(files, store), deployed, store.unfinished_runs() > 0, unrecorded)
    if not files and tick.deployed_version is None:
        raise UserFacingError(f"no data files in {folder} and no model deployed; add data")
    return tick
