"""One run of the full process, once the cheap tick (risk/tick.py) found work: ingest, check the deployed model on
the new rows, and only when that is warranted retrain, let the challenger gate choose, redeploy, diagnose and report.

The course's steps are passed in (:class:`Steps`, built by ``fullprocess.py`` from the course scripts), so this
module holds the decisions and the scripts hold their steps. What a run decides, and what it tells people:

1. **New rows by content** (risk/rows.py): the batch is every ingested row no completed run has decided on.
2. **The drift decision** (risk/drift.py): the acting rule (``drift_test``) and the course rule ``raw`` beside it,
   with the rows and positives behind them. ``significant`` decides only on ``drift_min_rows`` rows with
   ``drift_min_positives`` positives; smaller batches are carried over and pooled with the next ones.
3. **The challenger gate** (risk/gate.py): on drift, candidates trained on all the rows, on a recent window and on
   the new rows are scored on the new rows by cross-fitting against the deployed model; one is deployed only when
   it is significantly better. ``--force`` deploys the ``all`` candidate regardless, and says so.
4. **What is written when**: a run's batch score, drift check and decided rows are written only when it completes
   (``RecordsStore.finish_run``), so a failed run leaves nothing to count twice and the next tick retries.
5. **Who hears**: every run ends as one :class:`~risk.outcome.RunRecord`, which risk/notify.py turns into
   quiet-mode lines, the Prometheus textfile and the webhook.
6. **A version deployed elsewhere** (the practice config shares ``prod_deployment_path`` but has its own store, or
   someone deployed by hand): the tick notices this store never recorded the current version; the run records it
   (``deployment.recover``), checks it as usual, and writes its diagnostics and reports on this config's data.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from risk.artifacts import FINAL_DATA_NAME, RISK_LIST_NAME
from risk.cli import python_command
from risk.clock import utc_now
from risk.config import Settings
from risk.deployed import DeployedModel, load_deployed_model
from risk.drift import ConfusionCounts, DriftDecision, DriftRule, decide
from risk.errors import UserFacingError
from risk.evaluation import out_of_fold_counts
from risk.files import process_alive, stale_temp_files
from risk.gate import ALL, GateResult, candidate_slices, challenger_predictions, judge
from risk.model import build_model
from risk.outcome import EventKind, RunOutcome, RunRecord
from risk.predict import predicted_classes
from risk.risklist import refresh_risk_list
from risk.rows import Batch, row_hashes, split_batch
from risk.schema import FEATURES, TARGET, DataFileError
from risk.store import DriftCheckRow, RecordsStore, ScoreRow
from risk.tick import Tick

log = logging.getLogger("fullprocess")

API_PROBE_TIMEOUT_SECONDS = 2.0


class RunFailed(Exception):
    """A run failed: ``record`` is what it did up to the failure (the cause is chained)."""

    def __init__(self, record: RunRecord) -> None:
        super().__init__(f"run {record.run_id} failed")
        self.record = record


class Steps(NamedTuple):
    """The course's steps, as ``fullprocess.py`` hands them over (each is the course script's own function)."""

    ingest: Callable[..., Any]  # ingestion.merge_multiple_dataframe(settings, store, run_id) -> IngestionResult
    train: Callable[..., dict[str, Any]]  # training.train_model(settings, frame=None, rows_label="") -> metadata
    score: Callable[..., float]  # scoring.score_model(settings, store) -> F1 on the test file
    deploy: Callable[..., str]  # deployment.store_model_into_pickle(settings, store) -> version
    recover: Callable[..., list[str]]  # deployment.recover(settings, store) -> what it recorded or tidied
    diagnose: Callable[..., Any]  # diagnostics.run_diagnostics(settings, store) -> snapshot
    report: Callable[..., Any]  # reporting.write_reports(settings, store)
    call_api: Callable[..., Path]  # apicalls.call_all_endpoints(settings) -> apireturns.txt
    data_drift: Callable[..., dict[str, Any]]  # diagnostics.data_drift(settings, batch, files=...) -> result
    describe_data_drift: Callable[[dict[str, Any]], str]  # diagnostics.describe_data_drift(result) -> one line


@dataclass
class _Run:
    """What one run has done so far; written to the store in one transaction when it completes."""

    settings: Settings
    store: RecordsStore
    steps: Steps
    record: RunRecord
    force: bool
    checked: list[tuple[str, str]] = field(default_factory=list)
    decided: list[int] = field(default_factory=list)
    scores: list[ScoreRow] = field(default_factory=list)
    drift_checks: list[DriftCheckRow] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    list_refreshed: bool = False
    reported: bool = False  # diagnostics and reports ran (after a deployment, a repair or adopting a version)

    @property
    def run_id(self) -> int:
        assert self.record.run_id is not None
        return self.record.run_id

    def note(self, line: str) -> None:
        log.info("%s", line)
        self.record = self.record.note(line)

    def tell(self, kind: EventKind, line: str) -> None:
        log.info("%s", line)
        self.record = self.record.tell(kind, line)

    def timed(self, step: str, action: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            return action()
        finally:
            self.timings[step] = round(time.perf_counter() - started, 3)

    def summary(self) -> str:
        steps = ", ".join(f"{name} {seconds:.2f}s" for name, seconds in self.timings.items())
        return "\n".join([*self.record.lines, f"timings: {steps}" if steps else "timings: none"])


# --- the run ---


def run(settings: Settings, store: RecordsStore, tick: Tick, steps: Steps, force: bool = False) -> RunRecord:
    """One run with the lock held: returns its record (finished, with the outcome). A failure is recorded, then
    raised as RunFailed (carrying the record) from the original error."""
    started = time.perf_counter()
    run_id = store.start_run("fullprocess --force" if force else "fullprocess")
    record = RunRecord(
        run_id, utc_now(), previous_version=tick.deployed_version, deployed_version=tick.deployed_version
    )
    state = _Run(settings, store, steps, record, force)
    state.note(
        f"run {run_id}: {len(tick.fresh)} new file(s) in {settings.shown_path(settings.input_folder_path)}: "
        f"{', '.join(f.name for f in tick.fresh) or 'none'}" + (" (--force: deploy regardless)" if force else "")
    )
    _tidy_after_killed_runs(state)
    state.checked = [f.key for f in tick.fresh]
    try:
        outcome = _work(state, tick)
        if tick.book_changed and not state.list_refreshed:
            _refresh_risk_list(state)
    except Exception as err:
        failure = RunOutcome.BAD_INPUT if isinstance(err, UserFacingError) else RunOutcome.FAILED
        state.tell(
            EventKind.FAILURE,
            f"run {run_id} FAILED: {err}"
            if failure is RunOutcome.BAD_INPUT
            else f"run {run_id} FAILED: {type(err).__name__}: {err}",
        )
        store.finish_run(run_id, failure.value, state.summary())
        raise RunFailed(state.record._replace(finished_at=utc_now(), outcome=failure)) from err
    state.timings["total"] = round(time.perf_counter() - started, 3)
    store.finish_run(
        run_id,
        outcome.value,
        state.summary(),
        state.checked,
        decided_rows=state.decided,
        scores=state.scores,
        drift_checks=state.drift_checks,
    )
    log.info("summary: %s\n%s", outcome.value, state.summary())
    return state.record._replace(finished_at=utc_now(), outcome=outcome)


def _tidy_after_killed_runs(state: _Run) -> None:
    """Mark runs that never finished as interrupted and remove the temporary files they left."""
    killed = state.store.mark_interrupted_runs(state.run_id)
    if killed:
        state.note(
            f"run(s) {', '.join(map(str, killed))} were killed before they finished: marked interrupted; "
            "this run finishes what they left (diagnostics and reports of the current version)"
        )
    settings = state.settings
    for folder in {
        settings.output_folder_path,
        settings.output_model_path,
        settings.log_folder_path,
        settings.prod_deployment_path,
    }:
        for leftover in stale_temp_files(folder, process_alive):
            leftover.unlink(missing_ok=True)
            state.note(f"removed {settings.shown_path(leftover)}, a temporary file a killed run left")


def _work(state: _Run, tick: Tick) -> RunOutcome:
    if tick.unrecorded:
        _adopt(state)
        if not (tick.fresh or tick.repair or state.force):
            return _report_adopted(state, tick, RunOutcome.NOTHING_NEW)
    outcome = _decide(state, tick)
    if tick.unrecorded and not state.reported:
        return _report_adopted(state, tick, outcome)
    return outcome


def _adopt(state: _Run) -> None:
    """Record the current version this store never saw deployed (the practice config deployed it into the shared
    prod_deployment_path, or someone did by hand), so this config's history and reports know what serves."""
    for line in state.steps.recover(state.settings, state.store):
        state.note(line)


