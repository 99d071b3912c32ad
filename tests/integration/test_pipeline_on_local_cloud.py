"""The provisioned pipeline on the local cloud (a real moto server over HTTP; moto stands in for AWS):
Kinesis to the real cleaner to the lake, and the real batch state machine with its Retry and Catch.
"""
from __future__ import annotations

import base64
import json
import os
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

import pyarrow.parquet as pq
import pytest
from moto.core.exceptions import JsonRESTError

from cdk_app import config
from cdk_app.config import PROJECT_ROOT
from iceberg_tables.migrator import migrate
from iceberg_tables.specs import LIVE_TABLES
from lakehouse.analytics.athena import query
from lakehouse.cloud import moto_patches
from lakehouse.cloud.poller import KinesisPoller, MappingSettings
from lakehouse.cloud.provision import Provisioned, render_asl
from lakehouse.cloud.sqs_poller import SqsPoller
from lakehouse.lake.catalog import local_catalog
from lakehouse.lake.layout import LocalLake
from lakehouse.operations import workflows
from lakehouse.operations.alerts import take_alerts
from lakehouse.sources.generator import generate
from lakehouse.sources.producer import put_records
from lambdas.data_quality.checks import all_checks
from tests.fixtures.batch_runs import (LOCK_TABLE, WAIT_SECONDS, Gate, expire_lease, in_background, lock_item,
                                      stand_in_jobs)
from tests.fixtures.kinesis_events import ARRIVAL, msk_event

ENV = config.load("local")


def test_kinesis_to_cleaner_to_lake_accounts_for_every_record(pipeline: tuple[LocalLake, Provisioned]) -> None:
    lake, resources = pipeline
    generated = generate(1500, seed=5, defect_rate=0.08)
    put_records(resources.stream_name, generated.records, generated.partition_keys)
    settings = MappingSettings(batch_size=ENV.cleaner_batch_size, on_failure_queue_url=resources.dlq_url)
    stats = KinesisPoller(resources.stream_name, resources.cleaner_function, settings).drain()

    assert stats.records == 1500 and stats.failed_batches == 0
    assert stats.invocations >= 1500 // ENV.cleaner_batch_size
    staging = lake.root / "lake" / "staging"
    manifests = [json.loads(p.read_text()) for p in staging.glob("manifests/clickstream/**/*.json")]
    assert len(manifests) == stats.invocations
    assert sum(m["received"] for m in manifests) == 1500
    assert all(m["received"] == m["clean"] + m["quarantined"] + m["duplicates"] for m in manifests)
    staged = sum(pq.read_metadata(p).num_rows for p in staging.glob("clean/clickstream/**/*.parquet"))
    assert staged == sum(m["clean"] for m in manifests)
    quarantined = sum(pq.read_metadata(p).num_rows for p in staging.glob("quarantine/clickstream/**/*.parquet"))
    assert quarantined == sum(generated.counts.quarantined_by_reason.values())


def test_the_batch_asl_fails_through_its_catch_and_records_the_failed_run(
        pipeline: tuple[LocalLake, Provisioned]) -> None:
    """The real ASL and run recorder; the silver job is replaced by one that always fails."""
    lake, resources = pipeline
    attempts: list[str] = []

    def broken_job(args: dict[str, str]) -> None:
        attempts.append(args["run_id"])
        raise RuntimeError("staging bucket unreachable")

    moto_patches.GLUE_JOBS[ENV.glue_job_name("silver_merge")] = broken_job
    execution = workflows.run(resources.state_machine_arn, name="failing-run")

    assert execution.status == "FAILED"
    assert execution.error == "BatchPipelineFailed"
    assert execution.cause.startswith("A batch step failed: States.TaskFailed: ")
    assert "RuntimeError: staging bucket unreachable" in execution.cause
    assert attempts == ["failing-run"] * 3  # the first try and the ASL's two retries
    assert [s.name for s in execution.steps] == ["RunLimits", "RunLease", "TakeRunLock", "SilverMerge", "PublishAlert",
                                                 "RecordFailure", "ReleaseRunLockAfterFailure", "FailureKind", "Failed"]
    [alert] = take_alerts(resources.alert_queue_url)
    assert alert.subject == "Batch pipeline run failed"
    assert alert.message.startswith(f"{ENV.state_machine_name} run failing-run failed. States.TaskFailed: ")
    assert "RuntimeError: staging bucket unreachable" in alert.message
    assert _rows(lake, "SELECT step, status FROM ops.pipeline_runs WHERE run_id = 'failing-run'") == [("run", "FAILED")]


