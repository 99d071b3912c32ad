"""A Python 3.12 Lambda function as this app runs them all: its own least-privilege role, an
encrypted log group with a retention, X-Ray tracing, Powertools from the public layer, pyarrow and
numpy from ours (cdk_app/layers.py)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from cdk_app.config import PROJECT, EnvConfig
from cdk_app.grants import resourceless_reason
from cdk_app.packaging import lambda_code
from cdk_app.layers import needs_numpy, numpy_layer, powertools_layer, provided_modules, pyarrow_layer
from cdk_app.nag import acknowledge
from cdk_app.secure_bucket import removal_policy
from lambdas.common import environment as names

LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
TRACING = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")  # what active tracing grants, on *


def encrypted_log_group(scope: Construct, construct_id: str, *, env: EnvConfig, name: str, key: kms.IKey) -> logs.LogGroup:
    return logs.LogGroup(
        scope, construct_id, log_group_name=name, encryption_key=key,
        retention=LOG_RETENTION, removal_policy=removal_policy(env),
    )


def function_role_name(env: EnvConfig, folder: str) -> str:
    """Name of the execution role of the function of `lambdas/<folder>/`."""
    return env.function_name(folder)


class PythonFunction(Construct):
    """The function of `lambdas/<folder>/`, handler `lambdas.<folder>.handler.handler`, named
    `name` (default: env.function_name(folder); another name deploys another instance of the code)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env: EnvConfig,
        folder: str,
        key: kms.IKey,
        environment: Mapping[str, str],
        extra_sources: Sequence[str] = (),
        bundled: Sequence[str] = (),
        with_pyarrow: bool = False,
        timeout: Duration = Duration.minutes(1),
        memory_mb: int = 512,
        name: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        name = name or env.function_name(folder)
        self.log_group = encrypted_log_group(self, "Logs", env=env, name=f"/aws/lambda/{name}", key=key)
        # our own role: the default one carries the AWS-managed AWSLambdaBasicExecutionRole.
        # Named like the function, so bucket and secret policies can name it (cdk_app/raw_zone.py).
        self.role = iam.Role(self, "Role", role_name=name,
                             assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        self.log_group.grant_write(self.role)
        # what the package holds and what it can import besides (read by tests/infra/test_layers.py)
        self.sources = ("lambdas/__init__.py", "lambdas/contracts", "lambdas/common", f"lambdas/{folder}",
                        *extra_sources)
        self.bundled = tuple(bundled)
        # numpy only where the code imports it: it is 55 MB that pyarrow alone does not need
        with_numpy = needs_numpy(self.sources)
        self.provided_modules = provided_modules(with_pyarrow, with_numpy)
        self.layers = [powertools_layer(self), *([pyarrow_layer(self)] if with_pyarrow else []),
                       *([numpy_layer(self)] if with_numpy else [])]
        code, self.code_hash = lambda_code(self.sources, self.bundled)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=name,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.X86_64,  # the layers are x86_64 builds
            handler=f"lambdas.{folder}.handler.handler",
            code=code,
            layers=self.layers,
            role=self.role,
            log_group=self.log_group,
            tracing=lambda_.Tracing.ACTIVE,
            timeout=timeout,
            memory_size=memory_mb,
            environment={**names.powertools(folder, PROJECT), names.LAKEHOUSE_ENV: env.name, **environment},
        )
        acknowledge(self, {
            "AwsSolutions-IAM5[Resource::*]": resourceless_reason(*TRACING),
            "AwsSolutions-L1": "Pinned to python3.12 on purpose: the Powertools layer, our pyarrow and numpy layers "
                               "and the bundled wheels are built per Python minor version; a runtime bump moves them "
                               "together.",
        })
