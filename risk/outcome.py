"""What one pipeline run came to: its outcome (with the exit code it carries) and the record people are told.

:class:`RunRecord` is written once per run by the pipeline and read by everything that tells people about it
(``risk.notify``: the quiet-mode lines, the Prometheus textfile, the webhook) and by the records store.
On the tick path (see risk/tick.py): NamedTuples, not dataclasses, which would import inspect on every tick.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple


class RunOutcome(Enum):
    """How a run ended. The value is the word recorded in the store; ``exit_code`` is what the script exits with."""

    NOTHING_NEW = "nothing new"
    CARRIED_OVER = "carried over"  # new labelled rows, too few to decide on: kept for the next tick
    NO_DRIFT = "no drift"
    DEPLOYED = "deployed"
    CHALLENGER_REJECTED = "challenger rejected"  # drift, but no retrained model beat the deployed one
    DEPLOYED_WITH_ERRORS = "deployed with errors"  # the new version stands; a later step (report...) failed
    CHECKED_WITH_ERRORS = "checked with errors"  # the F1 check decided; a side check (data drift) failed
    BUSY = "busy"  # another run holds the lock; nothing was done
    BAD_INPUT = "bad input"  # bad config or data the user must fix
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # killed mid-run; recorded by the next run

    @property
    def exit_code(self) -> int:
        return _EXIT_CODES[self]

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


_EXIT_CODES = {
    RunOutcome.NOTHING_NEW: 0,
    RunOutcome.CARRIED_OVER: 0,
    RunOutcome.NO_DRIFT: 0,
    RunOutcome.DEPLOYED: 0,
    RunOutcome.CHALLENGER_REJECTED: 0,
    RunOutcome.DEPLOYED_WITH_ERRORS: 1,
    RunOutcome.CHECKED_WITH_ERRORS: 1,
    RunOutcome.BUSY: 0,  # the cron tick: the next tick will do it (manual scripts exit 75 instead)
    RunOutcome.BAD_INPUT: 2,
    RunOutcome.FAILED: 1,
    RunOutcome.INTERRUPTED: 1,
}


class EventKind(Enum):
    """Things a run did that someone must hear about, even under ``--quiet``."""

    DRIFT = "drift"  # the acting drift rule said drift
    REDEPLOY = "redeploy"  # a new version was deployed
    CHALLENGER_REJECTED = "challenger rejected"
    DATA_DRIFT = "data drift"  # the data drift verdict was drift (the message names the features)
    REJECTED_FILE = "rejected file"
    FAILURE = "failure"


class Event(NamedTuple):
    """One thing to tell: its kind and one line a person reads (``message``)."""

    kind: EventKind
    message: str


class RunRecord(NamedTuple):
    """One run, as people are told about it. Figures are None where the run did not get that far."""

    run_id: int | None
    started_at: str  # ISO 8601 UTC, as risk.files.utc_now writes it
    finished_at: str | None = None
    outcome: RunOutcome | None = None
    deployed_version: str | None = None  # the version serving after the run
    previous_version: str | None = None  # the version serving before it
    drift_rule: str | None = None  # the acting rule (``significant``, ``raw``...)
    drift: bool | None = None  # the acting rule's verdict; None when nothing was decided (carried over...)
    raw_drift: bool | None = None  # the course rule's verdict on the same rows
    new_f1: float | None = None  # the deployed model's F1 on the new labelled rows
    reference_f1: float | None = None  # what the acting rule compared it with
    p_value: float | None = None  # of the acting rule's test, when it has one
    batch_rows: int = 0  # the new labelled rows the decision rests on
    batch_positives: int = 0
    data_drift: str | None = None  # the data drift verdict (``drift``, ``no drift``, ``insufficient data``...)
    drifted_features: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()
    lines: tuple[str, ...] = ()  # the run's summary, step by step

    def tell(self, kind: EventKind, message: str) -> RunRecord:
        """The record with something people must hear about added (it is also a summary line)."""
        return self._replace(events=(*self.events, Event(kind, message)), lines=(*self.lines, message))

    def note(self, line: str) -> RunRecord:
        """The record with a summary line added (logged, not announced)."""
        return self._replace(lines=(*self.lines, line))
