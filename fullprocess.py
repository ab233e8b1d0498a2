"""The cron job: new data? ingest it; model drift? retrain, score, redeploy, diagnose, report, call the API.

A tick with no new files (by name and content) exits 0 after reading only file stats and the records store:
pandas, scikit-learn and matplotlib are imported only when there is work. The F1 drift test is chosen in
config (``raw``, ``parametric`` or ``nonparametric``, see :func:`drift_decision`). Every new batch is also
checked for feature-level data drift against the deployed version's training reference and recorded; data
drift alone retrains only when ``data_drift_triggers_retrain`` is true (default: report only). With nothing
deployed yet the run bootstraps straight through training and deployment. One run at a time: a second one
exits 0 at once. The run ends with a summary of what it did and why; the exit code is non-zero only on a real
failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from risk.cli import make_parser, run_script
from risk.config import MIN_DRIFT_HISTORY, Settings
from risk.inputscan import DataFile
from risk.store import DriftCheckRow, RecordsStore
from risk.tick import look
from risk.versions import current_version

log = logging.getLogger("fullprocess")

LOG_FILE_NAME = "fullprocess.log"
API_PROBE_TIMEOUT_SECONDS = 2.0


# --- the drift test ---


class DriftDecision(NamedTuple):
    """Whether the deployed model's F1 on new data counts as drift, with the numbers behind it."""

    test: str
    new_score: float
    deployed_score: float
    threshold: float
    history_size: int
    drift: bool
    reason: str


def drift_decision(test: str, new_score: float, deployed_score: float, history: list[float]) -> DriftDecision:
    """Apply the configured drift test; only a score *below* the threshold is drift (lower tail).

    - ``raw`` (the course rule): drift when the new score is lower than the deployed ``latestscore.txt``.
    - ``parametric``: drift when it is more than 2 standard deviations (sample stdev) below the mean of the
      score history.
    - ``nonparametric``: drift when it is below Q1 - 1.5 IQR of the score history (quartiles by linear
      interpolation, as numpy's default).

    The statistical tests need at least MIN_DRIFT_HISTORY past scores; with fewer they fall back to ``raw`` and say so.
    """
    import statistics  # imported here: the no-op tick never needs it

    used, note = test, ""
    if test != "raw" and len(history) < MIN_DRIFT_HISTORY:
        used, note = "raw", f" ({test} test needs {MIN_DRIFT_HISTORY} past scores, have {len(history)}: used raw)"
    if used == "raw":
        threshold = deployed_score
        rule = f"deployed score {deployed_score:.4f}"
    elif used == "parametric":
        mean, stdev = statistics.fmean(history), statistics.stdev(history)
        threshold = mean - 2 * stdev
        rule = f"mean {mean:.4f} - 2 x stdev {stdev:.4f} = {threshold:.4f} of {len(history)} past scores"
    elif used == "nonparametric":
        q1, _, q3 = statistics.quantiles(history, n=4, method="inclusive")
        threshold = q1 - 1.5 * (q3 - q1)
        rule = f"Q1 {q1:.4f} - 1.5 x IQR {q3 - q1:.4f} = {threshold:.4f} of {len(history)} past scores"
    else:
        raise ValueError(f"unknown drift test {test!r}")
    drift = new_score < threshold
    verdict = "drift" if drift else "no drift"
    relation = "below" if drift else "not below"
    reason = f"{verdict}: new F1 {new_score:.4f} is {relation} {rule}{note}"
    return DriftDecision(test, new_score, deployed_score, threshold, len(history), drift, reason)


# --- a run ---


