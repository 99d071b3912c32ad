"""Ingestion stack: the clickstream Kinesis stream and the cleaner Lambda reading it into the lake."""
from __future__ import annotations

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.grants import allow, allow_key, arn, objects_arn
from cdk_app.nag import acknowledge
from cdk_app.python_function import PythonFunction
from lambdas.contracts import clickstream
from lambdas.contracts.lake_layout import clean_prefix, manifest_prefix, quarantine_prefix, raw_prefix

WRITE = ("s3:PutObject", "s3:AbortMultipartUpload")


@jsii.implements(lambda_.IEventSourceDlq)
class _OnFailureQueue:
    """On-failure destination whose permission is granted by the caller, exactly (CDK's SqsDlq also
    grants kms:ReEncrypt* and kms:GenerateDataKey*)."""

    def __init__(self, queue: sqs.IQueue) -> None:
        self._queue = queue

    def bind(self, _target: object, _handler: object) -> lambda_.DlqDestinationConfig:
        return lambda_.DlqDestinationConfig(destination=self._queue.queue_arn)


class IngestionStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_config: EnvConfig,
        key: kms.IKey,
        bucket_names: dict[str, str],
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        env = env_config
        source = clickstream.SOURCE
        on_demand = env.kinesis_shards == 0
        self.stream = kinesis.Stream(
            self, "Stream",
            stream_name=env.stream_name,
            stream_mode=kinesis.StreamMode.ON_DEMAND if on_demand else kinesis.StreamMode.PROVISIONED,
            shard_count=None if on_demand else env.kinesis_shards,
            encryption=kinesis.StreamEncryption.KMS,
            encryption_key=key,
            retention_period=Duration.days(7),  # room to fix and replay a broken cleaner
        )
        acknowledge(self.stream, {
            "AwsSolutions-KDS3": "Encrypted with the lake's customer-managed key, not aws/kinesis: its key "
                                 "policy and grants decide who can read events, and it rotates yearly.",
        })
        dlq_name = env.resource_name("cleaner-dlq")
        self.dead_letters = sqs.Queue(
            self, "DeadLetters",
            queue_name=dlq_name,
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        acknowledge(self.dead_letters, {
            "AwsSolutions-SQS3": "This queue is itself the dead-letter destination of the cleaner's event "
                                 "source mapping (batches that failed every retry); it has no consumer to fail.",
        })

        raw_uri, staging_uri = f"s3://{bucket_names['raw']}", f"s3://{bucket_names['staging']}"
        self.cleaner = PythonFunction(
            self, "Cleaner", env=env, folder="cleaner", key=key, with_pyarrow=True,
            timeout=Duration.minutes(5), memory_mb=1024,
            environment={"RAW_URI": raw_uri, "STAGING_URI": staging_uri, "SOURCE": source},
        )
        role = self.cleaner.role
        allow(role, WRITE, [objects_arn(self, bucket_names["raw"], raw_prefix(source))],
              wildcard_reason="The cleaner writes one object per batch and ingest hour under the raw "
                              "prefix of its source; the keys are made at run time.")
        allow(role, WRITE, [objects_arn(self, bucket_names["staging"], prefix(source))
                            for prefix in (clean_prefix, quarantine_prefix, manifest_prefix)],
              wildcard_reason="The cleaner writes one object per batch under its source's clean, quarantine "
                              "and manifest prefixes; the keys are made at run time.")
        allow(role, ("sqs:SendMessage",), [arn(self, "sqs", dlq_name)])
        allow_key(role, key)  # S3 SSE-KMS writes and SQS SSE-KMS sends both need a data key
        self.cleaner.function.add_event_source(sources.KinesisEventSource(
            self.stream,
            starting_position=lambda_.StartingPosition.TRIM_HORIZON,
            batch_size=env.cleaner_batch_size,
            max_batching_window=Duration.seconds(env.cleaner_batching_window_seconds),
            bisect_batch_on_error=True,
            report_batch_item_failures=True,
            # -1 in cdk.json = retry until the record expires (Lambda's default)
            retry_attempts=None if env.cleaner_max_retries == -1 else env.cleaner_max_retries,
            on_failure=_OnFailureQueue(self.dead_letters),
        ))
