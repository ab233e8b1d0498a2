"""Deterministic synthetic data in the course schema, for benchmarks: N files x M rows, seeded.

Each row is ``corporation`` (a five-letter id), ``lastmonth_activity``, ``lastyear_activity``,
``number_of_employees`` and ``exited`` (0/1). Clients with little recent activity tend to exit; with
``drift`` the relationship is reversed (busy clients leave), so a model trained on undrifted data scores
poorly on drifted data. A ``duplicate_rate`` share of each file's rows (after the first file) repeats rows
written earlier, in that file or an earlier one, so ingestion has whole-row duplicates to drop. The same
arguments always give byte-identical files.

    .venv/bin/python -m benchmarks.make_data --files 100 --rows 10000 [--duplicate-rate 0.05] [--drift]
        [--seed 0] [--out FOLDER] [--test-file PATH --test-rows 1000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from risk.synthetic import make_data, make_test_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100, help="number of CSV files (default 100)")
    parser.add_argument("--rows", type=int, default=10_000, help="rows per file (default 10000)")
    parser.add_argument("--duplicate-rate", type=float, default=0.05, help="share of repeated rows (default 0.05)")
    parser.add_argument("--drift", action="store_true", help="reverse the activity/exit relationship")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, help="folder to write into (default: a new temporary folder)")
    parser.add_argument("--test-file", type=Path, help="also write a labelled test CSV here")
    parser.add_argument("--test-rows", type=int, default=1000, help="rows of the test CSV (default 1000)")
    args = parser.parse_args()
    folder = args.out or Path(tempfile.mkdtemp(prefix="risk-data-"))
    try:
        paths = make_data(folder, args.files, args.rows, args.duplicate_rate, args.drift, args.seed)
    except ValueError as err:
        if args.out is None:
            folder.rmdir()
        parser.error(str(err))
    print(f"wrote {len(paths)} file(s) x {args.rows} rows to {folder}")
    if args.test_file:
        make_test_file(args.test_file, args.test_rows, args.drift, args.seed + 1)
        print(f"wrote {args.test_rows} test rows to {args.test_file}")


if __name__ == "__main__":
    main()
