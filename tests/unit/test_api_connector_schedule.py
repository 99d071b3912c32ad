"""Which days an FX connector invocation fetches: the schedule's default, single days, backfill ranges."""
from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from lambdas.api_connector.schedule import MAX_DAYS_PER_INVOCATION, EventError, days_to_fetch

TODAY = date(2026, 11, 27)


@pytest.mark.parametrize("event", [None, {}])
def test_without_keys_yesterday_utc_is_fetched(event: Any) -> None:
    assert days_to_fetch(event, TODAY) == [date(2026, 11, 26)]


@pytest.mark.parametrize("scheduled, day", [
    ("2026-11-27T00:15:00Z", date(2026, 11, 26)),
    ("2026-11-20T00:15:00+00:00", date(2026, 11, 19)),    # a late or retried run keeps its own day
    ("2026-11-27T01:00:00+02:00", date(2026, 11, 25)),    # 2026-11-26T23:00Z: the day before that
])
def test_the_schedules_time_decides_the_day(scheduled: str, day: date) -> None:
    assert days_to_fetch({"scheduled_time": scheduled}, TODAY) == [day]


def test_a_single_day() -> None:
    assert days_to_fetch({"date": "2024-02-29"}, TODAY) == [date(2024, 2, 29)]


def test_a_backfill_range_is_inclusive_and_in_order() -> None:
    days = days_to_fetch({"from": "2026-02-27", "to": "2026-03-02"}, TODAY)
    assert days == [date(2026, 2, 27), date(2026, 2, 28), date(2026, 3, 1), date(2026, 3, 2)]


def test_the_longest_backfill_allowed() -> None:
    assert len(days_to_fetch({"from": "2026-01-01", "to": "2026-01-31"}, TODAY)) == MAX_DAYS_PER_INVOCATION == 31


@pytest.mark.parametrize("event, fragment", [
    ([], "must be a JSON object, got list"),
    ({"form": "2026-01-01"}, "unknown event key(s) ['form']"),
    ({"date": "2026-01-01", "to": "2026-01-02"}, "either 'date' or 'from' and 'to'"),
    ({"from": "2026-01-01"}, "'to' must be a date string"),
    ({"date": 20260101}, "'date' must be a date string"),
    ({"date": "2026-02-30"}, "'date' must be a real date"),
    ({"date": "20260101"}, "'date' must be a real date"),
    ({"date": "2026-01-01T00:00:00"}, "'date' must be a real date"),
    ({"from": "2026-01-05", "to": "2026-01-01"}, "'from' 2026-01-05 is after 'to' 2026-01-01"),
    ({"from": "2026-01-01", "to": "2026-02-01"}, "32 days from 2026-01-01 to 2026-02-01: at most 31"),
    ({"date": "2026-11-27"}, "2026-11-27 is not over yet"),
    ({"from": "2026-11-20", "to": "2026-11-28"}, "2026-11-28 is not over yet"),
    ({"scheduled_time": "2026-11-27T00:15:00"}, "'scheduled_time' must be an ISO-8601 time with an offset"),
    ({"scheduled_time": "yesterday"}, "'scheduled_time' must be an ISO-8601 time"),
    ({"scheduled_time": "2026-11-29T00:15:00Z"}, "2026-11-28 is not over yet"),
])
def test_an_impossible_event_is_refused_naming_the_problem(event: Any, fragment: str) -> None:
    with pytest.raises(EventError) as error:
        days_to_fetch(event, TODAY)
    assert fragment in str(error.value)
