"""Ingestion alarms: dead letters waiting, functions failing, the cleaner lagging; all to one topic."""
from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import load
from tests.infra.helpers import flatten_arn, logical_id, only, resources

PARTS = ("cleaner", "cleaner-orders", "api-connector", "file-loader")
CLEANERS = ("cleaner", "cleaner-orders")  # one per Kinesis source, each behind its own stream
RUN_BY_HAND = ("replay",)  # functions a state machine runs: errors alarmed, no queue of their own


def _alarms(template: Template) -> dict[str, dict]:
    return {a["Properties"]["AlarmName"]: a["Properties"] for a in resources(template, "AWS::CloudWatch::Alarm").values()}


def test_topic_is_encrypted_and_tls_only(ingestion) -> None:
    env, template = ingestion
    topic = only(template, "AWS::SNS::Topic")
    assert topic["TopicName"] == load(env).resource_name("ingestion-alarms")
    assert "Fn::ImportValue" in topic["KmsMasterKeyId"]
    statements = only(template, "AWS::SNS::TopicPolicy")["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements)
    # that policy replaces SNS's default one: this environment's alarms need their own allowance
    config = load(env)
    [publish] = [s for s in statements if s["Effect"] == "Allow"]
    assert publish["Principal"] == {"Service": "cloudwatch.amazonaws.com"} and publish["Action"] == "sns:Publish"
    assert flatten_arn(publish["Condition"]["ArnLike"]["aws:SourceArn"]) == \
        f"arn:aws:cloudwatch:{config.region}:{config.account}:alarm:lakehouse-{env}-*"
    assert publish["Condition"]["StringEquals"] == {"aws:SourceAccount": config.account}


def test_every_alarm_watches_its_resource_and_publishes_to_the_topic(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    topic = logical_id(template, "AWS::SNS::Topic")
    alarms = _alarms(template)
    expected = {config.resource_name(f"{cleaner}-iterator-age") for cleaner in CLEANERS}
    for part in PARTS:
        expected |= {config.resource_name(f"{part}-errors"), config.resource_name(f"{part}-dead-letters")}
    expected |= {config.resource_name(f"{part}-errors") for part in RUN_BY_HAND}
    assert set(alarms) == expected
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
    for part in PARTS + RUN_BY_HAND:
        function = logical_id(template, "AWS::Lambda::Function", FunctionName=config.resource_name(part))
        errors = alarms[config.resource_name(f"{part}-errors")]
        assert (errors["Namespace"], errors["MetricName"], errors["Statistic"], errors["Threshold"]) == \
            ("AWS/Lambda", "Errors", "Sum", 1)
        assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
    for part in PARTS:
        queue = logical_id(template, "AWS::SQS::Queue", QueueName=config.resource_name(f"{part}-dlq"))
        waiting = alarms[config.resource_name(f"{part}-dead-letters")]
        assert (waiting["Namespace"], waiting["MetricName"], waiting["Threshold"]) == \
            ("AWS/SQS", "ApproximateNumberOfMessagesVisible", 1)
        assert waiting["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    for cleaner in CLEANERS:
        lag = alarms[config.resource_name(f"{cleaner}-iterator-age")]
        assert (lag["MetricName"], lag["Statistic"], lag["Threshold"]) == ("IteratorAge", "Maximum", 30 * 60 * 1000)
        function = logical_id(template, "AWS::Lambda::Function", FunctionName=config.resource_name(cleaner))
        assert lag["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_lake_key_lets_cloudwatch_publish_to_encrypted_topics(synthesized, env: str) -> None:
    key = only(Template.from_stack(synthesized(env).stage.lake), "AWS::KMS::Key")
    [statement] = [s for s in key["KeyPolicy"]["Statement"]
                   if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]
