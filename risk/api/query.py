"""Query string parameters, validated alike by every endpoint that takes them: a JSON 400 naming the parameter
and what it allows."""

from __future__ import annotations

import re

from flask import abort, request

MAX_OFFSET = 10**9
WHOLE_NUMBER = re.compile(r"[0-9]{1,10}")


def one_parameter(name: str) -> str | None:
    """A query parameter given at most once (400 when repeated), or None."""
    values = request.args.getlist(name)
    if len(values) > 1:
        abort(400, description=f"query parameter {name!r} is given {len(values)} times; give it once")
    return values[0] if values else None


def whole_number_parameter(name: str, default: int, minimum: int, maximum: int) -> int:
    """A query parameter as an int in [minimum, maximum]; 400 naming the parameter and the range otherwise."""
    raw = one_parameter(name)
    if raw is None:
        return default
    if not WHOLE_NUMBER.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        abort(
            400,
            description=f"query parameter {name!r} must be a whole number from {minimum} to {maximum} (got {raw!r})",
        )
    return int(raw)


def known_parameters(endpoint: str, allowed: tuple[str, ...]) -> None:
    """400 naming the first query parameter ``endpoint`` does not take."""
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        abort(400, description=f"unknown query parameter {unknown[0]!r}; {endpoint} takes {', '.join(allowed)}")
