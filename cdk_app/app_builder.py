"""Builds the CDK app: one Stage per environment of cdk.json, all of them or `-c env=NAME`."""
from __future__ import annotations

from aws_cdk import App

from cdk_app.config import CONTEXT_KEY, ConfigError, environments, load
from cdk_app.nag import add_checks
from cdk_app.stage import LakehouseStage

ENV_CONTEXT = "env"
# CDK feature flags the templates rely on, whether the app runs through the CLI or not.
# Access logs are delivered under a bucket policy, not the ACL grant that BucketOwnerEnforced forbids.
# Cross-stack references (the lake key) stay CloudFormation exports, which keep a key in use alive.
FEATURE_FLAGS = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
}


def build(app: App) -> dict[str, LakehouseStage]:
    """Add the selected environments' stages (and the cdk-nag checks) to `app`."""
    for flag, value in FEATURE_FLAGS.items():
        current = app.node.try_get_context(flag)
        if current is None:
            app.node.set_context(flag, value)
        elif current != value:
            raise ConfigError(f"context '{flag}' must be {value!r}: the templates depend on it")
    table = app.node.try_get_context(CONTEXT_KEY)
    # the CDK CLI passes cdk.json's context; `python app.py` alone leaves config to read cdk.json
    context = {CONTEXT_KEY: table} if table is not None else None
    known = environments(context)
    selected = app.node.try_get_context(ENV_CONTEXT)
    names = sorted(known) if selected is None else [selected]
    stages = {name: LakehouseStage(app, load(name, context)) for name in names}
    add_checks(app)
    return stages
