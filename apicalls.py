"""Call every API endpoint at the configured url and write the course's ``apireturns.txt``.

The report in ``output_model_path`` lists, for each call, the method, endpoint, status and the response
(pretty JSON; ``/metrics`` as Prometheus text). ``fullprocess.py`` calls :func:`call_all_endpoints` after a
redeploy when the API answers; ``.venv/bin/python apicalls.py`` does the same by hand (on the config's API url:
``api_url``, else the course's ``url`` or ``api_port``; the log says which). When nothing answers, it exits
non-zero saying how to start the API and writes nothing; when an endpoint fails, the report is still written
(the failure marked) and it exits non-zero naming the endpoint and the API's error message.
When ``RISK_API_TOKEN`` is set, it is sent as the bearer token.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from risk.artifacts import API_RETURNS_NAME
from risk.cli import make_parser, python_command, run_script
from risk.clock import utc_now
from risk.config import API_TOKEN_ENV, Settings
from risk.errors import UserFacingError
from risk.files import atomic_write_text

log = logging.getLogger("apicalls")


class ApiUnavailable(UserFacingError):
    """Nothing answers at the configured API url."""


class EndpointFailed(UserFacingError):
    """The API answered, but at least one endpoint returned an error."""


@dataclass(frozen=True)
class Call:
    """One request to make: method, endpoint and JSON body."""

    method: str
    endpoint: str
    body: dict[str, Any] | None = None

    def label(self) -> str:
        body = f" {json.dumps(self.body)}" if self.body is not None else ""
        return f"{self.method} /{self.endpoint}{body}"


@dataclass(frozen=True)
class Answer:
    """What the API said to one call."""

    call: Call
    status: int
    reason: str
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def shown_body(self) -> str:
        """The response as readable text: indented JSON when it is JSON, else as sent."""
        try:
            return json.dumps(json.loads(self.text), indent=2)
        except ValueError:
            return self.text.rstrip()

    def error(self) -> str:
        """The API's error message (the ``error`` field of its JSON), else the start of the body."""
        try:
            return str(json.loads(self.text)["error"])
        except (ValueError, KeyError, TypeError):
            return self.text.strip()[:200] or self.reason


def planned_calls(settings: Settings) -> list[Call]:
    """Every endpoint, with the course's prediction call on the test data."""
    return [
        Call("POST", "prediction", {"filepath": settings.shown_path(settings.test_data_file)}),
        Call("GET", "scoring"),
        Call("GET", "summarystats"),
        Call("GET", "diagnostics"),
        Call("GET", "health"),
        Call("GET", "metrics"),
    ]


def _headers() -> dict[str, str]:
    token = os.environ.get(API_TOKEN_ENV)
    return {"Authorization": f"Bearer {token}"} if token else {}


def _ask(session: requests.Session, base_url: str, call: Call, settings: Settings) -> Answer:
    url = base_url + call.endpoint
    try:
        response = session.request(
            call.method, url, json=call.body, headers=_headers(), timeout=settings.api_timeout_seconds
        )
    except requests.Timeout:
        raise ApiUnavailable(
            f"the API at {base_url} did not answer {call.label()} within "
            f"{settings.api_timeout_seconds:g}s (api_timeout_seconds in config)"
        ) from None
    except requests.RequestException as err:
        raise ApiUnavailable(
            f"no API answers at {base_url} ({type(err).__name__}); {start_api_hint(settings)}"
        ) from None
    return Answer(call, response.status_code, response.reason or "", response.text)


def start_api_hint(settings: Settings) -> str:
    """How to start the API and call it again, with the interpreter running now (a bare ``python`` may lack pandas)."""
    python = python_command(settings.project_dir)
    config = settings.shown_path(settings.config_path)
    return (
        f"start it with `{python} app.py --config {config}` or gunicorn (see README, 'The API'), "
        f"then rerun `{python} apicalls.py --config {config}`"
    )


def report_text(base_url: str, answers: list[Answer]) -> str:
    """The readable report: a header, then each call with its status and response."""
    lines = [f"API calls to {base_url} at {utc_now()}", ""]
    for answer in answers:
        verdict = "" if answer.ok else "   FAILED"
        lines += [f"== {answer.call.label()} -> {answer.status} {answer.reason}{verdict}", answer.shown_body(), ""]
    return "\n".join(lines)


def call_all_endpoints(settings: Settings, base_url: str | None = None) -> Path:
    """Call every endpoint, write ``apireturns.txt`` to ``output_model_path`` and return its path.

    Raises ApiUnavailable (nothing written) when the API does not answer, and EndpointFailed (after writing
    the report) when an endpoint answers with an error.
    """
    base_url = (base_url or settings.api_url).rstrip("/") + "/"
    with requests.Session() as session:
        answers = [_ask(session, base_url, call, settings) for call in planned_calls(settings)]
    path = atomic_write_text(settings.output_model_path / API_RETURNS_NAME, report_text(base_url, answers) + "\n")
    failed = [answer for answer in answers if not answer.ok]
    if failed:
        details = "; ".join(f"{a.call.method} /{a.call.endpoint} answered {a.status}: {a.error()}" for a in failed)
        raise EndpointFailed(f"{len(failed)} of {len(answers)} API call(s) failed: {details} (see {path})")
    log.info("called %d endpoints at %s; wrote %s", len(answers), base_url, path)
    return path


def main() -> None:
    parser = make_parser("Call every API endpoint and write apireturns.txt to output_model_path.")
    parser.add_argument("--url", help="base URL of the API (default: api_url from the config)")
    args = parser.parse_args()

    def step(settings: Settings) -> int:
        if args.url is None:
            log.info("%s", settings.api_url_line())
        print(call_all_endpoints(settings, args.url))
        return 0

    raise SystemExit(run_script(args, step, take_lock=False))


if __name__ == "__main__":
    main()
