"""CloudWatch alarms, each published to an encrypted SNS topic of its stack; and that kind of topic.

Only the signals that mean "data is waiting, was parked, stopped flowing or turned bad": a dead-letter queue
holding a message, a function failing or throttled, a consumer falling behind its stream or topic, a
stream refusing writes, a workflow failing, no batch run succeeding for hours, a staged batch waiting too long for
its live commit; and, from the cleaners' own EMF metrics (lambdas/cleaner/metrics.py), a source quarantining more
than its limit over 5 minutes (a producer sending bad records, seen within minutes, not at the next batch run) or
staging its records minutes late. The ingestion stack's
alarms publish to `lakehouse-<env>-ingestion-alarms`, the processing stack's to its pipeline alerts
topic. Each topic subscribes the environment's `alert_emails` (cdk.json; none by default).
"""
from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.config import PROJECT, EnvConfig
from cdk_app.grants import arn
from cdk_app.python_function import PythonFunction
from lambdas.cleaner import metrics as cleaner_metrics

PERIOD = Duration.minutes(5)
# Healthy, the cleaner lags its stream by about one batching window; half an hour is an outage.
ITERATOR_AGE_LIMIT = Duration.minutes(30)
# Throttled writes are retried by producers, and an on-demand stream doubles its capacity within minutes:
# only throttling through SUSTAINED consecutive periods (a quarter of an hour) means the stream is too small.
SUSTAINED = 3
# Records the Kafka consumer group is behind its topic, sustained: about ten minutes of one poller's
# throughput (about 5 MB/s of 1 KB records, cdk_app/msk.py); a burst the pollers absorb stays below it.
KAFKA_LAG_LIMIT = 3_000_000
# The live path's promise (issue 14): a staged batch is committed to its live table within two minutes. SQS
# publishes queue metrics every minute, so the lag alarm looks at each minute.
COMMIT_LAG_LIMIT = Duration.minutes(2)
COMMIT_LAG_PERIOD = Duration.minutes(1)
# every function's POWERTOOLS_METRICS_NAMESPACE (cdk_app/python_function.py), so the cleaners' EMF namespace
EMF_NAMESPACE = PROJECT
# The quarantine rate counts as 0 in a period with fewer records than this. At a trickle a rate is noise: 1 bad
# record of 2 is 50 %, and would page. 100 records in 5 minutes is a third of a record a second, far below a live
# shop's stream, so a real producer going bad is seen at once; a quiet source's few bad records still reach
# ops.quarantine and the batch run's quarantine_rate check, which judges the whole run against the same limit.
QUARANTINE_RATE_MIN_RECORDS = 100
# A healthy batch's oldest record waits at most the batching window (cdk.json cleaner_batching_window_seconds),
# then seconds of cleaning. Two minutes more is a cleaner that is slow, retrying or behind its stream: the live
# tables fall minutes behind, long before ITERATOR_AGE_LIMIT calls it an outage.
INGEST_LAG_SLACK = Duration.minutes(2)


def encrypted_topic(scope: Construct, construct_id: str, *, env: EnvConfig, name: str, key: kms.IKey) -> sns.Topic:
    """An SNS topic encrypted with the lake key, refusing publishers without TLS, that this environment's
    CloudWatch alarms may publish to. Two topics use it:
    the ingestion alarms (below) and the batch pipeline's alerts (cdk_app/processing.py): see
    docs/decisions/0142-pipeline-alerts-topic.md. Each of `env.alert_emails` is subscribed by e-mail (the
    address confirms it); none by default: who is paged differs per team (decision 0236)."""
    topic = sns.Topic(scope, construct_id, topic_name=name, master_key=key, enforce_ssl=True)
    for address in env.alert_emails:
        topic.add_subscription(subscriptions.EmailSubscription(address))
    # the topic's own policy replaces SNS's default one, which let this account's alarms publish
    topic.add_to_resource_policy(iam.PolicyStatement(
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["sns:Publish"],
        resources=[topic.topic_arn],
        conditions={"ArnLike": {"aws:SourceArn": arn(scope, "cloudwatch", f"alarm:{env.resource_name('*')}").value},
                    "StringEquals": {"aws:SourceAccount": Stack.of(scope).account}},
    ))
    return topic


def alarm(scope: Construct, construct_id: str, *, name: str, metric: cloudwatch.IMetric, threshold: float,
          description: str, topic: sns.ITopic, periods: int = 1,
          comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          missing_data: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING) -> cloudwatch.Alarm:
    """`metric` at or above `threshold` (or as `comparison` says) in `periods` consecutive periods publishes to
    `topic`; no data is fine unless `missing_data` says otherwise."""
    created = metric.create_alarm(
        scope, construct_id, alarm_name=name, alarm_description=description,
        threshold=threshold, evaluation_periods=periods, datapoints_to_alarm=periods,
        comparison_operator=comparison, treat_missing_data=missing_data,
    )
    created.add_alarm_action(actions.SnsAction(topic))
    return created


