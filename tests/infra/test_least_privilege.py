"""The least-privilege check itself (tests/fixtures/least_privilege.py) on calls written here as the recorder
writes them: it allows what a role is granted, denies what it is not (naming the call and the role), takes the
resource's own policy into account, and refuses a call it cannot map. The e2e tests run it on real local runs."""
from __future__ import annotations

from typing import Any

import pytest

from cdk_app import config
from cdk_app.cleaner import PII_KEY_SECRET
from cdk_app.config import PROJECT_ROOT
from lakehouse.cloud import aws_calls
from tests.fixtures import least_privilege

LOCAL = config.load("local")


def _call(kind: str, component: str, service: str, operation: str, **parameters: str) -> dict[str, Any]:
    return {"kind": kind, "component": component, "service": service, "operation": operation,
            "region": LOCAL.region, "parameters": parameters}


@pytest.fixture(scope="module")
def assembly(synthesized):  # noqa: ANN001, ANN201 - the session fixture of tests/fixtures/cdk.py
    return synthesized("local").outdir / "assembly-local"


def test_a_granted_call_is_allowed_and_an_ungranted_one_is_denied_by_name(assembly) -> None:  # noqa: ANN001
    granted = _call(aws_calls.MAPPING, LOCAL.cleaner_for("clickstream"), "kinesis", "GetRecords",
                    StreamName=LOCAL.stream_for("clickstream"))
    # the clickstream cleaner's mapping reads its own stream, never the orders stream
    other_stream = _call(aws_calls.MAPPING, LOCAL.cleaner_for("clickstream"), "kinesis", "GetRecords",
                         StreamName=LOCAL.stream_for("orders"))
    # the batch pipeline may start its Glue jobs, not delete the run lock table
    not_granted = _call(aws_calls.STATE_MACHINE, LOCAL.state_machine_name, "dynamodb", "DeleteTable",
                        TableName=LOCAL.resource_name("run-lock"))
    denied, evaluated = least_privilege.denied(assembly, LOCAL, [granted, other_stream, not_granted])
    assert evaluated == 3
    assert len(denied) == 2
    assert f"kinesis:GetRecords on arn:aws:kinesis:{LOCAL.region}:{LOCAL.account}:stream/lakehouse-local-orders" in denied[0]
    assert f"role/{LOCAL.cleaner_for('clickstream')}" in denied[0] and "ImplicitlyDenied" in denied[0]
    assert "dynamodb:DeleteTable" in denied[1] and LOCAL.state_machine_name in denied[1]


def test_the_pii_key_secret_is_read_by_the_cleaners_only(assembly) -> None:  # noqa: ANN001
    """Identity policy and the secret's resource policy together: the FX connector's role is no reader."""
    secret = LOCAL.resource_name(PII_KEY_SECRET)
    cleaner = _call(aws_calls.FUNCTION, LOCAL.cleaner_for("clickstream"), "secretsmanager", "GetSecretValue",
                    SecretId=secret)
    connector = _call(aws_calls.FUNCTION, LOCAL.function_name("api_connector"), "secretsmanager",
                      "GetSecretValue", SecretId=secret)
    denied, _ = least_privilege.denied(assembly, LOCAL, [cleaner, connector])
    assert len(denied) == 1 and LOCAL.function_name("api_connector") in denied[0]


def test_a_call_the_check_cannot_map_is_refused_by_name(assembly) -> None:  # noqa: ANN001
    call = _call(aws_calls.FUNCTION, LOCAL.function_name("record_run"), "athena", "StartQueryExecution")
    with pytest.raises(least_privilege.UnmappedCall, match="athena.StartQueryExecution"):
        least_privilege.denied(assembly, LOCAL, [call])


def test_docs_show_why_each_unexercised_grant_is_needed() -> None:
    assert least_privilege.reasons_table() in (PROJECT_ROOT / "docs" / "security.md").read_text()
