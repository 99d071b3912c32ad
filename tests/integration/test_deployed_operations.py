"""`lakehouse query|status|replay --env dev`: the CLI's operations on a deployed environment, against the
real AWS APIs of the local cloud. moto stands in for AWS itself here: it runs no SQL (each query's result is
queued through moto's API), and the deployed resources the commands reach (the workgroup, the replay state
machine, the cleaners' on-failure queues) are created here under the names CDK gives them, in an account
of their own (moto's MOTO_ACCOUNT_ID), as `cdk deploy` would have made them."""
from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections.abc import Iterator

import boto3
import pytest
from typer.testing import CliRunner

from cdk_app import config
from cdk_app.config import KINESIS_SOURCES, EnvConfig
from lakehouse.cli import app
from lakehouse.cloud.local_cloud import LocalCloud

ACCOUNT = "111122223333"  # not cdk.json's placeholder, which the commands refuse
runner = CliRunner()


@pytest.fixture
def dev(local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[EnvConfig]:
    """The dev environment as deployed in ACCOUNT, with this process acting in that account."""
    local_cloud.reset()
    monkeypatch.setenv("LAKEHOUSE_DEV_ACCOUNT", ACCOUNT)
    env = config.load("dev", overrides={"account": ACCOUNT})
    # moto's in-process server serves every request as this account (moto's own setting for it)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)
    # set so that they are restored: the commands point them at the environment's region
    monkeypatch.setenv("AWS_REGION", env.region)
    monkeypatch.setenv("AWS_DEFAULT_REGION", env.region)
    yield env


def _queue_result(cloud: LocalCloud, env: EnvConfig, columns: list[str], rows: list[list[str | None]]) -> None:
    def row(values: list[str | None]) -> dict:
        return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}
    body = {"account_id": ACCOUNT, "region": env.region, "results": [{"rows": [row(columns), *map(row, rows)]}]}
    request = urllib.request.Request(f"{cloud.endpoint}/moto-api/static/athena/query-results",
                                     data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request) as response:  # noqa: S310 - our own loopback server
        assert response.status == 201


def _workgroup(env: EnvConfig) -> None:
    boto3.client("athena").create_work_group(Name=env.workgroup_name, Configuration={
        "ResultConfiguration": {"OutputLocation": f"s3://lakehouse-dev-athena-results-{ACCOUNT}/"}})


def _sent(env: EnvConfig) -> list[tuple[str, str]]:
    athena = boto3.client("athena")
    ids = athena.list_query_executions(WorkGroup=env.workgroup_name)["QueryExecutionIds"]
    return [(e["Query"], e["WorkGroup"]) for e in
            (athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in ids)]


def test_query_runs_in_the_environments_workgroup_and_prints_athenas_rows(local_cloud: LocalCloud,
                                                                          dev: EnvConfig) -> None:
    _workgroup(dev)
    rows = [["2026-03-01", "DE", "1200"], ["2026-03-01", "FR", None]]
    _queue_result(local_cloud, dev, ["event_date", "country", "events"], rows)
    sql = "SELECT event_date, country, events FROM gold.daily_kpis"

    result = runner.invoke(app, ["query", sql, "--env", "dev", "--format", "csv"])

    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output))) == [
        ["event_date", "country", "events"], *[[v or "" for v in row] for row in rows]]
    assert _sent(dev) == [(sql, dev.workgroup_name)]


def test_status_reads_the_environments_pipeline_runs(local_cloud: LocalCloud, dev: EnvConfig) -> None:
    _workgroup(dev)
    columns = ["run_id", "step", "status", "started_at", "received", "clean", "quarantined", "duplicates"]
    _queue_result(local_cloud, dev, columns, [["run-1", "run", "SUCCEEDED", "2026-03-01 06:00:00", "10", "8", "1", "1"]])

    result = runner.invoke(app, ["status", "--limit", "5", "--env", "dev", "--format", "csv"])

    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.output))) == [
        columns, ["run-1", "run", "SUCCEEDED", "2026-03-01 06:00:00", "10", "8", "1", "1"]]
    [(sql, workgroup)] = _sent(dev)
    assert workgroup == dev.workgroup_name and "FROM ops.pipeline_runs" in sql and sql.endswith("LIMIT 5")


def test_a_query_athena_fails_is_named_with_exit_2(dev: EnvConfig) -> None:
    # no workgroup deployed: Athena refuses the query, and the command says so
    result = runner.invoke(app, ["query", "SELECT 1", "--env", "dev"])
    assert result.exit_code == 1 and f"Athena workgroup {dev.workgroup_name}" in " ".join(result.output.split())


def test_replay_of_a_time_range_starts_the_deployed_replay_workflow(dev: EnvConfig) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/replay-machine"
    # the deployed workflow's stand-in: it hands back its input, as the real one's first state reads it
    boto3.client("stepfunctions").create_state_machine(
        name=dev.replay_state_machine_name, roleArn=role,
        definition=json.dumps({"StartAt": "Replay", "States": {"Replay": {"Type": "Pass", "End": True}}}))

    result = runner.invoke(app, ["replay", "--from", "2026-03-01T00:00:00Z", "--to", "2026-03-01T06:00:00Z",
                                 "--env", "dev"], terminal_width=200)

    assert result.exit_code == 0, result.output
    assert "state machine: Replay succeeded" in result.output and ": SUCCEEDED" in result.output
    sfn = boto3.client("stepfunctions")
    arn = f"arn:aws:states:{dev.region}:{ACCOUNT}:stateMachine:{dev.replay_state_machine_name}"
    [execution] = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"]) == {
        "from": "2026-03-01T00:00:00+00:00", "to": "2026-03-01T06:00:00+00:00"}


def test_replay_of_the_dead_letter_queues_reads_each_cleaners_deployed_queue(dev: EnvConfig) -> None:
    sqs = boto3.client("sqs")
    for source in KINESIS_SOURCES:
        sqs.create_queue(QueueName=dev.cleaner_dead_letter_queue_for(source))

    result = runner.invoke(app, ["replay", "--dlq", "--env", "dev"], terminal_width=200)

    assert result.exit_code == 0, result.output
    for source in KINESIS_SOURCES:
        assert f"{source}: replayed 0 batches" in result.output


def test_replay_names_a_queue_that_is_not_deployed(dev: EnvConfig) -> None:
    result = runner.invoke(app, ["replay", "--dlq", "--env", "dev"], terminal_width=200)
    assert result.exit_code == 1 and "NonExistentQueue" in " ".join(result.output.split())
