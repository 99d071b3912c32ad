"""A state machine from an ASL file as every workflow of the app is deployed: named, logged in full to an
encrypted log group, traced. The same file runs locally (lakehouse/cloud/provision.py)."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.grants import resourceless_reason
from cdk_app.nag import acknowledge
from cdk_app.python_function import encrypted_log_group

# What CDK grants a state machine's role on Resource "*" for its log group and X-Ray tracing.
LOGGING_AND_TRACING = ("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                       "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                       "logs:DescribeResourcePolicies", "logs:DescribeLogGroups", "xray:PutTraceSegments",
                       "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets")


def logged_state_machine(scope: Construct, *, ids: tuple[str, str], env: EnvConfig, key: kms.IKey, name: str,
                         asl_file: Path, substitutions: Mapping[str, str], role: iam.Role) -> sfn.StateMachine:
    """The ASL file as written, its placeholders filled with this environment's names, running as `role`.
    `ids`: the machine's and its log group's construct ids in `scope`."""
    machine_id, logs_id = ids
    machine = sfn.StateMachine(
        scope, machine_id,
        state_machine_name=name,
        definition_body=sfn.DefinitionBody.from_string(asl_file.read_text()),
        definition_substitutions=dict(substitutions),
        role=role,
        logs=sfn.LogOptions(
            destination=encrypted_log_group(scope, logs_id, env=env, key=key, name=f"/aws/vendedlogs/states/{name}"),
            level=sfn.LogLevel.ALL,
            include_execution_data=True,
        ),
        tracing_enabled=True,
    )
    # what CDK adds for logging and tracing (grants.RESOURCELESS_ACTIONS)
    acknowledge(role, {"AwsSolutions-IAM5[Resource::*]": resourceless_reason(*LOGGING_AND_TRACING)})
    return machine
