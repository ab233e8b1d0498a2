"""Timestamps as the records store and every artifact write them: ISO 8601 UTC, seconds precision."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def utc_now() -> str:
    """Now, as an ISO 8601 UTC timestamp with seconds precision (``2026-11-23T01:02:03Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def parse_utc(timestamp: str) -> datetime:
    """The datetime of a timestamp written by :func:`utc_now` (any ISO 8601 form is accepted)."""
    parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def unix_seconds(timestamp: str) -> float:
    """Seconds since the epoch of a :func:`utc_now` timestamp."""
    return parse_utc(timestamp).timestamp()
