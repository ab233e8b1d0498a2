"""The floor of a Python cron tick: what any tick that parses its arguments with argparse, reads a JSON
config, logs to a file and asks the SQLite records store "anything new?" costs, doing nothing else.

Not part of the product: ``run.py`` times it beside ``fullprocess.py``'s no-op tick and a bare interpreter,
so the tick's figure can be read against the least it could be.

    .venv/bin/python -m benchmarks.tick_floor --config PROJECT/config.json [--quiet]
"""

import argparse
import fcntl
import json
import logging
import os
import sqlite3
import sys


def main() -> None:
    parser = argparse.ArgumentParser(  # a fixed help width: argparse would import shutil to ask the terminal
        description=__doc__.splitlines()[0], formatter_class=lambda prog: argparse.HelpFormatter(prog, width=78)
    )
    parser.add_argument("--config", required=True)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args()
    with open(args.config, encoding="utf-8") as handle:
        config = json.load(handle)
    base = os.path.dirname(os.path.abspath(args.config))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(logging.WARNING if args.quiet else logging.INFO)
    root.addHandler(stderr)
    os.makedirs(os.path.join(base, "logs"), exist_ok=True)
    root.addHandler(logging.FileHandler(os.path.join(base, "logs", "tick_floor.log"), encoding="utf-8"))
    with open(os.path.join(base, config["prod_deployment_path"], ".floor.lock"), "a+", encoding="utf-8") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        store = os.path.join(
            base, config.get("records_db_path", os.path.join(config["output_folder_path"], "records.sqlite"))
        )
        with sqlite3.connect(store) as connection:
            checked = set(connection.execute("SELECT file_name, sha256 FROM checked_files"))
        names = sorted(entry.name for entry in os.scandir(os.path.join(base, config["input_folder_path"])))
        logging.getLogger("tick_floor").info("%d file(s), %d checked before; nothing to do", len(names), len(checked))


if __name__ == "__main__":
    main()
