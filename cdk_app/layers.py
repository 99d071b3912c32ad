"""Public Lambda layers the functions use, by ARN: the one place their versions are pinned.

Synth must work offline, so no SSM lookup: the ARNs are spelled here. Powertools publishes one
layer version number for all commercial regions; AWS SDK for pandas numbers differ per region,
so that layer is a table, and a region missing from it is a clear synth error, not a guess.
Bump these together with requirements.in (docs/decisions/0203-lambda-packaging-without-docker.md says how to
check a version).
"""
from __future__ import annotations

from cdk_app.config import ConfigError

POWERTOOLS_VERSION = "3.37.0"  # = the aws-lambda-powertools pin in requirements.in (a test checks)
_POWERTOOLS_LAYER_VERSION = 41
_POWERTOOLS_ACCOUNT = "017000801446"

# AWS SDK for pandas (awswrangler, pandas, pyarrow) managed layer, Python 3.12 x86_64.
_PANDAS_ACCOUNT = "336392948345"
_PANDAS_LAYER_VERSIONS: dict[str, int] = {
    "us-east-1": 26,
    "eu-west-1": 26,
}


def powertools_layer_arn(region: str) -> str:
    """Powertools for AWS Lambda (Python) v3 layer for python3.12 on x86_64."""
    return (
        f"arn:aws:lambda:{region}:{_POWERTOOLS_ACCOUNT}:layer:"
        f"AWSLambdaPowertoolsPythonV3-python312-x86_64:{_POWERTOOLS_LAYER_VERSION}"
    )


def pandas_layer_arn(region: str) -> str:
    """The managed AWSSDKPandas-Python312 layer (pyarrow, pandas, awswrangler)."""
    if region not in _PANDAS_LAYER_VERSIONS:
        raise ConfigError(
            f"no AWSSDKPandas-Python312 layer version pinned for region '{region}': "
            f"add it to cdk_app/layers.py (pinned: {', '.join(sorted(_PANDAS_LAYER_VERSIONS))})"
        )
    return f"arn:aws:lambda:{region}:{_PANDAS_ACCOUNT}:layer:AWSSDKPandas-Python312:{_PANDAS_LAYER_VERSIONS[region]}"


# Lambda refuses a function whose code and layers exceed 250 MB unzipped. What the two public
# layers take is an estimate (their unzipped size can't be read offline): a function's own
# package must stay within the rest, which tests/infra/test_cli_synth.py checks.
LAMBDA_UNZIPPED_LIMIT_MB = 250
LAYERS_ESTIMATE_MB = 160

# Top-level modules a function finds without bundling them: the python3.12 runtime's AWS SDK and
# what the public layers carry that our code imports. Anything else a package imports must be
# bundled (PythonFunction's `bundled`); tests/infra/test_layers.py checks every function's imports.
RUNTIME_MODULES = frozenset({"boto3", "botocore"})
POWERTOOLS_MODULES = frozenset({"aws_lambda_powertools", "aws_xray_sdk"})
PANDAS_MODULES = frozenset({"pyarrow", "pandas", "numpy", "awswrangler"})


def provided_modules(with_pyarrow: bool) -> frozenset[str]:
    """Modules importable in a function with the Powertools layer (and the pandas layer if `with_pyarrow`)."""
    return RUNTIME_MODULES | POWERTOOLS_MODULES | (PANDAS_MODULES if with_pyarrow else frozenset())
