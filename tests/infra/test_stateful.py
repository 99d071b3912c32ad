"""Per environment: what holds state outlives its stack where the data is kept (prod), prod stacks can't be deleted
by one command, and every resource that CloudFormation can tag carries project, environment and component."""
from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import CfnResource
from aws_cdk.assertions import Template
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

from cdk_app.config import PROJECT, load
from cdk_app.glue_jobs import COMPONENT as GLUE_JOBS
from cdk_app.lake import DATABASES
from tests.infra.helpers import resources

ENVS = ("dev", "prod", "local")
STACKS = ("Lake", "Ingestion", "Processing", "Analytics")


def _policies(env: str) -> tuple[str, str]:
    """(DeletionPolicy, UpdateReplacePolicy) of what the environment keeps."""
    expected = "Retain" if load(env).removal_policy == "retain" else "Delete"
    return expected, expected


def test_prod_keeps_its_data_and_the_other_environments_do_not() -> None:
    """The tests below derive what they expect from `removal_policy`: this pins which environment that is."""
    assert {env: load(env).removal_policy for env in ENVS} == {"dev": "destroy", "prod": "retain", "local": "destroy"}


@pytest.mark.parametrize("env", ENVS)
def test_glue_databases_and_dead_letter_queues_are_retained_where_the_environment_keeps_its_data(
        synthesized, env: str) -> None:
    stage = synthesized(env).stage
    databases = resources(Template.from_stack(stage.lake), "AWS::Glue::Database")
    assert sorted(d["Properties"]["DatabaseInput"]["Name"] for d in databases.values()) == sorted(DATABASES)
    queues = {q["Properties"]["QueueName"]: q for stack in stage.stacks.values()
              for q in resources(Template.from_stack(stack), "AWS::SQS::Queue").values()}
    # every queue is a dead-letter queue, but the live commits' (in-flight notifications of staged batches)
    assert queues and all(name.removesuffix(".fifo").endswith("-dlq") for name in queues
                          if name != f"lakehouse-{env}-live-commits.fifo")
    for resource in (*databases.values(), *queues.values()):
        assert (resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")) == _policies(env)


@pytest.mark.parametrize("env", ENVS)
def test_stacks_of_an_environment_that_keeps_its_data_are_protected_from_deletion(synthesized, env: str) -> None:
    synth = synthesized(env)
    manifest = json.loads((synth.outdir / f"assembly-{env}" / "manifest.json").read_text())
    protection = {a["displayName"]: a["properties"].get("terminationProtection", False)
                  for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"}
    assert protection == {f"{env}/{stack.node.id}": load(env).removal_policy == "retain"
                          for stack in synth.stage.stacks.values()}
    assert {stack.node.id for stack in synth.stage.stacks.values()} >= {*STACKS, "Operations"}


def _tag_property(cfn_type: str, region: str) -> str | None:
    """The property a resource type carries its tags in, or None if CloudFormation can't tag it (from the
    CloudFormation resource provider schemas that cfn-lint ships: `tagging.taggable`, `tagging.tagProperty`)."""
    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, cfn_type).schema
    except ResourceNotFoundError:
        pytest.fail(f"{cfn_type}: no CloudFormation schema in {region}, so no way to tell whether it takes tags")
    tagging = schema.get("tagging") or {}
    return tagging.get("tagProperty", "/properties/Tags").removeprefix("/properties/") \
        if tagging.get("taggable") else None


def _tags(value: Any) -> dict[str, Any]:
    """Tags as a list of {Key, Value} (most types) or as a map (Glue jobs, MSK, SSM parameters)."""
    return {t["Key"]: t["Value"] for t in value} if isinstance(value, list) else dict(value)


@pytest.mark.parametrize("env", ENVS)
def test_every_taggable_resource_is_tagged_with_project_environment_and_component(synthesized, env: str) -> None:
    """project and environment come from the stage, component from the stack, or from a construct with a role of
    its own below it: the Glue jobs (their role, log groups and jobs)."""
    stage = synthesized(env).stage
    glue_jobs = {stage.processing.get_logical_id(c) for c in stage.processing.glue.node.find_all()
                 if isinstance(c, CfnResource)}
    wrong, tagged = {}, 0
    for component, stack in stage.stacks.items():
        for logical_id, resource in Template.from_stack(stack).to_json()["Resources"].items():
            prop = _tag_property(resource["Type"], stack.region)
            if prop is None:
                continue
            expected = {"project": PROJECT, "environment": env,
                        "component": GLUE_JOBS if logical_id in glue_jobs else component}
            found = _tags(resource.get("Properties", {}).get(prop, []))
            tagged += 1
            if {k: found.get(k) for k in expected} != expected:
                wrong[f"{component}/{logical_id}"] = (resource["Type"], {k: found.get(k) for k in expected})
    assert wrong == {}, wrong
    assert tagged > 50 and glue_jobs  # keys, buckets, functions, roles, streams, queues, jobs, log groups ...
