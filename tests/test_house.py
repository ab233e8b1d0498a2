"""The house: the top level holds the course's files only, every course script runs on its own and answers --help,
every course function is importable from its script, and serving loads neither scipy nor matplotlib."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from tests.support import REPO

COURSE_SCRIPTS = (
    "ingestion",
    "training",
    "scoring",
    "deployment",
    "diagnostics",
    "reporting",
    "fullprocess",
    "app",
    "apicalls",
)
COURSE_FUNCTIONS = {
    "ingestion": ["merge_multiple_dataframe"],
    "training": ["train_model"],
    "scoring": ["score_model"],
    "deployment": ["store_model_into_pickle"],
    "diagnostics": [
        "model_predictions",
        "dataframe_summary",
        "missing_data",
        "execution_time",
        "outdated_packages_list",
    ],
    "reporting": ["plot_confusion_matrix", "write_reports"],
    "app": ["create_app"],
    "apicalls": ["call_all_endpoints"],
}
TOP_LEVEL_PY = {f"{name}.py" for name in COURSE_SCRIPTS} | {"wsgi.py", "gunicorn.conf.py"}


def test_the_top_level_holds_the_course_scripts_and_no_machinery() -> None:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    top_level_python = {path for path in tracked.split() if "/" not in path and path.endswith(".py")}
    assert top_level_python == TOP_LEVEL_PY


@pytest.mark.parametrize("script", COURSE_SCRIPTS)
def test_each_course_script_runs_on_its_own_and_answers_help(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / f"{script}.py"), "--help"],
        capture_output=True,
        text=True,
        cwd=REPO.parent,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout and result.stderr == ""


@pytest.mark.parametrize("script", sorted(COURSE_FUNCTIONS))
def test_every_course_function_is_importable_from_its_script(script: str) -> None:
    module = importlib.import_module(script)
    for name in COURSE_FUNCTIONS[script]:
        assert callable(getattr(module, name)), f"{script}.{name}"


def test_import_app_loads_neither_scipy_nor_matplotlib() -> None:
    code = "import sys, app; print(sorted({m.split('.')[0] for m in sys.modules} & {'scipy', 'matplotlib'}))"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
