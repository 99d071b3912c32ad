"""Builds the CDK app: one Stage per environment of cdk.json, all of them or `-c env=NAME`."""
from __future__ import annotations

import os
from collections.abc import Mapping

from aws_cdk import App

from cdk_app.config import (CONTEXT_KEY, USER_KEYS, ConfigError, environments, load, refuse_placeholders,
                            user_values)
from cdk_app.nag import add_checks
from cdk_app.stage import LakehouseStage

ENV_CONTEXT = "env"
# `-c offline=true`: synthesize with cdk.json's placeholder account and FX URL (make synth, the CLI test);
# without it, app.py refuses them (docs/deploy.md, decision 0223)
OFFLINE_CONTEXT = "offline"
# CDK feature flags the templates rely on, whether the app runs through the CLI or not.
# Access logs are delivered under a bucket policy, not the ACL grant that BucketOwnerEnforced forbids.
# Cross-stack references (the lake key) stay CloudFormation exports, which keep a key in use alive.
FEATURE_FLAGS = {
    "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy": True,
    "@aws-cdk/core:defaultCrossStackReferences": "strong",
}


def build(app: App, *, deploy: bool = False, environ: Mapping[str, str] | None = None) -> dict[str, LakehouseStage]:
    """Add the selected environments' stages (and the cdk-nag checks) to `app`.

    The user's account and FX URL come from context (`-c env=dev -c account=...`) or `environ`
    (LAKEHOUSE_DEV_ACCOUNT, ...; by default os.environ with `deploy`, none without), over cdk.json's
    placeholders. With `deploy` (app.py, so every `cdk` command) a placeholder left is a ConfigError,
    unless `-c offline=true`; the in-process test synths call build() without `deploy`."""
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
    given = {key: app.node.try_get_context(key) for key in USER_KEYS}
    given = {key: value for key, value in given.items() if value is not None}
    if given and selected is None:
        raise ConfigError(f"context {sorted(given)} names no environment: add `-c {ENV_CONTEXT}=NAME`, "
                          "or set LAKEHOUSE_<ENV>_ACCOUNT / LAKEHOUSE_<ENV>_FX_API_BASE_URL per environment")
    if environ is None:
        environ = os.environ if deploy else {}
    configs = {name: load(name, context, user_values(name, given, environ)) for name in names}
    offline = str(app.node.try_get_context(OFFLINE_CONTEXT)).lower() == "true"
    if deploy and not offline:
        for config in configs.values():
            refuse_placeholders(config)
    stages = {name: LakehouseStage(app, config) for name, config in configs.items()}
    add_checks(app)
    return stages
