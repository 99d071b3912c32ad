"""Which days an invocation fetches, from its event.

EventBridge Scheduler passes the schedule's Input as the event, verbatim. The deployed schedule sends
`{"scheduled_time": "<aws.scheduler.scheduled-time>"}`, so a late or retried run still fetches the day
before the one it was scheduled on; with no event keys the day before today (UTC) is fetched.
Backfills: `{"date": "YYYY-MM-DD"}` or `{"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}` (inclusive).
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

# A bound on one invocation's work; a longer backfill is several invocations.
MAX_DAYS_PER_INVOCATION = 31
_KEYS = ("date", "from", "to", "scheduled_time")


class EventError(ValueError):
    """The event asks for something impossible; the message names the key and the problem."""


def days_to_fetch(event: Any, today: date) -> list[date]:
    """The days to fetch, oldest first. `today` is the current UTC date."""
    event = {} if event is None else event
    if not isinstance(event, dict):
        raise EventError(f"the event must be a JSON object, got {type(event).__name__}")
    unknown = sorted(set(event) - set(_KEYS))
    if unknown:
        raise EventError(f"unknown event key(s) {unknown}; expected some of {list(_KEYS)}")
    if "date" in event and ("from" in event or "to" in event):
        raise EventError("give either 'date' or 'from' and 'to', not both")
    if "date" in event:
        days = [_day(event, "date")]
    elif "from" in event or "to" in event:
        first, last = _day(event, "from"), _day(event, "to")
        if first > last:
            raise EventError(f"'from' {first} is after 'to' {last}")
        count = (last - first).days + 1
        if count > MAX_DAYS_PER_INVOCATION:
            raise EventError(f"{count} days from {first} to {last}: at most {MAX_DAYS_PER_INVOCATION} per "
                             "invocation; split the backfill")
        days = [first + timedelta(days=n) for n in range(count)]
    else:
        days = [_scheduled_day(event.get("scheduled_time"), today) - timedelta(days=1)]
    if days[-1] >= today:
        raise EventError(f"{days[-1]} is not over yet (today is {today} UTC): its rates are not final")
    return days


def _day(event: dict[str, Any], key: str) -> date:
    value = event.get(key)
    if not isinstance(value, str):
        raise EventError(f"'{key}' must be a date string YYYY-MM-DD, got {value!r}")
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise EventError(f"'{key}' must be a real date YYYY-MM-DD, got {value!r}") from None


def _scheduled_day(value: Any, today: date) -> date:
    """The UTC date of the schedule's time (e.g. 2026-11-27T00:15:00Z), or today without one."""
    if value is None:
        return today
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise EventError(f"'scheduled_time' must be an ISO-8601 time with an offset, got {value!r}")
    return moment.astimezone(timezone.utc).date()
