"""Step 3, scoring: F1 of the trained model on the test data; and, on demand, the deployed model's scores of clients.

Writes the course's one-number ``latestscore.txt`` to ``output_model_path`` and records the score in the records
store. ``--clients FILE --out FILE`` instead ranks any CSV (or JSON records) of clients with the deployed model, as
the risk list does (risk/risklist.py): riskiest first, with probability, band and reason; a progress bar on a
terminal, none under cron.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import f1_score

from risk.artifacts import SCORE_NAME
from risk.cli import make_parser, run_script
from risk.config import Settings
from risk.datasets import read_test_data
from risk.deployed import load_deployed_model
from risk.errors import UserFacingError
from risk.modelfiles import load_model, write_score
from risk.risklist import RiskList, deployed_typical_client, rank_file
from risk.schema import FEATURES, TARGET, DataFileError
from risk.store import RecordsStore, with_store

log = logging.getLogger("scoring")


def f1_on_frame(model: Any, frame: pd.DataFrame) -> float:
    """F1 of ``model`` on a labelled frame (0.0 when there are no true or predicted positives)."""
    predicted = model.predict(frame[list(FEATURES)])
    return float(f1_score(frame[TARGET], predicted, zero_division=0))


def score_model(settings: Settings, store: RecordsStore) -> float:
    """Score the model in ``output_model_path`` on the test data; write and record the F1."""
    trained = load_model(settings.output_model_path)
    test = read_test_data(settings)
    f1 = f1_on_frame(trained.model, test)
    write_score(settings.output_model_path, f1)
    store.record_score("test", f1, len(test), str(settings.test_data_file), model_sha256=trained.sha256)
    log.info("F1 on %s (%d rows): %.4f -> %s", settings.test_data_file, len(test), f1, SCORE_NAME)
    return f1


def rank_clients_file(settings: Settings, clients: Path, out: Path) -> RiskList:
    """Rank a file of clients with the deployed model into ``out`` (the risk list's columns); UserFacingError
    naming the file when it is missing or holds a bad row."""
    deployed = load_deployed_model(settings)
    try:
        ranked = rank_file(
            deployed.model,
            deployed_typical_client(settings, deployed),
            deployed.version,
            clients,
            out,
            progress=sys.stderr.isatty(),
        )
    except FileNotFoundError:
        raise UserFacingError(f"{clients} does not exist; pass a CSV of clients with --clients") from None
    except DataFileError as err:
        raise UserFacingError(f"{clients} {err}") from None
    log.info("ranked %d clients of %s with %s into %s", ranked.rows, clients, deployed.version, out)
    return ranked


def main() -> None:
    parser = make_parser("Score the trained model on the test data and write latestscore.txt.")
    parser.add_argument(
        "--clients",
        type=Path,
        metavar="FILE",
        help="instead: rank the clients in FILE (CSV or JSON records) with the deployed model",
    )
    parser.add_argument("--out", type=Path, metavar="FILE", help="with --clients: where to write the ranked list")
    args = parser.parse_args()
    if bool(args.clients) != bool(args.out):
        parser.error("--clients and --out go together")
    if args.clients:
        raise SystemExit(
            run_script(args, lambda s: rank_clients_file(s, args.clients, args.out) and 0, take_lock=False)
        )
    raise SystemExit(run_script(args, with_store(score_model)))


if __name__ == "__main__":
    main()
