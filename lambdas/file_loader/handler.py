"""The file loader Lambda: S3 ObjectCreated events of product catalog CSVs in; staged products out.

S3 invokes it asynchronously. Bad data never fails it: bad rows, and whole files with a bad
header, are quarantined with their reason. It raises only when retrying can help or a human must
look: a failed read or write, an object overwritten mid-load, an event it is not subscribed to.
Lambda then retries the event and finally sends it to the on-failure destination; retries are
safe because outputs are named by the file's content hash and the manifest is written last.

Environment: LANDING_URI (the landing bucket, `s3://bucket`, or locally `file:///abs/landing`),
RAW_URI and STAGING_URI (zone roots), POWERTOOLS_METRICS_NAMESPACE, and optionally SOURCE (must
be this contract's source).
"""
from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.common import environment as names
from lambdas.contracts import products as contract
from lambdas.file_loader.events import Drop, object_uri, parse_event
from lambdas.file_loader.loader import content_id, load_file, loaded_manifest
from lambdas.file_loader.outputs import Locations

SERVICE = "file_loader"
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
        return cls.from_mapping(os.environ)

    @classmethod
    def from_mapping(cls, environment: Mapping[str, str]) -> "Settings":
        required = (names.LANDING_URI, names.RAW_URI, names.STAGING_URI, names.METRICS_NAMESPACE)
        missing = [name for name in required if not environment.get(name)]
        if missing:
            raise ConfigurationError(f"file_loader: environment variable(s) not set: {', '.join(missing)}")
        source = environment.get(names.SOURCE, contract.SOURCE)
        if source != contract.SOURCE:
            raise ConfigurationError(f"file_loader: {names.SOURCE}={source!r}, but this loader implements "
                                     f"{contract.SOURCE!r}")
        return cls(Locations(environment[names.LANDING_URI], environment[names.RAW_URI],
                             environment[names.STAGING_URI]), environment[names.METRICS_NAMESPACE])


def handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, Any]]]:
    """Load each dropped file of the event; return what became of each (status, file_id, manifest)."""
    return handle(event, Settings.from_env(), request_id=getattr(context, "aws_request_id", None))


def handle(event: dict[str, Any], settings: Settings, request_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """The handler's work with its settings given (the local landing folder calls it directly)."""
    drops = parse_event(event)
    logger.append_keys(request_id=request_id)
    if not drops:
        logger.info("no object in the event (S3's test event)")
        return {"files": []}
    metrics = Metrics(namespace=settings.metrics_namespace, service=SERVICE)
    metrics.add_dimension(name="source", value=contract.SOURCE)
    try:
        return {"files": [_load(drop, settings, metrics) for drop in drops]}
    finally:
        metrics.flush_metrics()  # also what was counted before a failure


def _load(drop: Drop, settings: Settings, metrics: Metrics) -> dict[str, Any]:
    where = settings.locations
    uri = object_uri(drop, where.landing_uri)
    logger.append_keys(object_uri=uri, event_name=drop.event_name)
    try:
        file_id = content_id(uri)
    except FileNotFoundError:
        # Deleted after its event: there is nothing left to load, and a retry would not change that.
        logger.warning("the dropped object no longer exists; nothing to load")
        metrics.add_metric(name="files_missing", unit=MetricUnit.Count, value=1)
        return {"uri": uri, "status": "missing"}
    logger.append_keys(file_id=file_id)
    earlier = loaded_manifest(where, file_id)
    if earlier is not None:
        logger.info("these bytes were loaded already; nothing to do",
                    extra={"first_loaded_from": earlier.get("source_uri"), "manifest": where.manifest(file_id)})
        metrics.add_metric(name="files_already_loaded", unit=MetricUnit.Count, value=1)
        return {"uri": uri, "status": "already_loaded", "file_id": file_id, "manifest": where.manifest(file_id)}
    started = time.perf_counter()
    manifest = load_file(uri, file_id, ingested_at=drop.event_time, where=where)
    metrics.add_metric(name="load_latency", unit=MetricUnit.Milliseconds, value=(time.perf_counter() - started) * 1000)
    _count(manifest, metrics, settings.metrics_namespace)
    log = logger.info if manifest["status"] == "loaded" else logger.error
    log(f"file {manifest['status']}", extra={key: manifest[key] for key in (
        "error", "size_bytes", "received", "clean", "quarantined", "quarantined_by_reason", "duplicates",
        "ignored_columns", "files")})
    return {"uri": uri, "status": manifest["status"], "file_id": file_id, "manifest": where.manifest(file_id)}


def _count(manifest: dict[str, Any], metrics: Metrics, namespace: str) -> None:
    """EMF metrics of one loaded file; quarantined rows also per reason (their own dimension set)."""
    metrics.add_metric(name=f"files_{manifest['status']}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="bytes_in", unit=MetricUnit.Bytes, value=manifest["size_bytes"])
    for name in ("received", "clean", "quarantined", "duplicates"):
        metrics.add_metric(name=f"rows_{name}", unit=MetricUnit.Count, value=manifest[name])
    for reason, rows in manifest["quarantined_by_reason"].items():
        with single_metric(name="rows_quarantined", unit=MetricUnit.Count, value=rows, namespace=namespace,
                           default_dimensions={"service": SERVICE, "source": contract.SOURCE}) as metric:
            metric.add_dimension(name="reason", value=reason)
