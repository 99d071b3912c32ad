"""The live path in AWS (issue 14, decision 0500), for dev and prod: the committer's SQS FIFO queue and its dead-letter
queue, its event source mapping, its exact permissions, the cleaners' notifications, the fresh views in Athena and
the alarms on commit lag and dead letters."""
from __future__ import annotations

import base64
import json

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import KINESIS_SOURCES, load
from cdk_app.secure_bucket import bucket_name
from iceberg_tables.specs import SILVER_EVENTS
from iceberg_tables.views import FRESH_EVENTS
from lambdas.contracts import live
from lambdas.contracts.live import live_table
from lambdas.live_committer.settings import COMMIT_ATTEMPTS, COMMIT_EVERY
from lambdas.live_committer.maintenance import QUEUE_RETENTION, SNAPSHOT_RETENTION, maintain_body
from tests.infra.helpers import as_list, flatten_arn, logical_id, only, resources, role_statements

FUNCTION = "live_committer"


@pytest.fixture(scope="module")
def analytics(stage) -> tuple[str, Template]:
    env, deployed = stage
    return env, Template.from_stack(deployed.analytics)


def _queue(template: Template, name: str) -> tuple[str, dict]:
    logical = logical_id(template, "AWS::SQS::Queue", QueueName=name)
    return logical, template.to_json()["Resources"][logical]


def _fifo(env: str, component: str) -> str:
    return load(env).resource_name(component) + ".fifo"  # lakehouse-<env>-<component>.fifo


def only_function(template: Template, config) -> dict:  # noqa: ANN001 - an EnvConfig
    [function] = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()
                  if f["Properties"].get("FunctionName") == config.function_name(FUNCTION)]
    return function


def test_the_commit_queue_is_fifo_encrypted_tls_only_and_parks_failures_in_a_fifo_dead_letter_queue(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    dlq, dead_letters = _queue(template, _fifo(env, "live-commits-dlq"))
    queue, commits = _queue(template, load(env).live_commit_queue_name)
    for resource in (commits, dead_letters):
        properties = resource["Properties"]
        assert properties["FifoQueue"] is True
        assert "Fn::ImportValue" in properties["KmsMasterKeyId"]  # the lake key
    # the cleaner sends a deduplication id, which SQS prefers; the maintenance schedule sends none (decision 0503)
    assert commits["Properties"]["ContentBasedDeduplication"] is True
    # a message's commit is tried COMMIT_ATTEMPTS times, after at most one receive that deferred it (decision 0504)
    assert commits["Properties"]["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [dlq, "Arn"]},
                                                      "maxReceiveCount": 1 + COMMIT_ATTEMPTS}
    assert COMMIT_ATTEMPTS == 5
    assert dead_letters["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    # no message outlives the snapshots that the committer's duplicate check reads: the maintenance keeps them longer
    assert commits["Properties"]["MessageRetentionPeriod"] == QUEUE_RETENTION.total_seconds()
    assert SNAPSHOT_RETENTION.total_seconds() > commits["Properties"]["MessageRetentionPeriod"]
    function = only_function(template, config)
    assert commits["Properties"]["VisibilityTimeout"] >= 6 * function["Timeout"]
    tls_only = {policy["Properties"]["Queues"][0]["Ref"] for policy in resources(template, "AWS::SQS::QueuePolicy").values()
                if any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                       for s in policy["Properties"]["PolicyDocument"]["Statement"])}
    assert {queue, dlq} <= tls_only


def test_the_committer_is_fed_in_batches_of_ten_and_reports_partial_failures(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    queue, _ = _queue(template, load(env).live_commit_queue_name)
    [mapping] = [m["Properties"] for m in resources(template, "AWS::Lambda::EventSourceMapping").values()
                 if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue, "Arn"]}]
    function = logical_id(template, "AWS::Lambda::Function", FunctionName=config.function_name(FUNCTION))
    assert mapping["FunctionName"] == {"Ref": function}
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "MaximumBatchingWindowInSeconds" not in mapping  # FIFO queues have none
    properties = only_function(template, config)
    assert (properties["Runtime"], properties["Handler"]) == ("python3.12", "lambdas.live_committer.handler.handler")
    assert properties["Environment"]["Variables"]["WAREHOUSE_URI"] == f"s3://{bucket_name(config, 'warehouse')}"


