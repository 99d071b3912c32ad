"""The raw zone's own access policy, the roles it names, and the replay role that reads it back."""
from __future__ import annotations

import dataclasses

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Template

from cdk_app.config import load
from cdk_app.replay import Replay
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import as_list, flatten_arn, grants, logical_id, resources, role_statements


@pytest.fixture(scope="module", params=["dev", "prod"])
def stacks(request, synthesized) -> tuple[str, Template, Template]:
    env = request.param
    stage = synthesized(env).stage
    return env, Template.from_stack(stage.lake), Template.from_stack(stage.ingestion)


def _raw_policy(env: str, lake: Template) -> list[dict]:
    raw = logical_id(lake, "AWS::S3::Bucket", BucketName=bucket_name(load(env), "raw"))
    [policy] = [p["Properties"] for p in resources(lake, "AWS::S3::BucketPolicy").values()
                if p["Properties"]["Bucket"] == {"Ref": raw}]
    return policy["PolicyDocument"]["Statement"]


def _role_arn(env: str, name: str) -> str:
    return f"arn:aws:iam::{load(env).account}:role/{name}"


def _allowed(deny: dict) -> list[str]:
    """The principals a deny statement exempts."""
    return [flatten_arn(a) for a in deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]]


def test_only_the_ingesting_functions_write_and_nobody_deletes(stacks) -> None:
    env, lake, _ = stacks
    config = load(env)
    denies = {tuple(as_list(s["Action"])): s for s in _raw_policy(env, lake) if s["Effect"] == "Deny"
              and s["Principal"] == {"AWS": "*"} and "aws:SecureTransport" not in str(s.get("Condition"))}
    assert set(denies) == {("s3:PutObject",), ("s3:GetObject", "s3:GetObjectVersion"),
                           ("s3:DeleteObject", "s3:DeleteObjectVersion")}
    writers = [_role_arn(env, name) for name in (config.cleaner_for("clickstream"), config.cleaner_for("orders"),
                                                 config.function_name("api_connector"), config.function_name("file_loader"))]
    readers = [_role_arn(env, config.resource_name("raw-replay")), _role_arn(env, config.function_name("replay")),
               *writers]
    assert _allowed(denies[("s3:PutObject",)]) == writers
    assert _allowed(denies[("s3:GetObject", "s3:GetObjectVersion")]) == readers
    assert "Condition" not in denies[("s3:DeleteObject", "s3:DeleteObjectVersion")]  # expiry alone removes raw data
    for statement in denies.values():
        assert flatten_arn(statement["Resource"]).endswith("/*")


def test_the_roles_the_policy_names_exist_under_those_names(stacks) -> None:
    env, _, ingestion = stacks
    config = load(env)
    names = {r["Properties"].get("RoleName") for r in resources(ingestion, "AWS::IAM::Role").values()}
    assert {config.cleaner_for("clickstream"), config.cleaner_for("orders"), config.function_name("api_connector"),
            config.function_name("file_loader"), config.resource_name("raw-replay")} <= names


def test_replay_role_reads_raw_consumes_dead_letters_and_invokes_the_cleaners(stacks) -> None:
    env, _, ingestion = stacks
    config = load(env)
    role = logical_id(ingestion, "AWS::IAM::Role", RoleName=config.resource_name("raw-replay"))
    trust = ingestion.to_json()["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    # cdk.json configures no replay_principals: only the role itself, so nobody (decision 0225)
    assert [(flatten_arn(s["Principal"]["AWS"]), [flatten_arn(a) for a in s["Condition"]["ArnLike"]["aws:PrincipalArn"]])
            for s in trust] == [(f"arn:aws:iam::{config.account}:root", [_role_arn(env, config.resource_name("raw-replay"))])]
    statements = role_statements(ingestion, config.resource_name("raw-replay"))
    raw = bucket_name(config, "raw")
    assert grants(statements, "s3") == {f"arn:aws:s3:::{raw}": ["s3:ListBucket"],
                                        f"arn:aws:s3:::{raw}/clickstream/*": ["s3:GetObject"],
                                        f"arn:aws:s3:::{raw}/orders/*": ["s3:GetObject"]}
    listed = [s["Condition"]["StringLike"]["s3:prefix"] for s in statements if s["Action"] == "s3:ListBucket"]
    assert listed == [["clickstream/*"], ["orders/*"]]
    sources = ("clickstream", "orders")
    queues = {logical_id(ingestion, "AWS::SQS::Queue", QueueName=f"{config.cleaner_for(s)}-dlq") for s in sources}
    streams = {logical_id(ingestion, "AWS::Kinesis::Stream", Name=config.stream_for(s)) for s in sources}
    cleaners = {logical_id(ingestion, "AWS::Lambda::Function", FunctionName=config.cleaner_for(s)) for s in sources}
    resources_by_service = {service: {r for s in statements for r in map(repr, as_list(s["Resource"]))
                                      if any(a.startswith(f"{service}:") for a in as_list(s["Action"]))}
                            for service in ("sqs", "kinesis", "lambda")}
    assert resources_by_service == {"sqs": {repr({"Fn::GetAtt": [q, "Arn"]}) for q in queues},
                                    "kinesis": {repr({"Fn::GetAtt": [s, "Arn"]}) for s in streams},
                                    "lambda": {repr({"Fn::GetAtt": [c, "Arn"]}) for c in cleaners}}
    assert not any(a.endswith("*") or a.startswith(("s3:Put", "s3:Delete")) for s in statements
                   for a in as_list(s["Action"]))


def test_replay_role_trusts_only_the_configured_principals_by_arn_in_their_accounts() -> None:
    """`replay_principals` from two accounts: one statement per account, its principals by ArnLike on
    aws:PrincipalArn (a condition: IAM would refuse a trust naming a role not yet created)."""
    config = dataclasses.replace(load("dev"), replay_principals=(
        "arn:aws:iam::111122223333:role/ops", "arn:aws:iam::444455556666:role/aws-reserved/sso.amazonaws.com/*/Ops_*",
        "arn:aws:iam::111122223333:user/alice"))
    stack = Stack(App(), "Replay", env=Environment(account=config.account, region=config.region))
    replay = Replay(stack, "Replay", env=config, key=kms.Key(stack, "Key"), raw_bucket=bucket_name(config, "raw"))
    trust = stack.resolve(replay.role.assume_role_policy.to_json())["Statement"]
    assert [(flatten_arn(s["Principal"]["AWS"]), s["Action"], s["Condition"]) for s in trust] == [
        ("arn:aws:iam::111122223333:root", "sts:AssumeRole", {"ArnLike": {"aws:PrincipalArn": [
            "arn:aws:iam::111122223333:role/ops", "arn:aws:iam::111122223333:user/alice"]}}),
        ("arn:aws:iam::444455556666:root", "sts:AssumeRole", {"ArnLike": {"aws:PrincipalArn": [
            "arn:aws:iam::444455556666:role/aws-reserved/sso.amazonaws.com/*/Ops_*"]}}),
    ]
