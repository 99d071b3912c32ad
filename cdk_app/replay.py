"""The role replay runs as in AWS: read failure records, fetch the originals, hand them to the cleaner.

`lakehouse replay --dlq` (or an operator) assumes it: it is the one principal the raw zone's
bucket policy lets read raw records (cdk_app/raw_zone.py). Who may assume it is decided by the
account's own IAM policies (the trust names the account, not a user).
"""
from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.cleaner import Cleaner
from cdk_app.config import EnvConfig
from cdk_app.grants import allow, allow_key, allow_list, objects_arn
from cdk_app.raw_zone import replay_role_name
from lambdas.contracts.lake_layout import raw_prefix

STREAM_READ = ("kinesis:DescribeStream", "kinesis:DescribeStreamSummary", "kinesis:ListShards",
               "kinesis:GetShardIterator", "kinesis:GetRecords")
QUEUE_CONSUME = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


class Replay(Construct):
    """`role`: per cleaner it re-drives, may read the cleaner's raw records, consume its dead letters,
    re-read its stream and invoke it; nothing else."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey, raw_bucket: str) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self, "Role",
            role_name=replay_role_name(env),
            assumed_by=iam.AccountRootPrincipal(),
            description="Replays the cleaners' failed batches; the only reader of the raw zone",
            max_session_duration=Duration.hours(4),
        )
        self._raw_bucket = raw_bucket
        allow_key(self.role, key, ("kms:Decrypt",))

    def redrive(self, cleaner: Cleaner, stream: kinesis.IStream) -> None:
        """What re-driving a cleaner's failures takes: its raw records, dead letters, stream, function."""
        prefix = raw_prefix(cleaner.source)
        allow_list(self.role, self._raw_bucket, [prefix])
        allow(self.role, ("s3:GetObject",), [objects_arn(self, self._raw_bucket, prefix)],
              wildcard_reason="Replay reads back the raw batch files of the failed sequence ranges, named at "
                              "ingest time, under the cleaner's raw prefix.")
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=list(QUEUE_CONSUME), resources=[cleaner.dead_letters.queue_arn]))
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=list(STREAM_READ), resources=[stream.stream_arn]))
        self.role.add_to_principal_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[cleaner.function.function.function_arn]))
