"""Each moto patch, tested through the real moto server over HTTP (moto stands in for AWS).

If a moto upgrade changes the internals a patch relies on, one of these fails by name.
"""
from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import boto3
import pytest

from lakehouse.cloud import moto_patches
from lakehouse.cloud.local_cloud import LocalCloud
from tests.fixtures.local_cloud import register_function as _function

pytestmark = pytest.mark.usefixtures("local_cloud")


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _glue_job(job: Any, default_arguments: dict[str, str] | None = None) -> str:
    name = _name("job")
    moto_patches.GLUE_JOBS[name] = job
    boto3.client("glue").create_job(
        Name=name, Role="arn:aws:iam::000000000000:role/glue", Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"},
        DefaultArguments=default_arguments or {},
    )
    return name


def _wait_run(job_name: str, run_id: str) -> dict[str, Any]:
    glue = boto3.client("glue")
    for _ in range(600):
        run = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
        if run["JobRunState"] in ("SUCCEEDED", "FAILED"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"job run {run_id} never ended")


def _execute(definition: dict[str, Any], payload: dict[str, Any] | None = None) -> dict[str, Any]:
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(name=_name("sm"), definition=json.dumps(definition),
                                   roleArn="arn:aws:iam::000000000000:role/sfn")["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload or {}))["executionArn"]
    for _ in range(1200):
        described = sfn.describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.05)
    raise AssertionError("execution never ended")


def test_glue_start_job_run_runs_the_registered_job_with_merged_arguments() -> None:
    seen: dict[str, str] = {}
    started = threading.Event()
    release = threading.Event()

    def job(args: dict[str, str]) -> None:
        seen.update(args)
        started.set()
        release.wait()

    name = _glue_job(job, {"--clean_path": "file:///lake/clean"})
    glue = boto3.client("glue")
    run_id = glue.start_job_run(JobName=name, Arguments={"--run_id": "r1"})["JobRunId"]
    assert started.wait(30)
    running = glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]
    assert running["JobRunState"] == "RUNNING"
    assert "CompletedOn" not in running  # patch 4: only once terminal
    release.set()
    run = _wait_run(name, run_id)
    assert run["JobRunState"] == "SUCCEEDED"
    assert seen["clean_path"] == "file:///lake/clean" and seen["run_id"] == "r1"
    assert seen["JOB_NAME"] == name and seen["JOB_RUN_ID"] == run_id


def test_glue_job_failure_is_a_failed_run_with_its_error_message() -> None:
    def job(args: dict[str, str]) -> None:
        raise ValueError("staging path does not exist")

    name = _glue_job(job)
    run_id = boto3.client("glue").start_job_run(JobName=name)["JobRunId"]
    run = _wait_run(name, run_id)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: staging path does not exist"


