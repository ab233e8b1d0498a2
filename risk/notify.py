"""The one place that tells people about a run: quiet-mode lines, a Prometheus textfile and a webhook post.

Everything here reads one :class:`risk.outcome.RunRecord`; :func:`announce` does all three at the end of a run.
Nothing here may stop the run: a textfile that cannot be written or a webhook that fails is one WARNING line.
Standard library only: this runs at the end of every run, including the cheap no-op tick.

Quiet lines
    One line per event of the record, logged at ``NOTICE`` (25, between INFO and WARNING) on logger
    ``risk.notify``, so ``--quiet`` (warnings and errors, plus NOTICE) still shows drift, redeploys, rejected
    challengers, data drift, rejected files and failures in cron mail. A run without events says nothing.

Textfile (node_exporter's textfile collector; name the file ``*.prom``, the collector reads nothing else)
    The text exposition format, version 0.0.4: per metric a ``# HELP name text`` line, a ``# TYPE name gauge``
    line, then one ``name{label="value",...} number`` line per sample; no timestamps (the collector forbids
    them). Label values escape ``\\`` as ``\\\\``, ``"`` as ``\\"`` and a newline as ``\\n``; HELP text escapes
    ``\\`` and newlines. The file is replaced whole and atomically on every run (temp file in the same folder,
    fsync, ``os.replace``), so a scrape sees the previous run or this one, never half of either.

    ===================================  ==================  ====================================================
    metric                               labels              value (sample omitted when unknown, see below)
    ===================================  ==================  ====================================================
    risk_last_run_timestamp_seconds      -                   end of the run (finished_at, else started_at), unix s
    risk_last_run_id                     -                   the run's id in the records store
    risk_last_run_exit_code              -                   the exit code the outcome carries
    risk_last_run_success                -                   1 when the exit code is 0, else 0
    risk_last_run_outcome                outcome             1 for the run's outcome, 0 for every other RunOutcome
    risk_drift                           role, rule          1 drift, 0 no drift; role ``acting`` (the rule that
                                                             decides, rule = its name) and role ``course`` (rule
                                                             ``raw``, the course's rule on the same rows)
    risk_new_f1                          -                   the deployed model's F1 on the new labelled rows
    risk_reference_f1                    -                   the F1 the acting rule compared it with
    risk_p_value                         -                   the acting rule's p-value, when it has a test
    risk_batch_rows                      -                   new labelled rows the decision rests on (0: none)
    risk_batch_positives                 -                   of those, rows with exited=1
    risk_data_drift                      verdict             1 when the data drift verdict is ``drift``, else 0
    risk_data_drift_feature              feature             1 for each feature the data drift check flagged
    risk_deployed_version_info           version             1, for the version serving after the run
    ===================================  ==================  ====================================================

    Unknown figures are omitted, not written as NaN: when the run did not get that far (no outcome, no verdict,
    no F1, no p-value, an unreadable timestamp, a non-finite number) the sample is left out, and a metric with no
    sample is left out whole (HELP and TYPE too). Why: alert rules stay plain comparisons (``risk_drift == 1``,
    ``risk_new_f1 < 0.7``) that are simply silent when nothing was decided, ``absent(...)`` says "not known"
    outright, and no NaN leaks into ``avg_over_time`` or recording rules (one NaN makes an average NaN). The
    file is rewritten every run, so a figure the last run did not reach disappears instead of going stale.

Webhook
    A JSON POST (``Content-Type: application/json``) of :func:`webhook_payload`, only for a record with an
    event of kind drift, redeploy, challenger rejected or failure (:func:`should_post`). Payload, format 1::

        {"format": 1, "run_id": 12, "started_at": "2026-11-23T01:02:03Z", "finished_at": "...",
         "outcome": "deployed", "exit_code": 0, "succeeded": true,
         "deployed_version": "v4", "previous_version": "v3",
         "drift": {"rule": "significant", "drift": true, "raw_drift": true, "new_f1": 0.61,
                   "reference_f1": 0.8, "p_value": 0.003, "batch_rows": 40, "batch_positives": 12},
         "data_drift": {"verdict": "drift", "features": ["lastmonth_activity"]},
         "events": [{"kind": "drift", "message": "..."}, {"kind": "redeploy", "message": "..."}],
         "text": "the quiet lines, one per line"}

    Unknown values are ``null`` (never NaN, which is not JSON). ``text`` is what Slack- and Mattermost-style
    incoming webhooks display, so the payload can go to one of those as it is.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from risk.clock import unix_seconds
from risk.files import atomic_write_text
from risk.logs import NOTICE
from risk.outcome import Event, EventKind, RunOutcome, RunRecord

log = logging.getLogger("risk.notify")

METRIC_PREFIX = "risk_"
COURSE_RULE = "raw"  # the course's drift rule: new F1 below the deployed model's F1
MESSAGE_LIMIT = 240  # characters of an event message in a quiet line; a traceback's text must not flood cron mail
TEXTFILE_MODE = 0o644  # node_exporter usually runs as another user and must read the file
WEBHOOK_KINDS = frozenset({EventKind.DRIFT, EventKind.REDEPLOY, EventKind.CHALLENGER_REJECTED, EventKind.FAILURE})
WEBHOOK_FORMAT = 1
WEBHOOK_READ_LIMIT = 65536  # bytes of the answer read (and ignored): enough to finish any sane reply


# --- quiet lines -------------------------------------------------------------------------------------------


def quiet_lines(record: RunRecord) -> list[str]:
    """One short, self-contained line per event of the run; none for a run without events.

    The event's message says what happened in the pipeline's words; the figures in parentheses come from the
    record (version, F1, p-value, rows, what happens next), so messages need not repeat them.
    """
    return [quiet_line(record, event) for event in record.events]


def quiet_line(record: RunRecord, event: Event) -> str:
    """``run 12 drift: <message> (rule significant; v3: F1 0.6100 vs 0.8000; ...)``: one line, whatever the message."""
    head = f"run {record.run_id} " if record.run_id is not None else ""
    text = f"{head}{event.kind.value}: {_one_line(event.message)}"
    context = [part for part in _CONTEXT[event.kind](record) if part]
    return f"{text} ({'; '.join(context)})" if context else text


def tell_quiet(record: RunRecord) -> None:
    """Log each quiet line at NOTICE on ``risk.notify``."""
    for line in quiet_lines(record):
        log.log(NOTICE, "%s", line)


def _one_line(message: str) -> str:
    """The message on one line (any whitespace run becomes one space), cut at MESSAGE_LIMIT characters."""
    flat = " ".join(message.split())
    return flat if len(flat) <= MESSAGE_LIMIT else flat[: MESSAGE_LIMIT - 3] + "..."


def _judged_version(record: RunRecord) -> str | None:
    """The version the run checked: the one serving before it (the same as after, unless it redeployed)."""
    return record.previous_version or record.deployed_version


def _f1_figures(record: RunRecord) -> str | None:
    if record.new_f1 is None:
        return None
    version = _judged_version(record)
    figures = f"F1 {record.new_f1:.4f}"
    if record.reference_f1 is not None:
        figures += f" vs {record.reference_f1:.4f}"
    return f"{version}: {figures}" if version else figures


def _p_figure(record: RunRecord) -> str | None:
    return f"p={record.p_value:.3g}" if record.p_value is not None else None


def _batch_figure(record: RunRecord) -> str | None:
    if not record.batch_rows:
        return None
    return f"{record.batch_rows} rows, {record.batch_positives} positive"


def _next_step(record: RunRecord) -> str | None:
    """What the run's outcome means for the people reading: which version serves now, what needs fixing."""
    serving = record.deployed_version or "no model"
    outcome = record.outcome
    if outcome is None:
        return None
    if outcome is RunOutcome.DEPLOYED:
        return f"next: {serving} serves now"
    if outcome is RunOutcome.DEPLOYED_WITH_ERRORS:
        return f"next: {serving} serves now; a later step failed (exit {outcome.exit_code})"
    if outcome is RunOutcome.CHALLENGER_REJECTED:
        return f"next: {serving} stays deployed"
    if outcome in (RunOutcome.NO_DRIFT, RunOutcome.CHECKED_WITH_ERRORS, RunOutcome.CARRIED_OVER):
        failed = f"; a side check failed (exit {outcome.exit_code})" if not outcome.succeeded else ""
        return f"next: {serving} stays deployed{failed}"
    if not outcome.succeeded:
        return f"next: {serving} still serves; the run {outcome.value} (exit {outcome.exit_code})"
    return None