def _report_adopted(state: _Run, tick: Tick, outcome: RunOutcome) -> RunOutcome:
    """Diagnostics and reports of an adopted version on this config's own data (its earlier ones, if any, describe
    another version); ``outcome`` stands unless one of them fails."""
    settings = state.settings
    data = settings.shown_path(settings.output_folder_path / FINAL_DATA_NAME)
    if not (settings.output_folder_path / FINAL_DATA_NAME).exists():
        state.note(f"{tick.deployed_version}'s diagnostics and reports wait for this config's first data ({data})")
        return outcome
    state.note(
        f"{tick.deployed_version} was deployed outside this config's runs: diagnosing and reporting it on {data}"
    )
    if _after_deploy(state):
        return outcome
    return RunOutcome.CHECKED_WITH_ERRORS


def _decide(state: _Run, tick: Tick) -> RunOutcome:
    settings = state.settings
    if tick.repair and not tick.fresh and not state.force:
        return _repair(state)
    if tick.book_changed and not tick.fresh and not state.force:
        state.note(
            f"the client book {settings.shown_path(settings.client_book_path)} or the deployed version changed "
            "since the last risk list: ranking the book again"
        )
        return RunOutcome.NOTHING_NEW
    result = state.timed("ingestion", lambda: state.steps.ingest(settings, state.store, state.run_id))
    _tell_rejections(state, tick, result)
    if tick.deployed_version is None:
        state.note("nothing deployed yet: bootstrapping (train, score, deploy)")
        return _train_and_deploy(state, None, "all ingested rows", row_hashes(result.data))
    deployed = load_deployed_model(settings)
    batch = split_batch(
        result.data, _decided_rows(state, result, deployed), state.store.last_deploying_run(), result.source
    )
    if batch.new.empty and not state.force:
        state.note(
            f"no new rows to check {deployed.version} against: the new files' rows were all seen before "
            "(or were rejected)"
        )
        return RunOutcome.NOTHING_NEW
    if batch.new.empty:
        state.note("--force with no new rows: retraining on all the rows and deploying")
        return _train_and_deploy(state, None, "all ingested rows (forced)", row_hashes(result.data))
    return _check_and_decide(state, deployed, batch)