def _rows(lake: LocalLake, sql: str) -> list[tuple]:
    from lakehouse.analytics import athena
    from lakehouse.lake.catalog import local_catalog
    return athena.query(local_catalog(lake.warehouse, lake.catalog_db), sql)[1]


def test_the_asl_needs_every_substitution() -> None:
    with pytest.raises(KeyError, match="RecordRunFunctionArn"):
        render_asl("batch_pipeline", {"SilverMergeJobName": "a", "GoldBuildJobName": "b"})


def _silver_event_ids(lake: LocalLake) -> list[str]:
    return [row[0] for row in _rows(lake, "SELECT event_id FROM silver.events")]


def test_after_injected_faults_retries_and_the_replay_silver_holds_each_good_event_once(
        pipeline: tuple[LocalLake, Provisioned]) -> None:
    """Fault injection on the local cloud, while faults are on: the cleaner crashes on every 3rd call
    (retried) and on any batch holding one of three poison records (bisected down to them, which then
    exhaust their retries and go to the on-failure queue), and one write fails for real (a batch item
    failure, retried). Then the faults stop, the queue is replayed, and the batch state machine runs."""
    from lakehouse.operations.replay import replay_dlq
    lake, resources = pipeline
    name = resources.cleaner_function
    cleaner = moto_patches.LAMBDA_HANDLERS[name]
    calls = {"n": 0, "faults": True, "write_failed": False, "failed_write": None, "firsts": []}
    generated = generate(1200, seed=9, defect_rate=0.05)
    poison = {e.event_id.encode() for e in generated.clean_events[100:1000:400]}

    def faulty(event: dict, context: object) -> dict:
        calls["n"] += 1
        payloads = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
        if calls["faults"] and (calls["n"] % 3 == 0 or any(p in d for p in poison for d in payloads)):
            raise RuntimeError("injected crash")
        first = event["Records"][0]["kinesis"]["sequenceNumber"]
        calls["firsts"].append(first)
        if calls["faults"] and not calls["write_failed"]:
            calls["write_failed"] = True
            os.environ["STAGING_URI"] = "file:///proc/no-such-dir/staging"  # this one write fails for real
            calls["failed_write"] = (first, cleaner(event, context), len(calls["firsts"]))
            return calls["failed_write"][1]
        return cleaner(event, context)

    moto_patches.LAMBDA_HANDLERS[name] = faulty
    put_records(resources.stream_name, generated.records, generated.partition_keys)
    settings = MappingSettings(batch_size=100, max_retry_attempts=1, on_failure_queue_url=resources.dlq_url)
    stats = KinesisPoller(resources.stream_name, name, settings).drain()
    assert stats.failed_records >= len(poison) and stats.retries > 0 and calls["write_failed"]
    # the failed write came back as a batch item failure at the batch's first record, and was retried from it
    first, response, at = calls["failed_write"]
    assert response == {"batchItemFailures": [{"itemIdentifier": first}]}
    assert first in calls["firsts"][at:]

    calls["faults"] = False
    replayed = replay_dlq(resources.dlq_url, name, lake.raw_uri)
    assert replayed.failed == [] and replayed.records == stats.failed_records
    replayed_again = replay_dlq(resources.dlq_url, name, lake.raw_uri)
    assert replayed_again.records == 0  # the queue is empty: replays happen once

    execution = workflows.run(resources.state_machine_arn, name="after-faults")
    assert execution.status == "SUCCEEDED", execution.cause
    event_ids = _silver_event_ids(lake)
    assert sorted(event_ids) == sorted(e.event_id for e in generated.clean_events)


def _break_staging(name: str) -> dict[str, bool]:
    """The cleaner's staging writes fail for real (its raw file is written first) until `["on"]` is False."""
    cleaner = moto_patches.LAMBDA_HANDLERS[name]
    broken = {"on": True}

    def staging_down(event: dict, context: object) -> dict:
        if broken["on"]:
            os.environ["STAGING_URI"] = "file:///proc/no-such-dir/staging"
        return cleaner(event, context)

    moto_patches.LAMBDA_HANDLERS[name] = staging_down
    return broken


