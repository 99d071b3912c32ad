"""Start a state machine execution and follow its steps, as `lakehouse run batch` shows them."""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import boto3


@dataclass
class Step:
    name: str
    status: str = "RUNNING"
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def seconds(self) -> float | None:
        return (self.ended - self.started).total_seconds() if self.started and self.ended else None


@dataclass
class Execution:
    arn: str
    status: str
    steps: list[Step] = field(default_factory=list)
    output: dict[str, Any] | None = None
    error: str | None = None
    cause: str | None = None

    @property
    def outcome(self) -> str:
        """The status as a user reads it: a batch run the run lock refused succeeds, but nothing ran."""
        if self.status == "SUCCEEDED" and (self.output or {}).get("skipped"):
            return ("SKIPPED: another batch run holds the run lock, nothing ran (no run RUNNING? a stale lock: "
                    "docs/runbooks/failed-batch-run.md)")
        return self.status


def _steps(history: list[dict[str, Any]]) -> list[Step]:
    steps: list[Step] = []
    # In time order (a stable sort keeps the listed order of ties): moto's history is not always listed so.
    for event in sorted(history, key=lambda e: e["timestamp"]):
        kind = event["type"]
        if kind.endswith("StateEntered"):
            steps.append(Step(event["stateEnteredEventDetails"]["name"], started=event["timestamp"]))
        elif kind.endswith("StateExited"):
            # By name, not "the last step": moto may list an exit after the next state's entry.
            name = event["stateExitedEventDetails"]["name"]
            step = next((s for s in reversed(steps) if s.name == name and s.ended is None), None)
            if step is not None:
                step.ended, step.status = event["timestamp"], "SUCCEEDED"
        elif kind in ("TaskFailed", "ExecutionFailed") and steps:
            steps[-1].status = "FAILED"
    return steps


_TERMINAL_EVENTS = frozenset({"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"})


def _history(sfn: Any, arn: str, *, ended: bool, poll_seconds: float, tries: int = 20) -> list[dict[str, Any]]:
    """The execution's events. Once it has ended, read until its terminal event is listed: moto can
    report the final status a moment before the last states' exits are in the history."""
    for _ in range(tries):
        events = [event for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn)
                  for event in page["events"]]
        if not ended or any(event["type"] in _TERMINAL_EVENTS for event in events):
            break
        time.sleep(poll_seconds)
    return events


def run(state_machine_arn: str, payload: dict[str, Any] | None = None, *, name: str | None = None,
        on_change: Callable[[list[Step]], None] | None = None, poll_seconds: float = 0.25,
        sfn: Any = None) -> Execution:
    """Start an execution and wait for it to end, calling `on_change` whenever its steps change."""
    sfn = sfn or boto3.client("stepfunctions")
    # Always named: moto leaves $$.Execution.Name empty when the name is generated, and a readable
    # name makes a good run id in ops.pipeline_runs.
    name = name or f"run-{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, name=name,
                              input=json.dumps(payload or {}))["executionArn"]
    seen: list[tuple[str, str]] = []
    while True:
        described = sfn.describe_execution(executionArn=arn)
        history = _history(sfn, arn, ended=described["status"] != "RUNNING", poll_seconds=poll_seconds)
        steps = _steps(history)
        fingerprint = [(s.name, s.status) for s in steps]
        if on_change and fingerprint != seen:
            on_change(steps)
        seen = fingerprint
        if described["status"] != "RUNNING":
            output = json.loads(described["output"]) if described.get("output") else None
            return Execution(arn=arn, status=described["status"], steps=steps, output=output,
                             error=described.get("error"), cause=described.get("cause"))
        time.sleep(poll_seconds)
