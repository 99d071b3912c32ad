"""Fixtures of the infra tier (the synth itself is the session fixture `synthesized`, tests/fixtures/cdk.py)."""
from __future__ import annotations

import pytest
from aws_cdk.assertions import Template


@pytest.fixture(scope="module", params=["dev", "prod"])
def ingestion(request, synthesized) -> tuple[str, Template]:
    """(environment, its ingestion stack's template), for dev and prod."""
    env = request.param
    return env, Template.from_stack(synthesized(env).stage.ingestion)


@pytest.fixture(scope="module", params=["dev", "prod"])
def stage(request, synthesized) -> tuple[str, object]:
    """(environment, its synthesized stage: cdk_app.stage.LakehouseStage), for dev and prod."""
    env = request.param
    return env, synthesized(env).stage