def test_replay_falls_back_to_the_raw_zone_once_the_stream_no_longer_holds_the_records(
        pipeline: tuple[LocalLake, Provisioned]) -> None:
    """Staging writes fail for good (raw was written first), the batches go to the on-failure queue,
    the stream is deleted, and the replay rebuilds the batches from the raw zone's envelopes."""
    from lakehouse.operations.replay import replay_dlq
    lake, resources = pipeline
    name = resources.cleaner_function
    broken = _break_staging(name)
    generated = generate(300, seed=4, defect_rate=0.1)
    put_records(resources.stream_name, generated.records, generated.partition_keys)
    settings = MappingSettings(batch_size=100, max_retry_attempts=1, on_failure_queue_url=resources.dlq_url)
    stats = KinesisPoller(resources.stream_name, name, settings).drain()
    assert stats.failed_records == 300

    import boto3
    boto3.client("kinesis").delete_stream(StreamName=resources.stream_name)
    broken["on"] = False
    replayed = replay_dlq(resources.dlq_url, name, lake.raw_uri)
    assert replayed.failed == [] and replayed.from_raw == 300 and replayed.from_stream == 0

    execution = workflows.run(resources.state_machine_arn, name="after-raw-replay")
    assert execution.status == "SUCCEEDED", execution.cause
    assert sorted(_silver_event_ids(lake)) == sorted(e.event_id for e in generated.clean_events)


def test_replay_rebuilds_a_failed_msk_batch_from_the_raw_zone_and_keeps_what_it_cannot_read(
        pipeline: tuple[LocalLake, Provisioned]) -> None:
    """An MSK batch whose staging write fails for good (the MSK mapping shares the cleaner's on-failure
    queue): its KafkaBatchInfo is replayed from the raw zone, in the MSK event shape. No Kafka broker
    can run here, so the failure record is the one Lambda's documentation shows, written by hand."""
    import boto3
    from lakehouse.operations.replay import replay_dlq
    lake, resources = pipeline
    name = resources.cleaner_function
    broken = _break_staging(name)
    generated = generate(60, seed=21, defect_rate=0.1, now=ARRIVAL)
    event = msk_event({("shop-events", 3): generated.records}, first_offset=500)
    response = boto3.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert "FunctionError" in response  # MSK: the whole invocation fails, the raw zone already holds it
    sqs = boto3.client("sqs")
    kafka_failure = {"requestContext": {"condition": "RetryAttemptsExhausted"}, "version": "1.0", "KafkaBatchInfo": {
        "batchSize": 60, "eventSourceArn": event["eventSourceArn"], "bootstrapServers": event["bootstrapServers"],
        "recordsInfo": {"shop-events-3": {"firstRecordOffset": "500", "lastRecordOffset": "559"}}}}
    sqs.send_message(QueueUrl=resources.dlq_url, MessageBody=json.dumps(kafka_failure))
    sqs.send_message(QueueUrl=resources.dlq_url, MessageBody='{"not": "a failure record"}')

    broken["on"] = False
    replayed = replay_dlq(resources.dlq_url, name, lake.raw_uri)
    assert (replayed.batches, replayed.records, replayed.from_raw) == (1, 60, 60)
    assert len(replayed.failed) == 1 and "neither" not in replayed.failed[0] and "KafkaBatchInfo" in replayed.failed[0]
    sqs.purge_queue(QueueUrl=resources.dlq_url)  # the unreadable message stays (as it should): not for the next test
    staging = Path(urlparse(lake.staging_uri).path)
    manifests = [json.loads(path.read_text()) for path in (staging / "manifests").rglob("shop-events-3-500-559.json")]
    assert [(m["stream"], m["received"]) for m in manifests] == [("msk", 60)]
    counts = generated.counts
    assert (manifests[0]["clean"] + manifests[0]["duplicates"], manifests[0]["quarantined"]) == \
        (counts.clean + counts.duplicates, sum(counts.quarantined_by_reason.values()))


