"""The Glue 5.0 Spark jobs of glue_jobs/: one role and one security configuration for all of them."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from cdk_app.config import PROJECT_ROOT, EnvConfig
from cdk_app.grants import allow, allow_key, allow_list, arn, catalog_arns, object_arn, objects_arn
from cdk_app.nag import acknowledge
from cdk_app.packaging import package
from iceberg_tables.glue_conf import glue_job_arguments

GLUE_VERSION = "5.0"
# Modules the job scripts import, shipped to Glue as one --extra-py-files zip.
JOB_LIBRARIES: tuple[str, ...] = ("glue_jobs", "lambdas/__init__.py", "lambdas/contracts")
# Iceberg commits on Glue: read a table, swap its metadata location.
CATALOG_ACTIONS = ("glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:UpdateTable")


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
        warehouse, staging = bucket_names["warehouse"], bucket_names["staging"]
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
        self.security_configuration = glue.CfnSecurityConfiguration(
            self, "Security",
            name=env.resource_name("glue"),
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[glue.CfnSecurityConfiguration.S3EncryptionProperty(
                    s3_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn)],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn),
            ),
        )
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
                    **glue_job_arguments(f"s3://{warehouse}"),
                    "--extra-py-files": libraries.s3_object_url,
                    "--job-language": "python",
                    # incremental work is tracked by the jobs themselves (manifests, Iceberg), so it
                    # runs the same locally, where Glue bookmarks don't exist
                    "--job-bookmark-option": "job-bookmark-disable",
                    "--enable-metrics": "true",
                    "--enable-observability-metrics": "true",
                    "--enable-continuous-cloudwatch-log": "true",
                    **{f"--{k}": v for k, v in arguments.items()},
                },
            )
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
        allow_key(role, key)
        glue_logs = arn(self, "logs", "log-group:/aws-glue/*")
        allow(role, ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"),
              [glue_logs], wildcard_reason="Glue names the jobs' log groups and streams under /aws-glue/ "
                                           "(per security configuration and run).")
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
        ))
        acknowledge(role, {"AwsSolutions-IAM5[Resource::*]": "cloudwatch:PutMetricData takes no resource; "
                                                             "the condition limits it to the Glue namespace."})


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
