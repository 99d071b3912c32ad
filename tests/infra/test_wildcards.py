"""No identity policy allows anything on Resource "*" but the resourceless actions of grants.RESOURCELESS_ACTIONS.

cdk-nag's `AwsSolutions-IAM5[Resource::*]` finding can only be acknowledged per role (decision 0230): this test is
what keeps a new wildcard from passing under an old acknowledgment. It names the stack, the policy, its roles and
the action."""
from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from cdk_app.grants import RESOURCELESS_ACTIONS, resourceless_reason
from tests.infra.helpers import as_list


def _identity_statements(template: dict[str, Any]) -> list[tuple[str, list[str], dict[str, Any]]]:
    """(policy logical id, the roles it is attached to, statement) of every identity policy of a template."""
    found = []
    for logical_id, resource in template.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            roles = [r.get("Ref", repr(r)) if isinstance(r, dict) else r for r in properties.get("Roles", [])]
            found += [(logical_id, roles, s) for s in properties["PolicyDocument"]["Statement"]]
        elif resource["Type"] == "AWS::IAM::Role":
            found += [(logical_id, [logical_id], s) for policy in properties.get("Policies", [])
                      for s in policy["PolicyDocument"]["Statement"]]
    return found


def wildcard_violations(stack_name: str, template: dict[str, Any]) -> list[str]:
    """One line per action allowed on "*" that is not in RESOURCELESS_ACTIONS (or an action wildcard on "*")."""
    violations = []
    for policy, roles, statement in _identity_statements(template):
        if statement.get("Effect") != "Allow" or "*" not in as_list(statement.get("Resource", [])):
            continue
        for action in as_list(statement.get("Action", [])):
            if action not in RESOURCELESS_ACTIONS:
                violations.append(f"{stack_name}: policy {policy} of role(s) {roles} allows {action} on Resource "
                                  "'*'; grant it on its resources, or add it to grants.RESOURCELESS_ACTIONS with "
                                  "why it takes none")
    return violations


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_only_resourceless_actions_are_allowed_on_every_resource(synthesized, env: str) -> None:
    stacks = synthesized(env).stage.stacks
    violations = [v for name, stack in stacks.items()
                  for v in wildcard_violations(f"{env}/{name}", Template.from_stack(stack).to_json())]
    assert violations == [], "\n".join(violations)


def test_every_resourceless_action_is_used_somewhere(synthesized) -> None:
    used = {a for env in ("dev", "prod") for stack in synthesized(env).stage.stacks.values()
            for _, _, s in _identity_statements(Template.from_stack(stack).to_json())
            if "*" in as_list(s.get("Resource", [])) for a in as_list(s.get("Action", []))}
    assert set(RESOURCELESS_ACTIONS) - used == set(), "listed as resourceless but granted nowhere: remove them"


def test_a_new_wildcard_is_named_with_its_role_and_action() -> None:
    """Control: the check above is not vacuous."""
    template = {"Resources": {
        "ReaderPolicy": {"Type": "AWS::IAM::Policy", "Properties": {"Roles": [{"Ref": "ReaderRole"}],
                         "PolicyDocument": {"Statement": [
                             {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "s3:GetObject"], "Resource": "*"},
                             {"Effect": "Allow", "Action": "s3:*", "Resource": ["arn:aws:s3:::b/*", "*"]},
                             {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}]}}},
        "Inline": {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}}]}},
    }}
    assert wildcard_violations("dev/x", template) == [
        f"dev/x: policy ReaderPolicy of role(s) ['ReaderRole'] allows {action} on Resource '*'; grant it on its "
        "resources, or add it to grants.RESOURCELESS_ACTIONS with why it takes none"
        for action in ("s3:GetObject", "s3:*")] + [
        "dev/x: policy Inline of role(s) ['Inline'] allows kms:Decrypt on Resource '*'; grant it on its "
        "resources, or add it to grants.RESOURCELESS_ACTIONS with why it takes none"]


def test_an_acknowledgment_can_only_name_resourceless_actions() -> None:
    assert "cloudwatch:PutMetricData" in resourceless_reason("cloudwatch:PutMetricData")
    with pytest.raises(KeyError):
        resourceless_reason("s3:GetObject")