def test_a_run_started_while_another_holds_the_lock_is_skipped_quietly_and_recorded(
        pipeline: tuple[LocalLake, Provisioned], gates: Callable[..., Gate]) -> None:
    """The run lock: a second execution (a schedule tick during a long run) runs no job, publishes no alert and
    succeeds as skipped, with its SKIPPED row in ops.pipeline_runs; after the first ends, the lock is free again."""
    lake, resources = pipeline
    gate = gates("first")
    stand_in_jobs(silver=gate.job)
    first = in_background(resources.state_machine_arn, "first")
    assert gate.reached.wait(WAIT_SECONDS)
    second = workflows.run(resources.state_machine_arn, name="second")
    gate.open()

    assert second.status == "SUCCEEDED", second.cause
    assert [s.name for s in second.steps][-3:] == ["TakeRunLock", "RecordSkipped", "Skipped"]
    assert "skipped" in second.output and "silver_merge" not in second.output
    assert first.result(WAIT_SECONDS).status == "SUCCEEDED" and gate.ran == ["first"]
    assert take_alerts(resources.alert_queue_url) == []
    assert _rows(lake, "SELECT step, status FROM ops.pipeline_runs WHERE run_id = 'second'") == [("run", "SKIPPED")]
    third = workflows.run(resources.state_machine_arn, name="third")  # the lock was released
    assert third.status == "SUCCEEDED" and gate.ran == ["first", "third"]


def _lease_seconds() -> int:
    """The lease the lock must carry: the machine's timeout, and a job's own timeout for a job it started last."""
    asl = json.loads((PROJECT_ROOT / "step_functions" / "batch_pipeline.asl.json").read_text())
    return asl["TimeoutSeconds"] + ENV.glue_timeout_minutes * 60


def test_a_lock_left_by_a_stopped_run_holds_until_its_lease_runs_out(
        pipeline: tuple[LocalLake, Provisioned], gates: Callable[..., Gate]) -> None:
    """StopExecution skips the last states, so the stopped run's lock stays. It carries a lease from the run's
    start; until the lease runs out later runs are skipped, then the next run takes the lock over."""
    import boto3
    _, resources = pipeline
    gate = gates("stopped")
    stand_in_jobs(silver=gate.job)
    sfn = boto3.client("stepfunctions")
    stopped = sfn.start_execution(stateMachineArn=resources.state_machine_arn, name="stopped")["executionArn"]
    assert gate.reached.wait(WAIT_SECONDS)
    sfn.stop_execution(executionArn=stopped)
    gate.open()  # Glue would stop the job run too; moto's job thread runs on
    assert gate.left.wait(WAIT_SECONDS)

    started = int(sfn.describe_execution(executionArn=stopped)["startDate"].timestamp())
    left = lock_item()
    assert left is not None and (left["run_id"], left["execution"]) == ("stopped", stopped)
    assert (int(left["started_at"]), int(left["expires_at"])) == (started, started + _lease_seconds())
    during = workflows.run(resources.state_machine_arn, name="during-the-lease")
    assert during.status == "SUCCEEDED" and during.steps[-1].name == "Skipped" and gate.ran == ["stopped"]

    expire_lease()
    after = workflows.run(resources.state_machine_arn, name="after-the-lease")
    assert after.status == "SUCCEEDED", after.cause
    assert after.steps[-1].name == "ReleaseRunLock" and gate.ran == ["stopped", "after-the-lease"]
    assert lock_item() is None


class _ReplyLost(JsonRESTError):
    """DynamoDB's 500 after the write was applied (its documentation: the request may or may not have
    succeeded). Named as Step Functions names it (the SDK's exception class); moto would use the wire code."""
    code = 500

    def __init__(self) -> None:
        super().__init__("InternalServerErrorException", "Internal server error (the put was applied)")


def test_a_take_of_the_lock_retried_after_a_lost_reply_finds_its_own_lock_and_runs(
        pipeline: tuple[LocalLake, Provisioned], monkeypatch: pytest.MonkeyPatch) -> None:
    """TakeRunLock's put is applied but its reply is an error, so its Retry puts again: the lock it meets is its
    own (same run id), and the run goes on instead of refusing itself."""
    from moto.dynamodb.models import DynamoDBBackend
    _, resources = pipeline
    ran: list[str] = []
    stand_in_jobs(silver=lambda args: ran.append(args["run_id"]))
    put_item, lost = DynamoDBBackend.put_item, []

    def applied_then_lost(self: DynamoDBBackend, table_name: str, item: dict, *args: Any, **kwargs: Any) -> Any:
        result = put_item(self, table_name, item, *args, **kwargs)
        if table_name == LOCK_TABLE and not lost:
            lost.append(item["run_id"]["S"])
            raise _ReplyLost()
        return result

    monkeypatch.setattr(DynamoDBBackend, "put_item", applied_then_lost)
    execution = workflows.run(resources.state_machine_arn, name="retried")

    assert lost == ["retried"]
    assert execution.status == "SUCCEEDED", execution.cause
    assert ran == ["retried"] and lock_item() is None


