"""The run_lease function: the batch pipeline's run-lock lease in epoch seconds, from the execution's start."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lambdas.run_lease.handler import BadLeaseEvent, handler

START = int(datetime(2026, 12, 7, 10, 15, 30, tzinfo=timezone.utc).timestamp())


@pytest.mark.parametrize("started_at", [
    "2026-12-07T10:15:30.192Z",  # $$.Execution.StartTime in AWS
    "2026-12-07T10:15:30Z",  # AWS leaves out milliseconds that are zero
    "2026-12-07T10:15:30.192000+00:00",  # the local cloud's (moto's) rendering of the same time
    "2026-12-07T11:15:30.5+01:00",
])
def test_the_lease_runs_from_the_executions_start_in_whole_seconds(started_at: str) -> None:
    assert handler({"started_at": started_at, "lease_seconds": 23400}, None) == {
        "started_at": START, "expires_at": START + 23400}


@pytest.mark.parametrize(("event", "error"), [
    ({"lease_seconds": 60}, "'started_at' must be an ISO-8601 string"),
    ({"started_at": "yesterday", "lease_seconds": 60}, "'started_at' is not ISO-8601"),
    ({"started_at": "2026-12-07T10:15:30Z"}, "'lease_seconds' must be a positive whole number"),
    ({"started_at": "2026-12-07T10:15:30Z", "lease_seconds": "60"}, "'lease_seconds' must be a positive whole number"),
    ({"started_at": "2026-12-07T10:15:30Z", "lease_seconds": 0}, "'lease_seconds' must be a positive whole number"),
    ({"started_at": "2026-12-07T10:15:30Z", "lease_seconds": True}, "'lease_seconds' must be a positive whole number"),
])
def test_a_bad_event_is_refused_with_the_field_named(event: dict, error: str) -> None:
    with pytest.raises(BadLeaseEvent, match=error):
        handler(event, None)