def failed_executions(machine: sfn.IStateMachine, label: str) -> cloudwatch.MathExpression:
    """Executions of `machine` that ended FAILED, ABORTED or TIMED_OUT, per PERIOD."""
    return cloudwatch.MathExpression(
        expression="failed + aborted + timed_out", label=label, period=PERIOD,
        using_metrics={"failed": machine.metric_failed(statistic="Sum"),
                       "aborted": machine.metric_aborted(statistic="Sum"),
                       "timed_out": machine.metric_timed_out(statistic="Sum")})


def cleaner_metric(source: str, name: str, statistic: str, label: str | None = None) -> cloudwatch.Metric:
    """The EMF metric `name` (lambdas/cleaner/metrics.py) of `source`'s cleaner, per PERIOD: in the namespace and
    with the dimension set ({service, source}) the handler emits it with."""
    return cloudwatch.Metric(namespace=EMF_NAMESPACE, metric_name=name, statistic=statistic, label=label,
                             period=PERIOD, dimensions_map={cleaner_metrics.SERVICE_DIMENSION: cleaner_metrics.SERVICE,
                                                            cleaner_metrics.SOURCE_DIMENSION: source})


def quarantine_rate_expression(source: str, label: str | None = None) -> cloudwatch.MathExpression:
    """The share of `source`'s records its cleaner quarantined per PERIOD (quarantined / records_in); 0 below
    QUARANTINE_RATE_MIN_RECORDS records, no data when the cleaner staged nothing."""
    received, quarantined = cleaner_metrics.RECORDS_IN, cleaner_metrics.QUARANTINED
    return cloudwatch.MathExpression(
        expression=f"IF({received} >= {QUARANTINE_RATE_MIN_RECORDS}, {quarantined} / {received}, 0)",
        using_metrics={name: cleaner_metric(source, name, "Sum") for name in (received, quarantined)},
        label=label or f"{source} quarantine rate", period=PERIOD)


def function_name(part: PythonFunction) -> str:
    """The physical name of `part`'s function, as its CloudFormation resource declares it."""
    cfn = part.function.node.default_child
    assert isinstance(cfn, lambda_.CfnFunction) and isinstance(cfn.function_name, str), part.node.path
    return cfn.function_name