def test_a_run_that_outlived_its_lease_cannot_release_the_lock_of_the_run_that_took_it_over(
        pipeline: tuple[LocalLake, Provisioned], gates: Callable[..., Gate]) -> None:
    """Its release deletes the lock only if it is still this run's: the later run keeps its lock until its end."""
    _, resources = pipeline
    late, taker = gates("late"), gates("taker")
    stand_in_jobs(silver=taker.job, gold=late.job)  # different jobs: Glue runs one of each at a time
    late_run = in_background(resources.state_machine_arn, "late")
    assert late.reached.wait(WAIT_SECONDS)
    expire_lease()
    taker_run = in_background(resources.state_machine_arn, "taker")
    assert taker.reached.wait(WAIT_SECONDS)
    assert lock_item()["run_id"] == "taker"

    late.open()
    ended = late_run.result(WAIT_SECONDS)
    assert ended.status == "FAILED" and ended.error == "DynamoDB.ConditionalCheckFailedException"
    assert ended.steps[-1].name == "ReleaseRunLock" and lock_item()["run_id"] == "taker"
    taker.open()
    assert taker_run.result(WAIT_SECONDS).status == "SUCCEEDED" and lock_item() is None


def _with_job_timeout(state_machine_arn: str, seconds: int) -> str:
    """A copy of the batch state machine whose Glue tasks time out after `seconds` (the environment's jobs
    take minutes to time out); returns its ARN."""
    import boto3
    sfn = boto3.client("stepfunctions")
    described = sfn.describe_state_machine(stateMachineArn=state_machine_arn)
    definition = json.loads(described["definition"])
    [limits] = [s for s in definition["States"].values() if s.get("ResultPath") == "$.limits"]
    limits["Parameters"]["job_timeout_seconds.$"] = f"States.StringToJson('{seconds}')"
    return sfn.create_state_machine(name=f"{described['name']}-short-jobs", definition=json.dumps(definition),
                                    roleArn=described["roleArn"])["stateMachineArn"]


def test_a_glue_job_over_its_timeout_fails_the_run_without_a_retry(
        pipeline: tuple[LocalLake, Provisioned], gates: Callable[..., Gate]) -> None:
    """States.Timeout is not retried (the job would time out again while the run holds the lock): the run
    alerts, records its failure and releases the lock at once."""
    lake, resources = pipeline
    gate = gates()
    stand_in_jobs(silver=gate.job)
    execution = workflows.run(_with_job_timeout(resources.state_machine_arn, seconds=1), name="too-slow")

    assert execution.status == "FAILED" and execution.cause.startswith("A batch step failed: States.Timeout")
    assert gate.ran == ["too-slow"]
    assert [s.name for s in execution.steps][-6:] == ["SilverMerge", "PublishAlert", "RecordFailure",
                                                     "ReleaseRunLockAfterFailure", "FailureKind", "Failed"]
    [alert] = take_alerts(resources.alert_queue_url)
    assert "run too-slow failed. States.Timeout" in alert.message
    assert _rows(lake, "SELECT status FROM ops.pipeline_runs WHERE run_id = 'too-slow'") == [("FAILED",)]
    assert lock_item() is None


