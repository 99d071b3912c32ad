"""Alarms: ingestion's (dead letters waiting, functions failing or throttled, the cleaner lagging its stream or its
Kafka topic, streams refusing writes, a source's quarantine rate over its limit, records staged late) to one topic;
the batch side's (runs failing, no run succeeding, schedules' dead letters, throttles) to the pipeline alerts topic;
each topic subscribes cdk.json's `alert_emails`."""
from __future__ import annotations

import json

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from cdk_app import maintenance
from cdk_app.alarms import ITERATOR_AGE_LIMIT, KAFKA_LAG_LIMIT, QUARANTINE_RATE_MIN_RECORDS
from cdk_app.app_builder import build
from cdk_app.config import CONTEXT_KEY, KINESIS_SOURCES, EnvConfig, load
from lambdas.cleaner import metrics as cleaner_metrics
from lambdas.common import environment
from tests.fixtures.cdk import SKIP_BUNDLING, cdk_context
from tests.infra.helpers import flatten_arn, logical_id, only, resources

PARTS = ("cleaner", "cleaner-orders", "api-connector", "file-loader")
CLEANERS = ("cleaner", "cleaner-orders")  # one per Kinesis source, each behind its own stream
RUN_BY_HAND = ("replay",)  # functions a state machine runs: errors alarmed, no queue of their own
# the live committer: errors, throttles, its FIFO dead-letter queue and its commit lag (tests/infra/test_live_committer.py)
LIVE = ("live-committer",)
STREAMS = ("events", "orders")  # config.stream_for's components
BATCH_FUNCTIONS = ("record-run", "run-lease", "data-quality")
SCHEDULES = ("batch-pipeline-schedule", "maintenance-schedule")


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
    expected = {config.resource_name(f"{cleaner}-{what}") for cleaner in CLEANERS
                for what in ("iterator-age", "ingest-lag", "quarantine-rate")}
    for part in PARTS:
        expected |= {config.resource_name(f"{part}-errors"), config.resource_name(f"{part}-dead-letters")}
    expected |= {config.resource_name(f"{part}-errors") for part in RUN_BY_HAND}
    expected |= {config.resource_name(f"{part}-throttles") for part in PARTS + RUN_BY_HAND}
    expected |= {config.resource_name(f"{stream}-write-throttles") for stream in STREAMS}
    expected |= {config.resource_name("cleaner-kafka-lag")} if config.msk_enabled else set()
    expected |= {config.resource_name(f"{part}-{what}") for part in LIVE
                 for what in ("errors", "throttles", "dead-letters", "commit-lag")}
    assert set(alarms) == expected
    for name, alarm in alarms.items():
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        # a quarantine rate at its limit passes, as in the batch run's quality check and `lakehouse watch`
        assert alarm["ComparisonOperator"] == ("GreaterThanThreshold" if name.endswith("-quarantine-rate")
                                               else "GreaterThanOrEqualToThreshold")
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


def _cleaner_emf(template: Template, config: EnvConfig, source: str) -> tuple[str, list[dict[str, str]]]:
    """(namespace, dimensions) the cleaner of `source` emits its EMF metrics with: the namespace and SOURCE its
    function is given (POWERTOOLS_METRICS_NAMESPACE), the service dimension Powertools adds."""
    [function] = [r["Properties"] for r in resources(template, "AWS::Lambda::Function").values()
                  if r["Properties"].get("FunctionName") == config.cleaner_for(source)]
    variables = function["Environment"]["Variables"]
    return variables[environment.METRICS_NAMESPACE], [
        {"Name": cleaner_metrics.SERVICE_DIMENSION, "Value": cleaner_metrics.SERVICE},
        {"Name": cleaner_metrics.SOURCE_DIMENSION, "Value": variables[environment.SOURCE]}]


def _cleaner_alarm(alarms: dict[str, dict], config: EnvConfig, source: str, what: str) -> dict:
    """The alarm `what` of the cleaner of `source`: lakehouse-<env>-cleaner[-<source>]-<what>."""
    component = config.cleaner_for(source).removeprefix(config.resource_name(""))
    return alarms[config.resource_name(f"{component}-{what}")]


def _evaluate(expression: str, **values: float) -> float:
    """One data point of a metric-math expression of IF, comparisons and arithmetic over `values` (by metric id)."""
    return eval(expression, {"__builtins__": {}, "IF": lambda test, then, otherwise: then if test else otherwise},
                values)


