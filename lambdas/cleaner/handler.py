"""The cleaner Lambda: a Kinesis or MSK batch in; raw, clean staging, quarantine and a manifest out.

Bad data is quarantined, never failed. Only an infrastructure failure (a write that raises) fails a
batch: for Kinesis it is reported as a batch item failure at the batch's first record, so Lambda
retries the whole batch; for MSK the invocation raises (a whole-event retry in every mapping mode;
Kafka partial batch responses need provisioned mode). Deterministic file names make every retry
overwrite, never duplicate.

Environment: RAW_URI and STAGING_URI (zone roots, `file:///abs/path` or `s3://bucket`),
POWERTOOLS_METRICS_NAMESPACE, SOURCE (the contract: clickstream or orders; one function per
source), PII_IP_MODE (hash, the default, or truncate) and the hash key's location:
PII_KEY_SECRET_NAME (Secrets Manager) or PII_KEY_PARAMETER_NAME (SSM). Without either, the fixed
local key is used, and only where LAKEHOUSE_ENV is unset or "local". LIVE_QUEUE_URL (optional): the live
committer's SQS FIFO queue, notified of each staged batch (docs/decisions/0500, 0502).
"""
from __future__ import annotations

import functools
import gc
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.cleaner.batch import SOURCES, CleanedBatch, Source, clean_batch, judged_at
from lambdas.cleaner.events import Delivery, parse_event
from lambdas.cleaner.metrics import (BATCH_LATENCY, CLEAN, DUPLICATES, INGEST_LAG, LIVE_NOTIFY_FAILURES,
                                     PAYLOAD_BYTES, QUARANTINED, REASON_DIMENSION, RECORDS_IN, SERVICE,
                                     SERVICE_DIMENSION, SOURCE_DIMENSION, WRITE_FAILURES)
from lambdas.cleaner.pii import LOCAL_KEY, IpMasker, load_key, masker
from lambdas.cleaner.redelivery import not_yet_staged, write_mark
from lambdas.cleaner.writer import write_batch
from lambdas.common import environment as names
from lambdas.common.storage import Locations
from lambdas.contracts import live

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)  # a no-op unless running in Lambda with tracing enabled


class ConfigurationError(RuntimeError):
    """A missing or wrong environment variable; the message names it."""


@dataclass(frozen=True)
class Settings:
    locations: Locations
    metrics_namespace: str
    source: Source
    masker: IpMasker
    live_queue_url: str | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        # Read per invocation, not at import: the local runtime sets a function's environment per invoke.
        env = os.environ
        missing = [k for k in (names.RAW_URI, names.STAGING_URI, names.METRICS_NAMESPACE) if not env.get(k)]
        if missing:
            raise ConfigurationError(f"cleaner: environment variable(s) not set: {', '.join(missing)}")
        source = env.get(names.SOURCE, "clickstream")
        if source not in SOURCES:
            raise ConfigurationError(f"cleaner: {names.SOURCE}={source!r} is not a contract; one of {', '.join(SOURCES)}")
        mode = env.get(names.PII_IP_MODE, "hash")
        if mode not in ("hash", "truncate"):
            raise ConfigurationError(f"cleaner: {names.PII_IP_MODE}={mode!r}; expected hash or truncate")
        return cls(Locations(env[names.RAW_URI], env[names.STAGING_URI]), env[names.METRICS_NAMESPACE],
                   SOURCES[source], masker(mode, _pii_key() if mode == "hash" else b""),  # type: ignore[arg-type]
                   env.get(names.LIVE_QUEUE_URL) or None)


def _pii_key() -> bytes:
    secret, parameter = os.environ.get(names.PII_KEY_SECRET_NAME), os.environ.get(names.PII_KEY_PARAMETER_NAME)
    if secret and parameter:
        raise ConfigurationError(f"cleaner: set {names.PII_KEY_SECRET_NAME} or {names.PII_KEY_PARAMETER_NAME}, not both")
    if secret:
        return load_key("secret", secret)
    if parameter:
        return load_key("parameter", parameter)
    environment = os.environ.get(names.LAKEHOUSE_ENV, "local")
    if environment != "local":
        raise ConfigurationError(f"cleaner: {names.LAKEHOUSE_ENV}={environment!r} needs {names.PII_KEY_SECRET_NAME} "
                                 f"or {names.PII_KEY_PARAMETER_NAME}: the fixed local PII key is for offline use only")
    return LOCAL_KEY


@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    settings = Settings.from_env()
    logger.append_keys(request_id=getattr(context, "aws_request_id", None), source=settings.source.name)
    failures: list[dict[str, str]] = []
    for delivery in parse_event(event):
        with _without_cycle_collection():
            written = _clean_and_write(delivery, settings)
        if not written:
            if delivery.stream == "msk":
                # Fail the invocation: Lambda retries the whole event, in any Kafka mapping mode.
                raise RuntimeError(f"writing batch {delivery.batch_id} failed; the invocation is retried")
            failures.append({"itemIdentifier": delivery.positions[0]})
    return {"batchItemFailures": failures}


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Cleaning a batch allocates many short-lived containers but makes no reference cycles, and
    the collector's passes over the live event cost about 5 %: pause it for the batch."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@tracer.capture_method
