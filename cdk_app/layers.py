"""The Lambda layers the functions use: Powertools (public, its ARN read from SSM at deploy) and our
own pyarrow and numpy layers (built from the offline wheelhouse at the lock's versions).

Powertools publishes a layer version per release, and patch releases publish versions too, so the
number can't be derived: its public SSM parameter
`/aws/service/powertools/python/x86_64/python3.12/<version>` holds the ARN. CDK turns it into a
CloudFormation parameter of type `AWS::SSM::Parameter::Value<String>` that CloudFormation resolves at
deploy, so synth stays offline. pyarrow and numpy are ours (docs/decisions/0224-own-pyarrow-layer-and-
powertools-from-ssm.md): Lambda runs the versions the tests ran, and only what the functions import.
Each layer is one construct per stack, shared by its functions.
"""
from __future__ import annotations

import ast
from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from cdk_app.config import PROJECT_ROOT
from cdk_app.packaging import layer_code
from cdk_app.wheelhouse import pinned

POWERTOOLS_VERSION = "3.37.0"  # = the aws-lambda-powertools pin in requirements.in (a test checks)
# Published by Powertools for every release in every commercial region; its value is the layer's ARN.
POWERTOOLS_PARAMETER = f"/aws/service/powertools/python/x86_64/python3.12/{POWERTOOLS_VERSION}"

# Lambda refuses a function whose code and layers together exceed this many bytes unzipped;
# tests/infra/test_layers.py measures every function against it, with HEADROOM to spare.
LAMBDA_UNZIPPED_LIMIT_BYTES = 262_144_000
HEADROOM = 0.20

# Top-level modules a function finds without bundling them: the python3.12 runtime's AWS SDK and
# what the layers hold. Anything else a package imports must be bundled (PythonFunction's `bundled`);
# tests/infra/test_layers.py checks every function's imports.
RUNTIME_MODULES = frozenset({"boto3", "botocore"})
POWERTOOLS_MODULES = frozenset({"aws_lambda_powertools", "aws_xray_sdk"})
# Our layers, each one distribution of the wheelhouse's LAYER whose top-level module has its name (a test checks).
PYARROW_MODULES = frozenset({"pyarrow"})
NUMPY_MODULES = frozenset({"numpy"})


def imported_modules(sources: Sequence[str], *, dotted: bool = False) -> dict[str, str]:
    """{top-level module (or with `dotted` the module as written): a file importing it} of every absolute
    import in the project-relative sources."""
    found: dict[str, str] = {}
    for source in sources:
        path = PROJECT_ROOT / source
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
                for name in names:
                    found.setdefault(name if dotted else name.split(".")[0], str(file.relative_to(PROJECT_ROOT)))
    return found


def _once_per_stack(scope: Construct, construct_id: str, make) -> lambda_.ILayerVersion:
    """The stack's layer `construct_id`, made by `make(stack, construct_id)` the first time it is asked for."""
    stack = Stack.of(scope)
    return stack.node.try_find_child(construct_id) or make(stack, construct_id)


def powertools_layer(scope: Construct) -> lambda_.ILayerVersion:
    """Powertools for AWS Lambda (Python) v3 for python3.12 on x86_64, at POWERTOOLS_VERSION: one SSM
    parameter per stack, resolved by CloudFormation at deploy."""
    def make(stack: Stack, construct_id: str) -> lambda_.ILayerVersion:
        arn = ssm.StringParameter.value_for_string_parameter(stack, POWERTOOLS_PARAMETER)
        return lambda_.LayerVersion.from_layer_version_arn(stack, construct_id, arn)
    return _once_per_stack(scope, "PowertoolsLayer", make)


def _own_layer(scope: Construct, package: str) -> lambda_.ILayerVersion:
    def make(stack: Stack, construct_id: str) -> lambda_.ILayerVersion:
        return lambda_.LayerVersion(
            stack, construct_id,
            layer_version_name=f"{stack.stack_name}-{package}",
            description=f"{pinned(package)} from requirements-lock.txt, python3.12 x86_64 (cdk_app/layers.py)",
            code=layer_code([package]),
            compatible_runtimes=[lambda_.Runtime.PYTHON_3_12],
            compatible_architectures=[lambda_.Architecture.X86_64],
        )
    return _once_per_stack(scope, f"{package.capitalize()}Layer", make)


def pyarrow_layer(scope: Construct) -> lambda_.ILayerVersion:
    """Our pyarrow layer (no numpy: pyarrow >= 16 imports without it), one per stack."""
    return _own_layer(scope, "pyarrow")


def numpy_layer(scope: Construct) -> lambda_.ILayerVersion:
    """Our numpy layer, one per stack, for the functions whose code imports numpy."""
    return _own_layer(scope, "numpy")


def needs_numpy(sources: Sequence[str]) -> bool:
    """Whether code of `sources` imports numpy itself (pyarrow alone does not need it)."""
    return not NUMPY_MODULES.isdisjoint(imported_modules(sources))


def provided_modules(with_pyarrow: bool, with_numpy: bool = False) -> frozenset[str]:
    """Modules importable in a function with the Powertools layer, and our pyarrow and numpy layers if asked."""
    return (RUNTIME_MODULES | POWERTOOLS_MODULES | (PYARROW_MODULES if with_pyarrow else frozenset())
            | (NUMPY_MODULES if with_numpy else frozenset()))