def test_the_committer_gets_its_environments_cadence_and_its_queue_to_defer_on(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    queue, _ = _queue(template, config.live_commit_queue_name)
    variables = only_function(template, config)["Environment"]["Variables"]
    assert variables[COMMIT_EVERY] == str(config.live_commit_every_seconds)
    assert variables["LIVE_QUEUE_URL"] == {"Ref": queue}
    # decision 0504: a cadence, under half the commit-lag alarm's 120 s, so a deferral never raises it
    assert 0 < config.live_commit_every_seconds <= 60


def test_the_committer_may_do_exactly_its_work(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    name = config.function_name(FUNCTION)
    glue, staging, warehouse = (f"arn:aws:glue:{config.region}:{config.account}", bucket_name(config, "staging"),
                                bucket_name(config, "warehouse"))
    logs = logical_id(template, "AWS::Logs::LogGroup", LogGroupName=f"/aws/lambda/{name}")
    key = _queue(template, load(env).live_commit_queue_name)[1]["Properties"]["KmsMasterKeyId"]  # the lake key's ARN
    found = sorted(((sorted(as_list(s["Action"])), sorted(flatten_arn(r) for r in as_list(s["Resource"])),
                     s.get("Condition")) for s in role_statements(template, name)), key=repr)
    assert found == sorted([
        (["logs:CreateLogStream", "logs:PutLogEvents"], [flatten_arn({"Fn::GetAtt": [logs, "Arn"]})], None),
        (["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"], None),
        # the mapping's calls, and the deferral's visibility change (decision 0504); not sqs:GetQueueUrl
        (["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"],
         [f"arn:aws:sqs:{config.region}:{config.account}:{config.live_commit_queue_name}"], None),
        (["s3:GetObject"], sorted(f"arn:aws:s3:::{staging}/clean/{source}/*" for source in live.TABLE_OF_SOURCE), None),
        (["glue:GetDatabase", "glue:GetTable", "glue:UpdateTable"],
         [f"{glue}:catalog", f"{glue}:database/live", f"{glue}:table/live/*"], None),
        (["s3:ListBucket"], [f"arn:aws:s3:::{warehouse}"], {"StringLike": {"s3:prefix": ["live.db/*"]}}),
        (["s3:DeleteObject", "s3:GetObject", "s3:PutObject"], [f"arn:aws:s3:::{warehouse}/live.db/*"], None),
        # the maintenance reads the batch ledger: which batches silver merged (decision 0503)
        (["glue:GetTable"], [f"{glue}:catalog", f"{glue}:database/ops", f"{glue}:table/ops/merged_batches"], None),
        (["s3:GetObject"], [f"arn:aws:s3:::{warehouse}/ops.db/merged_batches/*"], None),
        (["kms:Decrypt", "kms:GenerateDataKey"], [flatten_arn(key)], None),
    ], key=repr)  # nothing else: not the other sources' staging, not silver, not the warehouse's rest;
    # no delete in staging: the maintenance cannot remove a file the batch still needs


@pytest.mark.parametrize("source", KINESIS_SOURCES)
def test_a_cleaner_notifies_the_committer_where_its_source_has_a_live_table(ingestion, source: str) -> None:
    env, template = ingestion
    config = load(env)
    queue, _ = _queue(template, config.live_commit_queue_name)
    [function] = [f["Properties"] for f in resources(template, "AWS::Lambda::Function").values()
                  if f["Properties"].get("FunctionName") == config.cleaner_for(source)]
    statements = role_statements(template, config.cleaner_for(source))
    on_queue = [sorted(as_list(s["Action"])) for s in statements for r in as_list(s["Resource"])
                if flatten_arn(r) == f"arn:aws:sqs:{config.region}:{config.account}:{config.live_commit_queue_name}"]
    if live_table(source) is None:
        assert "LIVE_QUEUE_URL" not in function["Environment"]["Variables"] and on_queue == []
        return
    assert function["Environment"]["Variables"]["LIVE_QUEUE_URL"] == {"Ref": queue}
    assert on_queue == [["sqs:SendMessage"]]  # nothing else on the queue
    # SQS SSE-KMS: a send needs a data key of the lake key, which the cleaner's role has
    assert ["kms:Decrypt", "kms:GenerateDataKey"] in [sorted(as_list(s["Action"])) for s in statements]


def test_fresh_events_is_an_athena_view_of_the_spec_sql_in_the_fresh_database(analytics) -> None:
    env, template = analytics
    database = only(template, "AWS::Glue::Database")["DatabaseInput"]
    assert database["Name"] == "fresh" and "LocationUri" not in database
    [view] = [t["Properties"] for t in resources(template, "AWS::Glue::Table").values()
              if t["Properties"]["TableInput"]["Name"] == "events"]
    assert view["DatabaseName"] == "fresh"
    table = view["TableInput"]
    assert table["TableType"] == "VIRTUAL_VIEW"
    assert table["Parameters"]["presto_view"] == "true"
    assert table["ViewExpandedText"] == "/* Presto View */"
    original = table["ViewOriginalText"]
    assert original.startswith("/* Presto View: ") and original.endswith(" */")
    definition = json.loads(base64.b64decode(original.removeprefix("/* Presto View: ").removesuffix(" */")))
    assert definition["originalSql"] == FRESH_EVENTS.sql
    assert (definition["catalog"], definition["schema"]) == ("awsdatacatalog", "fresh")
    names = [c.name for c in SILVER_EVENTS.columns] + ["origin"]
    assert [c["name"] for c in definition["columns"]] == names
    types = {c["name"]: c["type"] for c in definition["columns"]}
    assert (types["event_id"], types["event_time"], types["origin"]) == \
        ("varchar", "timestamp(6) with time zone", "varchar")
    hive = {c["Name"]: c["Type"] for c in table["StorageDescriptor"]["Columns"]}
    assert list(hive) == names
    assert (hive["event_id"], hive["event_time"], hive["origin"]) == ("string", "timestamp", "string")


def test_commit_lag_dead_letters_errors_and_throttles_are_alarmed_to_the_ingestion_topic(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    topic = logical_id(template, "AWS::SNS::Topic")
    alarms = {a["Properties"]["AlarmName"]: a["Properties"]
              for a in resources(template, "AWS::CloudWatch::Alarm").values()}
    queue, _ = _queue(template, load(env).live_commit_queue_name)
    dlq, _ = _queue(template, _fifo(env, "live-commits-dlq"))
    function = logical_id(template, "AWS::Lambda::Function", FunctionName=config.function_name(FUNCTION))
    expected = {
        "commit-lag": ("AWS/SQS", "ApproximateAgeOfOldestMessage", "Maximum", 60, 120,
                       [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]),
        "dead-letters": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300, 1,
                         [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq, "QueueName"]}}]),
        "errors": ("AWS/Lambda", "Errors", "Sum", 300, 1, [{"Name": "FunctionName", "Value": {"Ref": function}}]),
        "throttles": ("AWS/Lambda", "Throttles", "Sum", 300, 1, [{"Name": "FunctionName", "Value": {"Ref": function}}]),
    }
    for what, (namespace, metric, statistic, period, threshold, dimensions) in expected.items():
        alarm = alarms[config.resource_name(f"live-committer-{what}")]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"], alarm["Threshold"]) == \
            (namespace, metric, statistic, period, threshold)
        assert alarm["Dimensions"] == dimensions
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_each_live_table_is_maintained_by_a_message_in_its_own_group_on_a_schedule(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    queue, _ = _queue(template, config.live_commit_queue_name)
    key = _queue(template, config.live_commit_queue_name)[1]["Properties"]["KmsMasterKeyId"]
    tables = sorted(f"{live.NAMESPACE}.{name}" for name in live.TABLE_OF_SOURCE.values())
    schedules = {s["Properties"]["Target"]["SqsParameters"]["MessageGroupId"]: s["Properties"]
                 for s in resources(template, "AWS::Scheduler::Schedule").values()
                 if "SqsParameters" in s["Properties"]["Target"]}
    assert sorted(schedules) == tables  # one per live table, each into the table's own message group
    for table, schedule in schedules.items():
        assert schedule["Name"] == config.resource_name(f"live-maintenance-{table.split('.')[1].replace('_', '-')}")
        assert (schedule["ScheduleExpression"], schedule["ScheduleExpressionTimezone"]) == ("rate(15 minutes)", "UTC")
        target = schedule["Target"]
        assert target["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}
        assert target["Input"] == maintain_body(table)
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 15 * 60  # never two waiting at once
        role = target["RoleArn"]["Fn::GetAtt"][0]
        trust = template.to_json()["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Condition"] for s in trust] == [{"StringEquals": {"aws:SourceAccount": config.account}}]
        policies = [p["Properties"] for p in resources(template, "AWS::IAM::Policy").values()]
        statements = [s for p in policies if p["Roles"] == [{"Ref": role}] for s in p["PolicyDocument"]["Statement"]]
        assert sorted((sorted(as_list(s["Action"])), [flatten_arn(r) for r in as_list(s["Resource"])])
                      for s in statements) == sorted([
            (["sqs:SendMessage"], [f"arn:aws:sqs:{config.region}:{config.account}:{config.live_commit_queue_name}"]),
            (["kms:Decrypt", "kms:GenerateDataKey"], [flatten_arn(key)])])  # the queue's key; nothing else
