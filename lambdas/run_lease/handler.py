"""The run_lease Lambda: the batch pipeline's run-lock lease, in epoch seconds, for TakeRunLock's condition.

The lock item carries `expires_at`, and a run may take over a lock whose lease ended before the run started.
DynamoDB compares numbers, not times, and the ASL (JSONPath) has no date arithmetic; JSONata has, but the
local cloud's interpreter (moto) cannot evaluate it. So this function does the one sum:
{started_at: $$.Execution.StartTime, lease_seconds} -> {started_at, expires_at}, epoch seconds.
It calls nothing and reads no clock: a retried invocation gives the same lease.
"""
from __future__ import annotations

from typing import Any

from lambdas.common.execution import start_time


class BadLeaseEvent(ValueError):
    """The state machine sent an event this function cannot use: the message names the field."""


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    try:
        started = int(start_time(event.get("started_at")).timestamp())  # whole seconds, rounded down
    except ValueError as err:
        raise BadLeaseEvent(f"'started_at' {err}") from err
    lease = event.get("lease_seconds")
    if isinstance(lease, bool) or not isinstance(lease, int) or lease <= 0:
        raise BadLeaseEvent(f"'lease_seconds' must be a positive whole number, got {lease!r}")
    return {"started_at": started, "expires_at": started + lease}
