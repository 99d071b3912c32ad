"""cdk-nag AwsSolutions: no unacknowledged finding, and the checks really run."""
from __future__ import annotations

import pytest
from aws_cdk import App
from aws_cdk import aws_s3 as s3

from cdk_app.app_builder import build
from tests.fixtures.cdk import SKIP_BUNDLING, Synthesized, cdk_context


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_no_unacknowledged_findings(synthesized, env: str) -> None:
    violations = synthesized(env).violations()
    assert violations == [], "\n".join(
        f"{v['ruleName']}: {[c['constructPath'] for c in v['violatingConstructs']]}" for v in violations)


def test_checks_catch_a_bad_bucket(tmp_path) -> None:
    """Control: with CDK_VALIDATION=false or a missing plugin, the test above would pass vacuously."""
    app = App(outdir=str(tmp_path), context=cdk_context(env="dev", **SKIP_BUNDLING),
              builtin_cloud_formation_validation=False)
    stage = build(app)["dev"]
    s3.Bucket(stage.analytics, "Careless")  # no encryption key, no TLS-only policy, no access logs
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    found = {v["ruleName"] for v in Synthesized(stage, tmp_path).violations()}
    assert {"AwsSolutions-S1", "AwsSolutions-S10"} <= found
