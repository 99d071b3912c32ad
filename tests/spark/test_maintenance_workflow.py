"""step_functions/maintenance.asl.json on the local cloud (a real moto server; moto stands in for AWS Step
Functions and Glue): its glue:startJobRun.sync task waits for the real maintenance job, and a job that
keeps failing is retried, then ends the execution FAILED through the Catch."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from pyiceberg.expressions import EqualTo
from pyspark.sql import SparkSession

from cdk_app.config import PROJECT_ROOT
from glue_jobs import maintenance
from iceberg_tables.glue_conf import GLUE_VERSION
from lakehouse.cloud import moto_patches
from lakehouse.cloud.local_cloud import LocalCloud
from lakehouse.cloud.provision import render_asl
from lakehouse.operations import workflows
from tests.fixtures.local_cloud import role_arn
from tests.fixtures.spark import SparkLake

pytestmark = pytest.mark.slow
SETTINGS = {"--snapshot_retention_hours": "168", "--retain_last": "5", "--orphan_min_age_hours": "72"}


@pytest.fixture
def machine(local_cloud: LocalCloud, spark: SparkSession) -> Iterator[tuple[str, str]]:
    """A Glue job running glue_jobs/maintenance.py on the test lake, and the maintenance state machine over it."""
    name = f"maintenance-{uuid.uuid4().hex[:8]}"
    role = role_arn()
    boto3.client("glue").create_job(
        Name=name, Role=role, GlueVersion=GLUE_VERSION, DefaultArguments=SETTINGS,
        Command={"Name": "glueetl", "ScriptLocation": str(PROJECT_ROOT / "glue_jobs" / "maintenance.py")})
    saved = dict(moto_patches.GLUE_JOBS)
    moto_patches.GLUE_JOBS[name] = lambda args: maintenance.run(spark, args)
    arn = boto3.client("stepfunctions").create_state_machine(
        name=name, definition=render_asl("maintenance", {"MaintenanceJobName": name}), roleArn=role,
    )["stateMachineArn"]
    yield name, arn
    moto_patches.GLUE_JOBS.clear()
    moto_patches.GLUE_JOBS.update(saved)


def test_an_execution_runs_the_job_and_it_records_its_step(machine: tuple[str, str], spark_lake: SparkLake) -> None:
    _, arn = machine

    execution = workflows.run(arn, name="maintenance-run-1")

    assert execution.status == "SUCCEEDED", execution.cause
    assert [(s.name, s.status) for s in execution.steps] == [("Maintenance", "SUCCEEDED")]
    assert execution.output["maintenance"]["JobRunState"] == "SUCCEEDED"
    [row] = spark_lake.catalog.load_table("ops.pipeline_runs").scan(
        row_filter=EqualTo("run_id", "maintenance-run-1")).to_arrow().to_pylist()
    assert (row["step"], row["status"]) == ("maintenance", "SUCCEEDED")
    assert row["message"].count("orphan_files_deleted") == len(maintenance.ALL_TABLES)


def test_a_job_that_keeps_failing_is_retried_then_caught(machine: tuple[str, str]) -> None:
    name, arn = machine
    attempts: list[str] = []

    def broken(args: dict[str, str]) -> None:
        attempts.append(args["run_id"])
        raise RuntimeError("commit conflict on lake.silver.events")

    moto_patches.GLUE_JOBS[name] = broken
    execution = workflows.run(arn, name="maintenance-failing")

    assert execution.status == "FAILED" and execution.error == "MaintenanceFailed"
    assert attempts == ["maintenance-failing"] * 3  # the first try and the ASL's two retries
    assert [s.name for s in execution.steps] == ["Maintenance", "Failed"]
