"""Least-privilege grants spelled out: exact actions on exact resources.

CDK's `grant_*` bundles add wildcard actions this app never needs (s3:DeleteObject*,
kms:ReEncrypt*), and their resources are cross-stack tokens whose cdk-nag finding ids can't be
known in advance. Here resources are ARNs built from the deterministic names in config, each
with the form cdk-nag prints, so a wildcard (an object prefix, the tables of a database) is
acknowledged right where it is granted, with its reason.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import DefaultStackSynthesizer, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import IConstruct

from cdk_app.nag import acknowledge

ENCRYPT_DECRYPT = ("kms:Decrypt", "kms:GenerateDataKey")
BOOTSTRAP_QUALIFIER = "@aws-cdk/core:bootstrapQualifier"

# The only actions an identity policy of this app may allow on Resource "*": each accepts no resource (the
# Service Authorization Reference lists no resource type for it), so no narrower grant exists. cdk-nag's finding
# `AwsSolutions-IAM5[Resource::*]` can only be acknowledged per role, which would let a future wildcard through;
# tests/infra/test_wildcards.py holds every synthesized statement on "*" to this list and names the role and
# action of anything else (decision 0230).
_XRAY = "X-Ray takes no resource: Lambda active tracing (PutTraceSegments, PutTelemetryRecords) and Step " \
        "Functions tracing (also the sampling reads), added by CDK with tracing on."
_LOG_DELIVERY = "CloudWatch Logs vended delivery takes no resource: Step Functions logging to a log group, " \
                "added by CDK (AWS documents this statement for state machine logging)."
_ENI = "EC2 network-interface actions take no resource at creation: Lambda's event source mapping for MSK " \
       "in a VPC reaches the cluster through ENIs it creates and deletes in the function's subnets."
RESOURCELESS_ACTIONS: dict[str, str] = {
    **dict.fromkeys(("xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                     "xray:GetSamplingTargets"), _XRAY),
    **dict.fromkeys(("logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                     "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                     "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"), _LOG_DELIVERY),
    "cloudwatch:PutMetricData": "Metrics take no resource; the statement's condition limits it to one namespace.",
    **dict.fromkeys(("ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces",
                     "ec2:DescribeVpcs", "ec2:DescribeSubnets", "ec2:DescribeSecurityGroups"), _ENI),
    "ecr:GetAuthorizationToken": "The registry's sign-in token takes no resource; ECS's execution role needs it to "
                                 "pull a task's image, whose repository its other statements name.",
}


def resourceless_reason(*actions: str) -> str:
    """The acknowledgment of `AwsSolutions-IAM5[Resource::*]` for a role whose statements on "*" are `actions`:
    their reasons from RESOURCELESS_ACTIONS (KeyError for any other, so an acknowledgment can't name it)."""
    reasons = dict.fromkeys(RESOURCELESS_ACTIONS[action] for action in actions)
    return f"Only {', '.join(actions)} on *, each resourceless (cdk_app/grants.py RESOURCELESS_ACTIONS, held by " \
           f"tests/infra/test_wildcards.py): {' '.join(reasons)}"
WRITE_OBJECTS = ("s3:PutObject", "s3:AbortMultipartUpload")  # multipart uploads too


@dataclass(frozen=True)
class Arn:
    value: str  # as written into the policy (holds the partition token)
    nag: str  # as cdk-nag prints it in a finding id


def arn(scope: IConstruct, service: str, resource: str, *, regional: bool = True) -> Arn:
    """ARN of `resource` of `service` in the scope's account and region (S3: neither)."""
    stack = Stack.of(scope)
    where = f"{stack.region}:{stack.account}" if regional else ":"
    return Arn(f"arn:{stack.partition}:{service}:{where}:{resource}", f"arn:<AWS::Partition>:{service}:{where}:{resource}")


def bucket_arn(scope: IConstruct, bucket_name: str) -> Arn:
    return arn(scope, "s3", bucket_name, regional=False)


def object_arn(scope: IConstruct, bucket_name: str, key: str) -> Arn:
    return arn(scope, "s3", f"{bucket_name}/{key}", regional=False)


def objects_arn(scope: IConstruct, bucket_name: str, prefix: str = "") -> Arn:
    """The objects under `prefix` ("" = all of the bucket's)."""
    return arn(scope, "s3", f"{bucket_name}/{prefix}*", regional=False)


def role_arn(scope: IConstruct, role_name: str) -> Arn:
    """ARN of a role of the scope's account, by name (IAM ARNs have no region)."""
    stack = Stack.of(scope)
    return Arn(f"arn:{stack.partition}:iam::{stack.account}:role/{role_name}",
               f"arn:<AWS::Partition>:iam::{stack.account}:role/{role_name}")


def deploy_role_arn(scope: IConstruct) -> Arn:
    """The role CloudFormation deploys the scope's stack with: the CDK bootstrap's execution role,
    cdk-<qualifier>-cfn-exec-role-<account>-<region> (the qualifier from `@aws-cdk/core:bootstrapQualifier`,
    else CDK's default, as DefaultStackSynthesizer names it)."""
    stack = Stack.of(scope)
    qualifier = scope.node.try_get_context(BOOTSTRAP_QUALIFIER) or DefaultStackSynthesizer.DEFAULT_QUALIFIER
    return role_arn(scope, f"cdk-{qualifier}-cfn-exec-role-{stack.account}-{stack.region}")


def catalog_arns(scope: IConstruct, databases: Sequence[str]) -> list[Arn]:
    """The Glue catalog, the `databases` and all their tables."""
    found = [arn(scope, "glue", "catalog")]
    for database in databases:
        found += [arn(scope, "glue", f"database/{database}"), arn(scope, "glue", f"table/{database}/*")]
    return found


def allow(role: iam.Role, actions: Sequence[str], resources: Sequence[Arn], *, wildcard_reason: str = "") -> None:
    """Allow `actions` on `resources`; a wildcard resource needs the reason it can't be narrower."""
    wildcards = [r for r in resources if "*" in r.nag]
    if wildcards and not wildcard_reason:
        raise ValueError(f"wildcard resources {[r.nag for r in wildcards]} granted without a reason")
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=[r.value for r in resources]))
    acknowledge(role, {f"AwsSolutions-IAM5[Resource::{r.nag}]": wildcard_reason for r in wildcards})


def allow_list(role: iam.Role, bucket_name: str, prefixes: Sequence[str] = ()) -> None:
    """s3:ListBucket, limited to keys under `prefixes` when given."""
    conditions = {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}} if prefixes else None
    role.add_to_principal_policy(iam.PolicyStatement(
        actions=["s3:ListBucket"], resources=[bucket_arn(role, bucket_name).value], conditions=conditions,
    ))


def scheduler_role(scope: IConstruct, construct_id: str) -> iam.Role:
    """A role EventBridge Scheduler assumes for this account's schedules only (no confused deputy)."""
    return iam.Role(scope, construct_id, assumed_by=iam.ServicePrincipal(
        "scheduler.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": Stack.of(scope).account}}))


def allow_key(role: iam.Role, key: kms.IKey, actions: Sequence[str] = ENCRYPT_DECRYPT) -> None:
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=[key.key_arn]))