def _tell_rejections(state: _Run, tick: Tick, result: Any) -> None:
    fresh = {f.name for f in tick.fresh}
    state.note(f"ingested {len(result.data)} rows from {len(result.accepted)} file(s)")
    for rejected in result.rejected:
        if rejected.file_name in fresh:
            state.tell(EventKind.REJECTED_FILE, f"rejected {rejected.reason}")


def _decided_rows(state: _Run, result: Any, deployed: DeployedModel) -> list[tuple[int, int | None]]:
    """The store's decided rows; for a store from before rows were known by content, the rows of the files the
    deployed version was trained on (its ``ingestedfiles.txt``) count as decided."""
    decided = state.store.decided_rows()
    if decided:
        return decided
    trained = result.data[result.source.isin(deployed.ingested_files).to_numpy()]
    if trained.empty:  # e.g. a version the practice config deployed: none of its files are in this config's data
        return []
    state.note(
        f"the store knows no rows by content yet: the {len(trained)} rows of the files {deployed.version} was "
        "trained on count as decided"
    )
    state.decided.extend(int(h) for h in row_hashes(trained))
    return [(int(h), 0) for h in row_hashes(trained)]


# --- the drift check ---


def _check_and_decide(state: _Run, deployed: DeployedModel, batch: Batch) -> RunOutcome:
    settings = state.settings
    new = batch.new
    champion = predicted_classes(deployed.model, new)
    counts = ConfusionCounts.from_labels(new[TARGET].to_numpy(), champion)
    rule, reference = _acting_rule(state, deployed, batch)
    history = state.store.batch_score_history(deployed.version, settings.drift_history_size)
    decision = state.timed(
        "drift check",
        lambda: decide(
            rule,
            counts,
            deployed.score,
            reference,
            history,
            min_rows=settings.drift_min_rows,
            min_positives=settings.drift_min_positives,
            alpha=settings.drift_alpha,
        ),
    )
    data_verdict = state.timed("data drift check", lambda: _check_data_drift(state, new, batch.new_files))
    state.record = state.record._replace(
        drift_rule=decision.rule,
        drift=None if decision.verdict is None else decision.verdict.drift,
        raw_drift=None if decision.raw is None else decision.raw.drift,
        new_f1=counts.f1,
        reference_f1=decision.reference_f1,
        p_value=decision.p_value,
        batch_rows=counts.rows,
        batch_positives=counts.positives,
    )
    line = (
        f"{deployed.version} on {counts.rows} new rows from {', '.join(batch.new_files) or 'earlier files'}: "
        f"{decision.line()}"
    )
    if decision.drift:
        state.tell(EventKind.DRIFT, line)
    else:
        state.note(line)
    retrain_on_data = data_verdict == "drift" and settings.data_drift_triggers_retrain
    if not (decision.drift or retrain_on_data or state.force):
        return _keep(state, deployed, batch, decision, history, data_verdict)
    if retrain_on_data and not decision.drift:
        state.note("retraining on data drift alone (data_drift_triggers_retrain is true)")
    return _challenge(state, deployed, batch, decision, history, champion)