def test_a_duplicated_key_in_silver_fails_the_quality_step_and_alerts(pipeline: tuple[LocalLake, Provisioned]) -> None:
    """The real cleaner, jobs and checks: a clean run passes every check; then a row is written into
    silver a second time (as a broken merge would) and the next run fails on that key, alerts, and
    records each check and the run."""
    import pyarrow as pa
    from collections import Counter
    from lakehouse.lake.catalog import local_catalog
    lake, resources = pipeline
    generated = generate(400, seed=12, defect_rate=0.05)
    put_records(resources.stream_name, generated.records, generated.partition_keys)
    settings = MappingSettings(batch_size=ENV.cleaner_batch_size, on_failure_queue_url=resources.dlq_url)
    assert KinesisPoller(resources.stream_name, resources.cleaner_function, settings).drain().failed_batches == 0

    clean = workflows.run(resources.state_machine_arn, name="clean-run")
    assert clean.status == "SUCCEEDED", clean.cause
    assert clean.output["quality"]["passed"] is True and clean.output["quality"]["failed"] == []
    assert take_alerts(resources.alert_queue_url) == []
    checks = len(all_checks("clean-run", ENV.quality, datetime.now(timezone.utc)))
    assert _rows(lake, "SELECT count(*), count_if(status = 'PASSED') FROM ops.quality_results "
                       "WHERE run_id = 'clean-run'") == [(checks, checks)]

    events = local_catalog(lake.warehouse, lake.catalog_db).load_table("silver.events")
    twice = events.scan(limit=1).to_arrow()
    events.append(pa.Table.from_pylist(twice.to_pylist(), schema=events.schema().as_arrow()))
    ids = Counter(r["event_id"] for r in events.scan(selected_fields=("event_id",)).to_arrow().to_pylist())
    duplicated = sorted(i for i, n in ids.items() if n > 1)
    assert len(duplicated) == 1

    broken = workflows.run(resources.state_machine_arn, name="broken-run")
    assert broken.status == "FAILED" and broken.error == "QualityCheckFailed"
    assert broken.cause.startswith(f"Data-quality checks of run broken-run failed: 1 of {checks} checks failed: "
                                   "unique_keys(silver.events): 1 duplicated (event_id) keys in ")
    assert [s.name for s in broken.steps] == [
        "RunLimits", "RunLease", "TakeRunLock", "SilverMerge", "GoldBuild", "Quality", "QualityPassed", "QualityFailed",
        "PublishAlert", "RecordFailure", "ReleaseRunLockAfterFailure", "FailureKind", "QualityCheckFailed"]
    [alert] = take_alerts(resources.alert_queue_url)
    assert alert.message == f"{ENV.state_machine_name} run broken-run failed. QualityCheckFailed: {broken.cause}"
    assert _rows(lake, "SELECT check_name, table_name, observed FROM ops.quality_results "
                       "WHERE run_id = 'broken-run' AND status = 'FAILED'") == [
        ("unique_keys", "silver.events", float(len(duplicated)))]
    runs = dict(_rows(lake, "SELECT step, status FROM ops.pipeline_runs WHERE run_id = 'broken-run'"))
    assert runs == {"silver_merge": "SUCCEEDED", "gold_build": "SUCCEEDED", "quality": "FAILED", "run": "FAILED"}
    third = workflows.run(resources.state_machine_arn, name="after-broken-run")  # the lock was released
    assert third.error == "QualityCheckFailed"  # the duplicate is still there: fixing it is the runbook's job


# Quality checks that fail on what a broken producer really sends: records generated, streamed through Kinesis
# and the cleaner (or pulled by the FX connector, dropped as a catalog file), merged by the real jobs, judged by
# the real checks against the local environment's limits (cdk.json).

def _stream(resources: Provisioned, source: str, generated: Any) -> None:
    """A producer's records through its Kinesis stream and cleaner."""
    names = resources.kinesis_sources[source]
    put_records(names["stream"], generated.records, generated.partition_keys)
    settings = MappingSettings(batch_size=ENV.cleaner_batch_size, on_failure_queue_url=names["dlq_url"])
    assert KinesisPoller(names["stream"], names["function"], settings).drain().failed_batches == 0


def _drop_catalog(lake: LocalLake, resources: Provisioned) -> None:
    """Every product the generators' orders name (P-00001 to P-01999), one clean catalog file through the loader."""
    from lakehouse.sources.landing import deliver_new_files, invoke_function, landing_folder
    from lakehouse.sources.product_catalog import write_catalog
    folder = landing_folder(lake)
    folder.mkdir(parents=True, exist_ok=True)
    write_catalog(folder / "catalog.csv", rows=1999, seed=3, defect_rate=0.0, arrived=datetime.now(timezone.utc))
    assert [f["status"] for f in deliver_new_files(lake, invoke_function(resources.file_loader_function))] == ["loaded"]


def _pull_fx_rates(resources: Provisioned, first: date, last: date) -> None:
    import boto3
    days = {"from": first.isoformat(), "to": last.isoformat()}
    response = boto3.client("lambda").invoke(FunctionName=resources.fx_connector_function,
                                             Payload=json.dumps(days).encode())
    assert "FunctionError" not in response, response["Payload"].read()


Failed = dict[str, tuple[float | None, float | None, str]]


