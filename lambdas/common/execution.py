"""What the Step Functions context object gives the functions a state machine invokes."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any


def start_time(value: Any) -> datetime:
    """`$$.Execution.StartTime` as a UTC datetime. AWS sends ISO-8601 with a Z (without the milliseconds when
    they are zero); the local cloud the same instant in Python's isoformat. Without an offset, UTC.
    Raises ValueError naming what is wrong."""
    if not isinstance(value, str):
        raise ValueError(f"must be an ISO-8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as err:
        raise ValueError(f"is not ISO-8601: {value!r}") from err
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed.astimezone(timezone.utc)
