"""Small readers of synthesized CloudFormation templates, shared by the infra tests."""
from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Template


def resources(template: Template, cfn_type: str) -> dict[str, dict[str, Any]]:
    """{logical id: resource} of one CloudFormation type."""
    return template.find_resources(cfn_type)


def only(template: Template, cfn_type: str) -> dict[str, Any]:
    """The properties of the single resource of `cfn_type`."""
    found = resources(template, cfn_type)
    assert len(found) == 1, f"expected one {cfn_type}, found {sorted(found)}"
    return next(iter(found.values()))["Properties"]


def flatten_arn(value: Any) -> str:
    """An ARN written as Fn::Join of strings and `AWS::Partition` back as one readable string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(flatten_arn(p) for p in parts)
    if value == {"Ref": "AWS::Partition"}:
        return "aws"
    return repr(value)


def policy_statements(template: Template, role_logical_id_prefix: str) -> list[dict[str, Any]]:
    """Statements of the inline policies attached to the role whose logical id starts with the prefix."""
    statements = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = policy["Properties"]["Roles"]
        if any(r.get("Ref", "").startswith(role_logical_id_prefix) for r in roles):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    assert statements, f"no policy attached to a role {role_logical_id_prefix}*"
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