def _failed_checks(lake: LocalLake, run_id: str) -> Failed:
    """The run's failed checks by label: (observed, threshold, message)."""
    return {f"{name}({table})": (observed, threshold, message) for name, table, observed, threshold, message in _rows(
        lake, "SELECT check_name, table_name, observed, threshold, message FROM ops.quality_results "
              f"WHERE run_id = '{run_id}' AND status = 'FAILED'")}


def _failed_run(lake: LocalLake, resources: Provisioned, run_id: str) -> Failed:
    """A batch run that must end failed on its quality checks, with the alert; its failed checks."""
    execution = workflows.run(resources.state_machine_arn, name=run_id)
    assert (execution.status, execution.error) == ("FAILED", "QualityCheckFailed"), execution.cause
    failed = _failed_checks(lake, run_id)
    assert execution.cause.startswith(f"Data-quality checks of run {run_id} failed: {len(failed)} of ")
    [alert] = take_alerts(resources.alert_queue_url)
    assert alert.message == f"{ENV.state_machine_name} run {run_id} failed. QualityCheckFailed: {execution.cause}"
    assert all(f"{label}: {message}" in alert.message for label, (_, _, message) in failed.items())
    return failed


def _passed_run(resources: Provisioned, run_id: str) -> None:
    execution = workflows.run(resources.state_machine_arn, name=run_id)
    assert execution.status == "SUCCEEDED", execution.cause
    assert take_alerts(resources.alert_queue_url) == []


def test_producers_sending_only_bad_records_fail_the_run_on_their_quarantine_rates(
        pipeline: tuple[LocalLake, Provisioned]) -> None:
    """Both streams' producers break (every record rejected by the cleaner): nothing bad reaches silver, so
    only the share of records quarantined can tell."""
    from lakehouse.sources.generator import generate_orders
    lake, resources = pipeline
    _drop_catalog(lake, resources)
    _stream(resources, "clickstream", generate(400, seed=41, defect_rate=0.05))
    _stream(resources, "orders", generate_orders(120, seed=42, defect_rate=0.05))
    _passed_run(resources, "healthy-producers")

    clicks, orders = generate(300, seed=43, defect_rate=1.0), generate_orders(80, seed=44, defect_rate=1.0)
    assert clicks.counts.quarantined == 300 and orders.counts.quarantined == 80  # every record broken
    _stream(resources, "clickstream", clicks)
    _stream(resources, "orders", orders)
    failed = _failed_run(lake, resources, "broken-producers")

    limits = ENV.quality.max_quarantine_rate
    assert failed == {
        "quarantine_rate(silver.events)": (1.0, limits["clickstream"], "300 of 300 clickstream records this run "
                                           f"merged were quarantined: rate 1.0000 (limit {limits['clickstream']:.4f})"),
        "quarantine_rate(silver.order_events)": (1.0, limits["orders"], "80 of 80 orders records this run merged "
                                                 f"were quarantined: rate 1.0000 (limit {limits['orders']:.4f})")}


def test_orders_and_fx_rates_that_stopped_arriving_fail_their_freshness(
        pipeline: tuple[LocalLake, Provisioned]) -> None:
    """The clickstream flows, but the newest order event and FX rate day arrived are days old."""
    from lakehouse.sources.generator import generate_orders
    lake, resources = pipeline
    now = datetime.now(timezone.utc)
    stopped = now - timedelta(days=12)  # orders and rates of 12 to 9 days ago, nothing since
    _drop_catalog(lake, resources)
    _stream(resources, "clickstream", generate(300, seed=45, defect_rate=0.05))
    _stream(resources, "orders", generate_orders(120, seed=46, defect_rate=0.05, start=stopped, days=3))
    _pull_fx_rates(resources, stopped.date(), (stopped + timedelta(days=2)).date())
    failed = _failed_run(lake, resources, "stale-sources")
    checked_by = datetime.now(timezone.utc)

    # the local limits (cdk.json) are under those ages
    assert ENV.quality.order_freshness_max_age_minutes < 9 * 24 * 60
    assert ENV.quality.fx_rate_freshness_max_age_hours < 8 * 24
    assert failed.keys() == {"freshness(silver.order_events)", "freshness(silver.fx_rates)"}
    [(newest_order,)] = _rows(lake, "SELECT max(event_time) FROM silver.order_events")
    orders_age, orders_limit, _ = failed["freshness(silver.order_events)"]
    assert orders_limit == ENV.quality.order_freshness_max_age_minutes * 60
    assert (now - newest_order).total_seconds() <= orders_age <= (checked_by - newest_order).total_seconds()
    fx_age, fx_limit, _ = failed["freshness(silver.fx_rates)"]
    newest_day_ended = datetime.combine(stopped.date() + timedelta(days=3), datetime.min.time(), timezone.utc)
    assert fx_limit == ENV.quality.fx_rate_freshness_max_age_hours * 3600
    assert (now - newest_day_ended).total_seconds() <= fx_age <= (checked_by - newest_day_ended).total_seconds()


