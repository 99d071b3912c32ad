"""Small readers of synthesized CloudFormation templates, shared by the infra tests."""
from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from cdk_app.config import EnvConfig


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


def role_statements(template: Template, role_name: str) -> list[dict[str, Any]]:
    """Statements of the inline policies of the role named `role_name`."""
    [logical_id] = [k for k, r in resources(template, "AWS::IAM::Role").items()
                    if r["Properties"].get("RoleName") == role_name] or [f"<no role {role_name}>"]
    return policy_statements(template, logical_id)


def grants(statements: list[dict[str, Any]], service: str) -> dict[str, list[str]]:
    """{resource ARN (flattened): sorted actions} of the statements' `service:` actions."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        actions = [a for a in as_list(statement["Action"]) if a.startswith(f"{service}:")]
        for resource in as_list(statement["Resource"]) if actions else []:
            found.setdefault(flatten_arn(resource), set()).update(actions)
    return {arn: sorted(actions) for arn, actions in found.items()}


def logical_id(template: Template, cfn_type: str, **properties: Any) -> str:
    """The logical id of the one resource of `cfn_type` with these top-level property values."""
    found = [k for k, r in resources(template, cfn_type).items()
             if all(r["Properties"].get(name) == value for name, value in properties.items())]
    assert len(found) == 1, f"expected one {cfn_type} with {properties}, found {found}"
    return found[0]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def cleaner_mapping_settings(config: EnvConfig, queue_id: str) -> dict[str, Any]:
    """What every event source mapping of the cleaner carries, from config (`queue_id`: its DLQ)."""
    return {
        "StartingPosition": "TRIM_HORIZON",
        "BatchSize": config.cleaner_batch_size,
        "MaximumBatchingWindowInSeconds": config.cleaner_batching_window_seconds,
        "MaximumRetryAttempts": config.cleaner_max_retries,
        "MaximumRecordAgeInSeconds": config.cleaner_max_record_age_seconds,
        "BisectBatchOnFunctionError": True,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": [queue_id, "Arn"]}}},
    }


def dashboard_widgets(template: Template) -> list[dict[str, Any]]:
    """The widgets of the template's one CloudWatch dashboard, its body's Fn::Join resolved (flatten_arn)."""
    body = only(template, "AWS::CloudWatch::Dashboard")["DashboardBody"]
    return json.loads(flatten_arn(body))["widgets"]


def metric_rows(widget: dict[str, Any]) -> list[tuple[str, str, dict[str, str], dict[str, Any]]]:
    """(namespace, metric name, dimensions, options) of each metric a graph widget draws; a math expression
    as ("", "", {}, options with its `expression`)."""
    rows = []
    for row in widget["properties"]["metrics"]:
        *names, options = row if isinstance(row[-1], dict) else (*row, {})
        if not names:
            rows.append(("", "", {}, options))
            continue
        namespace, metric, *pairs = names
        rows.append((namespace, metric, dict(zip(pairs[::2], pairs[1::2])), options))
    return rows
