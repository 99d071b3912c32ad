"""The cleaner Lambda: a Kinesis batch in; raw, clean staging, quarantine and a manifest out.

Bad data is quarantined, never failed. Only an infrastructure failure (a write that raises) fails
the batch, reported as a batch item failure at its first record, so Lambda retries the whole
batch; its deterministic file names make the retry overwrite, never duplicate.

Environment: RAW_URI and STAGING_URI (zone roots, `file:///abs/path` or `s3://bucket`),
POWERTOOLS_METRICS_NAMESPACE, and optionally SOURCE (must be this contract's source).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.cleaner.batch import CleanedBatch, clean_batch, parse_event
from lambdas.cleaner.writer import Locations, write_batch
from lambdas.contracts import clickstream as contract

SERVICE = "cleaner"
logger = Logger(service=SERVICE)


class ConfigurationError(RuntimeError):
    """A missing or wrong environment variable; the message names it."""


@dataclass(frozen=True)
class Settings:
    locations: Locations
    metrics_namespace: str

    @classmethod
    def from_env(cls) -> "Settings":
        # Read per invocation, not at import: the local runtime sets a function's environment per invoke.
        missing = [k for k in ("RAW_URI", "STAGING_URI", "POWERTOOLS_METRICS_NAMESPACE") if not os.environ.get(k)]
        if missing:
            raise ConfigurationError(f"cleaner: environment variable(s) not set: {', '.join(missing)}")
        source = os.environ.get("SOURCE", contract.SOURCE)
        if source != contract.SOURCE:
            raise ConfigurationError(f"cleaner: SOURCE={source!r}, but this cleaner implements {contract.SOURCE!r}")
        return cls(Locations(os.environ["RAW_URI"], os.environ["STAGING_URI"]),
                   os.environ["POWERTOOLS_METRICS_NAMESPACE"])


def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    settings = Settings.from_env()
    records = parse_event(event)
    if not records:
        return {"batchItemFailures": []}
    batch = clean_batch(records, now=datetime.now(timezone.utc))
    logger.append_keys(batch_id=batch.batch_id, request_id=getattr(context, "aws_request_id", None))
    metrics = Metrics(namespace=settings.metrics_namespace, service=SERVICE)
    try:
        manifest = write_batch(batch, settings.locations)
    except Exception:  # noqa: BLE001 - any failed write: retry the batch, never lose it
        logger.exception("writing the batch failed; Lambda will retry it from its first record")
        metrics.add_metric(name="write_failures", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
        return {"batchItemFailures": [{"itemIdentifier": records[0].sequence_number}]}
    # Counted once written, so a retried batch is not counted twice.
    _count(metrics, batch, settings.metrics_namespace)
    metrics.flush_metrics()
    logger.info("batch cleaned", extra={k: manifest[k] for k in (
        "received", "clean", "quarantined", "quarantined_by_reason", "duplicates", "files")})
    return {"batchItemFailures": []}


def _count(metrics: Metrics, batch: CleanedBatch, namespace: str) -> None:
    """EMF metrics of the batch; quarantines also per reason (their own dimension set)."""
    by_reason = batch.quarantined_by_reason
    for name, value in (("records_in", len(batch.records)), ("clean", len(batch.clean)),
                        ("quarantined", sum(by_reason.values())), ("duplicates", batch.duplicates)):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for reason, value in by_reason.items():
        with single_metric(name="quarantined", unit=MetricUnit.Count, value=value, namespace=namespace,
                           default_dimensions={"service": SERVICE}) as metric:
            metric.add_dimension(name="reason", value=reason)