def test_a_day_with_a_fraction_of_the_trailing_days_events_fails_volume_until_they_come(
        pipeline: tuple[LocalLake, Provisioned]) -> None:
    """Events and orders at the usual rate for longer than the trailing days, then a last day with about a twentieth
    of it: the run fails on both streams' volume. The day's missing events arrive after all (a producer's
    backlog), and the next run passes."""
    from lakehouse.sources.generator import generate_orders
    lake, resources = pipeline
    days, now = ENV.quality.volume_trailing_days, datetime.now(timezone.utc)
    last_day = now - timedelta(days=1)
    history = now - timedelta(days=days + 2)  # one day more than the trailing days: the lake is old enough
    _drop_catalog(lake, resources)
    clicks = generate(200 * (days + 1), seed=47, defect_rate=0.05, start=history, days=days + 1)
    orders = generate_orders(40 * (days + 1), seed=48, defect_rate=0.05, start=history, days=days + 1)
    few_clicks = generate(10, seed=49, defect_rate=0.0, start=last_day, days=1)
    few_orders = generate_orders(2, seed=50, defect_rate=0.0, start=last_day, days=1)
    for source, generated in (("clickstream", clicks), ("orders", orders), ("clickstream", few_clicks),
                              ("orders", few_orders)):
        _stream(resources, source, generated)
    failed = _failed_run(lake, resources, "thin-day")

    assert failed.keys() == {"volume(silver.events)", "volume(silver.order_events)"}
    trailing_from = last_day - timedelta(days=days)
    for label, usual, thin in (("volume(silver.events)", clicks, few_clicks),
                               ("volume(silver.order_events)", orders, few_orders)):
        in_trailing_days = sum(trailing_from < e.event_time <= last_day for e in usual.clean_events)
        ratio, limit, _ = failed[label]
        assert limit == ENV.quality.min_volume_ratio
        # the run's clock is a little later than `now`: a few minutes' events move between the windows
        assert ratio == pytest.approx(len(thin.clean_events) / (in_trailing_days / days), rel=0.05)

    _stream(resources, "clickstream", generate(200, seed=53, defect_rate=0.05, start=last_day, days=1))
    _stream(resources, "orders", generate_orders(40, seed=52, defect_rate=0.05, start=last_day, days=1))
    _passed_run(resources, "backlog-arrived")


def test_the_live_path_makes_every_clean_event_queryable_before_any_batch_run(
        pipeline: tuple[LocalLake, Provisioned]) -> None:
    """Kinesis -> cleaner -> the FIFO queue -> the live committer -> live.events, all provisioned as `lakehouse up`
    provisions them; fresh.events holds each of the generator's clean events once, from live."""
    lake, resources = pipeline
    catalog = local_catalog(lake.warehouse, lake.catalog_db)
    migrate(catalog, LIVE_TABLES)
    generated = generate(1500, seed=6, defect_rate=0.08)
    put_records(resources.stream_name, generated.records, generated.partition_keys)
    settings = MappingSettings(batch_size=300, on_failure_queue_url=resources.dlq_url)
    cleaned = KinesisPoller(resources.stream_name, resources.cleaner_function, settings).drain()
    poller = SqsPoller(resources.live_queue_url, resources.live_committer_function)
    committed = poller.drain()

    assert committed.messages == cleaned.invocations and committed.failed == 0
    assert committed.invocations == -(-cleaned.invocations // poller.batch_size)  # whatever waits: one commit
    _, rows = query(catalog, "SELECT event_id, origin FROM fresh.events")
    assert sorted(event_id for event_id, _ in rows) == sorted(e.event_id for e in generated.clean_events)
    assert {origin for _, origin in rows} == {"live"}
    assert poller.drain().messages == 0  # nothing left, nothing in flight
