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
    for component in STACKS:
        stack = getattr(stage, component)
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
