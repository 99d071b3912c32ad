"""Product-catalog file drops: a landing bucket whose CSV uploads trigger the file loader Lambda.

The landing bucket sits in the ingestion stack beside its loader, not in the lake stack with the
other buckets: S3 checks a notification's target function when the notification is created, so
bucket and function must be deployed together (docs/decisions/0211-landing-bucket-beside-its-loader.md).
Its access logs still go to the lake's log bucket, whose policy admits them by this bucket's name.
The notification is the bucket's own (no CDK custom resource); the function's resource policy
names the bucket by ARN, so neither references the other in a cycle.
"""
from __future__ import annotations

from aws_cdk import Annotations, Duration, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.grants import WRITE_OBJECTS, allow, allow_key, allow_list, arn, bucket_arn, objects_arn
from cdk_app.python_function import PythonFunction
from cdk_app.queues import dead_letter_queue, park_failed_invocations
from cdk_app.secure_bucket import bucket_name, secure_bucket
from lambdas.common import environment
from lambdas.contracts import products
from lambdas.contracts.lake_layout import landing_prefix, manifest_prefix, raw_prefix, staged_prefixes

FOLDER = "file_loader"
SOURCE = products.SOURCE
LANDING = "landing"  # the bucket's purpose (its name and its access-log prefix)
CREATED = "s3:ObjectCreated:*"  # Put, Post, Copy and CompleteMultipartUpload alike
# The loader keeps each file's bytes in the raw zone (docs/decisions/0470); a landed file only has to
# outlive a parked event (the dead-letter queue keeps one 14 days) so it can still be replayed.
LANDING_RETENTION = Duration.days(30)
TIMEOUT = Duration.minutes(10)  # a large catalog file is streamed through, not held in memory


def landing_bucket_name(env: EnvConfig) -> str:
    return bucket_name(env, LANDING)


class FileLoader(Construct):
    """`landing` (bucket), `function`, `dead_letters` (events whose every load attempt failed)."""

    def __init__(self, scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey,
                 bucket_names: dict[str, str], access_logs: s3.IBucket) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.dead_letters = dead_letter_queue(
            self, "DeadLetters", env=env, component="file-loader-dlq", key=key,
            holds="catalog-file events whose every load attempt failed")
        landing = landing_bucket_name(env)
        self.function = PythonFunction(
            # it reads and writes through the cleaner's filesystem resolution (file:// and s3:// alike)
            self, "Function", env=env, folder=FOLDER, key=key,
            with_pyarrow=True, timeout=TIMEOUT, memory_mb=1024,
            environment=environment.file_loader(f"s3://{landing}", f"s3://{bucket_names['raw']}",
                                                f"s3://{bucket_names['staging']}", SOURCE),
        )
        function = self.function.function
        park_failed_invocations(function, self.dead_letters)

        self.landing = secure_bucket(
            self, "Landing", env=env, purpose=LANDING, key=key, access_logs=access_logs,
            lifecycle_rules=[s3.LifecycleRule(id="expire-landed-files", expiration=LANDING_RETENTION)],
        )
        Annotations.of(self.landing).acknowledge_warning(
            "@aws-cdk/aws-s3:accessLogsPolicyNotAdded",
            "The lake stack's access-log bucket policy admits this bucket's logs by name (cdk_app/lake.py).")
        permission = lambda_.CfnPermission(
            self, "S3Invokes",
            action="lambda:InvokeFunction",
            function_name=function.function_arn,
            principal="s3.amazonaws.com",
            source_arn=bucket_arn(self, landing).value,
            source_account=stack.account,
        )
        bucket = self.landing.node.default_child
        assert isinstance(bucket, s3.CfnBucket)
        bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            lambda_configurations=[s3.CfnBucket.LambdaConfigurationProperty(
                event=CREATED,
                function=function.function_arn,
                filter=s3.CfnBucket.NotificationFilterProperty(s3_key=s3.CfnBucket.S3KeyFilterProperty(rules=[
                    s3.CfnBucket.FilterRuleProperty(name="prefix", value=landing_prefix(SOURCE)),
                    s3.CfnBucket.FilterRuleProperty(name="suffix", value=products.FILE_SUFFIX),
                ])),
            )],
        )
        self.landing.node.add_dependency(permission)  # S3 test-invokes the target when the notification is set

        role = self.function.role
        allow_list(role, landing, [landing_prefix(SOURCE)])  # so a file gone by the time of the load is a 404
        allow(role, ("s3:GetObject",), [objects_arn(self, landing, landing_prefix(SOURCE))],
              wildcard_reason="The loader reads whichever catalog file was dropped under its landing prefix; "
                              "uploaders name the files.")
        allow(role, WRITE_OBJECTS, [objects_arn(self, bucket_names["raw"], raw_prefix(SOURCE))],
              wildcard_reason="The loader copies each file, as read, to the raw zone under its source's prefix, "
                              "named by the file's content hash at run time.")
        staging = bucket_names["staging"]
        allow(role, WRITE_OBJECTS, [objects_arn(self, staging, prefix) for prefix in staged_prefixes(SOURCE)],
              wildcard_reason="The loader stages each file under its source's staged prefixes (clean, "
                              "quarantine, manifests, manifest index), named by the file's content hash at run time.")
        # is this file loaded already? (its manifest exists: a HEAD, which needs s3:ListBucket to be a 404)
        allow_list(role, staging, [manifest_prefix(SOURCE)])
        allow(role, ("s3:GetObject",), [objects_arn(self, staging, manifest_prefix(SOURCE))],
              wildcard_reason="The loader reads the manifest named by a file's content hash to skip a file "
                              "dropped twice.")
        allow(role, ("sqs:SendMessage",), [arn(self, "sqs", self.dead_letters.queue_name)])
        allow_key(role, key)
