"""Gunicorn settings for the API: ``gunicorn -c /path/to/project/gunicorn.conf.py wsgi:app``.

- Binds to the host and port of the config's ``api_url`` (loopback, 8000 by default); ``--bind`` overrides.
- Workers: ``$WEB_CONCURRENCY`` if set, else the config's ``api_workers`` (2); ``--workers`` overrides. Each
  worker runs 8 threads (gthread), so a client that stalls mid-request holds one thread, not a whole worker
  (a buffering reverse proxy in front is still the answer to many slow clients: see README).
- The config is ``$RISK_CONFIG`` or ``config.json`` beside this file, as for every script.
- /metrics across workers: each worker counts in its own memory, so the workers share a prometheus-client
  multiprocess folder (``$PROMETHEUS_MULTIPROC_DIR``, or a fresh temporary folder removed on exit) and a
  scrape of any worker reports the sums over all of them.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

CODE_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(CODE_DIR))

from risk.config import ConfigError, api_token, load_config  # noqa: E402  (stdlib only: the master stays light)

try:
    _settings = load_config(os.environ.get("RISK_CONFIG"))
except ConfigError as _err:
    raise SystemExit(f"gunicorn.conf.py: {_err} (set RISK_CONFIG to the project's config.json)") from None
try:
    api_token()  # checked here too, so a bad token stops the master with one line, not each worker with a traceback
except ConfigError as _err:
    raise SystemExit(f"gunicorn.conf.py: {_err}") from None
_host, _port = _settings.api_bind

chdir = str(CODE_DIR)
bind = [f"{_host}:{_port}"]
workers = int(os.environ.get("WEB_CONCURRENCY") or _settings.api_workers)
worker_class = "gthread"  # threads: a few slow or stalled clients cannot take every worker
threads = 8
timeout = 60
graceful_timeout = 20

_OWN_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _OWN_METRICS_DIR:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="risk-api-metrics-")


def on_starting(server) -> None:
    """Start the metrics of this server from zero (a shared folder may hold files of an earlier run)."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()


def child_exit(server, worker) -> None:
    """Tell prometheus-client a worker is gone (its counters still count; its live gauges do not)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics folder if this config made it."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
