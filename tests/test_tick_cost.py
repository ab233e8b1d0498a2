"""What a no-op cron tick loads: only what deciding "nothing new" needs, and it still logs that decision.

benchmarks/run.py measures the tick against a bare interpreter; this test keeps the modules that made it slow
(each costs milliseconds on every tick) from creeping back in, and keeps pandas, scikit-learn, matplotlib and
the modules that import them off it altogether."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import REPO, Project

# dataclasses pulls inspect (and ast, dis); logging.handlers pulls socket and queues; tempfile pulls random.
# None of them is needed to find out that nothing is new (see risk/tick.py). shutil is allowed: argparse loads it
# to size its help to the terminal.
NOT_ON_THE_TICK = {"dataclasses", "inspect", "logging.handlers", "socket", "tempfile", "random"}
HEAVY = {
    "pandas",
    "numpy",
    "sklearn",
    "scipy",
    "matplotlib",
    "pyarrow",
    "diagnostics",
    "ingestion",
    "training",
    "scoring",
    "reporting",
    "risk.datadrift",
    "risk.fastread",
    "risk.schema",
    "risk.model",
    "risk.deployed",
}


def test_a_no_op_tick_imports_no_module_it_does_not_need_and_still_logs(deployed_project: Project) -> None:
    project = deployed_project
    command = [
        sys.executable,
        "-X",
        "importtime",
        str(REPO / "fullprocess.py"),
        "--config",
        str(project.practice_config),
        "--quiet",
    ]
    env = {k: v for k, v in os.environ.items() if k != "RISK_CONFIG"}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "fullprocess" not in imported  # the script itself runs as __main__
    assert {"risk.config", "risk.store", "risk.inputscan", "risk.tick", "sqlite3", "logging"} <= imported
    assert not imported & NOT_ON_THE_TICK, sorted(imported & NOT_ON_THE_TICK)
    heavy = {name for name in imported if name in HEAVY or name.split(".")[0] in HEAVY}
    assert not heavy, sorted(heavy)
    log = (project.settings(project.practice_config).log_folder_path / "fullprocess.log").read_text()
    assert log.splitlines()[-1].endswith("stays deployed; nothing to do")
