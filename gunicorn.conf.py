"""Gunicorn settings for the API: ``gunicorn -c /path/to/project/gunicorn.conf.py wsgi:app``.

- Binds to the host and port of the config's API url (``api_url``, else the course's ``url`` or ``api_port``;
  loopback, 8000 by default) and logs which key it came from; ``--bind`` overrides.
- Workers: ``$WEB_CONCURRENCY`` if set, else the config's ``api_workers`` (2); ``--workers`` overrides. Each
  worker runs 8 threads (gthread), so a client that stalls mid-request holds one thread, not a whole worker
  (a buffering reverse proxy in front is still the answer to many slow clients: see README).
- The config is ``$RISK_CONFIG`` or ``config.json`` beside this file, as for every script (gunicorn's own
  ``--config`` names this file, not the project's config).
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

from risk.config import ConfigError, Settings, api_token, load_config, resolve_config_path  # noqa: E402  (stdlib only)

# Not the scripts' `--config PATH`: for gunicorn that flag names this settings file.
CONFIG_HINT = (
    "set RISK_CONFIG to the project's config.json, e.g. "
    "`RISK_CONFIG=/path/to/project/config.json gunicorn -c gunicorn.conf.py wsgi:app`"
)


def _load_settings() -> Settings:
    """The project's config, or an exit naming it and RISK_CONFIG (never the scripts' ``--config``)."""
    path = resolve_config_path(os.environ.get("RISK_CONFIG"))
    if not path.is_file():
        raise SystemExit(f"gunicorn.conf.py: config file not found: {path}; {CONFIG_HINT}")
    try:
        return load_config(path)
    except ConfigError as err:
        raise SystemExit(f"gunicorn.conf.py: {err}; {CONFIG_HINT}") from None


_settings = _load_settings()
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
    server.log.info("%s", _settings.api_url_line())


def child_exit(server, worker) -> None:
    """Tell prometheus-client a worker is gone (its counters still count; its live gauges do not)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics folder if this config made it."""
    if _OWN_METRICS_DIR:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