def _clean_and_write(delivery: Delivery, settings: Settings) -> bool:
    """Clean and write one delivery's records not staged yet; False when a read or write failed (the batch
    is to be retried)."""
    started = time.perf_counter()
    logger.set_correlation_id(delivery.batch_id)
    metrics = Metrics(namespace=settings.metrics_namespace, service=SERVICE)
    metrics.add_dimension(name=SOURCE_DIMENSION, value=settings.source.name)
    try:
        fresh = not_yet_staged(delivery, settings.locations, settings.source.name)
    except Exception:  # noqa: BLE001 - the mark could not be read: retry the batch, never guess
        return _failed(metrics, "reading the channel's staged positions failed")
    if fresh is None or len(fresh) < len(delivery):
        logger.info("a redelivery: records already staged are not written again",
                    extra={"records": len(delivery), "already_staged": len(delivery) - len(fresh or ())})
    if fresh is None:
        return True
    batch = clean_batch(fresh, settings.source, now=judged_at(fresh, datetime.now(timezone.utc)),
                        masker=settings.masker)
    try:
        manifest = write_batch(batch, settings.locations)
        write_mark(settings.locations, settings.source.name, fresh)  # after the manifest: the batch is complete
    except Exception:  # noqa: BLE001 - any failed write: retry the batch, never lose it
        return _failed(metrics, "writing the batch failed")
    _notify_live(settings, manifest, metrics)
    # Counted once written, so a retried batch is not counted twice.
    oldest_ms = time.time() * 1000 - min(fresh.arrivals_ms)
    _count(metrics, batch, settings, manifest["payload_bytes"], time.perf_counter() - started, oldest_ms)
    logger.info("batch cleaned", extra={k: manifest[k] for k in (
        "received", "clean", "quarantined", "quarantined_by_reason", "duplicates", "files")})
    return True


@functools.lru_cache(maxsize=4)
def _sqs(endpoint: str | None) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint)


def _notify_live(settings: Settings, manifest: dict[str, Any], metrics: Metrics) -> None:
    """Tell the live committer the batch is staged: its clean file (if any) and its ledger (decision 0502). Best
    effort: the batch is complete without it, and a batch never notified reaches fresh.events when the batch run
    merges it."""
    table = live.live_table(settings.source.name)
    if not (settings.live_queue_url and table):
        return
    notification = live.Notification.of_manifest(table, manifest, datetime.now(timezone.utc))
    try:
        _sqs(os.environ.get("AWS_ENDPOINT_URL")).send_message(
            QueueUrl=settings.live_queue_url, MessageBody=notification.body(), MessageGroupId=table,
            MessageDeduplicationId=notification.deduplication_id())
    except Exception:  # noqa: BLE001 - the batch stands; only its live visibility waits for the batch run
        logger.warning("notifying the live committer failed; the batch reaches fresh.events with the next "
                       "batch run", exc_info=True)
        metrics.add_metric(name=LIVE_NOTIFY_FAILURES, unit=MetricUnit.Count, value=1)


def _failed(metrics: Metrics, what: str) -> bool:
    logger.exception(f"{what}; Lambda will retry the batch from its first record")
    metrics.add_metric(name=WRITE_FAILURES, unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    return False


def _count(metrics: Metrics, batch: CleanedBatch, settings: Settings, payload_bytes: int, seconds: float,
           oldest_ms: float) -> None:
    """EMF metrics of the batch; quarantines also per reason (their own dimension set)."""
    by_reason = batch.quarantined_by_reason
    for name, value in ((RECORDS_IN, len(batch.delivery)), (CLEAN, batch.clean.num_rows),
                        (QUARANTINED, sum(by_reason.values())), (DUPLICATES, batch.duplicates)):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.add_metric(name=PAYLOAD_BYTES, unit=MetricUnit.Bytes, value=payload_bytes)
    metrics.add_metric(name=BATCH_LATENCY, unit=MetricUnit.Milliseconds, value=round(seconds * 1000, 3))
    # How long the batch's oldest record waited between arriving and being staged: the lake's lag.
    metrics.add_metric(name=INGEST_LAG, unit=MetricUnit.Milliseconds, value=round(max(oldest_ms, 0.0), 3))
    metrics.flush_metrics()
    for reason, value in by_reason.items():
        with single_metric(name=QUARANTINED, unit=MetricUnit.Count, value=value,
                           namespace=settings.metrics_namespace,
                           default_dimensions={SERVICE_DIMENSION: SERVICE, SOURCE_DIMENSION: settings.source.name}) as metric:
            metric.add_dimension(name=REASON_DIMENSION, value=reason)