def _drift_context(record: RunRecord) -> list[str | None]:
    rule = f"rule {record.drift_rule}" if record.drift_rule else None
    return [rule, _f1_figures(record), _p_figure(record), _batch_figure(record), _next_step(record)]


def _redeploy_context(record: RunRecord) -> list[str | None]:
    if record.deployed_version is None:
        return [_next_step(record)]
    moved = f"{record.previous_version or 'nothing'} -> {record.deployed_version}"
    errors = record.outcome is RunOutcome.DEPLOYED_WITH_ERRORS
    return [moved, f"a later step failed (exit {RunOutcome.DEPLOYED_WITH_ERRORS.exit_code})" if errors else None]


def _challenger_context(record: RunRecord) -> list[str | None]:
    return [_f1_figures(record), _next_step(record)]


def _data_drift_context(record: RunRecord) -> list[str | None]:
    features = f"features: {', '.join(record.drifted_features)}" if record.drifted_features else None
    version = _judged_version(record)
    against = f"against {version}'s training data" if version else None
    return [features, against, _next_step(record)]


def _rejected_file_context(record: RunRecord) -> list[str | None]:
    return ["not ingested"]


def _failure_context(record: RunRecord) -> list[str | None]:
    return [_next_step(record)]


_CONTEXT: dict[EventKind, Callable[[RunRecord], list[str | None]]] = {
    EventKind.DRIFT: _drift_context,
    EventKind.REDEPLOY: _redeploy_context,
    EventKind.CHALLENGER_REJECTED: _challenger_context,
    EventKind.DATA_DRIFT: _data_drift_context,
    EventKind.REJECTED_FILE: _rejected_file_context,
    EventKind.FAILURE: _failure_context,
}


