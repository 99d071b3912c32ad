"""Analytics stack: an enforced Athena workgroup with encrypted results and a scan cutoff; the views."""
from __future__ import annotations

import base64
import json

import pytest
from aws_cdk.assertions import Template

from cdk_app.analytics import DEPLOYED_VIEWS, presto_view_text
from cdk_app.config import load
from cdk_app.secure_bucket import bucket_name
from iceberg_tables.views import ALL_VIEWS, presto_type
from tests.infra.helpers import only, resources


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


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_view_is_deployed_as_an_athena_view_of_its_spec(synthesized, env: str) -> None:
    """Each view of iceberg_tables/views.py (fresh.order_events, the per-minute live metrics, ...) is a Glue
    VIRTUAL_VIEW in its database, its SQL and columns those of the spec (cdk_app/analytics.py)."""
    template = Template.from_stack(synthesized(env).stage.analytics)
    deployed = {(t["Properties"]["DatabaseName"], t["Properties"]["TableInput"]["Name"]): t["Properties"]["TableInput"]
                for t in resources(template, "AWS::Glue::Table").values()}
    assert set(deployed) == {(view.namespace, view.name) for view in ALL_VIEWS} and DEPLOYED_VIEWS == ALL_VIEWS
    for view in ALL_VIEWS:
        table = deployed[(view.namespace, view.name)]
        assert table["TableType"] == "VIRTUAL_VIEW" and table["ViewOriginalText"] == presto_view_text(view)
        definition = json.loads(base64.b64decode(
            table["ViewOriginalText"].removeprefix("/* Presto View: ").removesuffix(" */")))
        assert definition["originalSql"] == view.sql
        assert [(c["name"], c["type"]) for c in definition["columns"]] == [(c.name, presto_type(c)) for c in view.columns]
        assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == [c.name for c in view.columns]
