"""cdk-nag (AwsSolutions) wiring and the one way this app acknowledges a finding.

cdk-nag 3 runs as a CDK policy-validation plugin (not an Aspect): every finding fails synth
unless it is acknowledged on the construct it is about, with a reason a reviewer can check.
"""
from __future__ import annotations

from aws_cdk import Acknowledgment, App, CfnElement, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_checks(app: App) -> None:
    """Run the AwsSolutions rule pack over every stage of the app at synth."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))


def acknowledge(construct: IConstruct, reasons: dict[str, str]) -> None:
    """Acknowledge findings on `construct` (and below it): {finding id: why it is acceptable}."""
    Validations.of(construct).acknowledge(
        *(Acknowledgment(id=rule, reason=reason) for rule, reason in reasons.items())
    )


def nag_ref(construct: IConstruct, attribute: str = "Arn") -> str:
    """How cdk-nag prints `Fn::GetAtt` of a same-stack construct's resource in a finding id."""
    cfn = construct.node.default_child
    assert isinstance(cfn, CfnElement), f"{construct.node.path} has no CloudFormation resource"
    return f"<{Stack.of(cfn).get_logical_id(cfn)}.{attribute}>"