# --- Prometheus textfile -----------------------------------------------------------------------------------


# NamedTuples, not dataclasses: dataclasses pulls in inspect, which the cheap tick must not pay for.
class Sample(NamedTuple):
    """One line of a metric: its labels (name, value pairs, in order) and its number."""

    labels: tuple[tuple[str, str], ...]
    value: float


class Gauge(NamedTuple):
    """One metric family: name (with the prefix), HELP text and its samples."""

    name: str
    help: str
    samples: tuple[Sample, ...]


def gauges(record: RunRecord) -> list[Gauge]:
    """The metrics of the module docstring's table for this run, unknown samples and empty metrics left out."""
    families = [
        _gauge(
            "last_run_timestamp_seconds",
            "End of the last run (finished_at, else started_at), unix seconds.",
            _plain(_unix_seconds(record.finished_at or record.started_at)),
        ),
        _gauge("last_run_id", "Id of the last run in the records store.", _plain(record.run_id)),
        _gauge(
            "last_run_exit_code",
            "Exit code of the last run.",
            _plain(record.outcome.exit_code if record.outcome else None),
        ),
        _gauge(
            "last_run_success",
            "1 when the last run exited 0, else 0.",
            _plain(record.outcome.succeeded if record.outcome else None),
        ),
        _gauge(
            "last_run_outcome",
            "Outcome of the last run: 1 for its outcome, 0 for every other.",
            _outcome_samples(record.outcome),
        ),
        _gauge(
            "drift",
            "Drift verdict (1 drift, 0 no drift) of the acting rule and of the course rule.",
            _drift_samples(record),
        ),
        _gauge("new_f1", "F1 of the deployed model on the new labelled rows.", _plain(record.new_f1)),
        _gauge("reference_f1", "F1 the acting drift rule compared the new F1 with.", _plain(record.reference_f1)),
        _gauge("p_value", "p-value of the acting drift rule's test.", _plain(record.p_value)),
        _gauge("batch_rows", "New labelled rows the drift decision rests on.", _plain(record.batch_rows)),
        _gauge("batch_positives", "Rows with exited=1 among them.", _plain(record.batch_positives)),
        _gauge(
            "data_drift",
            "1 when the data drift verdict (label verdict) is drift, else 0.",
            _data_drift_samples(record.data_drift),
        ),
        _gauge(
            "data_drift_feature",
            "1 for each feature the data drift check flagged.",
            tuple(Sample((("feature", name),), 1) for name in record.drifted_features),
        ),
        _gauge(
            "deployed_version_info",
            "The version serving after the last run (value 1).",
            _labelled("version", record.deployed_version),
        ),
    ]
    return [family for family in families if family.samples]


def render_textfile(record: RunRecord) -> str:
    """The textfile's text: the exposition format of the module docstring, ending with a newline."""
    lines: list[str] = []
    for family in gauges(record):
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} gauge")
        lines.extend(f"{family.name}{_label_text(sample.labels)} {_number(sample.value)}" for sample in family.samples)
    return "\n".join(lines) + "\n"


