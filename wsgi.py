"""WSGI entry point for gunicorn: ``gunicorn -c gunicorn.conf.py wsgi:app`` (config from $RISK_CONFIG).

gunicorn.conf.py binds to the config's API url (``api_url``, else ``url`` or ``api_port``), sets the worker count
and the Prometheus multiprocess folder; see README, "The API", for the full command and a systemd unit.
"""

from app import create_app
from risk.logs import setup_logging

setup_logging()
app = create_app()
