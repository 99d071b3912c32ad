"""Following an execution's steps (lakehouse/operations/workflows.py) from its history.

The client here is a stand-in for Step Functions (AWS itself, or moto's server) that reproduces one
timing moto shows: the execution's final status is readable before the last states' exit events."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from lakehouse.operations import workflows

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def _event(kind: str, name: str | None = None, seconds: int = 0) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "timestamp": T0 + timedelta(seconds=seconds)}
    if kind.endswith("StateEntered"):
        event["stateEnteredEventDetails"] = {"name": name}
    elif kind.endswith("StateExited"):
        event["stateExitedEventDetails"] = {"name": name}
    return event


FULL = [_event("ExecutionStarted"), _event("TaskStateEntered", "SilverMerge"),
        _event("TaskStateEntered", "GoldBuild", 4),  # moto may list an exit after the next entry
        _event("TaskStateExited", "SilverMerge", 3), _event("TaskStateExited", "GoldBuild", 9),
        _event("ExecutionSucceeded", seconds=9)]


class LateHistory:
    """Reports SUCCEEDED at once; its history lacks the last two events on the first read."""

    def __init__(self) -> None:
        self.reads = 0

    def start_execution(self, **_: Any) -> dict[str, str]:
        return {"executionArn": "arn:aws:states:us-east-1:000000000000:execution:m:run"}

    def describe_execution(self, **_: Any) -> dict[str, str]:
        return {"status": "SUCCEEDED", "output": "{}"}

    def get_paginator(self, operation: str) -> "LateHistory":
        assert operation == "get_execution_history"
        return self

    def paginate(self, **_: Any) -> list[dict[str, Any]]:
        self.reads += 1
        return [{"events": FULL if self.reads > 1 else FULL[:-2]}]


def test_an_ended_execution_is_read_until_its_last_event(monkeypatch) -> None:
    client = LateHistory()
    monkeypatch.setattr(workflows.boto3, "client", lambda service: client)
    seen: list[list[tuple[str, str]]] = []
    execution = workflows.run("arn:aws:states:us-east-1:000000000000:stateMachine:m", name="run",
                              on_change=lambda steps: seen.append([(s.name, s.status) for s in steps]),
                              poll_seconds=0)
    assert client.reads == 2
    assert [(s.name, s.status, s.seconds) for s in execution.steps] == [
        ("SilverMerge", "SUCCEEDED", 3.0), ("GoldBuild", "SUCCEEDED", 5.0)]
    assert seen == [[("SilverMerge", "SUCCEEDED"), ("GoldBuild", "SUCCEEDED")]]


def test_a_failed_task_marks_its_step() -> None:
    steps = workflows._steps([_event("TaskStateEntered", "GoldBuild"), _event("TaskFailed"),
                              _event("ExecutionFailed")])
    assert [(s.name, s.status) for s in steps] == [("GoldBuild", "FAILED")]


def test_steps_follow_the_events_times_not_their_listed_order() -> None:
    listed = [_event("TaskStateEntered", "SilverMerge"), _event("TaskStateExited", "GoldBuild", 9),
              _event("TaskStateExited", "SilverMerge", 3), _event("TaskStateEntered", "GoldBuild", 4)]
    assert [(s.name, s.status, s.seconds) for s in workflows._steps(listed)] == [
        ("SilverMerge", "SUCCEEDED", 3.0), ("GoldBuild", "SUCCEEDED", 5.0)]


def test_a_run_the_lock_refused_reads_as_skipped_not_succeeded() -> None:
    arn = "arn:aws:states:us-east-1:000000000000:execution:m:run"
    skipped = workflows.Execution(arn, "SUCCEEDED", output={"skipped": {"Error": "DynamoDB.ConditionalCheckFailedException"}})
    assert skipped.outcome.startswith("SKIPPED: another batch run holds the run lock")
    assert workflows.Execution(arn, "SUCCEEDED", output={"quality": {"passed": True}}).outcome == "SUCCEEDED"
    assert workflows.Execution(arn, "FAILED").outcome == "FAILED"
