"""Where each zone keeps a source's files, relative to the zone's root URI.

The same prefixes are used in AWS (`s3://<bucket>/...`) and locally (`file:///.../.lakehouse/lake/...`).
The cleaner writes them, CDK and the local cloud pass them to the Glue jobs as arguments.
"""
from __future__ import annotations

from lambdas.contracts import clickstream, fx_rates, orders, products

# Every source whose batches the silver_merge job merges (one manifest prefix each).
BATCH_SOURCES: tuple[str, ...] = (clickstream.SOURCE, orders.SOURCE, products.SOURCE, fx_rates.SOURCE)


def raw_prefix(source: str) -> str:
    """Raw zone: every received record as received, gzip NDJSON, by ingest hour."""
    return f"{source}/"


def clean_prefix(source: str) -> str:
    """Staging zone: the cleaner's Parquet micro-batches."""
    return f"clean/{source}/"


def quarantine_prefix(source: str) -> str:
    """Staging zone: rejected records with their raw payload and reason."""
    return f"quarantine/{source}/"


def manifest_prefix(source: str) -> str:
    """Staging zone: one JSON ledger per cleaned batch (received, clean, quarantined, duplicates)."""
    return f"manifests/{source}/"


def position_prefix(source: str) -> str:
    """Staging zone: per shard or topic-partition, the positions of its last staged batch (the cleaner's
    redelivery mark, lambdas/cleaner/redelivery.py)."""
    return f"positions/{source}/"


def join(root_uri: str, *parts: str) -> str:
    """Join a zone root URI and relative parts with single slashes."""
    return "/".join([root_uri.rstrip("/"), *(p.strip("/") for p in parts if p)])


def manifest_argument(source: str) -> str:
    """silver_merge's job argument naming a source's manifest prefix, e.g. `orders_manifest_path`."""
    return f"{source}_manifest_path"


def silver_merge_inputs(staging_uri: str) -> dict[str, str]:
    """silver_merge's arguments: every batch source's manifest prefix (each manifest names its batch's
    clean and quarantine files)."""
    return {manifest_argument(source): join(staging_uri, manifest_prefix(source)) for source in BATCH_SOURCES}


def glue_job_inputs(staging_uri: str, snapshot_retention_hours: int) -> dict[str, dict[str, str]]:
    """Each Glue job's input arguments (without Glue's `--`), for CDK and for the local cloud alike;
    `snapshot_retention_hours` is the environment's (cdk.json)."""
    return {
        "silver_merge": silver_merge_inputs(staging_uri),
        "gold_build": {},
        # The newest snapshot always stays; orphans (failed writes) are removed once three days old, far
        # past any running write (Iceberg refuses under 24 hours).
        "maintenance": {"snapshot_retention_hours": str(snapshot_retention_hours), "retain_last": "1",
                        "orphan_min_age_hours": "72"},
    }


def landing_prefix(source: str) -> str:
    """Landing zone (its own bucket): files a source's producers drop, e.g. product catalog CSVs."""
    return f"{source}/"
