"""Analytics stack: the Athena workgroup the lake is queried through (Superset, users, awswrangler); the
data-quality checks have their own (cdk_app/data_quality.py).

Its results bucket lives in the lake stack with the other buckets, so one stack owns the
access-log bucket's policy (a bucket here logging there would make the stacks depend on each other).
"""
from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_kms as kms
from constructs import Construct

from cdk_app.config import EnvConfig

ENGINE_VERSION = "Athena engine version 3"
RESULTS_PREFIX = "athena/"


class AnalyticsStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, env_config: EnvConfig, key: kms.IKey,
                 results_bucket: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        env = env_config
        self.workgroup = enforced_workgroup(
            self, "WorkGroup", env=env, key=key, name=env.workgroup_name,
            description=f"Queries over the {env.name} lakehouse; settings enforced on every client",
            output_location=f"s3://{results_bucket}/{RESULTS_PREFIX}")


def enforced_workgroup(scope: Construct, construct_id: str, *, env: EnvConfig, key: kms.IKey, name: str,
                       description: str, output_location: str) -> athena.CfnWorkGroup:
    """An Athena workgroup whose settings override every client's: engine 3, the environment's scan cutoff,
    results at `output_location` only, SSE-KMS with the lake key."""
    return athena.CfnWorkGroup(
        scope, construct_id,
        name=name,
        description=description,
        recursive_delete_option=env.removal_policy == "destroy",
        work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
            enforce_work_group_configuration=True,
            publish_cloud_watch_metrics_enabled=True,
            bytes_scanned_cutoff_per_query=env.athena_bytes_scanned_cutoff,
            engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version=ENGINE_VERSION),
            result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                output_location=output_location,
                encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                    encryption_option="SSE_KMS", kms_key=key.key_arn),
            ),
        ),
    )
