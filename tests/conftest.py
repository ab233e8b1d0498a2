"""Fixtures: a fresh throwaway project per test, and template projects (a deployed model, some history) built once
per test run by real runs and copied for each test that needs one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import REPO, Project, flipped_rows, make_project, next_second, shared_template

BUNDLED_BOOK = REPO / "clientbook" / "clients.csv"


@pytest.fixture
def project(tmp_path: Path) -> Project:
    """A fresh throwaway project per test."""
    return make_project(tmp_path / "project")


def build_deployed(root: Path) -> None:
    """The practice run deploys v0001 (practice data, its own store)."""
    make_project(root).run_in_process("fullprocess.py", config=Project.at(root).practice_config)


@pytest.fixture(scope="session")
def deployed_template(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project where the practice run has deployed v0001; built once per run, never changed."""
    return shared_template(tmp_path_factory, "deployed", build_deployed)


@pytest.fixture
def deployed_project(deployed_template: Project, tmp_path: Path) -> Project:
    """A fresh copy of a project with the practice model deployed as v0001 (by a real fullprocess.py run)."""
    return deployed_template.copy_to(tmp_path / "project")


@pytest.fixture(scope="session")
def production_template(deployed_template: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The deployed project after a production tick that found no data yet: the production store recorded the
    practice run's v0001 (its diagnostics and reports wait for production's first data) and ranked the client book.
    The course files are back in sourcedata, unchecked. Production runs on a copy check new data straight away,
    without first adopting v0001 (tests/test_walkthrough.py follows that adoption)."""

    def build(root: Path) -> None:
        project = deployed_template.copy_to(root)
        source, aside = root / "sourcedata", root.parent / "sourcedata-aside"
        source.rename(aside)
        source.mkdir()
        result = project.run_in_process("fullprocess.py")
        assert "recorded its deployment now" in result.stderr, result.stderr
        source.rmdir()
        aside.rename(source)

    return shared_template(tmp_path_factory, "production", build)


@pytest.fixture
def production_project(production_template: Project, tmp_path: Path) -> Project:
    """A fresh copy of the deployed project whose production store knows v0001 (see production_template)."""
    return production_template.copy_to(tmp_path / "project")


@pytest.fixture(scope="session")
def history_project(deployed_template: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project with some history (built once per run; copy it before changing anything).

    Practice run deploys v0001; ``sourcedata`` is checked (the course's raw rule keeps v0001); a batch with
    flipped labels drifts, but 11 rows cannot show a retrained model is better, so the challenger is rejected;
    an operator's ``--force`` then deploys v0002 (with diagnostics and the reports).
    """

    def build(root: Path) -> None:
        project = deployed_template.copy_to(root)
        project.edit_config(drift_test="raw")
        project.run_in_process("fullprocess.py")
        source = project.root / "sourcedata"
        project.write_data("sourcedata", "dataset5.csv", flipped_rows(source / "dataset3.csv", "flip"))
        project.run_in_process("fullprocess.py")
        next_second()  # the store's times have whole seconds: the operator's --force comes after the check
        project.run_in_process("fullprocess.py", "--force")
        with project.store() as store:
            versions = [row["version"] for row in store.deployments()]
        assert versions == ["v0002", "v0001"], f"--force should have redeployed; deployments: {versions}"

    return shared_template(tmp_path_factory, "history", build)


@pytest.fixture(scope="session")
def risk_list_project(history_project: Project, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The history project with two risk lists of the bundled client book, made as the pipeline makes them
    (refresh_risk_list): by v0001, then by the current v0002 (built once per run; copy it before changing anything)."""

    def build(root: Path) -> None:
        from risk.deployed import load_deployed_model
        from risk.risklist import refresh_risk_list

        project = history_project.copy_to(root)
        settings = project.settings()
        with project.store() as store:
            for version in ("v0001", None):
                refresh_risk_list(settings, store, load_deployed_model(settings, version), BUNDLED_BOOK)

    return shared_template(tmp_path_factory, "risklist", build)
