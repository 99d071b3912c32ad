"""The one way this app makes a secret: generated at deploy (never in the repo or a template),
encrypted with the lake key, named `lakehouse-<env>-<component>`, and why it isn't auto-rotated."""
from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from cdk_app.config import EnvConfig
from cdk_app.nag import acknowledge
from cdk_app.secure_bucket import removal_policy


def generated_secret(scope: Construct, construct_id: str, *, env: EnvConfig, component: str, key: kms.IKey,
                     description: str, value: secretsmanager.SecretStringGenerator,
                     not_rotated_because: str) -> secretsmanager.Secret:
    secret = secretsmanager.Secret(
        scope, construct_id,
        secret_name=env.resource_name(component),
        description=description,
        encryption_key=key,
        generate_secret_string=value,
        removal_policy=removal_policy(env),
    )
    acknowledge(secret, {"AwsSolutions-SMG4": not_rotated_because})
    return secret