class RunReport:
    """What this run did and why, step by step, with timings; logged at the end."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.timings: dict[str, float] = {}

    def add(self, line: str) -> None:
        log.info("%s", line)
        self.lines.append(line)

    def timed(self, step: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return action()
        finally:
            self.timings[step] = round(time.perf_counter() - started, 3)

    def text(self) -> str:
        steps = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.timings.items())
        return "\n".join([*self.lines, f"timings: {steps}" if steps else "timings: none"])


def api_answers(url: str, timeout: float = API_PROBE_TIMEOUT_SECONDS) -> bool:
    """True when something answers HTTP at ``url`` (any status), False when nothing listens or it times out."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def _check_model_drift(
    settings: Settings, store: RecordsStore, batch: Any, names: list[str], report: RunReport
) -> bool:
    """Score the deployed model on the new batch, decide with the configured test, record it; True on drift."""
    from risk.deployed import load_deployed_model
    from risk.schema import TARGET
    from scoring import f1_on_frame

    deployed = load_deployed_model(settings)
    if not (batch[TARGET] == 1).any():
        report.add(
            f"drift check ({settings.drift_test}) of {deployed.version} skipped: none of the {len(batch)} new rows "
            f"has {TARGET}=1, so F1 is undefined on them (not drift; the data drift check still runs)"
        )
        return False
    new_score = f1_on_frame(deployed.model, batch)
    history = store.batch_score_history(deployed.version, settings.drift_history_size)
    decision = drift_decision(settings.drift_test, new_score, deployed.score, history)
    store.record_score("batch", new_score, len(batch), ", ".join(names), deployed.sha256, deployed.version)
    store.record_drift_check(
        DriftCheckRow(decision.test, deployed.version, decision.deployed_score, decision.new_score, decision.threshold,
                      decision.history_size, decision.drift, None, len(batch), int((batch[TARGET] == 1).sum()),
                      "retrained" if decision.drift else "no drift", decision.reason, tuple(names), {})
    )
    report.add(f"drift check ({settings.drift_test}) of {deployed.version} on {len(batch)} new rows: {decision.reason}")
    return decision.drift


def _check_data_drift(settings: Settings, store: RecordsStore, batch: Any, names: list[str], report: RunReport) -> str:
    """Compare the new batch with the deployed version's training reference and record it; returns the verdict.

    A failure is logged and reported (verdict ``failed``) but does not stop the F1 check's decision.
    """
    import diagnostics

    try:
        result = diagnostics.data_drift(settings, batch, files=names)
    except Exception:
        log.exception("data drift check failed (the F1 drift check decides alone)")
        report.add("data drift check FAILED (see the traceback above)")
        return "failed"
    store.record_data_drift(result)
    report.add(diagnostics.describe_data_drift(result))
    return result["verdict"]


def _check_batch(
    settings: Settings, store: RecordsStore, batch: Any, names: list[str], report: RunReport
) -> tuple[bool, str]:
    """The F1 drift check and the data drift check of one new batch: (model drift?, data drift verdict)."""
    model_drift = report.timed("drift check", lambda: _check_model_drift(settings, store, batch, names, report))
    verdict = report.timed("data drift check", lambda: _check_data_drift(settings, store, batch, names, report))
    return model_drift, verdict


def _retrain_and_deploy(settings: Settings, store: RecordsStore, report: RunReport) -> str:
    """Train, score and deploy; returns the new version."""
    import scoring
    import training
    from deployment import store_model_into_pickle

    report.timed("training", lambda: training.train_model(settings))
    f1 = report.timed("scoring", lambda: scoring.score_model(settings, store))
    version = report.timed("deployment", lambda: store_model_into_pickle(settings, store))
    report.add(f"retrained: F1 {f1:.4f} on the test data; deployed as {version}")
    return version


def _after_deploy(settings: Settings, store: RecordsStore, report: RunReport) -> bool:
    """Diagnostics, reporting and the API calls; returns False if one of them failed (the deploy stands)."""
    import diagnostics
    import reporting

    ok = True
    for step, action in (
        ("diagnostics", lambda: diagnostics.run_diagnostics(settings, store)),
        ("reporting", lambda: reporting.write_reports(settings, store)),
    ):
        try:
            report.timed(step, action)
        except Exception:
            log.exception("%s failed after the deployment (the new version stays deployed)", step)
            report.add(f"{step} FAILED (see the traceback above)")
            ok = False
    if not api_answers(settings.api_url):
        log.warning(
            "no API answers at %s, so apireturns.txt was not refreshed; start it with `python app.py --config %s` "
            "(or gunicorn, see README) and rerun `python apicalls.py`",
            settings.api_url,
            settings.config_path,
        )
        report.add(f"API calls skipped: nothing answers at {settings.api_url}")
        return ok
    import apicalls

    try:
        path = report.timed("apicalls", lambda: apicalls.call_all_endpoints(settings))
        report.add(f"API answered at {settings.api_url}; wrote {path}")
    except Exception as err:  # noqa: BLE001 - the API is an optional consumer; say why and go on
        log.error("API calls to %s failed: %s", settings.api_url, err)
        report.add(f"API calls FAILED: {err}")
        ok = False
    return ok


