"""Timestamps as the records store and every artifact write them: ISO 8601 UTC, seconds precision
(``2026-11-23T01:02:03Z``). On the tick path: ``time`` only (no datetime, which a tick with nothing to do never needs;
plots parse timestamps with datetime themselves)."""

from __future__ import annotations

import re
import time

TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]00:?00)?$")


def utc_now() -> str:
    """Now, as an ISO 8601 UTC timestamp with seconds precision (``2026-11-23T01:02:03Z``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def unix_seconds(timestamp: str) -> float:
    """Seconds since the epoch of a UTC timestamp as :func:`utc_now` writes it (no zone also means UTC);
    ValueError for anything else."""
    match = TIMESTAMP.match(timestamp.strip())
    if match is None:
        raise ValueError(f"not a UTC timestamp like 2026-11-23T01:02:03Z: {timestamp!r}")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    return float(_days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second)


def seconds_since(timestamp: str) -> float:
    """Seconds from a :func:`utc_now` timestamp until now."""
    return time.time() - unix_seconds(timestamp)