def write_textfile(path: Path, record: RunRecord) -> Path:
    """Write the run's metrics to ``path`` atomically (folder made if missing); returns ``path``."""
    if path.suffix != ".prom":
        log.warning(
            "metrics textfile %s does not end in .prom, so node_exporter's textfile collector ignores it; "
            "rename it (e.g. risk.prom)",
            path,
        )
    # .tmp: the collector reads *.prom only; not durable: a metrics file may be a run old after a power cut, but
    # every tick writes it and an fsync on each would cost more than the rest of a no-op tick
    atomic_write_text(path, render_textfile(record), temp_suffix=".tmp", durable=False)
    return path


def _gauge(name: str, help_text: str, samples: tuple[Sample, ...]) -> Gauge:
    return Gauge(METRIC_PREFIX + name, help_text, samples)


def _known(value: float | int | bool | None) -> bool:
    return value is not None and math.isfinite(value)


def _plain(value: float | int | bool | None) -> tuple[Sample, ...]:
    """One unlabelled sample, or none when the value is unknown (None, NaN, infinite)."""
    return (Sample((), value),) if _known(value) else ()


def _labelled(label: str, text: str | None) -> tuple[Sample, ...]:
    return (Sample(((label, text),), 1),) if text is not None else ()


def _outcome_samples(outcome: RunOutcome | None) -> tuple[Sample, ...]:
    if outcome is None:
        return ()
    return tuple(Sample((("outcome", each.value),), int(each is outcome)) for each in RunOutcome)


def _drift_samples(record: RunRecord) -> tuple[Sample, ...]:
    samples = []
    if record.drift is not None:
        samples.append(Sample((("role", "acting"), ("rule", record.drift_rule or "unknown")), int(record.drift)))
    if record.raw_drift is not None:
        samples.append(Sample((("role", "course"), ("rule", COURSE_RULE)), int(record.raw_drift)))
    return tuple(samples)


def _data_drift_samples(verdict: str | None) -> tuple[Sample, ...]:
    return (Sample((("verdict", verdict),), int(verdict == "drift")),) if verdict is not None else ()


def _unix_seconds(timestamp: str | None) -> float | None:
    """Unix seconds of a pipeline timestamp; None if there is none or it is unreadable."""
    try:
        return unix_seconds(timestamp) if timestamp else None
    except ValueError:
        return None


def _number(value: float | int | bool) -> str:
    if isinstance(value, bool):
        return str(int(value))
    return str(value) if isinstance(value, int) else repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape_label(value)}"' for name, value in labels) + "}"


# --- webhook -----------------------------------------------------------------------------------------------


def should_post(record: RunRecord) -> bool:
    """True when the run has an event worth a webhook: drift, redeploy, challenger rejected or failure."""
    return any(event.kind in WEBHOOK_KINDS for event in record.events)


def webhook_payload(record: RunRecord) -> dict[str, Any]:
    """The JSON object posted (documented in the module docstring); unknown values are None."""
    outcome = record.outcome
    return {
        "format": WEBHOOK_FORMAT,
        "run_id": record.run_id,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "outcome": outcome.value if outcome else None,
        "exit_code": outcome.exit_code if outcome else None,
        "succeeded": outcome.succeeded if outcome else None,
        "deployed_version": record.deployed_version,
        "previous_version": record.previous_version,
        "drift": {
            "rule": record.drift_rule,
            "drift": _json_flag(record.drift),
            "raw_drift": _json_flag(record.raw_drift),
            "new_f1": _json_number(record.new_f1),
            "reference_f1": _json_number(record.reference_f1),
            "p_value": _json_number(record.p_value),
            "batch_rows": int(record.batch_rows),
            "batch_positives": int(record.batch_positives),
        },
        "data_drift": {"verdict": record.data_drift, "features": list(record.drifted_features)},
        "events": [{"kind": event.kind.value, "message": event.message} for event in record.events],
        "text": "\n".join(quiet_lines(record)),
    }


