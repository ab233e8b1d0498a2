"""Reporting: the deployed model's confusion matrix on the test data, as a PNG."""

from __future__ import annotations

import pytest

from conftest import Project
from deployment import load_deployed_model
from reporting import confusion_on_test_data, plot_confusion_matrix

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_confusion_matrix_png_of_the_deployed_model(deployed_project: Project) -> None:
    settings = deployed_project.settings()
    path = plot_confusion_matrix(settings)
    assert path == settings.output_model_path / "confusionmatrix.png"
    assert path.read_bytes().startswith(PNG_SIGNATURE) and path.stat().st_size > 5_000

    matrix = confusion_on_test_data(settings, load_deployed_model(settings))
    assert matrix.tolist() == [[0, 2], [1, 2]]  # TN FP / FN TP of the practice model on the five test rows


@pytest.mark.slow
def test_reporting_script_says_to_deploy_first(project: Project) -> None:
    result = project.run("reporting.py", check=False)
    assert result.returncode == 2 and "no model is deployed" in result.stderr
