"""The cron job: new data? ingest it; the deployed model drifted on it? retrain, let the better model win, redeploy,
diagnose, report, call the API. Run by cron every ten minutes (``cronjob.txt``) or by hand.

A tick with nothing new (no input file unchecked by name and content, no run left unfinished) exits 0 after reading
only file stats and the records store: this script imports the steps, and with them pandas, scikit-learn and
matplotlib, only once there is work (:func:`course_steps`). The decisions of a run, the drift rule and the
challenger gate among them, are described in risk/pipeline.py. With nothing deployed yet, the run bootstraps
straight through training and deployment. One run at a time: a second one exits 0 at once. Every run ends as one
record that people hear about (risk/notify.py): one line per thing that matters under ``--quiet`` (cron mails
them), the Prometheus textfile, and the alert webhook when configured. The exit code is non-zero only on a real
failure (1) or bad input or config (2).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from risk.cli import make_parser, run_script
from risk.clock import utc_now
from risk.config import Settings
from risk.notify import announce
from risk.outcome import RunOutcome, RunRecord
from risk.store import RecordsStore
from risk.tick import Tick, look

if TYPE_CHECKING:
    from risk.pipeline import Steps

log = logging.getLogger("fullprocess")

LOG_FILE_NAME = "fullprocess.log"


def course_steps() -> Steps:
    """The course's steps, each its script's own function. Imported here, once a tick has found work: they bring
    pandas, scikit-learn and matplotlib, which a tick with nothing to do never loads."""
    import apicalls
    import deployment
    import diagnostics
    import ingestion
    import scoring
    import training
    from reporting import write_reports
    from risk.pipeline import Steps

    return Steps(
        ingest=ingestion.merge_multiple_dataframe,
        train=training.train_model,
        score=scoring.score_model,
        deploy=deployment.store_model_into_pickle,
        recover=deployment.recover,
        diagnose=diagnostics.run_diagnostics,
        report=write_reports,
        call_api=apicalls.call_all_endpoints,
        data_drift=diagnostics.data_drift,
        describe_data_drift=diagnostics.describe_data_drift,
    )


def nothing_new(settings: Settings, tick: Tick) -> RunRecord:
    """The record of a tick that found nothing to do."""
    log.info(
        "no new data in %s (%d file(s), all checked before); %s stays deployed; nothing to do",
        settings.input_folder_path,
        len(tick.files),
        tick.deployed_version,
    )
    now = utc_now()
    return RunRecord(None, now, now, RunOutcome.NOTHING_NEW, tick.deployed_version, tick.deployed_version)


def tell(settings: Settings, record: RunRecord) -> None:
    """Quiet-mode lines, the Prometheus textfile and the webhook, from the run's record."""
    announce(
        record,
        textfile=settings.metrics_textfile_path,
        webhook_url=settings.alert_webhook_url,
        webhook_timeout=settings.alert_webhook_timeout_seconds,
    )


def run_pipeline(settings: Settings, force: bool = False) -> int:
    """One tick; call with the run lock held. Returns the exit code."""
    with RecordsStore(settings.records_db_path) as store:
        tick = look(settings, store)
        if tick.nothing_new and not force:
            tell(settings, nothing_new(settings, tick))
            return 0
        from risk import pipeline  # with the steps: only now that there is work

        try:
            record = pipeline.run(settings, store, tick, course_steps(), force)
        except pipeline.RunFailed as failed:
            tell(settings, failed.record)
            raise failed.__cause__ from None  # run_script says what it was (one line, or the traceback)
    tell(settings, record)
    return record.outcome.exit_code if record.outcome else 1


def main() -> None:
    parser = make_parser("Check for new data and model drift; retrain and redeploy when it helps (run by cron).")
    parser.add_argument(
        "--force",
        action="store_true",
        help="retrain on all the data and deploy regardless of the drift check and the challenger gate (says so)",
    )
    args = parser.parse_args()
    raise SystemExit(
        run_script(
            args,
            lambda settings: run_pipeline(settings, args.force),
            busy_exit=0,
            log_file=lambda settings: settings.log_folder_path / LOG_FILE_NAME,
        )
    )


if __name__ == "__main__":
    main()
