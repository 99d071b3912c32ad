"""The cleaner: per Kinesis source, its Lambda, its on-failure queue and its event source mappings;
the PII hashing key they share.

Every source it reads (the Kinesis stream, the optional MSK topic) gets the same mapping settings
from config: batch size and window, bisect on error, ReportBatchItemFailures, retry attempts,
maximum record age and the on-failure queue, so a batch that can't be cleaned is never dropped.
"""
from __future__ import annotations

from typing import Any

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from cdk_app.config import KINESIS_SOURCES, EnvConfig
from cdk_app.generated_secret import generated_secret
from cdk_app.grants import WRITE_OBJECTS, allow, allow_key, allow_list, arn, deploy_role_arn, objects_arn, role_arn
from cdk_app.python_function import PythonFunction, function_role_name
from cdk_app.raw_zone import RAW_READERS
from cdk_app.queues import OnFailureQueue, dead_letter_queue
from lambdas.common import environment
from lambdas.contracts.lake_layout import manifest_prefix, position_prefix, raw_prefix, staged_prefixes
from lambdas.contracts.live import live_table

PII_KEY_SECRET = "pii-hash-key"  # the secret's component name: lakehouse-<env>-pii-hash-key
# Beyond the layers, the cleaner's package imports these (fast JSON, ISA-L gzip).
CLEANER_BUNDLED: tuple[str, ...] = ("isal", "msgspec")
# Every action that changes the PII key's value, versions, policy, replicas or existence.
PII_KEY_WRITE_ACTIONS: tuple[str, ...] = (
    "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret", "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:RotateSecret", "secretsmanager:CancelRotateSecret", "secretsmanager:DeleteSecret",
    "secretsmanager:RestoreSecret", "secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy",
    "secretsmanager:ReplicateSecretToRegions", "secretsmanager:RemoveRegionsFromReplication",
    "secretsmanager:StopReplicationToReplica",
)
PII_KEY_LENGTH = 64  # characters of [A-Za-z0-9]: about 380 bits, beyond any brute force of an HMAC key


class Cleaner(Construct):
    """One instance of the cleaner, for one source's stream: `function` (PythonFunction, named
    env.cleaner_for(source)), `dead_letters` (its on-failure queue), `pii_key` (Secrets Manager)."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, source: str, key: kms.IKey,
                 bucket_names: dict[str, str], pii_key: secretsmanager.ISecret | None = None,
                 live_queue: sqs.IQueue | None = None) -> None:
        """Without `pii_key` this cleaner creates the key every cleaner shares (one key: a visitor's IP
        hashes alike in every source); it stays in this scope so its logical id, hence its value, is stable.
        With `live_queue` (the live committer's), a source with a live table notifies it of each staged batch."""
        super().__init__(scope, construct_id)
        self._env = env
        self.source = source
        name = env.cleaner_for(source)
        self.component = name.removeprefix(env.resource_name(""))  # cleaner, cleaner-orders: names its parts
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", env=env, component=f"{self.component}-dlq", key=key,
            holds=f"batches that failed every retry of the {source} cleaner's event source mappings")
        self.pii_key = pii_key or _pii_key(self, env, key)
        self.live_queue = live_queue if live_table(source) is not None else None
        self.function = PythonFunction(
            self, "Function", env=env, folder="cleaner", name=name, key=key, bundled=CLEANER_BUNDLED,
            with_pyarrow=True, timeout=Duration.minutes(5), memory_mb=1024,
            # the secret's name as a literal: its attribute is a token
            environment=environment.cleaner(f"s3://{bucket_names['raw']}", f"s3://{bucket_names['staging']}",
                                            source, pii_key_secret=env.resource_name(PII_KEY_SECRET),
                                            live_queue_url=self.live_queue.queue_url if self.live_queue else None),
        )
        role = self.function.role
        allow(role, WRITE_OBJECTS, [objects_arn(self, bucket_names["raw"], raw_prefix(source))],
              wildcard_reason="The cleaner writes one object per batch and ingest hour under the raw "
                              "prefix of its source; the keys are made at run time.")
        allow(role, WRITE_OBJECTS, [objects_arn(self, bucket_names["staging"], prefix)
                            for prefix in staged_prefixes(source)],
              wildcard_reason="The cleaner writes one object per batch under its source's staged prefixes "
                              "(clean, quarantine, manifests, manifest index); the keys are made at run time.")
        # Redeliveries (lambdas/cleaner/redelivery.py): each shard's mark of its last staged batch is read and
        # written, and a batch starting at a redelivery's first record is looked for among the manifests.
        allow(role, ("s3:GetObject", *WRITE_OBJECTS), [objects_arn(self, bucket_names["staging"], position_prefix(source))],
              wildcard_reason="The cleaner keeps one mark object per shard (or topic-partition) under its "
                              "source's positions prefix; shard ids are known at run time only.")
        allow_list(role, bucket_names["staging"], [manifest_prefix(source), position_prefix(source)])
        # its failed batches (sent by the mapping as the role), and its notifications of staged batches
        allow(role, ("sqs:SendMessage",), [arn(self, "sqs", self.dead_letters.queue_name),
                                           *([arn(self, "sqs", env.live_commit_queue_name)] if self.live_queue else [])])
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["secretsmanager:GetSecretValue"], resources=[self.pii_key.secret_arn]))
        allow_key(role, key)  # S3 SSE-KMS writes, SQS SSE-KMS sends (both queues), the secret's decryption

    def mapping_options(self) -> dict[str, Any]:
        """Settings every event source mapping of the cleaner shares (config: `cleaner_*`)."""
        env = self._env
        return {
            "starting_position": lambda_.StartingPosition.TRIM_HORIZON,
            "batch_size": env.cleaner_batch_size,
            "max_batching_window": Duration.seconds(env.cleaner_batching_window_seconds),
            "bisect_batch_on_error": True,
            "report_batch_item_failures": True,
            # -1 in cdk.json = retry until the record expires (Lambda's default)
            "retry_attempts": None if env.cleaner_max_retries == -1 else env.cleaner_max_retries,
            "max_record_age": (None if env.cleaner_max_record_age_seconds == -1
                               else Duration.seconds(env.cleaner_max_record_age_seconds)),
            "on_failure": OnFailureQueue(self.dead_letters),
        }

    def read_stream(self, stream: kinesis.IStream) -> None:
        """Consume the Kinesis stream (CDK grants the stream reads and its key's decryption)."""
        self.function.function.add_event_source(sources.KinesisEventSource(stream, **self.mapping_options()))


