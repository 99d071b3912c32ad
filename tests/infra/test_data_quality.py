"""The data_quality function in AWS: Athena in a workgroup of its own, the environment's limits, and
exactly the grants its queries and its two appends need."""
from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from aws_cdk.assertions import Template

from cdk_app.config import load
from cdk_app.secure_bucket import bucket_name
from tests.infra.helpers import as_list, grants, logical_id, only, resources, role_statements


@pytest.fixture(scope="module", params=["dev", "prod"])
def processing(request, synthesized) -> tuple[str, Template]:
    env = request.param
    return env, Template.from_stack(synthesized(env).stage.processing)


def _function(env: str, template: Template) -> dict:
    config = load(env)
    found = logical_id(template, "AWS::Lambda::Function", FunctionName=config.function_name("data_quality"))
    return resources(template, "AWS::Lambda::Function")[found]["Properties"]


def test_function_queries_athena_with_the_environments_limits(processing) -> None:
    env, template = processing
    config = load(env)
    function = _function(env, template)
    assert function["Handler"] == "lambdas.data_quality.handler.handler"
    variables = function["Environment"]["Variables"]
    assert variables["QUALITY_ENGINE"] == "athena"
    assert variables["ATHENA_WORKGROUP"] == config.resource_name("data-quality")
    assert variables["WAREHOUSE_URI"] == f"s3://{bucket_name(config, 'warehouse')}"
    assert json.loads(variables["QUALITY_THRESHOLDS"]) == asdict(config.quality)
    assert function["Timeout"] >= 60


def test_function_grants_are_exactly_its_queries_and_appends(processing) -> None:
    env, template = processing
    config = load(env)
    region, account = config.region, config.account
    statements = role_statements(template, config.function_name("data_quality"))
    assert grants(statements, "athena") == {
        f"arn:aws:athena:{region}:{account}:workgroup/{config.resource_name('data-quality')}": sorted(
            ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
             "athena:StopQueryExecution", "athena:GetWorkGroup"])}
    glue = grants(statements, "glue")
    updated = {arn for arn, actions in glue.items() if "glue:UpdateTable" in actions}
    prefix = f"arn:aws:glue:{region}:{account}"
    assert updated == {f"{prefix}:catalog", f"{prefix}:database/ops", f"{prefix}:table/ops/quality_results",
                       f"{prefix}:table/ops/pipeline_runs"}
    read_tables = {arn for arn, actions in glue.items() if "glue:GetTable" in actions and ":table/" in arn}
    assert read_tables == {f"{prefix}:table/silver/*", f"{prefix}:table/ops/*"}
    warehouse, results = bucket_name(config, "warehouse"), bucket_name(config, "athena-results")
    s3 = grants(statements, "s3")
    assert {arn for arn, actions in s3.items() if "s3:PutObject" in actions} == {
        f"arn:aws:s3:::{warehouse}/ops.db/quality_results/*", f"arn:aws:s3:::{warehouse}/ops.db/pipeline_runs/*",
        f"arn:aws:s3:::{results}/data-quality/*"}
    assert {arn for arn, actions in s3.items() if "s3:GetObject" in actions} == {
        f"arn:aws:s3:::{warehouse}/silver.db/*", f"arn:aws:s3:::{warehouse}/ops.db/*", f"arn:aws:s3:::{results}/data-quality/*"}
    assert not any("Delete" in a for actions in s3.values() for a in actions)
    kms = grants(statements, "kms")
    assert [sorted(actions) for actions in kms.values()] == [["kms:Decrypt", "kms:GenerateDataKey"]]
    assert all("*" not in str(s["Action"]) for s in statements if any(
        a.startswith(("athena:", "glue:", "s3:")) for a in as_list(s["Action"])))


def test_function_has_its_own_enforced_encrypted_workgroup_and_reads_only_its_results(processing) -> None:
    """Not the analytics workgroup, whose results prefix holds every user's query results (decision 0228)."""
    env, template = processing
    config = load(env)
    results = bucket_name(config, "athena-results")
    workgroup = only(template, "AWS::Athena::WorkGroup")
    assert workgroup["Name"] == config.resource_name("data-quality") != config.workgroup_name
    settings = workgroup["WorkGroupConfiguration"]
    assert settings["EnforceWorkGroupConfiguration"] is True
    assert settings["BytesScannedCutoffPerQuery"] == config.athena_bytes_scanned_cutoff
    assert settings["ResultConfiguration"]["OutputLocation"] == f"s3://{results}/data-quality/"
    assert settings["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    statements = role_statements(template, config.function_name("data_quality"))
    results_arns = {arn for arn in grants(statements, "s3") if arn.startswith(f"arn:aws:s3:::{results}/")}
    assert results_arns == {f"arn:aws:s3:::{results}/data-quality/*"}
    listed = [s["Condition"]["StringLike"]["s3:prefix"] for s in statements
              if s["Action"] == "s3:ListBucket" and results in str(s["Resource"])]
    assert listed == [["data-quality/*"]]