class Alarms(Construct):
    """`topic` and `alarms` {name: Alarm}, each publishing to it. Without `topic`, its own: SNS
    `lakehouse-<env>-ingestion-alarms`, the lake key, TLS-only."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey,
                 topic: sns.ITopic | None = None) -> None:
        super().__init__(scope, construct_id)
        self._env = env
        self.topic = topic or encrypted_topic(self, "Topic", env=env, name=env.resource_name("ingestion-alarms"),
                                              key=key)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

    def _add(self, component: str, metric: cloudwatch.IMetric, threshold: float, description: str,
             **options) -> None:
        name = self._env.resource_name(component)
        self.alarms[name] = alarm(self, component, name=name, metric=metric, threshold=threshold,
                                  description=description, topic=self.topic, **options)

    def dead_letters(self, queue: sqs.Queue, what: str) -> None:
        """Any message in `queue`: some of `what`'s work failed for good and waits for a replay."""
        metric = queue.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum")
        self._add(f"{what}-dead-letters", metric, 1, f"the {what}'s failed work waits in its dead-letter queue")

    def errors(self, function: lambda_.Function, what: str) -> None:
        """Any failed invocation of `function`."""
        self._add(f"{what}-errors", function.metric_errors(period=PERIOD, statistic="Sum"), 1,
                  f"the {what} function failed")

    def iterator_age(self, function: lambda_.Function, what: str) -> None:
        """`function` lags its stream by more than ITERATOR_AGE_LIMIT."""
        metric = function.metric("IteratorAge", period=PERIOD, statistic="Maximum")
        self._add(f"{what}-iterator-age", metric, ITERATOR_AGE_LIMIT.to_milliseconds(),
                  f"the {what} is more than {ITERATOR_AGE_LIMIT.to_minutes()} minutes behind its stream")

    def quarantine_rate(self, source: str, what: str) -> None:
        """`source`'s cleaner (`what`) quarantined more than its limit of the records it staged in a PERIOD:
        a producer sends records the contract rejects. The limit is cdk.json's `quality.max_quarantine_rate` of
        the source, which the batch run's quality check and `lakehouse watch` judge by too ("more than": at the
        limit passes)."""
        limit = self._env.quality.max_quarantine_rate[source]
        self._add(f"{what}-quarantine-rate", quarantine_rate_expression(source), limit,
                  f"the {source} cleaner quarantined more than {limit:.1%} of its records in 5 minutes (judged from "
                  f"{QUARANTINE_RATE_MIN_RECORDS} records up): a producer sends bad records "
                  "(docs/runbooks/quarantine-rate.md)",
                  comparison=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD)

    def ingest_lag(self, source: str, what: str) -> None:
        """A record of `source` waited INGEST_LAG_SLACK beyond the batching window between reaching its stream and
        being staged by its cleaner (`what`): the cleaner's `ingest_lag` EMF metric (milliseconds), Maximum."""
        window = self._env.cleaner_batching_window_seconds
        limit = Duration.seconds(window + INGEST_LAG_SLACK.to_seconds())
        self._add(f"{what}-ingest-lag", cleaner_metric(source, cleaner_metrics.INGEST_LAG, "Maximum"),
                  limit.to_milliseconds(),
                  f"the {source} cleaner staged a record {limit.to_seconds():g} s or more after it arrived (healthy: "
                  f"the {window} s batching window and seconds of cleaning): the cleaner is slow, retrying or behind, "
                  "and the live tables fall behind")

    def commit_lag(self, queue: sqs.Queue, what: str) -> None:
        """The oldest message waiting in `queue` (a notification of a staged batch) is COMMIT_LAG_LIMIT old: the
        `what` is failing, throttled or stopped, and the live tables fall behind."""
        metric = queue.metric_approximate_age_of_oldest_message(period=COMMIT_LAG_PERIOD, statistic="Maximum")
        self._add(f"{what}-commit-lag", metric, COMMIT_LAG_LIMIT.to_seconds(),
                  f"a staged batch has waited {COMMIT_LAG_LIMIT.to_minutes()} minutes or more for the {what}: "
                  "the live tables fall behind (docs/infrastructure.md, The live path)")

    def every_throttle(self, scope: Construct) -> None:
        """A throttles alarm for every function of this app under `scope` (each PythonFunction), named
        after the function (`lakehouse-<env>-<what>` alarms as `<what>-throttles`)."""
        prefix = self._env.resource_name("")
        for part in scope.node.find_all():
            if isinstance(part, PythonFunction):
                self.throttles(part.function, function_name(part).removeprefix(prefix))

    def throttles(self, function: lambda_.Function, what: str) -> None:
        """Any throttled invocation of `function`: the account's (or region's) concurrency is used up, and
        its events wait or are retried."""
        self._add(f"{what}-throttles", function.metric_throttles(period=PERIOD, statistic="Sum"), 1,
                  f"the {what} function was throttled: Lambda concurrency is exhausted")

    def write_throttles(self, stream: kinesis.IStream, what: str) -> None:
        """Writes to `stream` refused for throughput in SUSTAINED consecutive periods."""
        metric = stream.metric_write_provisioned_throughput_exceeded(period=PERIOD, statistic="Sum")
        self._add(f"{what}-write-throttles", metric, 1,
                  f"the {what} stream has refused writes for {SUSTAINED * PERIOD.to_minutes()} minutes: "
                  "add shards (kinesis_shards in cdk.json) or check the producers", periods=SUSTAINED)

    def kafka_lag(self, function: lambda_.Function, what: str) -> None:
        """`function`'s Kafka consumer group at least KAFKA_LAG_LIMIT records behind in SUSTAINED periods."""
        metric = function.metric("OffsetLag", period=PERIOD, statistic="Maximum")
        self._add(f"{what}-kafka-lag", metric, KAFKA_LAG_LIMIT,
                  f"the {what} is {KAFKA_LAG_LIMIT:,} records or more behind its Kafka topic for "
                  f"{SUSTAINED * PERIOD.to_minutes()} minutes: raise its maximum pollers", periods=SUSTAINED)

    def failed_runs(self, machine: sfn.IStateMachine, what: str, runbook: str) -> None:
        """Any execution of `machine` that did not succeed."""
        self._add(f"{what}-failed-runs", failed_executions(machine, f"{what} runs that did not succeed"), 1,
                  f"a {what} run ended FAILED, ABORTED or TIMED_OUT: {runbook}")

    def heartbeat(self, machine: sfn.IStateMachine, what: str, hours: int) -> None:
        """No execution of `machine` succeeded in the last `hours` (at most 24: an alarm looks back one day).
        No data is breaching: Step Functions publishes nothing for an hour without a success."""
        metric = machine.metric_succeeded(period=Duration.hours(hours), statistic="Sum")
        self._add(f"{what}-heartbeat", metric, 1,
                  f"no {what} run has succeeded for {hours} hours: is the schedule on, are runs failing or stuck?",
                  comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                  missing_data=cloudwatch.TreatMissingData.BREACHING)