def pii_key_readers(scope: Construct, env: EnvConfig) -> list[str]:
    """ARNs of the roles that read the PII key: the cleaners, and the replay function, which re-cleans raw
    batches with the same key. The only principals the lake key decrypts the secret for (cdk_app/lake.py)."""
    return [*(role_arn(scope, env.cleaner_for(source)).value for source in KINESIS_SOURCES),
            *(role_arn(scope, function_role_name(env, f)).value for f in RAW_READERS)]


def pii_key_secret_arn_pattern(scope: Construct, env: EnvConfig) -> str:
    """The PII key's ARN, its random suffix a wildcard (Secrets Manager appends six characters to the name)."""
    return arn(scope, "secretsmanager", f"secret:{env.resource_name(PII_KEY_SECRET)}-??????").value


def _pii_key(scope: Construct, env: EnvConfig, key: kms.IKey) -> secretsmanager.Secret:
    """The HMAC key of IP addresses, readable by the cleaners' and the replay function's roles only."""
    secret = generated_secret(
        scope, "PiiKey", env=env, component=PII_KEY_SECRET, key=key,
        description="HMAC key the cleaners hash IP addresses with; generated at deploy, read by the cleaners only",
        value=secretsmanager.SecretStringGenerator(password_length=PII_KEY_LENGTH, exclude_punctuation=True),
        not_rotated_because="A new key changes every hashed IP, which would split one visitor into two across "
                            "the rotation date. Rotate deliberately "
                            "(docs/decisions/0212-cleaner-pii-key-in-secrets-manager.md).",
    )
    # and nobody else: the secret's own policy refuses every other principal of the account (the
    # roles by name, like the raw zone's policy: no reference to roles made after the secret)
    secret.add_to_resource_policy(iam.PolicyStatement(
        effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=["secretsmanager:GetSecretValue"],
        resources=["*"],  # in a resource policy, "*" is this secret
        conditions={"ArnNotEquals": {"aws:PrincipalArn": pii_key_readers(scope, env)}},
    ))
    # A new value would re-key every hash silently, a new policy would let anyone read it: whatever changes the
    # secret is CloudFormation's, deploying reviewed code (decision 0227); an admin must change this policy
    # through a deploy first, which CloudTrail records.
    secret.add_to_resource_policy(iam.PolicyStatement(
        effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=list(PII_KEY_WRITE_ACTIONS),
        resources=["*"],
        conditions={"ArnNotEquals": {"aws:PrincipalArn": [deploy_role_arn(scope).value]}},
    ))
    return secret
