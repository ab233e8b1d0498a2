"""Fault injection for the deployment tests: deploy in this process and SIGKILL it at a chosen point.

    python -m tests.faults CONFIG POINT      (from the project folder)

POINT is where the process dies: ``mid-staging`` (after the first file is copied into the staging folder),
``before-switch`` (the new version folder is complete, ``current`` not yet switched), ``mid-switch`` (the new
``current`` link exists under a temporary name, not yet renamed into place) or ``before-record`` (``current``
switched, the store not yet told). The kill is real: no cleanup code runs, exactly as with ``kill -9``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys

import deployment
from risk.config import load_config
from risk.lock import run_lock
from risk.store import RecordsStore


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    """Patch one library call so the process kills itself at ``point``."""
    if point == "mid-staging":
        copy = shutil.copyfile

        def copy_then_die(source, target, *args, **kwargs):
            copy(source, target, *args, **kwargs)
            die()

        shutil.copyfile = copy_then_die
    elif point in ("before-switch", "mid-switch"):
        symlink = os.symlink

        def symlink_at(target, link, *args, **kwargs):
            if point == "before-switch":
                die()
            symlink(target, link, *args, **kwargs)
            die()

        os.symlink = symlink_at
    elif point == "before-record":
        RecordsStore.record_deployment = lambda *args, **kwargs: die()
    else:
        raise SystemExit(f"unknown point {point!r}")


def main() -> None:
    settings = load_config(sys.argv[1])
    arm(sys.argv[2])
    with run_lock(settings.lock_path), RecordsStore(settings.records_db_path) as store:
        deployment.store_model_into_pickle(settings, store)
    raise SystemExit("the fault point was never reached")


if __name__ == "__main__":
    main()