def _acting_rule(state: _Run, deployed: DeployedModel, batch: Batch) -> tuple[str, ConfusionCounts | None]:
    """The configured rule and, for ``significant``, the deployed model's reference counts (recorded at training;
    for a model trained before they were, computed now on the rows it was trained on)."""
    rule = state.settings.drift_test
    if rule != DriftRule.SIGNIFICANT.value:
        return rule, None
    recorded = deployed.metadata.get("reference_counts")
    if recorded:
        return rule, _with_decided_batches(state, deployed, ConfusionCounts.from_json(recorded))
    try:
        reference = out_of_fold_counts(
            lambda: build_model(state.settings.model), batch.old[list(FEATURES)], batch.old[TARGET]
        )
        state.note(
            f"{deployed.version} records no reference counts (trained before they were kept): computed "
            f"out-of-fold on its {len(batch.old)} earlier rows"
        )
        return rule, reference
    except ValueError as err:
        state.note(
            f"no reference counts for {deployed.version} ({err}): the course rule raw acts until the next deployment"
        )
        return DriftRule.RAW.value, None


def _with_decided_batches(state: _Run, deployed: DeployedModel, reference: ConfusionCounts) -> ConfusionCounts:
    """The out-of-fold reference plus the deployed model's own counts on every batch decided while it stayed
    deployed (``DriftDecision.next_reference``): the test sharpens tick by tick (see risk/drift.py)."""
    batches = state.store.decided_batches(deployed.version)
    for counts in batches:
        reference = reference + ConfusionCounts.from_json(counts)
    if batches:
        state.note(
            f"reference: {deployed.version}'s out-of-fold counts and its {len(batches)} decided batch(es), "
            f"{reference.rows} rows with {reference.positives} positives"
        )
    return reference


def _check_data_drift(state: _Run, new: pd.DataFrame, files: tuple[str, ...]) -> str:
    """The data drift check of the new rows (report only unless configured); a failure is said, not fatal."""
    try:
        result = state.steps.data_drift(state.settings, new, files=list(files))
    except Exception:
        log.exception("data drift check failed (the F1 drift check decides alone)")
        state.tell(EventKind.FAILURE, "data drift check FAILED (see the traceback in the log)")
        return "failed"
    state.store.record_data_drift(result)
    line = state.steps.describe_data_drift(result)
    state.record = state.record._replace(
        data_drift=result["verdict"], drifted_features=tuple(result.get("drifted_features") or ())
    )
    state.note(line)
    if result["verdict"] == "drift":
        features = ", ".join(result.get("drifted_features") or ()) or "none named"
        state.tell(
            EventKind.DATA_DRIFT,
            f"data drift in {features} on {result.get('batch_rows')} new rows "
            f"against {result.get('model_version')}'s training data",
        )
    return result["verdict"]


