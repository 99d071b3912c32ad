"""The cleaner's EMF metrics: their names and dimensions, in one place.

The handler emits them (Powertools Metrics, the function's POWERTOOLS_METRICS_NAMESPACE); the
operations dashboard (cdk_app/operations_dashboard.py) charts them by these same names. Every
metric carries the dimensions {SERVICE_DIMENSION: SERVICE, SOURCE_DIMENSION: <source>}; the
per-reason quarantine counts add REASON_DIMENSION (a dimension set of their own).
"""
from __future__ import annotations

SERVICE = "cleaner"
SERVICE_DIMENSION = "service"  # Powertools adds it from `service`
SOURCE_DIMENSION = "source"
REASON_DIMENSION = "reason"

RECORDS_IN = "records_in"
CLEAN = "clean"
QUARANTINED = "quarantined"
DUPLICATES = "duplicates"
WRITE_FAILURES = "write_failures"
LIVE_NOTIFY_FAILURES = "live_notify_failures"  # the batch is staged; the live committer was not told
PAYLOAD_BYTES = "payload_bytes"
BATCH_LATENCY = "batch_latency"
INGEST_LAG = "ingest_lag"
