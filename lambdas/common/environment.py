"""The environment variables the functions read, and which ones each function is given.

Three places meet here: CDK (cdk_app/) sets them in AWS, with s3:// zone roots and secret names; the
local runtime (lakehouse/cloud/provision.py, lakehouse/sources/landing.py) sets them with file:// roots and the
local fixtures; the handlers read them. One definition, so the three cannot drift apart. The data
quality and record-run functions read the catalog's and the engine's variables, named beside the
code that reads them (iceberg_tables/catalogs.py, lambdas/data_quality/).
"""
from __future__ import annotations

RAW_URI = "RAW_URI"  # zone roots: s3://bucket, or file:///abs/path on the local lake
STAGING_URI = "STAGING_URI"
LANDING_URI = "LANDING_URI"
SOURCE = "SOURCE"  # the contract a function instance applies
SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
LAKEHOUSE_ENV = "LAKEHOUSE_ENV"  # the cdk.json environment; unset or "local" offline
PII_KEY_SECRET_NAME = "PII_KEY_SECRET_NAME"  # Secrets Manager
PII_KEY_PARAMETER_NAME = "PII_KEY_PARAMETER_NAME"  # or SSM Parameter Store
PII_IP_MODE = "PII_IP_MODE"
LIVE_QUEUE_URL = "LIVE_QUEUE_URL"  # the live committer's SQS FIFO queue (optional: no live tables without it)
FX_API_BASE_URL = "FX_API_BASE_URL"
FX_API_SECRET_ID = "FX_API_SECRET_ID"  # a secret name or ARN


def powertools(service: str, namespace: str) -> dict[str, str]:
    """Every function's: its service name in logs and traces, and the metrics namespace."""
    return {SERVICE_NAME: service, METRICS_NAMESPACE: namespace}


def zones(raw_uri: str, staging_uri: str) -> dict[str, str]:
    return {RAW_URI: raw_uri, STAGING_URI: staging_uri}


def cleaner(raw_uri: str, staging_uri: str, source: str, pii_key_secret: str | None = None,
            live_queue_url: str | None = None) -> dict[str, str]:
    """A cleaner instance's; without `pii_key_secret` it uses the fixed local key (offline only), without
    `live_queue_url` it notifies no live committer."""
    return {**zones(raw_uri, staging_uri), SOURCE: source, **_pii_key(pii_key_secret),
            **({LIVE_QUEUE_URL: live_queue_url} if live_queue_url else {})}


def replay(raw_uri: str, staging_uri: str, pii_key_secret: str | None = None) -> dict[str, str]:
    """The replay function's: the cleaner's zones and PII key (it re-cleans with the cleaner's code)."""
    return {**zones(raw_uri, staging_uri), **_pii_key(pii_key_secret)}


def api_connector(base_url: str, secret_id: str, raw_uri: str, staging_uri: str) -> dict[str, str]:
    return {FX_API_BASE_URL: base_url, FX_API_SECRET_ID: secret_id, **zones(raw_uri, staging_uri)}


def file_loader(landing_uri: str, raw_uri: str, staging_uri: str, source: str) -> dict[str, str]:
    return {LANDING_URI: landing_uri, **zones(raw_uri, staging_uri), SOURCE: source}


def _pii_key(secret: str | None) -> dict[str, str]:
    return {PII_KEY_SECRET_NAME: secret} if secret else {}