def _drift_check_row(
    state: _Run,
    deployed: DeployedModel,
    batch: Batch,
    decision: DriftDecision,
    history: list[float],
    next_step: str,
    gate: GateResult | None = None,
) -> DriftCheckRow:
    verdict = decision.verdict
    return DriftCheckRow(
        test=decision.rule,
        deployed_version=deployed.version,
        deployed_score=deployed.score,
        new_score=decision.new_f1,
        threshold=None if verdict is None else verdict.threshold,
        history_size=len(history),
        drift=None if verdict is None else verdict.drift,
        raw_drift=None if decision.raw is None else decision.raw.drift,
        rows=decision.batch.rows,
        positives=decision.batch.positives,
        next_step=next_step,
        reason=decision.line(),
        files=batch.new_files,
        decision={**decision.as_json(), "gate": None if gate is None else gate.as_json(), "next_step": next_step},
    )


def _batch_score(deployed: DeployedModel, batch: Batch, decision: DriftDecision, in_history: bool) -> list[ScoreRow]:
    f1 = decision.new_f1
    if f1 is None:
        return []
    return [
        ScoreRow(
            "batch", f1, decision.batch.rows, ", ".join(batch.new_files), deployed.sha256, deployed.version, in_history
        )
    ]


def _keep(
    state: _Run, deployed: DeployedModel, batch: Batch, decision: DriftDecision, history: list[float], data_verdict: str
) -> RunOutcome:
    """No drift, or too little evidence: the deployed version stays."""
    if decision.carried_over:
        state.drift_checks.append(_drift_check_row(state, deployed, batch, decision, history, "carried over"))
        state.note(f"{deployed.version} stays deployed; the {decision.batch.rows} new rows are kept for the next tick")
        return RunOutcome.CARRIED_OVER if data_verdict != "failed" else RunOutcome.CHECKED_WITH_ERRORS
    state.drift_checks.append(_drift_check_row(state, deployed, batch, decision, history, "no drift"))
    state.scores.extend(_batch_score(deployed, batch, decision, in_history=True))
    state.decided.extend(int(h) for h in batch.new_hashes)
    note = " (data drift is report-only: data_drift_triggers_retrain is false)" if data_verdict == "drift" else ""
    state.note(f"no drift: {deployed.version} stays deployed{note}")
    return RunOutcome.NO_DRIFT if data_verdict != "failed" else RunOutcome.CHECKED_WITH_ERRORS


# --- the challenger gate ---


def _challenge(
    state: _Run,
    deployed: DeployedModel,
    batch: Batch,
    decision: DriftDecision,
    history: list[float],
    champion: np.ndarray,
) -> RunOutcome:
    """Train the candidates, let the gate judge them on the new rows, deploy the winner (or keep the champion)."""
    settings = state.settings
    rows = batch.in_order
    slices = candidate_slices(
        len(rows), batch.old_since_last_deploy + len(batch.new), len(batch.new), settings.training_window_rows
    )
    predictions = state.timed(
        "challengers",
        lambda: challenger_predictions(
            lambda: build_model(settings.model), rows[list(FEATURES)], rows[TARGET], len(batch.new), slices
        ),
    )
    gate = judge(
        batch.new[TARGET].to_numpy(),
        champion,
        predictions,
        alpha=settings.drift_alpha,
        forced=ALL if state.force else None,
    )
    state.decided.extend(int(h) for h in batch.new_hashes)  # decided either way: never judged again next tick
    state.scores.extend(_batch_score(deployed, batch, decision, in_history=False))
    if gate.chosen is None:
        state.drift_checks.append(
            _drift_check_row(state, deployed, batch, decision, history, "challenger rejected", gate)
        )
        state.tell(EventKind.CHALLENGER_REJECTED, f"{deployed.version} stays deployed: {gate.line()}")
        return RunOutcome.CHALLENGER_REJECTED
    next_step = "forced" if gate.forced else "challenger deployed"
    state.drift_checks.append(_drift_check_row(state, deployed, batch, decision, history, next_step, gate))
    state.note(gate.line())
    chosen = rows.iloc[slices[gate.chosen]].reset_index(drop=True)
    label = "all ingested rows" if gate.chosen == ALL else f"the {len(chosen)} newest rows ({gate.chosen})"
    return _train_and_deploy(state, None if gate.chosen == ALL else chosen, label, np.empty(0, dtype=np.int64))


# --- the risk list ---


