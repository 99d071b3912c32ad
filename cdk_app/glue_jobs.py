"""The Glue 5.1 Spark jobs of glue_jobs/: one role, one security configuration and one pair of log groups for
all of them (decision 0220)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Stack, Tags
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from cdk_app.config import PROJECT_ROOT, EnvConfig
from cdk_app.grants import (allow, allow_key, allow_list, arn, catalog_arns, object_arn, objects_arn,
                             resourceless_reason)
from cdk_app.nag import acknowledge
from cdk_app.packaging import package
from cdk_app.python_function import encrypted_log_group
from iceberg_tables.glue_conf import GLUE_VERSION, glue_job_arguments

COMPONENT = "glue-jobs"  # the `component` tag of everything here
# Modules the job scripts import, shipped to Glue as one --extra-py-files zip.
JOB_LIBRARIES: tuple[str, ...] = ("glue_jobs", "lambdas/__init__.py", "lambdas/contracts")
# Iceberg commits on Glue: read a table, swap its metadata location.
CATALOG_ACTIONS = ("glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:UpdateTable")
# What the security configuration's encryption asks of the role, on the lake key only: SSE-KMS writes to S3
# (Decrypt, Encrypt, GenerateDataKey) and CSE-KMS job bookmarks (Decrypt, Encrypt). CloudWatch Logs encrypts
# the log groups itself, under the key policy's grant to the logs service (cdk_app/lake.py).
KEY_ACTIONS = ("kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey")
# What Glue does to its log groups: with CloudWatch encryption on, it associates the key with each group (without
# logs:AssociateKmsKey it turns logging off); it creates a group that is missing (here they exist, owned by CDK).
LOG_ACTIONS = ("logs:CreateLogGroup", "logs:AssociateKmsKey", "logs:CreateLogStream", "logs:PutLogEvents")
LOG_STREAMS = ("error", "output")  # Glue 5.x: driver, executor and Spark logs / the script's stdout and stderr


def glue_log_group_names(security_configuration: str, role_name: str) -> dict[str, str]:
    """{kind: log group} a Glue 5.x job writes to when its security configuration encrypts CloudWatch logs:
    `/aws-glue/jobs/<security configuration>-role/<role name>/<error|output>` (AWS Glue developer guide,
    "Logging for AWS Glue jobs", security configuration with CloudWatch logging)."""
    return {kind: f"/aws-glue/jobs/{security_configuration}-role/{role_name}/{kind}" for kind in LOG_STREAMS}


class GlueJobs(Construct):
    """`jobs[name]` is the CfnJob of glue_jobs/<name>.py; `role` runs them all."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: EnvConfig,
        key: kms.IKey,
        bucket_names: Mapping[str, str],
        databases: Sequence[str],
        job_arguments: Mapping[str, Mapping[str, str]],
        staging_read_prefixes: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        Tags.of(self).add("component", COMPONENT)
        warehouse, staging = bucket_names["warehouse"], bucket_names["staging"]
        # named: the names of Glue's log groups are made of it (glue_log_group_names)
        self.role_name = env.resource_name(COMPONENT)
        self.role = iam.Role(self, "Role", role_name=self.role_name,
                             assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
        security_configuration = env.resource_name("glue")
        self.security_configuration = glue.CfnSecurityConfiguration(
            self, "Security",
            name=security_configuration,
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[glue.CfnSecurityConfiguration.S3EncryptionProperty(
                    s3_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn)],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn),
            ),
        )
        # Glue would create its log groups without a retention; these exist first, kept 3 months, lake key
        log_group_names = glue_log_group_names(security_configuration, self.role_name)
        self.log_groups = {kind: encrypted_log_group(self, f"{kind.capitalize()}Logs", env=env, key=key, name=name)
                           for kind, name in log_group_names.items()}
        libraries = s3_assets.Asset(self, "Libraries", path=str(PROJECT_ROOT / "glue_jobs"),
                                    **package(list(JOB_LIBRARIES)).asset_options())
        self.jobs: dict[str, glue.CfnJob] = {}
        for name, arguments in job_arguments.items():
            script = s3_assets.Asset(self, f"{_camel(name)}Script", path=str(PROJECT_ROOT / "glue_jobs" / f"{name}.py"))
            allow(self.role, ("s3:GetObject",), [object_arn(self, script.s3_bucket_name, script.s3_object_key)])
            self.jobs[name] = glue.CfnJob(
                self, _camel(name),
                name=env.glue_job_name(name),
                role=self.role.role_arn,
                glue_version=GLUE_VERSION,
                command=glue.CfnJob.JobCommandProperty(
                    name="glueetl", python_version="3", script_location=script.s3_object_url),
                worker_type=env.glue_worker_type,
                number_of_workers=env.glue_workers,
                timeout=env.glue_timeout_minutes,
                max_retries=0,  # the state machine retries, with backoff
                execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=1),
                security_configuration=self.security_configuration.ref,
                default_arguments={
                    **_job_arguments(f"s3://{warehouse}", Stack.of(self).region),
                    "--extra-py-files": libraries.s3_object_url,
                    "--job-language": "python",
                    # incremental work is tracked by the jobs themselves (manifests, Iceberg), so it
                    # runs the same locally, where Glue bookmarks don't exist
                    "--job-bookmark-option": "job-bookmark-disable",
                    "--enable-metrics": "true",
                    "--enable-observability-metrics": "true",
                    # no --enable-continuous-cloudwatch-log: Glue 5.x logs every job in real time anyway
                    **{f"--{k}": v for k, v in arguments.items()},
                },
            )
            for log_group in self.log_groups.values():
                self.jobs[name].node.add_dependency(log_group)
        allow(self.role, ("s3:GetObject",),
              [object_arn(self, libraries.s3_bucket_name, libraries.s3_object_key)])

        role = self.role
        allow(role, CATALOG_ACTIONS, catalog_arns(self, databases),
              wildcard_reason="Iceberg commits read and update any table of the lake's databases; the "
                              "tables are defined in iceberg_tables/, not in CloudFormation.")
        allow_list(role, staging, staging_read_prefixes)
        allow(role, ("s3:GetObject",), [objects_arn(self, staging, p) for p in staging_read_prefixes],
              wildcard_reason="The jobs read the cleaner's micro-batch files, named at run time, under "
                              "these staging prefixes only.")
        allow_list(role, warehouse)
        allow(role, ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"),
              [objects_arn(self, warehouse)],
              wildcard_reason="Iceberg writes data and metadata files under each table's folder of the "
                              "warehouse and deletes expired ones; file names are made at run time.")
        allow_key(role, key, KEY_ACTIONS)
        allow(role, LOG_ACTIONS, [arn(self, "logs", f"log-group:{group}{suffix}")
                                  for group in log_group_names.values() for suffix in ("", ":*")],
              wildcard_reason="Glue names a log stream per job run (and driver or executor) in these two log "
                              "groups; a group's ARN as IAM matches it ends in :*.")
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
        ))
        acknowledge(role, {"AwsSolutions-IAM5[Resource::*]": resourceless_reason("cloudwatch:PutMetricData")})


def _job_arguments(warehouse_uri: str, region: str) -> dict[str, str]:
    """iceberg_tables.glue_conf's arguments, and the region for Glue 5.1's S3A connector (which now reads
    s3:// paths: the staging batches): unset, S3A assumes us-east-2 (Glue's 5.1 migration guide)."""
    arguments = glue_job_arguments(warehouse_uri)
    return {**arguments, "--conf": f"{arguments['--conf']} --conf spark.hadoop.fs.s3a.endpoint.region={region}"}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
