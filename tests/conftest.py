"""Fixtures: a fresh throwaway project per test, and projects with a deployed model or some history, built once
per test session by real script runs and copied for each test that needs one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import REPO, Project, flipped_rows, make_project

BUNDLED_BOOK = REPO / "clientbook" / "clients.csv"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A fresh throwaway project per test."""
    return make_project(tmp_path / "project")


@pytest.fixture(scope="session")
def deployed_template(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project where the practice run has deployed v0001; built once per session, never changed."""
    project = make_project(tmp_path_factory.mktemp("deployed") / "project")
    project.run("fullprocess.py", config=project.practice_config)
    return project


@pytest.fixture
def deployed_project(deployed_template: Project, tmp_path: Path) -> Project:
    """A fresh copy of a project with the practice model deployed as v0001 (by a real fullprocess.py run)."""
    return deployed_template.copy_to(tmp_path / "project")


@pytest.fixture(scope="session")
def history_project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project with some history (built once; copy it before changing anything).

    Practice run deploys v0001; ``sourcedata`` is checked (the course's raw rule keeps v0001); a batch with
    flipped labels drifts, but 11 rows cannot show a retrained model is better, so the challenger is rejected;
    an operator's ``--force`` then deploys v0002 (with diagnostics and the reports).
    """
    project = make_project(tmp_path_factory.mktemp("history") / "project")
    project.run("fullprocess.py", config=project.practice_config)
    project.edit_config(drift_test="raw")
    project.run("fullprocess.py")
    project.write_data("sourcedata", "dataset5.csv", flipped_rows(project.root / "sourcedata" / "dataset3.csv", "flip"))
    project.run("fullprocess.py")
    project.run("fullprocess.py", "--force")
    with project.store() as store:
        versions = [row["version"] for row in store.deployments()]
    assert versions == ["v0002", "v0001"], f"--force should have redeployed; deployments: {versions}"
    return project


@pytest.fixture(scope="session")
def risk_list_project(history_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The history project with two risk lists of the bundled client book, made as the pipeline makes them
    (refresh_risk_list): by v0001, then by the current v0002 (built once; copy it before changing anything)."""
    from risk.deployed import load_deployed_model
    from risk.risklist import refresh_risk_list

    project = history_project.copy_to(tmp_path_factory.mktemp("risklist") / "project")
    settings = project.settings()
    with project.store() as store:
        for version in ("v0001", None):
            refresh_risk_list(settings, store, load_deployed_model(settings, version), BUNDLED_BOOK)
    return project
