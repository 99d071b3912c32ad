"""Where each zone keeps a source's files, relative to the zone's root URI.

The same prefixes are used in AWS (`s3://<bucket>/...`) and locally (`file:///.../.lakehouse/lake/...`).
The cleaner writes them, CDK and the local cloud pass them to the Glue jobs as arguments.
"""
from __future__ import annotations

from datetime import datetime, timezone

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


def manifest_index_prefix(source: str) -> str:
    """Staging zone: one entry per manifest written, by the hour it was written, so silver_merge lists only the
    hours since its last run, however long the history (docs/decisions/0114-manifest-index-by-write-hour.md)."""
    return f"manifest-index/{source}/"


WRITTEN_HOUR = "written_hour"


def written_hour_folder(at: datetime) -> str:
    """`written_hour=YYYY-MM-DD-HH` (UTC): the index folder of a manifest written at `at`."""
    return f"{WRITTEN_HOUR}={at.astimezone(timezone.utc):%Y-%m-%d-%H}"


def staged_prefixes(source: str) -> list[str]:
    """Every prefix a writer stages a batch of `source` into (its grants, its lifecycle expiry)."""
    return [clean_prefix(source), quarantine_prefix(source), manifest_prefix(source), manifest_index_prefix(source)]


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


def manifest_index_argument(source: str) -> str:
    """silver_merge's job argument naming a source's manifest index prefix, e.g. `orders_manifest_index_path`."""
    return f"{source}_manifest_index_path"


def silver_merge_inputs(staging_uri: str) -> dict[str, str]:
    """silver_merge's arguments: every batch source's manifest prefix (each manifest names its batch's
    clean and quarantine files) and manifest index prefix."""
    return {argument(source): join(staging_uri, prefix(source)) for source in BATCH_SOURCES
            for argument, prefix in ((manifest_argument, manifest_prefix),
                                     (manifest_index_argument, manifest_index_prefix))}


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