def post_webhook(url: str, record: RunRecord, timeout: float) -> bool:
    """POST the run's payload to ``url``; True when it answered 2xx. Never raises; never takes much over ``timeout``.

    The whole call (name lookup, connect, send, read) runs in a daemon thread joined with ``timeout``, so a server
    that accepts and never answers, or trickles bytes, cannot stall the run. Any failure is one WARNING line naming
    the webhook's origin (scheme, host, port: the path is left out because webhook URLs often carry their secret
    token there) and the reason. Posts whatever record it is given; :func:`announce` asks :func:`should_post`.
    """
    problem = _webhook_url_problem(url)
    if problem is None and not (timeout > 0):
        problem = f"the webhook timeout for {_origin(url)} must be a positive number of seconds, not {timeout!r}"
    if problem is not None:
        log.warning("webhook not posted: %s", problem)
        return False
    try:
        body = json.dumps(webhook_payload(record), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as err:  # a figure of a type json does not know: a bug, but not the run's end
        log.warning("webhook to %s not posted: the run record does not serialise to JSON (%s)", _origin(url), err)
        return False
    reason = _bounded(lambda: _post(url, body, timeout), timeout)
    if reason is not None:
        log.warning("webhook to %s failed: %s (the run goes on)", _origin(url), reason)
        return False
    return True


def _webhook_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be posted to (it must be http:// or https:// with a host), or None."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port, here rather than inside the thread
    except ValueError as err:
        return f"the webhook URL is malformed ({err}); fix the webhook URL setting"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        scheme = parts.scheme or "none"
        return (
            f"the webhook URL must be http://host/... or https://host/... (got scheme {scheme!r}"
            f"{'' if parts.hostname else ', no host'}); fix the webhook URL setting"
        )
    return None


def _origin(url: str) -> str:
    """scheme://host[:port] of a checked URL, without user, path or query (where webhook secrets live)."""
    parts = urllib.parse.urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}"


def _post(url: str, body: bytes, timeout: float) -> str | None:
    """One POST; None on a 2xx answer, else the reason. Runs in the webhook thread, so it never logs."""
    # Imported here, not at the top: urllib.request pulls in http.client, email and ssl (tens of ms), and the
    # cheap no-op tick, which imports this module, never posts.
    import urllib.error
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        """A redirect is a failure: urllib would follow a 301/302 with a GET, drop the payload and say OK."""

        def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
            return None

    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "risk-notify/1"},
    )
    opener = urllib.request.build_opener(NoRedirects)  # keeps the environment's proxy settings
    try:
        with opener.open(request, timeout=timeout) as answer:
            answer.read(WEBHOOK_READ_LIMIT)
    except urllib.error.HTTPError as err:
        return f"HTTP {err.code} {err.reason}"
    except urllib.error.URLError as err:
        return _no_answer(timeout) if isinstance(err.reason, TimeoutError) else str(err.reason)
    except TimeoutError:  # the socket's own timeout, racing the thread's join: the same news, said the same way
        return _no_answer(timeout)
    except Exception as err:  # noqa: BLE001 - bad status lines, resets, TLS errors: all one warning
        return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return None


def _bounded(action: Callable[[], str | None], timeout: float) -> str | None:
    """Run ``action`` in a daemon thread for at most ``timeout`` seconds; its result, or why there is none."""
    results: list[str | None] = []

    def run() -> None:
        try:
            results.append(action())
        except BaseException as err:  # noqa: BLE001 - a thread's exception would only reach the thread's hook
            results.append(f"{type(err).__name__}: {err}")

    # Daemon: a server that trickles bytes may keep the thread alive after we stop waiting; the process may still exit.
    worker = threading.Thread(target=run, name="risk-webhook", daemon=True)
    try:
        worker.start()
    except RuntimeError as err:  # "can't start new thread": out of threads, so no post, and no raise either
        return f"could not start the webhook thread ({err})"
    worker.join(timeout)
    return results[0] if results else _no_answer(timeout)


def _no_answer(timeout: float) -> str:
    return f"no complete answer within {timeout:g} s"


# The pipeline may hand over numpy scalars (numpy.bool_ is no bool, numpy.int64 no int); json takes neither.
def _json_number(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _json_flag(value: bool | None) -> bool | None:
    return bool(value) if value is not None else None


# --- all three ---------------------------------------------------------------------------------------------


def announce(record: RunRecord, *, textfile: Path | None, webhook_url: str | None, webhook_timeout: float) -> None:
    """Quiet lines, then the textfile (if a path is set), then the webhook (if a URL is set and should_post).

    Never raises for the textfile or the webhook: a failure is a WARNING and the run goes on.
    """
    tell_quiet(record)
    if textfile is not None:
        try:
            write_textfile(textfile, record)
        except Exception as err:  # noqa: BLE001 - metrics are a side channel; the run's result stands
            log.warning(
                "metrics textfile %s not written: %s (the run goes on; check the folder exists and is writable)",
                textfile,
                err,
            )
    if webhook_url and should_post(record):
        post_webhook(webhook_url, record, webhook_timeout)
