"""Step 6, reporting: the deployed model's confusion matrix and a PDF report of its history.

Writes ``confusionmatrix.png`` (the course's plot: the deployed model on the test data) and ``report.pdf``
to ``output_model_path``. The confusion matrix, precision, recall and F1 of the deployed version are
recorded in the records store (so the dashboard shows them without recomputing); the rest of the report
is drawn from the store's history, the latest diagnostics snapshot and the newest risk list (risk/overview.py),
with the plots shared with the dashboard (risk/plots.py); its pages are built by risk/pdfreport.py (the first
one for a manager: what happened last, the ten riskiest clients, the model's health in words).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix

from diagnostics import model_predictions
from risk.artifacts import CONFUSION_MATRIX_NAME
from risk.cli import make_parser, run_script
from risk.config import Settings
from risk.datasets import read_test_data
from risk.deployed import DeployedModel, load_deployed_model
from risk.files import atomic_write_bytes
from risk.overview import build_overview
from risk.pdfreport import write_report_pdf
from risk.plots import confusion_matrix_title, draw_confusion_matrix, figure_bytes
from risk.schema import TARGET
from risk.store import RecordsStore, with_store

log = logging.getLogger("reporting")

# --- the confusion matrix ---


def confusion_on_test_data(settings: Settings, deployed: DeployedModel) -> np.ndarray:
    """2x2 counts [[TN, FP], [FN, TP]] of the deployed model on the test data."""
    test = read_test_data(settings)
    predicted = model_predictions(test, settings, deployed)
    return confusion_matrix(test[TARGET], predicted, labels=[0, 1])


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def evaluation_of(matrix: np.ndarray, deployed: DeployedModel, data_path: Path) -> dict[str, Any]:
    """The store's evaluation row for a confusion matrix: counts, precision, recall and F1 (0 when undefined)."""
    (tn, fp), (fn, tp) = matrix.tolist()
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return {
        "model_version": deployed.version,
        "model_sha256": deployed.sha256,
        "data_path": str(data_path),
        "rows": int(matrix.sum()),
        "true_negatives": tn,
        "false_positives": fp,
        "false_negatives": fn,
        "true_positives": tp,
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
    }


def _save_confusion_matrix(settings: Settings, deployed: DeployedModel, matrix: np.ndarray) -> Path:
    figure = draw_confusion_matrix(matrix, confusion_matrix_title(deployed.version))
    path = settings.output_model_path / CONFUSION_MATRIX_NAME
    atomic_write_bytes(path, figure_bytes(figure, "png", dpi=120))
    log.info("saved %s (model %s: TN %d, FP %d, FN %d, TP %d)", path, deployed.version, *matrix.ravel())
    return path


def plot_confusion_matrix(settings: Settings) -> Path:
    """Draw the deployed model's confusion matrix on the test data and save ``confusionmatrix.png``."""
    deployed = load_deployed_model(settings)
    return _save_confusion_matrix(settings, deployed, confusion_on_test_data(settings, deployed))


def write_reports(settings: Settings, store: RecordsStore) -> tuple[Path, Path]:
    """Evaluate the deployed model (recorded in the store), write ``confusionmatrix.png`` and ``report.pdf``."""
    deployed = load_deployed_model(settings)
    matrix = confusion_on_test_data(settings, deployed)
    store.record_evaluation(evaluation_of(matrix, deployed, settings.test_data_file))
    png = _save_confusion_matrix(settings, deployed, matrix)
    pdf = write_report_pdf(settings, build_overview(settings, store))
    return png, pdf


def main() -> None:
    parser = make_parser("Write the deployed model's confusion matrix (PNG) and the PDF report of its history.")
    args = parser.parse_args()
    raise SystemExit(run_script(args, with_store(write_reports)))


if __name__ == "__main__":
    main()