def test_quarantine_rate_per_source_from_the_cleaners_emf_metrics(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    alarms = _alarms(template)
    received, quarantined = cleaner_metrics.RECORDS_IN, cleaner_metrics.QUARANTINED
    for source in KINESIS_SOURCES:
        rate = _cleaner_alarm(alarms, config, source, "quarantine-rate")
        namespace, dimensions = _cleaner_emf(template, config, source)
        read = {m["Id"]: m["MetricStat"] for m in rate["Metrics"] if "MetricStat" in m}
        assert sorted(read) == sorted((received, quarantined))
        for metric_id, stat in read.items():  # each id is the metric's EMF name, summed per 5 minutes
            assert stat["Metric"] == {"Namespace": namespace, "MetricName": metric_id, "Dimensions": dimensions}
            assert (stat["Stat"], stat["Period"]) == ("Sum", 300)
        [expression] = [m for m in rate["Metrics"] if "Expression" in m]
        assert expression["ReturnData"] is True
        limit = config.quality.max_quarantine_rate[source]
        assert (rate["Threshold"], rate["EvaluationPeriods"], rate["DatapointsToAlarm"]) == (limit, 1, 1)
        assert (rate["ComparisonOperator"], rate["TreatMissingData"]) == ("GreaterThanThreshold", "notBreaching")

        def judged(records: int, bad: int) -> float:
            return _evaluate(expression["Expression"], **{received: records, quarantined: bad})
        assert judged(1000, 150) == pytest.approx(0.15)  # quarantined / records_in
        assert judged(2, 1) == 0 and judged(QUARANTINE_RATE_MIN_RECORDS - 1, QUARANTINE_RATE_MIN_RECORDS - 1) == 0
        assert judged(QUARANTINE_RATE_MIN_RECORDS, QUARANTINE_RATE_MIN_RECORDS) == 1  # all bad, from the minimum on


def test_ingest_lag_per_cleaner_two_minutes_beyond_the_batching_window(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    alarms = _alarms(template)
    window_ms = config.cleaner_batching_window_seconds * 1000
    for source in KINESIS_SOURCES:
        lag = _cleaner_alarm(alarms, config, source, "ingest-lag")
        namespace, dimensions = _cleaner_emf(template, config, source)
        assert (lag["Namespace"], lag["MetricName"], lag["Dimensions"]) == \
            (namespace, cleaner_metrics.INGEST_LAG, dimensions)
        # the handler emits milliseconds; no Unit on the alarm, which would have to match it
        assert _threshold(lag) == (namespace, cleaner_metrics.INGEST_LAG, "Maximum", 300, window_ms + 2 * 60 * 1000,
                                   1, 1) and "Unit" not in lag
        assert lag["Threshold"] < ITERATOR_AGE_LIMIT.to_milliseconds()  # minutes late, well before an outage


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_lake_key_lets_cloudwatch_publish_to_encrypted_topics(synthesized, env: str) -> None:
    key = only(Template.from_stack(synthesized(env).stage.lake), "AWS::KMS::Key")
    [statement] = [s for s in key["KeyPolicy"]["Statement"]
                   if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey*"]


def _on(template: Template, dimension: str, cfn_type: str, **properties: str) -> list[dict]:
    """An alarm's Dimensions naming (by Ref) the one `cfn_type` resource with these properties."""
    return [{"Name": dimension, "Value": {"Ref": logical_id(template, cfn_type, **properties)}}]


def _threshold(alarm: dict) -> tuple:
    return (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"], alarm["Period"], alarm["Threshold"],
            alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"])


def test_every_function_has_a_throttles_alarm(synthesized, ingestion) -> None:
    env, template = ingestion
    config = load(env)
    processing = Template.from_stack(synthesized(env).stage.processing)
    for stack, parts in ((template, PARTS + RUN_BY_HAND + LIVE), (processing, BATCH_FUNCTIONS)):
        alarms = _alarms(stack)
        named = {r["Properties"]["FunctionName"] for r in resources(stack, "AWS::Lambda::Function").values()
                 if "FunctionName" in r["Properties"]}
        assert named == {config.resource_name(part) for part in parts}  # every function of the stack
        for part in parts:
            throttles = alarms[config.resource_name(f"{part}-throttles")]
            assert _threshold(throttles) == ("AWS/Lambda", "Throttles", "Sum", 300, 1, 1, 1)
            assert throttles["Dimensions"] == _on(stack, "FunctionName", "AWS::Lambda::Function",
                                                  FunctionName=config.resource_name(part))


def test_kinesis_write_throttles_sustained_a_quarter_of_an_hour(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    alarms = _alarms(template)
    for stream in STREAMS:
        throttled = alarms[config.resource_name(f"{stream}-write-throttles")]
        assert _threshold(throttled) == ("AWS/Kinesis", "WriteProvisionedThroughputExceeded", "Sum", 300, 1, 3, 3)
        assert throttled["Dimensions"] == _on(template, "StreamName", "AWS::Kinesis::Stream",
                                              Name=config.resource_name(stream))


def test_kafka_consumer_lag_where_msk_is_on(ingestion) -> None:
    env, template = ingestion
    config = load(env)
    lag = _alarms(template).get(config.resource_name("cleaner-kafka-lag"))
    if not config.msk_enabled:
        assert lag is None
        return
    assert _threshold(lag) == ("AWS/Lambda", "OffsetLag", "Maximum", 300, KAFKA_LAG_LIMIT, 3, 3)
    assert lag["Dimensions"] == _on(template, "FunctionName", "AWS::Lambda::Function",
                                    FunctionName=config.resource_name("cleaner"))


@pytest.fixture(scope="module", params=["dev", "prod"])
def processing(request, synthesized) -> tuple[str, Template]:
    env = request.param
    return env, Template.from_stack(synthesized(env).stage.processing)


def test_batch_alarms_publish_to_the_pipeline_alerts_topic(processing) -> None:
    env, template = processing
    config = load(env)
    topic = logical_id(template, "AWS::SNS::Topic", TopicName=config.alert_topic_name)
    alarms = _alarms(template)
    assert set(alarms) == {config.resource_name(name) for name in (
        "batch-pipeline-failed-runs", "maintenance-failed-runs", "batch-pipeline-heartbeat",
        *(f"{schedule}-dead-letters" for schedule in SCHEDULES), *(f"{f}-throttles" for f in BATCH_FUNCTIONS))}
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic}]


def test_the_maintenance_workflow_failing(processing) -> None:
    env, template = processing
    config = load(env)
    failed = _alarms(template)[config.resource_name("maintenance-failed-runs")]
    machine = logical_id(template, "AWS::StepFunctions::StateMachine",
                         StateMachineName=config.resource_name(maintenance.JOB))
    [expression] = [m for m in failed["Metrics"] if "Expression" in m]
    assert expression["Expression"] == "failed + aborted + timed_out"
    counted = {m["MetricStat"]["Metric"]["MetricName"]: m["MetricStat"] for m in failed["Metrics"] if "MetricStat" in m}
    assert sorted(counted) == ["ExecutionsAborted", "ExecutionsFailed", "ExecutionsTimedOut"]
    for stat in counted.values():
        assert (stat["Metric"]["Namespace"], stat["Stat"], stat["Period"]) == ("AWS/States", "Sum", 300)
        assert stat["Metric"]["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine}}]
    assert (failed["Threshold"], failed["EvaluationPeriods"], failed["ComparisonOperator"], failed["TreatMissingData"]) \
        == (1, 1, "GreaterThanOrEqualToThreshold", "notBreaching")


def test_heartbeat_no_successful_batch_run_in_the_configured_hours(processing) -> None:
    env, template = processing
    config = load(env)
    heartbeat = _alarms(template)[config.resource_name("batch-pipeline-heartbeat")]
    assert _threshold(heartbeat) == ("AWS/States", "ExecutionsSucceeded", "Sum", config.batch_heartbeat_hours * 3600,
                                     1, 1, 1)
    assert heartbeat["Period"] <= 24 * 3600  # an alarm looks back one day at most
    # no success at all publishes no data point: missing data is the alarm
    assert (heartbeat["ComparisonOperator"], heartbeat["TreatMissingData"]) == ("LessThanThreshold", "breaching")
    assert heartbeat["Dimensions"] == _on(template, "StateMachineArn", "AWS::StepFunctions::StateMachine",
                                          StateMachineName=config.state_machine_name)


def test_the_schedules_dead_letter_queues(processing) -> None:
    env, template = processing
    config = load(env)
    alarms = _alarms(template)
    for schedule in SCHEDULES:
        waiting = alarms[config.resource_name(f"{schedule}-dead-letters")]
        assert _threshold(waiting) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "Maximum", 300, 1, 1, 1)
        assert waiting["TreatMissingData"] == "notBreaching"
        queue = logical_id(template, "AWS::SQS::Queue", QueueName=config.resource_name(f"{schedule}-dlq"))
        assert waiting["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_alert_subscription_by_default(synthesized, env: str) -> None:
    assert load(env).alert_emails == ()
    for component, stack in synthesized(env).stage.stacks.items():
        assert resources(Template.from_stack(stack), "AWS::SNS::Subscription") == {}, component


def test_alert_emails_subscribe_to_both_topics() -> None:
    emails = ["oncall@example.com", "data-team@example.org"]
    context = cdk_context(env="dev", **SKIP_BUNDLING)
    context[CONTEXT_KEY]["dev"]["alert_emails"] = emails
    stage = build(App(context=context))["dev"]
    config = load("dev")
    for stack, topic_name in ((stage.ingestion, config.resource_name("ingestion-alarms")),
                              (stage.processing, config.alert_topic_name)):
        template = Template.from_stack(stack)
        topic = logical_id(template, "AWS::SNS::Topic", TopicName=topic_name)
        subscriptions = [r["Properties"] for r in resources(template, "AWS::SNS::Subscription").values()]
        assert sorted((s["Protocol"], s["Endpoint"], json.dumps(s["TopicArn"])) for s in subscriptions) == \
            sorted(("email", email, json.dumps({"Ref": topic})) for email in emails)
