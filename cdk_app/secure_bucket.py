"""The one way this app makes a data bucket: KMS, TLS-only, private, versioned, access-logged."""
from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.config import EnvConfig


def bucket_name(env: EnvConfig, purpose: str) -> str:
    """Globally unique, stable bucket name, e.g. `lakehouse-dev-raw-123456789012-eu-west-1`."""
    return f"{env.resource_name(purpose)}-{env.account}-{env.region}"


def removal_policy(env: EnvConfig) -> RemovalPolicy:
    return RemovalPolicy.DESTROY if env.removal_policy == "destroy" else RemovalPolicy.RETAIN


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    env: EnvConfig,
    purpose: str,
    key: kms.IKey,
    access_logs: s3.IBucket,
    lifecycle_rules: Sequence[s3.LifecycleRule] = (),
) -> s3.Bucket:
    """A KMS-encrypted bucket that refuses plain HTTP and public access and logs its accesses."""
    return s3.Bucket(
        scope,
        construct_id,
        bucket_name=bucket_name(env, purpose),
        encryption=s3.BucketEncryption.KMS,
        encryption_key=key,
        bucket_key_enabled=True,  # one KMS call per object batch, not per object
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{purpose}/",
        lifecycle_rules=[
            # versioning keeps overwritten objects: don't keep them forever
            s3.LifecycleRule(id="expire-noncurrent", noncurrent_version_expiration=Duration.days(30)),
            s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)),
            *lifecycle_rules,
        ],
        # no auto_delete_objects: its custom-resource Lambda would empty a lake on a stack delete
        removal_policy=removal_policy(env),
    )


def access_log_bucket(scope: Construct, construct_id: str, *, env: EnvConfig) -> s3.Bucket:
    """Target of the data buckets' server access logs.

    S3 log delivery can't write to SSE-KMS buckets, so this one alone uses SSE-S3.
    """
    return s3.Bucket(
        scope,
        construct_id,
        bucket_name=bucket_name(env, "access-logs"),
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        versioned=True,
        lifecycle_rules=[
            s3.LifecycleRule(id="expire-logs", expiration=Duration.days(365), noncurrent_version_expiration=Duration.days(7)),
        ],
        removal_policy=removal_policy(env),
    )
