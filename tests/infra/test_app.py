"""The app: one stage per environment of cdk.json, explicit accounts and regions, clear errors."""
from __future__ import annotations

import json

import pytest
from aws_cdk import App
from aws_cdk.assertions import Template

from cdk_app.app_builder import build
from cdk_app.config import ConfigError, environments, load
from tests.fixtures.cdk import SKIP_BUNDLING, cdk_context

STACKS = ("lake", "ingestion", "processing", "analytics")


def test_unknown_environment_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown environment 'staging2': cdk.json defines dev, local, prod"):
        build(App(context=cdk_context(env="staging2", **SKIP_BUNDLING)))


def test_without_env_every_environment_gets_a_stage() -> None:
    stages = build(App(context=cdk_context(**SKIP_BUNDLING)))
    assert sorted(stages) == sorted(environments())


@pytest.mark.parametrize("env", ["dev", "prod", "local"])
def test_stage_stacks_are_named_and_placed_from_config(synthesized, env: str) -> None:
    config = load(env)
    stage = synthesized(env).stage
    assert set(stage.stacks) >= {*STACKS, "operations"}
    for component, stack in stage.stacks.items():
        assert stack.stack_name == f"lakehouse-{env}-{component}"
        assert (stack.account, stack.region) == (config.account, config.region)


def test_only_the_local_environment_skips_the_bootstrap_version_check(synthesized) -> None:
    # moto has no CDK bootstrap SSM parameter; real accounts must be bootstrapped
    local = Template.from_stack(synthesized("local").stage.lake).to_json()
    dev = Template.from_stack(synthesized("dev").stage.lake).to_json()
    assert "CheckBootstrapVersion" not in local.get("Rules", {})
    assert "CheckBootstrapVersion" in dev["Rules"]


def test_a_conflicting_feature_flag_is_refused() -> None:
    context = cdk_context(env="dev", **SKIP_BUNDLING, **{"@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": False})
    with pytest.raises(ConfigError, match="serverAccessLogsUseBucketPolicy"):
        build(App(context=context))


@pytest.mark.parametrize("env", ["dev", "prod", "local"])
def test_synth_needs_no_context_lookup(synthesized, env: str) -> None:
    # in-process, a lookup just yields dummy values; the CLI would need credentials and a network
    manifest = json.loads((synthesized(env).outdir / f"assembly-{env}" / "manifest.json").read_text())
    assert manifest.get("missing") is None, manifest["missing"]


def test_a_deploy_build_refuses_the_placeholders_before_any_stack() -> None:
    app = App(context=cdk_context(env="dev", **SKIP_BUNDLING))
    with pytest.raises(ConfigError, match=r"'account' is the placeholder '123456789012'.*LAKEHOUSE_DEV_ACCOUNT"):
        build(app, deploy=True, environ={})
    assert app.node.try_find_child("dev") is None


def test_a_deploy_build_takes_the_users_account_and_fx_url_from_context() -> None:
    account, url = "111122223333", "https://fx.internal.invalid/v1"
    stage = build(App(context=cdk_context(env="dev", account=account, fx_api_base_url=url, **SKIP_BUNDLING)),
                  deploy=True, environ={})["dev"]
    assert {stack.account for stack in stage.stacks.values()} == {account}
    [connector] = Template.from_stack(stage.ingestion).find_resources("AWS::Lambda::Function", {"Properties": {
        "FunctionName": load("dev").function_name("api_connector")}}).values()
    variables = connector["Properties"]["Environment"]["Variables"]
    assert variables["FX_API_BASE_URL"] == url
    assert variables["RAW_URI"] == f"s3://lakehouse-dev-raw-{account}-eu-west-1"  # bucket names carry the account


def test_offline_is_explicit_and_keeps_the_placeholders() -> None:
    stage = build(App(context=cdk_context(env="dev", offline="true", **SKIP_BUNDLING)), deploy=True, environ={})["dev"]
    assert stage.lake.account == load("dev").account == "123456789012"


def test_an_account_in_context_needs_an_environment() -> None:
    with pytest.raises(ConfigError, match=r"context \['account'\] names no environment: add `-c env=NAME`"):
        build(App(context=cdk_context(account="111122223333", **SKIP_BUNDLING)), deploy=True, environ={})
