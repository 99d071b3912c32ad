"""The FX API key, from Secrets Manager, cached per container.

The secret holds JSON `{"api_key": "..."}`. Powertools' SecretsProvider reads it through boto3
(so AWS_ENDPOINT_URL reaches moto or LocalStack) and caches it for SECRET_MAX_AGE_SECONDS; the
client re-reads it at once when the API refuses the cached key (a rotation).
"""
from __future__ import annotations

import os
from functools import lru_cache

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

SECRET_MAX_AGE_SECONDS = 300


class SecretError(RuntimeError):
    """The secret is missing, unreadable, or not shaped as {"api_key": "..."}; the message names it."""


@lru_cache(maxsize=4)
def _provider(endpoint: str | None, region: str | None) -> SecretsProvider:
    """One provider (and cache) per endpoint: a process that restarts its local cloud gets a fresh client."""
    return SecretsProvider()


def api_key(secret_id: str, refresh: bool = False) -> str:
    """The key in the secret `secret_id` (a name or ARN); `refresh` skips the cache."""
    provider = _provider(os.environ.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or os.environ.get("AWS_ENDPOINT_URL"),
                         os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    try:
        value = provider.get(secret_id, max_age=SECRET_MAX_AGE_SECONDS, transform="json", force_fetch=refresh)
    except TransformParameterError:
        raise SecretError(f"secret {secret_id!r} is not JSON; it must be {{\"api_key\": \"...\"}}") from None
    except GetParameterError as error:
        raise SecretError(f"secret {secret_id!r} can't be read: {error}") from None
    key = value.get("api_key") if isinstance(value, dict) else None
    if not isinstance(key, str) or not key.strip():
        raise SecretError(f"secret {secret_id!r} has no non-empty string 'api_key'")
    return key.strip()
