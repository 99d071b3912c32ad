"""CloudWatch alarms on the ingestion path, published to one encrypted SNS topic; and that kind of topic.

Only the signals that mean "data is waiting or was parked": a dead-letter queue holding a
message, a function failing, the cleaner falling behind its stream. Subscribe people or a pager
to `topic` (it has no subscription of its own: who is paged differs per team).
"""
from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.grants import arn

PERIOD = Duration.minutes(5)
# Healthy, the cleaner lags its stream by about one batching window; half an hour is an outage.
ITERATOR_AGE_LIMIT = Duration.minutes(30)


def encrypted_topic(scope: Construct, construct_id: str, *, env: EnvConfig, name: str, key: kms.IKey) -> sns.Topic:
    """An SNS topic encrypted with the lake key, refusing publishers without TLS, that this environment's
    CloudWatch alarms may publish to; no subscription (who is paged differs per team). Two topics use it:
    the ingestion alarms (below) and the batch pipeline's alerts (cdk_app/processing.py): see
    docs/decisions/0142-pipeline-alerts-topic.md."""
    topic = sns.Topic(scope, construct_id, topic_name=name, master_key=key, enforce_ssl=True)
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
          description: str, topic: sns.ITopic) -> cloudwatch.Alarm:
    """`metric` at or above `threshold` in one period (no data: fine) publishes to `topic`."""
    created = metric.create_alarm(
        scope, construct_id, alarm_name=name, alarm_description=description,
        threshold=threshold, evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    created.add_alarm_action(actions.SnsAction(topic))
    return created


class Alarms(Construct):
    """`topic` (SNS, the lake key, TLS-only) and `alarms` {name: Alarm}, each publishing to it."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self._env = env
        self.topic = encrypted_topic(self, "Topic", env=env, name=env.resource_name("ingestion-alarms"), key=key)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

    def _add(self, component: str, metric: cloudwatch.Metric, threshold: float, description: str) -> None:
        name = self._env.resource_name(component)
        self.alarms[name] = alarm(self, component, name=name, metric=metric, threshold=threshold,
                                  description=description, topic=self.topic)

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