def process_new_data(
    settings: Settings, store: RecordsStore, run_id: int, fresh: list[DataFile], report: RunReport
) -> str:
    """Ingest, check for drift and, on drift or with nothing deployed, retrain and redeploy; returns the outcome."""
    import ingestion

    deployed_version = current_version(settings)
    result = report.timed("ingestion", lambda: ingestion.merge_multiple_dataframe(settings, store, run_id))
    fresh_names = {f.name for f in fresh}
    new_accepted = [name for name in result.accepted if name in fresh_names]
    rejected = [r for r in result.rejected if r.file_name in fresh_names]
    report.add(
        f"ingested {len(result.data)} rows from {len(result.accepted)} file(s); new: "
        f"{', '.join(new_accepted) or 'none'}; rejected: {', '.join(r.file_name for r in rejected) or 'none'}"
    )
    for record in rejected:
        report.add(f"rejected {record.reason}")
    data_verdict = None
    if deployed_version is None:
        report.add("nothing deployed yet: bootstrapping (train, score, deploy)")
    else:
        batch = result.rows_from(set(new_accepted))
        if batch.empty:
            report.add(f"no new rows to check {deployed_version} against (new files rejected or all duplicates)")
            return "no new data"
        model_drift, data_verdict = _check_batch(settings, store, batch, new_accepted, report)
        if not model_drift and not (data_verdict == "drift" and settings.data_drift_triggers_retrain):
            report_only = data_verdict == "drift"
            note = " (data drift is report-only: data_drift_triggers_retrain is false)" if report_only else ""
            report.add(f"no drift: {deployed_version} stays deployed{note}")
            return "no drift" if data_verdict != "failed" else "no drift, data drift check failed"
        if not model_drift:
            report.add("retraining on data drift alone (data_drift_triggers_retrain is true)")
    _retrain_and_deploy(settings, store, report)
    ok = _after_deploy(settings, store, report) and data_verdict != "failed"
    return "deployed" if ok else "deployed with errors"


def run_pipeline(settings: Settings) -> int:
    """One tick; call with the run lock held. Returns the exit code."""
    started = time.perf_counter()
    with RecordsStore(settings.records_db_path) as store:
        tick = look(settings, store)
        fresh = tick.fresh
        if tick.nothing_new:
            log.info(
                "no new data in %s (%d file(s), all checked before); %s stays deployed; nothing to do",
                settings.input_folder_path,
                len(tick.files),
                tick.deployed_version,
            )
            return 0
        report = RunReport()
        run_id = store.start_run("fullprocess")
        report.add(
            f"run {run_id}: {len(fresh)} new file(s) in {settings.input_folder_path}: "
            f"{', '.join(f.name for f in fresh) or 'none'}"
        )
        try:
            outcome = process_new_data(settings, store, run_id, fresh, report)
        except BaseException as err:
            report.add(f"FAILED: {type(err).__name__}: {err}")
            store.finish_run(run_id, "failed", report.text())
            raise
        store.finish_run(run_id, outcome, report.text(), checked=[f.key for f in fresh])
        report.timings["total"] = round(time.perf_counter() - started, 3)
        log.info("summary: %s\n%s", outcome, report.text())
        return 0 if outcome in ("deployed", "no drift", "no new data") else 1


def main() -> None:
    parser = make_parser("Check for new data and model drift; retrain and redeploy when needed (run by cron).")
    args = parser.parse_args()
    raise SystemExit(
        run_script(args, run_pipeline, busy_exit=0, log_file=lambda settings: settings.log_folder_path / LOG_FILE_NAME)
    )


if __name__ == "__main__":
    main()