def _refresh_risk_list(state: _Run) -> None:
    """Rank the client book with the deployed model (risk/risklist.py); a bad book is rejected by name, and
    never stops the rest of the run."""
    settings = state.settings
    book = settings.client_book_path
    state.list_refreshed = True
    if book is None:
        return
    shown = settings.shown_path(book)
    if not book.is_file():
        state.tell(
            EventKind.REJECTED_FILE,
            f"rejected the client book {shown}: it does not exist (client_book_path "
            f"in {settings.shown_path(settings.config_path)}); no risk list",
        )
        return
    try:
        deployed = load_deployed_model(settings)
        ranked = state.timed("risk list", lambda: refresh_risk_list(settings, state.store, deployed, book))
    except DataFileError as err:
        state.tell(EventKind.REJECTED_FILE, f"rejected the client book {shown} {err}; the previous risk list stays")
        return
    except Exception as err:
        log.exception("ranking the client book failed")
        state.tell(EventKind.FAILURE, f"ranking the client book {shown} FAILED: {type(err).__name__}: {err}")
        return
    top = ranked.frame.iloc[0] if ranked.rows else None
    riskiest = f"; riskiest {top['corporation']} ({top['probability']:.2f})" if top is not None else ""
    state.note(
        f"ranked the {ranked.rows} clients of {shown} with {deployed.version}{riskiest}; "
        f"wrote {settings.shown_path(settings.output_model_path / RISK_LIST_NAME)}"
    )


# --- deploying ---


def _train_and_deploy(state: _Run, frame: pd.DataFrame | None, label: str, decided: np.ndarray) -> RunOutcome:
    """Train (on ``frame``, or on finaldata.csv), score, deploy, then diagnostics, reports and the API calls."""
    settings, store = state.settings, state.store
    state.timed("training", lambda: state.steps.train(settings, frame, label))
    f1 = state.timed("scoring", lambda: state.steps.score(settings, store))
    version = state.timed("deployment", lambda: state.steps.deploy(settings, store))
    state.decided.extend(int(h) for h in decided)
    forced = " (forced by --force)" if state.force else ""
    state.tell(
        EventKind.REDEPLOY,
        f"deployed {version}{forced}: trained on {label}; F1 {f1:.4f} on the test file "
        f"{settings.shown_path(settings.test_data_file)}",
    )
    state.record = state.record._replace(deployed_version=version)
    _refresh_risk_list(state)  # before the reports: the PDF's first page shows the new list
    return RunOutcome.DEPLOYED if _after_deploy(state) else RunOutcome.DEPLOYED_WITH_ERRORS


def _repair(state: _Run) -> RunOutcome:
    """Finish what a killed run left: the current version's diagnostics and reports."""
    state.note("no new data; re-running diagnostics and reports of the current version after an interrupted run")
    return RunOutcome.NO_DRIFT if _after_deploy(state) else RunOutcome.DEPLOYED_WITH_ERRORS


def _after_deploy(state: _Run) -> bool:
    """Diagnostics, reporting and the API calls; False if one of them failed (the deployed version stands)."""
    settings, store = state.settings, state.store
    state.reported = True
    ok = True
    for step, action in (
        ("diagnostics", lambda: state.steps.diagnose(settings, store)),
        ("reporting", lambda: state.steps.report(settings, store)),
    ):
        try:
            state.timed(step, action)
        except Exception as err:
            log.exception("%s failed after the deployment (the new version stays deployed)", step)
            state.tell(EventKind.FAILURE, f"{step} FAILED after the deployment: {type(err).__name__}: {err}")
            ok = False
    if not api_answers(settings.api_url):
        python = python_command(settings.project_dir)
        config = settings.shown_path(settings.config_path)
        log.warning(
            "no API answers at %s, so apireturns.txt was not refreshed; start it with `%s app.py --config %s` "
            "(or gunicorn, see README) and rerun `%s apicalls.py --config %s`",
            settings.api_url,
            python,
            config,
            python,
            config,
        )
        state.note(f"API calls skipped: nothing answers at {settings.api_url}")
        return ok
    try:
        path = state.timed("apicalls", lambda: state.steps.call_api(settings))
        state.note(f"API answered at {settings.api_url}; wrote {settings.shown_path(path)}")
    except Exception as err:  # noqa: BLE001 - the API is an optional consumer; say why and go on
        state.tell(EventKind.FAILURE, f"API calls to {settings.api_url} FAILED: {err}")
        ok = False
    return ok


def api_answers(url: str, timeout: float = API_PROBE_TIMEOUT_SECONDS) -> bool:
    """True when something answers HTTP at ``url`` (any status), False when nothing listens or it times out."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
