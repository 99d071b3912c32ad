"""Analytics stack: an enforced Athena workgroup with encrypted results and a scan cutoff."""
from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import load
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import only


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_workgroup_is_enforced_encrypted_and_capped(synthesized, env: str) -> None:
    config = load(env)
    workgroup = only(Template.from_stack(synthesized(env).stage.analytics), "AWS::Athena::WorkGroup")
    assert workgroup["Name"] == config.resource_name("analytics")
    settings = workgroup["WorkGroupConfiguration"]
    assert settings["EnforceWorkGroupConfiguration"] is True
    assert settings["BytesScannedCutoffPerQuery"] == config.athena_bytes_scanned_cutoff
    results = settings["ResultConfiguration"]
    assert results["OutputLocation"] == f"s3://{bucket_name(config, 'athena-results')}/athena/"
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert "Fn::ImportValue" in results["EncryptionConfiguration"]["KmsKey"]
