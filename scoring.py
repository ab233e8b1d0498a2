"""Step 3, scoring: F1 of the trained model on the test data.

Writes the course's one-number ``latestscore.txt`` to ``output_model_path`` and appends the score to the
score history in the records store. :func:`f1_on_frame` scores a model on labelled rows: the test data here,
each new batch in fullprocess's drift check.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.metrics import f1_score

from risk.artifacts import SCORE_NAME
from risk.cli import make_parser, run_script
from risk.config import Settings
from risk.datasets import read_test_data
from risk.modelfiles import load_model, write_score
from risk.schema import FEATURES, TARGET
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


def main() -> None:
    parser = make_parser("Score the trained model on the test data and write latestscore.txt.")
    args = parser.parse_args()
    raise SystemExit(run_script(args, with_store(score_model)))


if __name__ == "__main__":
    main()
