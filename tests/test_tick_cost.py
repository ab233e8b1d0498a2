"""What a no-op cron tick loads: only what deciding "nothing new" needs, and it still logs that decision.

benchmarks/run.py measures the tick against a bare interpreter; this test keeps the modules that made it slow
(each costs milliseconds on every tick) from creeping back in, and keeps pandas, scikit-learn, matplotlib and
the modules that import them off it altogether."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO, Project

# dataclasses pulls inspect (and ast, dis); logging.handlers pulls socket, pickle and queues; shutil pulls
# bz2, lzma and zlib; tempfile pulls random. None of them is needed to find out that nothing is new.
NOT_ON_THE_TICK = {"dataclasses", "inspect", "logging.handlers", "socket", "shutil", "bz2", "lzma", "tempfile",
                   "random"}
HEAVY = {"pandas", "numpy", "sklearn", "scipy", "matplotlib", "pyarrow", "datadrift", "diagnostics", "ingestion",
         "training", "scoring", "reporting"}


def test_a_no_op_tick_imports_no_module_it_does_not_need_and_still_logs(deployed_project: Project) -> None:
    project = deployed_project
    command = [sys.executable, "-X", "importtime", str(REPO / "fullprocess.py"), "--config",
               str(project.practice_config), "--quiet"]
    env = {k: v for k, v in os.environ.items() if k != "RISK_CONFIG"}
    result = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "fullprocess" not in imported  # the script itself runs as __main__
    assert {"settings", "records", "datafiles", "plumbing", "sqlite3", "logging"} <= imported
    assert not imported & NOT_ON_THE_TICK, sorted(imported & NOT_ON_THE_TICK)
    top_level = {name.split(".")[0] for name in imported}
    assert not top_level & HEAVY, sorted(top_level & HEAVY)
    log = (project.root / "logs" / "fullprocess.log").read_text()
    assert log.splitlines()[-1].endswith("stays deployed; nothing to do")
