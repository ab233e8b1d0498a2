"""WSGI entry point for gunicorn: ``gunicorn --chdir /path/to/project wsgi:app`` (config from $RISK_CONFIG)."""

from app import create_app

app = create_app()
