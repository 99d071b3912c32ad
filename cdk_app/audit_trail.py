"""Who read or wrote which raw object, and when: a CloudTrail trail of the raw bucket's S3 data events
(prod: cdk.json `raw_data_events_trail`, decision 0229).

Management events (who changed a policy, a key, the PII secret) are the account's own trail's; this one
records only the object-level calls on the raw zone, which no default trail does. Its logs go to a bucket
of their own: private, TLS-only, versioned, access-logged, encrypted with the lake key, which CloudTrail
may use for this account's trails only. File validation proves a log file unchanged since delivery.
"""
from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.grants import arn
from cdk_app.secure_bucket import secure_bucket

PURPOSE = "raw-audit"  # the log bucket's purpose and the trail's name component
LOG_RETENTION_DAYS = 2555  # about 7 years: as long as an erasure or an access may have to be proven


class RawDataEventsTrail(Construct):
    """`trail` logs every read and write of `raw`'s objects to `bucket`."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.Key, raw: s3.IBucket,
                 access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        name = env.resource_name(PURPOSE)
        trail_arn = arn(self, "cloudtrail", f"trail/{name}").value
        self.bucket = secure_bucket(
            self, "Bucket", env=env, purpose=PURPOSE, key=key, access_logs=access_logs,
            lifecycle_rules=[s3.LifecycleRule(id="expire-audit-logs", expiration=Duration.days(LOG_RETENTION_DAYS))])
        # CloudTrail encrypts the log files it delivers with the key: this trail's, of this account, only
        cloudtrail_principal = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        key.add_to_resource_policy(iam.PolicyStatement(
            principals=[cloudtrail_principal], actions=["kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={"StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn":
                                       f"arn:{stack.partition}:cloudtrail:*:{stack.account}:trail/*"},
                        "StringEquals": {"aws:SourceArn": trail_arn}},
        ))
        key.add_to_resource_policy(iam.PolicyStatement(
            principals=[cloudtrail_principal], actions=["kms:DescribeKey"], resources=["*"],
            conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
        ))
        self.trail = cloudtrail.Trail(
            self, "Trail",
            trail_name=name,
            bucket=self.bucket,  # the construct adds CloudTrail's GetBucketAcl and PutObject to its policy
            encryption_key=key,
            enable_file_validation=True,
            is_multi_region_trail=False,
            include_global_service_events=False,
            management_events=cloudtrail.ReadWriteType.NONE,
        )
        self.trail.add_s3_event_selector([cloudtrail.S3EventSelector(bucket=raw)],
                                         include_management_events=False, read_write_type=cloudtrail.ReadWriteType.ALL)
