"""The raw zone's own access policy: only the ingesting functions write it, only replay reads it back.

The writers may read too (each under its own prefix, by IAM): the API connector checks a body is
there before writing it once.

IAM grants already keep every other role of the app out; the bucket policy makes that hold for
any principal of the account (an admin, a future role), so the original bytes stay exactly as
received until the lifecycle rule expires them (`raw_retention_days`). The principals are named
by role ARN (deterministic names, see cdk_app/python_function.py), so the lake stack needs no
reference to the stacks that create them, and the condition keys need no existing role at deploy.
"""
from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import IConstruct

from cdk_app.config import KINESIS_SOURCES, EnvConfig
from cdk_app.grants import role_arn
from cdk_app.python_function import function_role_name

# Functions (folders under lambdas/) that write original records into the raw zone, besides the
# cleaner's instances (one per Kinesis source).
RAW_WRITERS: tuple[str, ...] = ("api_connector", "file_loader")
# Functions that read raw records back (cdk_app/replay.py), besides the operators' replay role.
RAW_READERS: tuple[str, ...] = ("replay",)
WRITE_ACTIONS = ("s3:PutObject",)
READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion")
# Raw objects only ever leave by lifecycle expiry, which is not a request and is not denied.
DELETE_ACTIONS = ("s3:DeleteObject", "s3:DeleteObjectVersion")


def replay_role_name(env: EnvConfig) -> str:
    """The role operators (and `lakehouse replay` in AWS) assume to read raw records back."""
    return env.resource_name("raw-replay")


def raw_writers(scope: IConstruct, env: EnvConfig) -> list[str]:
    """ARNs of the roles that write raw records: the cleaners and RAW_WRITERS."""
    names = [*(env.cleaner_for(s) for s in KINESIS_SOURCES), *(function_role_name(env, f) for f in RAW_WRITERS)]
    return [role_arn(scope, name).value for name in names]


def raw_readers(scope: IConstruct, env: EnvConfig) -> list[str]:
    """ARNs of the roles that read raw records: the replay role, RAW_READERS and the writers. The only
    principals the lake key decrypts raw objects for (cdk_app/lake.py)."""
    return [role_arn(scope, replay_role_name(env)).value,
            *(role_arn(scope, function_role_name(env, f)).value for f in RAW_READERS), *raw_writers(scope, env)]


def restrict_raw_access(bucket: s3.Bucket, env: EnvConfig) -> None:
    """Deny writes to all but the cleaners and RAW_WRITERS, reads to all but them and the replay role,
    deletes to all."""
    objects = bucket.arn_for_objects("*")
    writers, readers = raw_writers(bucket, env), raw_readers(bucket, env)
    for actions, allowed in ((WRITE_ACTIONS, writers), (READ_ACTIONS, readers)):
        bucket.add_to_resource_policy(iam.PolicyStatement(
            effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=list(actions), resources=[objects],
            conditions={"ArnNotEquals": {"aws:PrincipalArn": allowed}},
        ))
    bucket.add_to_resource_policy(iam.PolicyStatement(
        effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=list(DELETE_ACTIONS), resources=[objects],
    ))
