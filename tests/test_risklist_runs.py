"""The risk list in ``fullprocess.py`` runs (its ``main()`` in this process, ``Project.run_in_process``): written after a deployment for the bundled 10,000-client book,
left alone by an unchanged tick, refreshed when the book changes, and a bad book rejected by name without
stopping the run."""

from __future__ import annotations

import pandas as pd
import pytest

from risk.artifacts import RISK_LIST_NAME
from tests.support import Project

pytestmark = pytest.mark.slow


def risk_list(project: Project) -> pd.DataFrame:
    return pd.read_csv(project.settings().output_model_path / RISK_LIST_NAME, keep_default_na=False)


def test_the_main_job_ranks_the_bundled_book_and_a_quiet_tick_leaves_it(deployed_project: Project) -> None:
    first = deployed_project.run_in_process("fullprocess.py")  # the production config ranks clientbook/clients.csv
    ranked = risk_list(deployed_project)
    assert len(ranked) == 10_000 and list(ranked["rank"][:3]) == [1, 2, 3]
    assert ranked["probability"].is_monotonic_decreasing and set(ranked["model_version"]) == {"v0001"}
    assert f"riskiest {ranked['corporation'][0]}" in first.stderr
    path = deployed_project.settings().output_model_path / RISK_LIST_NAME
    written = path.stat().st_mtime_ns

    quiet = deployed_project.run_in_process("fullprocess.py")
    assert "nothing to do" in quiet.stderr and path.stat().st_mtime_ns == written


def test_a_changed_book_refreshes_the_list_on_the_next_tick(production_project: Project) -> None:
    deployed_project = production_project  # whose production tick ranked the book
    deployed_project.run_in_process("fullprocess.py")  # the course files: nothing to rank again
    book = deployed_project.root / "clientbook" / "clients.csv"
    clients = pd.read_csv(book, keep_default_na=False)
    riskiest = risk_list(deployed_project)["corporation"][0]
    clients = clients[clients["corporation"] != riskiest]  # the riskiest client left the book
    clients.to_csv(book, index=False)

    result = deployed_project.run_in_process("fullprocess.py")
    assert "the client book clientbook/clients.csv or the deployed version changed" in result.stderr
    ranked = risk_list(deployed_project)
    assert len(ranked) == 9_999 and riskiest not in set(ranked["corporation"])
    with deployed_project.store() as store:
        assert [row["rows"] for row in store.risk_lists(2)] == [9_999, 10_000]


def test_a_bad_book_is_rejected_by_name_and_the_run_goes_on(production_project: Project) -> None:
    deployed_project = production_project
    book = deployed_project.root / "clientbook" / "clients.csv"
    text = book.read_text().splitlines()
    text[5] = text[5].rsplit(",", 1)[0] + ",lots"  # a number of employees that is not a number
    book.write_text("\n".join(text) + "\n")
    result = deployed_project.run_in_process("fullprocess.py", "--quiet")
    [line] = [line for line in result.stderr.splitlines() if "rejected the client book" in line]
    assert "clientbook/clients.csv" in line and "'lots'" in line and "number_of_employees" in line
    assert result.returncode == 0  # the drift check of the run stands
    with deployed_project.store() as store:
        assert store.runs()[0]["outcome"] == "carried over"


def test_scoring_ranks_any_file_of_clients_on_demand(deployed_project: Project, tmp_path) -> None:
    clients = tmp_path / "prospects.csv"
    clients.write_text(
        "corporation,lastmonth_activity,lastyear_activity,number_of_employees\nquiet,1,2,3\nbusy,900,9000,5000\n"
    )
    out = tmp_path / "ranked.csv"
    result = deployed_project.run("scoring.py", "--clients", str(clients), "--out", str(out))
    ranked = pd.read_csv(out, keep_default_na=False)
    assert list(ranked.columns) == ["rank", "corporation", "probability", "band", "reason", "model_version"]
    assert sorted(ranked["corporation"]) == ["busy", "quiet"] and list(ranked["rank"]) == [1, 2]
    assert "\r" not in result.stderr  # no progress bar without a terminal (cron, a pipe)
    missing = deployed_project.run(
        "scoring.py", "--clients", str(tmp_path / "none.csv"), "--out", str(out), check=False
    )
    assert missing.returncode == 2 and "none.csv does not exist" in missing.stderr
