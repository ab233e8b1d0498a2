"""The course walk-through (walkthroughdata/README.md) as users run it, each step its own process: the practice run
deploys v0001 into the shared production folder, production checks it on sourcedata, then on
walkthroughdata/dataset5.csv, and ``make clean`` resets all of it; under the course's rule; practice and production
keep their own ingested data, stores, reports, logs and metrics."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from risk.artifacts import FINAL_DATA_NAME, REPORT_PDF_NAME, SNAPSHOT_NAME
from tests.support import REPO, Project

pytestmark = pytest.mark.slow

DATASET5 = REPO / "walkthroughdata" / "dataset5.csv"
GENERATED = ("ingesteddata", "practiceingested", "models", "practicemodels", "production_deployment")


def files_under(root: Path) -> dict[str, str]:
    """Every file below ``root`` (symlinks as their target), relative path -> sha256 of its bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(root))] = f"-> {path.readlink()}"
        elif path.is_file():
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def production_state(project: Project) -> dict[str, str]:
    """Production's own files: its ingested data and store, its reports, its logs and metrics textfile."""
    settings = project.settings()
    state: dict[str, str] = {}
    for folder in (settings.output_folder_path, settings.output_model_path):
        state.update({f"{folder.name}/{k}": v for k, v in files_under(folder).items()})
    for path in (
        settings.records_db_path,
        settings.metrics_textfile_path,
        settings.log_folder_path / "fullprocess.log",
    ):
        state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return state


def fresh_clone(project: Project) -> Project:
    """``project`` laid out as a fresh clone: the generated folders with their .gitkeep, the Makefile, the
    walk-through's data."""
    for folder in GENERATED:
        (project.root / folder).mkdir()
        (project.root / folder / ".gitkeep").touch()
    shutil.copy(REPO / "Makefile", project.root)
    shutil.copytree(REPO / "walkthroughdata", project.root / "walkthroughdata")
    return project


def test_the_walkthrough_under_the_default_rule_then_make_clean_resets_every_artifact(project: Project) -> None:
    """Each step as users run it, its own process, in a fresh clone; then ``make clean`` leaves the shipped files."""
    fresh_clone(project)
    (project.root / "sourcedata" / "mine.csv").write_text((project.root / "sourcedata" / "dataset3.csv").read_text())
    shipped = files_under(project.root)

    step1 = project.run("fullprocess.py", config=project.practice_config)
    assert "deployed v0001" in step1.stderr and "summary: deployed" in step1.stderr

    step2 = project.run("fullprocess.py")
    assert (
        "version v0001 is current but ingesteddata/records.sqlite never recorded deploying it (deployed by another "
        "config sharing production_deployment, by hand, or by an interrupted run); recorded its deployment now"
    ) in step2.stderr
    assert (
        "drift check (significant): carried over: 26 new labelled rows with 13 positives; 100 rows and 10 positives "
        "needed; course rule raw: no drift: new F1 0.6923 is not below deployed score 0.5714"
    ) in step2.stderr
    assert (
        "v0001 was deployed outside this config's runs: diagnosing and reporting it on ingesteddata/finaldata.csv"
        in (step2.stderr)
    )
    assert "summary: carried over" in step2.stderr
    settings = project.settings()
    snapshot = (settings.output_model_path / SNAPSHOT_NAME).read_text()
    assert '"model_version": "v0001"' in snapshot and '"data_rows": 26' in snapshot  # production's 26 rows
    assert (settings.output_model_path / REPORT_PDF_NAME).exists()
    with project.store() as store:
        assert [row["version"] for row in store.deployments()] == ["v0001"]
    assert "stays deployed; nothing to do" in project.run("fullprocess.py").stderr  # recorded once, not again

    shutil.copy(DATASET5, project.root / "sourcedata")  # step 3
    step3 = project.run("fullprocess.py")
    assert (
        "v0001 on 126 new rows from dataset3.csv, dataset4.csv, dataset5.csv: drift check (significant): drift: new F1 "
        "0.2476 is significantly below reference F1 0.7500"
    ) in step3.stderr
    assert "course rule raw: drift: new F1 0.2476 is below deployed score 0.5714" in step3.stderr
    assert (
        "deployed v0002: trained on all ingested rows; F1 0.8571 on the test file testdata/testdata.csv" in step3.stderr
    )
    assert "summary: deployed" in step3.stderr
    assert len(files_under(project.root)) > len(shipped) + 20

    result = subprocess.run(["make", "clean"], cwd=project.root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert files_under(project.root) == shipped  # the user's own mine.csv stays; the walk-through's copy goes
    assert not [p for p in project.root.rglob(".*") if p.name != ".gitkeep"]  # no run lock, no temporary file


def test_the_walkthrough_under_the_course_rule_raw(production_project: Project) -> None:
    """Steps 2 and 3 decided by the course's rule (``main()`` in this process; the production store already knows
    the practice model, see tests/conftest.py: the adoption is followed above)."""
    project = production_project
    project.edit_config(drift_test="raw")
    step2 = project.run_in_process("fullprocess.py")
    assert "drift check (raw): no drift: new F1 0.6923 is not below deployed score 0.5714" in step2.stderr
    shutil.copy(DATASET5, project.root / "sourcedata")
    step3 = project.run_in_process("fullprocess.py")
    assert (
        "v0001 on 100 new rows from dataset5.csv: drift check (raw): drift: new F1 0.1013 is below deployed score 0.5714"
    ) in step3.stderr
    assert "deployed v0002: trained on the 100 newest rows (window); F1 0.8571 on the test file" in step3.stderr


def test_a_practice_run_after_a_production_run_leaves_production_untouched(project: Project) -> None:
    project.run_in_process("fullprocess.py")  # production bootstraps v0001 on sourcedata
    before = production_state(project)
    practice = project.run_in_process("fullprocess.py", config=project.practice_config)
    assert "version v0001 is current but practiceingested/records.sqlite never recorded deploying it" in (
        practice.stderr
    )
    assert production_state(project) == before
    settings = project.settings(project.practice_config)
    assert (settings.output_folder_path / FINAL_DATA_NAME).exists()
    assert (settings.output_model_path / SNAPSHOT_NAME).exists()  # practice's own diagnostics of v0001
    assert settings.metrics_textfile_path.exists()
