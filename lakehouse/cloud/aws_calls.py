"""Which component made each AWS call of a local run: the record the least-privilege check reads.

With LAKEHOUSE_AWS_CALLS=<file>, the local cloud appends one JSON line per AWS call that a component makes:
a function's handler, the event source mapping that feeds a function (it runs under the function's role in
AWS), a state machine's task, or a Glue job. A line names the component, the service, the operation, the
region and the parameters that name resources. tests/e2e/test_pipeline.py checks every line against the
policies CDK synthesizes for that component's role (tests/fixtures/least_privilege.py, docs/security.md).
Calls of no component (the CLI, the producer, provisioning) are the operator's and are not recorded.

Who made a call is read from the call's stack: the frame of the in-process Lambda invoke, of the state
machine interpreter's task (its `env`), of the poller, or of a Glue job's run.
"""
from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from botocore.client import BaseClient

ENV_VAR = "LAKEHOUSE_AWS_CALLS"
FUNCTION, MAPPING, STATE_MACHINE, GLUE_JOB = "function", "event_source_mapping", "state_machine", "glue_job"
# Parameters that name what a call acts on (values are kept; every other parameter is left out).
RESOURCE_PARAMETERS = frozenset({
    "StreamName", "StreamARN", "FunctionName", "JobName", "TableName", "TopicArn", "TargetArn", "QueueUrl",
    "SecretId", "Bucket", "Key", "Prefix", "stateMachineArn", "StateMachineArn", "KeyId", "Name", "DatabaseName",
    "WorkGroup", "Namespace", "ShardId", "LogGroupName", "executionArn",
})

_lock = threading.Lock()
_original_make_api_call = BaseClient._make_api_call


def _component(frame: FrameType | None) -> tuple[str, str, dict[str, str]] | None:
    """(kind, name, what it acts on that the call's parameters may not say) of the component whose code is on
    this stack, innermost first."""
    from lakehouse.cloud.poller import KinesisPoller  # imported here: the poller imports boto3 clients at use

    while frame is not None:
        code, local = frame.f_code, frame.f_locals
        if code.co_name == "_invoke_lambda" and code.co_filename.endswith("moto_patches.py"):
            return FUNCTION, local["self"].function_name, {}
        if code.co_name == "_run_job" and code.co_filename.endswith("moto_patches.py"):
            return GLUE_JOB, local["run"].job_name, {}
        if isinstance(local.get("self"), KinesisPoller):  # GetRecords names a shard iterator, not the stream
            return MAPPING, local["self"].function_name, {"StreamName": local["self"].stream_name}
        environment = local.get("env")
        states = getattr(environment, "states", None)
        if states is not None and hasattr(states, "context_object"):
            return STATE_MACHINE, states.context_object.context_object_data["StateMachine"]["Name"], {}
        frame = frame.f_back
    return None


def resource_parameters(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if key in RESOURCE_PARAMETERS and isinstance(value, str)}


def _recording(path: Path):  # noqa: ANN202 - a replacement of BaseClient._make_api_call
    def _make_api_call(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        component = _component(sys._getframe(1))
        if component is not None:
            line = {"kind": component[0], "component": component[1],
                    "service": self.meta.service_model.signing_name, "operation": operation_name,
                    "region": self.meta.region_name,
                    "parameters": {**component[2], **resource_parameters(api_params)}}
            with _lock, path.open("a") as out:
                out.write(json.dumps(line, sort_keys=True) + "\n")
        return _original_make_api_call(self, operation_name, api_params)
    return _make_api_call


def install_from_env() -> Path | None:
    """Record every component's AWS calls of this process into $LAKEHOUSE_AWS_CALLS, if it is set."""
    target = os.environ.get(ENV_VAR)
    if not target:
        return None
    path = Path(target).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    BaseClient._make_api_call = _recording(path)
    return path


def read(path: Path) -> list[dict[str, Any]]:
    """The recorded calls, one dict per call."""
    return [json.loads(line) for line in path.read_text().splitlines() if line]
