"""Step 6, reporting: the confusion matrix of the deployed model on the test data.

Saved as ``confusionmatrix.png`` in ``output_model_path`` (matplotlib, headless Agg backend).
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

from deployment import DeployedModel, load_deployed_model  # noqa: E402
from diagnostics import model_predictions  # noqa: E402
from ingestion import TARGET  # noqa: E402
from plumbing import atomic_write, make_parser, run_script  # noqa: E402
from scoring import read_test_data  # noqa: E402
from settings import Settings  # noqa: E402

log = logging.getLogger("reporting")

CONFUSION_MATRIX_NAME = "confusionmatrix.png"
CLASS_LABELS = ("stayed (0)", "exited (1)")


def confusion_on_test_data(settings: Settings, deployed: DeployedModel) -> np.ndarray:
    """2x2 counts [[TN, FP], [FN, TP]] of the deployed model on the test data."""
    test = read_test_data(settings)
    predicted = model_predictions(test, settings, deployed)
    return confusion_matrix(test[TARGET], predicted, labels=[0, 1])


def draw_confusion_matrix(matrix: np.ndarray, title: str) -> plt.Figure:
    """A labelled heatmap of a 2x2 confusion matrix with the count in each cell."""
    figure, axes = plt.subplots(figsize=(6, 5), layout="constrained")
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, label="clients")
    axes.set_xticks([0, 1], labels=CLASS_LABELS)
    axes.set_yticks([0, 1], labels=CLASS_LABELS)
    axes.set_xlabel("predicted")
    axes.set_ylabel("actual")
    axes.set_title(title)
    threshold = matrix.max() / 2 if matrix.max() else 0.5
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > threshold else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=14)
    return figure


def plot_confusion_matrix(settings: Settings) -> Path:
    """Draw the deployed model's confusion matrix on the test data and save ``confusionmatrix.png``."""
    deployed = load_deployed_model(settings)
    matrix = confusion_on_test_data(settings, deployed)
    figure = draw_confusion_matrix(matrix, f"Confusion matrix on the test data\nmodel {deployed.version}")
    path = settings.output_model_path / CONFUSION_MATRIX_NAME
    try:
        atomic_write(path, lambda tmp: figure.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(figure)
    log.info("saved %s (model %s: TN %d, FP %d, FN %d, TP %d)", path, deployed.version, *matrix.ravel())
    return path


def main() -> None:
    parser = make_parser("Plot the deployed model's confusion matrix on the test data.")
    args = parser.parse_args()
    raise SystemExit(run_script(args, lambda settings: plot_confusion_matrix(settings) and 0))


if __name__ == "__main__":
    main()
