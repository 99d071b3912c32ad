"""Writes a cleaned batch to the lake: raw, clean staging, quarantine, then the manifest.

One code path for `file:///...` (the local lake) and `s3://bucket` (AWS, or moto/LocalStack via
AWS_ENDPOINT_URL): pyarrow's filesystems. File names derive from the batch only, so a retried
batch overwrites its own files and never adds a second copy. The manifest is written last: its
presence marks the batch as complete.
"""
from __future__ import annotations

import base64
import gzip
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from lambdas.cleaner.batch import CleanedBatch, KinesisRecord
from lambdas.contracts import clickstream as contract
from lambdas.contracts import lake_layout

_ARROW_TYPES = {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC")}

# Derived from the contract, so staging follows it when it evolves.
CLEAN_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW_TYPES[f.type], nullable=not f.required) for f in contract.FIELDS]
    + [pa.field(name, _ARROW_TYPES[kind], nullable=False) for name, kind in contract.EXTRA_CLEAN_COLUMNS]
)
QUARANTINE_SCHEMA = pa.schema([
    pa.field("raw_payload", pa.binary(), nullable=False),  # the record exactly as received
    pa.field("source", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),  # a contract.Reason code
    pa.field("message", pa.string(), nullable=False),
    pa.field("shard", pa.string(), nullable=False),
    pa.field("sequence_number", pa.string(), nullable=False),
    pa.field("ingested_at", _ARROW_TYPES["timestamp"], nullable=False),
])


@dataclass(frozen=True)
class Locations:
    raw_uri: str  # zone roots: file:///abs/path or s3://bucket
    staging_uri: str


def write_batch(batch: CleanedBatch, where: Locations) -> dict[str, Any]:
    """Write every file of the batch, the manifest last; return the manifest."""
    source = contract.SOURCE
    hour = "ingest_hour=" + batch.records[0].arrival.strftime("%Y-%m-%d-%H")
    name = batch.batch_id
    files: dict[str, str | None] = {
        "raw": lake_layout.join(where.raw_uri, lake_layout.raw_prefix(source), hour, f"{name}.ndjson.gz"),
        "clean": None,
        "quarantine": None,
    }
    # Raw first: whatever fails later, the batch is already kept as received.
    _write_bytes(files["raw"], gzip.compress(_raw_lines(batch.records), compresslevel=6, mtime=0))
    if batch.clean:
        files["clean"] = lake_layout.join(where.staging_uri, lake_layout.clean_prefix(source), hour, f"{name}.parquet")
        _write_parquet(files["clean"], _clean_table(batch))
    if batch.quarantined:
        files["quarantine"] = lake_layout.join(where.staging_uri, lake_layout.quarantine_prefix(source), hour,
                                               f"{name}.parquet")
        _write_parquet(files["quarantine"], _quarantine_table(batch))
    by_reason = batch.quarantined_by_reason
    manifest = {
        "source": source,
        "contract_version": contract.VERSION,
        "batch_id": name,
        "ingest_hour": hour.split("=", 1)[1],
        "received": len(batch.records),
        "clean": len(batch.clean),
        "quarantined": sum(by_reason.values()),
        "quarantined_by_reason": by_reason,
        "duplicates": batch.duplicates,
        "files": files,
    }
    manifest_uri = lake_layout.join(where.staging_uri, lake_layout.manifest_prefix(source), hour, f"{name}.json")
    _write_bytes(manifest_uri, json.dumps(manifest, indent=2).encode() + b"\n")
    return manifest


def _raw_lines(records: list[KinesisRecord]) -> bytes:
    """One JSON envelope per record; the payload as text when it is UTF-8, else base64."""
    lines = []
    for record in records:
        envelope: dict[str, str] = {
            "shard_id": record.shard_id,
            "sequence_number": record.sequence_number,
            "partition_key": record.partition_key,
            "approximate_arrival": _iso(record.arrival),
        }
        try:
            envelope["data"] = record.data.decode("utf-8")
        except UnicodeDecodeError:
            envelope["data_base64"] = base64.b64encode(record.data).decode("ascii")
        # ASCII-only JSON: no line breaker of any reader (U+2028 included) can split a record.
        lines.append(json.dumps(envelope).encode() + b"\n")
    return b"".join(lines)


def _clean_table(batch: CleanedBatch) -> pa.Table:
    columns: dict[str, list[Any]] = {
        name: [getattr(row.event, name) for row in batch.clean]
        for name in CLEAN_SCHEMA.names if name != "ingested_at"
    }
    columns["ingested_at"] = [row.ingested_at for row in batch.clean]
    return pa.Table.from_pydict(columns, schema=CLEAN_SCHEMA)


def _quarantine_table(batch: CleanedBatch) -> pa.Table:
    rows = batch.quarantined
    return pa.Table.from_pydict({
        "raw_payload": [row.record.data for row in rows],
        "source": [contract.SOURCE] * len(rows),
        "reason": [row.rejected.reason for row in rows],
        "message": [row.rejected.message for row in rows],
        "shard": [row.record.shard_id for row in rows],
        "sequence_number": [row.record.sequence_number for row in rows],
        "ingested_at": [row.record.arrival for row in rows],
    }, schema=QUARANTINE_SCHEMA)


def _write_bytes(uri: str, data: bytes) -> None:
    fs, path = _resolve(uri)
    # compression=None: pyarrow would otherwise gzip a ".gz" name a second time.
    with fs.open_output_stream(path, compression=None) as out:
        out.write(data)


def _write_parquet(uri: str, table: pa.Table) -> None:
    fs, path = _resolve(uri)
    pq.write_table(table, path, filesystem=fs)


def _resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of a file URI, its parent folder made where folders are real."""
    if uri.startswith("s3://"):
        # pyarrow ignores AWS_ENDPOINT_URL, so it is passed on explicitly (moto, LocalStack).
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return _s3(endpoint, region), uri[len("s3://"):]
    fs, path = pafs.FileSystem.from_uri(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    return fs, path


@lru_cache(maxsize=4)
def _s3(endpoint: str | None, region: str | None) -> pafs.S3FileSystem:
    """One client per endpoint and region, kept across warm invocations."""
    return pafs.S3FileSystem(endpoint_override=endpoint, region=region)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
