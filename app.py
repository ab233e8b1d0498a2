"""The API server: ``.venv/bin/python app.py`` serves the deployed model with Flask's server on the config's API
url (``api_url``, else the course's ``url`` or ``api_port``; loopback and 8000 by default, no debug) and logs which
key it came from. For production use gunicorn (``wsgi.py``, ``gunicorn.conf.py``). The endpoints and the app itself
are built by ``risk.api.create_app``; see README, "The API".
"""

from __future__ import annotations

import logging

from risk.api import create_app
from risk.cli import make_parser, run_script
from risk.config import Settings

__all__ = ["create_app", "main"]

log = logging.getLogger("app")


def main() -> None:
    parser = make_parser("Serve the deployed model over HTTP with Flask's server (use gunicorn for production).")
    parser.add_argument("--host", help="interface to listen on (default: the host of the config's API url)")
    parser.add_argument("--port", type=int, help="port to listen on (default: the port of the config's API url)")
    args = parser.parse_args()

    def serve(settings: Settings) -> int:
        app = create_app(settings)  # first: a bad token stops it with one line
        log.info("%s", settings.api_url_line())
        host, port = settings.api_bind
        app.run(host=args.host or host, port=args.port or port, debug=False, use_reloader=False, threaded=True)
        return 0

    raise SystemExit(run_script(args, serve, take_lock=False))


if __name__ == "__main__":
    main()
