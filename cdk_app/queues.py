"""Dead-letter queues and the two ways Lambda sends to them, with permissions granted exactly.

CDK's SqsDlq and SqsDestination grant the function `kms:ReEncrypt*` and `kms:GenerateDataKey*`
besides sqs:SendMessage; here the caller grants sqs:SendMessage and the key's data-key actions
itself (cdk_app/grants.py), so the destinations below only name the queue.
"""
from __future__ import annotations

import jsii
from aws_cdk import Duration
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.nag import acknowledge
from cdk_app.secure_bucket import removal_policy

RETENTION = Duration.days(14)  # SQS's maximum: two weeks to notice, fix and replay


def dead_letter_queue(scope: Construct, construct_id: str, *, env: EnvConfig, component: str, key: kms.IKey,
                      holds: str) -> sqs.Queue:
    """An encrypted, TLS-only queue `lakehouse-<env>-<component>` that `holds` what failed for good; retained
    with the environment's data (prod): what it holds is still to be replayed."""
    queue = sqs.Queue(
        scope, construct_id,
        queue_name=env.resource_name(component),
        encryption=sqs.QueueEncryption.KMS,
        encryption_master_key=key,
        enforce_ssl=True,
        retention_period=RETENTION,
        removal_policy=removal_policy(env),
    )
    acknowledge(queue, {
        "AwsSolutions-SQS3": f"This queue is itself a dead-letter destination ({holds}); it has no consumer to fail.",
    })
    return queue


@jsii.implements(lambda_.IEventSourceDlq)
class OnFailureQueue:
    """On-failure destination of an event source mapping (Kinesis, Kafka)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, _target: object, _handler: object) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self._queue.queue_arn)


@jsii.implements(lambda_.IDestination)
class _AsyncFailureQueue:
    """On-failure destination of a function's asynchronous invocations (S3 events, schedules)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, _scope: object, _fn: object, *, type: lambda_.DestinationType) -> lambda_.DestinationConfig:  # noqa: A002 (jsii's name)
        return lambda_.DestinationConfig(destination=self._queue.queue_arn)


def park_failed_invocations(function: lambda_.Function, queue: sqs.IQueue) -> None:
    """Asynchronous invocations of `function` are retried as long as Lambda allows (twice, within six
    hours), then the event goes to `queue`: a failure is parked, never dropped."""
    function.configure_async_invoke(retry_attempts=2, max_event_age=Duration.hours(6),
                                    on_failure=_AsyncFailureQueue(queue))