def test_glue_sync_task_waits_for_the_real_job_and_retries_a_failed_run() -> None:
    """Patches 1 and 2: `glue:startJobRun.sync` works, waits for the terminal state, and Retry applies."""
    attempts: list[int] = []

    def flaky(args: dict[str, str]) -> None:
        attempts.append(1)
        time.sleep(0.3)
        if len(attempts) == 1:
            raise RuntimeError("transient failure")

    name = _glue_job(flaky)
    definition = {"StartAt": "Job", "States": {"Job": {
        "Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync",
        "Parameters": {"JobName": name}, "End": True,
        "Retry": [{"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 2}]}}}
    result = _execute(definition)
    assert result["status"] == "SUCCEEDED", result
    assert len(attempts) == 2
    assert json.loads(result["output"])["JobRunState"] == "SUCCEEDED"


def test_glue_sync_task_failure_is_caught_with_the_job_error() -> None:
    name = _glue_job(lambda args: (_ for _ in ()).throw(RuntimeError("boom in spark")))
    definition = {"StartAt": "Job", "States": {
        "Job": {"Type": "Task", "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": name}, "Next": "Done",
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True},
        "Done": {"Type": "Succeed"}}}
    result = _execute(definition)
    assert result["status"] == "SUCCEEDED"
    assert "boom in spark" in json.loads(result["output"])["error"]["Cause"]


def test_lambda_invoke_runs_the_handler_in_process_with_its_environment() -> None:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        import os
        return {"doubled": event["n"] * 2, "stage": os.environ["STAGE"]}

    arn = _function(handler, {"STAGE": "local-test"})
    response = boto3.client("lambda").invoke(FunctionName=arn, Payload=json.dumps({"n": 21}))
    assert "FunctionError" not in response
    assert json.loads(response["Payload"].read()) == {"doubled": 42, "stage": "local-test"}


def test_lambda_exception_is_a_function_error_that_step_functions_can_catch() -> None:
    def handler(event: dict[str, Any], context: Any) -> None:
        raise KeyError("run_id")

    arn = _function(handler)
    response = boto3.client("lambda").invoke(FunctionName=arn, Payload=b"{}")
    assert "FunctionError" in response  # moto says "Handled" where AWS says "Unhandled"
    assert json.loads(response["Payload"].read())["errorType"] == "KeyError"

    definition = {"StartAt": "Call", "States": {
        "Call": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                 "Parameters": {"FunctionName": arn, "Payload": {}}, "End": True,
                 "Catch": [{"ErrorEquals": ["KeyError"], "ResultPath": "$.error", "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}}}
    assert _execute(definition)["status"] == "SUCCEEDED"


def _state_machine(definition: dict[str, Any]) -> str:
    return boto3.client("stepfunctions").create_state_machine(
        name=_name("child"), definition=json.dumps(definition), roleArn="arn:aws:iam::000000000000:role/sfn",
    )["stateMachineArn"]


def test_a_child_execution_runs_to_its_end_and_its_result_has_the_services_casing() -> None:
    child = _state_machine({"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True,
                                                                   "Parameters": {"seen.$": "$.n"}}}})
    broken = _state_machine({"StartAt": "Stop", "States": {"Stop": {"Type": "Fail", "Error": "Locked",
                                                                    "Cause": "another run holds the lock"}}})
    definition = {"StartAt": "Child", "States": {
        "Child": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
                  "Parameters": {"StateMachineArn.$": "$.child", "Input": {"n.$": "$.n"}},
                  "ResultSelector": {"status.$": "$.Status", "output.$": "$.Output", "arn.$": "$.ExecutionArn",
                                     "started.$": "$.StartDate"},
                  "ResultPath": "$.child_result", "End": True,
                  "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}]},
        "Caught": {"Type": "Pass", "End": True}}}

    done = json.loads(_execute(definition, {"child": child, "n": 7})["output"])["child_result"]
    assert done["status"] == "SUCCEEDED" and done["output"] == {"seen": 7}  # .sync:2: the output as JSON
    assert done["arn"].startswith(child.replace(":stateMachine:", ":execution:")) and isinstance(done["started"], int)

    failed = _execute(definition, {"child": broken, "n": 7})
    assert failed["status"] == "SUCCEEDED"  # caught
    cause = json.loads(json.loads(failed["output"])["error"]["Cause"])
    assert (cause["Status"], cause["Error"], cause["Cause"]) == ("FAILED", "Locked", "another run holds the lock")


def test_every_patch_targets_the_pinned_moto() -> None:
    """A moto upgrade must be a deliberate change: these patches were written against 5.2.5."""
    import moto
    assert moto.__version__ == "5.2.5"
    assert moto_patches._applied


def test_local_cloud_is_only_reachable_on_loopback(local_cloud: LocalCloud) -> None:
    assert local_cloud.endpoint.startswith("http://localhost:")
    server = local_cloud._server
    assert server is not None and server.get_host_and_port()[0] == "127.0.0.1"


def test_function_output_goes_to_its_log_file_when_a_log_dir_is_set(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(moto_patches, "LOG_DIR", tmp_path)

    def handler(event: dict[str, Any], context: Any) -> str:
        print(json.dumps({"level": "INFO", "message": "hello from the function"}))
        return "ok"

    arn = _function(handler)
    boto3.client("lambda").invoke(FunctionName=arn, Payload=b"{}")
    name = arn.rsplit(":", 1)[-1]
    assert "hello from the function" in (tmp_path / f"{name}.log").read_text()


def test_other_threads_keep_their_stdout_while_a_function_runs(tmp_path: Any, monkeypatch: Any,
                                                              capsys: Any) -> None:
    """The CLI prints a state machine's steps while a Lambda runs in moto's request thread: its lines
    stay on the terminal, and only the function's own go to the function's log."""
    monkeypatch.setattr(moto_patches, "LOG_DIR", tmp_path)
    inside, printed = threading.Event(), threading.Event()

    def handler(event: dict[str, Any], context: Any) -> str:
        print("from the function")
        inside.set()
        printed.wait()  # while this invoke is running, the test's thread prints
        return "ok"

    arn = _function(handler)
    invoke = threading.Thread(target=lambda: boto3.client("lambda").invoke(FunctionName=arn, Payload=b"{}"))
    invoke.start()
    assert inside.wait(timeout=120)  # a guard against a hang, not a speed expectation
    print("from the main thread")
    printed.set()
    invoke.join()
    log = (tmp_path / f"{arn.rsplit(':', 1)[-1]}.log").read_text()
    assert "from the function" in log and "from the main thread" not in log
    assert "from the main thread" in capsys.readouterr().out


def test_kinesis_serves_reads_while_producers_write_and_reads_start_at_the_iterator() -> None:
    """Patch 7: under concurrent PutRecords, every GetRecords succeeds, and the records come back once each, in
    order, however many the shard already holds."""
    kinesis = boto3.client("kinesis")
    stream = _name("stream")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.1})
    writers, per_writer = 4, 200

    def produce(writer: int) -> None:
        client = boto3.client("kinesis")
        for start in range(0, per_writer, 50):
            client.put_records(StreamName=stream, Records=[
                {"Data": f"{writer}:{n}".encode(), "PartitionKey": "k"} for n in range(start, start + 50)])

    threads = [threading.Thread(target=produce, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    shard = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    read: list[dict[str, Any]] = []
    while len(read) < writers * per_writer:  # reads race the writers until everything is in
        response = kinesis.get_records(ShardIterator=iterator, Limit=70)
        read += response["Records"]
        iterator = response["NextShardIterator"]
    for thread in threads:
        thread.join()

    numbers = [int(r["SequenceNumber"]) for r in read]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers) == writers * per_writer
    assert sorted(r["Data"].decode() for r in read) == sorted(f"{w}:{n}" for w in range(writers)
                                                              for n in range(per_writer))
    assert kinesis.get_records(ShardIterator=iterator)["Records"] == []
