"""Writes a cleaned batch to the lake: raw, clean staging, quarantine, then the manifest.

One code path for `file:///...` (the local lake) and `s3://bucket` (AWS, or moto/LocalStack via
AWS_ENDPOINT_URL): pyarrow's filesystems. File names derive from the batch only, so a retried
batch overwrites its own files and never adds a second copy. The manifest is written last: its
presence marks the batch as complete.
"""
from __future__ import annotations

import re
from itertools import chain, filterfalse
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from isal import igzip

from lambdas.cleaner.batch import CleanedBatch
from lambdas.cleaner.events import Delivery
from lambdas.cleaner.schemas import CLEAN_SCHEMAS, QUARANTINE_SCHEMA, TIMESTAMP
from lambdas.common.manifests import write_manifest
from lambdas.common.storage import Locations, write_bytes, writing
from lambdas.contracts import clickstream, lake_layout

CLEAN_SCHEMA = CLEAN_SCHEMAS[clickstream.SOURCE]  # the clickstream's, which silver_merge reads
RAW_GZIP_LEVEL = 1  # the raw zone is written once per batch and rarely read: speed over size
# Line separators some readers split on inside a line (str.splitlines does): escaped in raw lines,
# so a raw line is always one record whatever reads it. Each is valid JSON inside a string.
_LINE_BREAKERS = ((b"\xc2\x85", b"\\u0085"), (b"\xe2\x80\xa8", b"\\u2028"), (b"\xe2\x80\xa9", b"\\u2029"))
_BREAKERS = re.compile("[\u0085\u2028\u2029]")
_LITERALS = msgspec.json.Encoder()



def write_batch(batch: CleanedBatch, where: Locations, *, write_raw: bool = True) -> dict[str, Any]:
    """Write every file of the batch, the manifest last; return the manifest.

    `write_raw=False` for a batch re-cleaned from its raw file (lambdas/replay): the raw zone is the
    record of what arrived and is never rewritten; the manifest still names the file.
    """
    source = batch.source.name
    delivery = batch.delivery
    hour = ingest_hour_folder(delivery)
    name = batch.batch_id
    files: dict[str, str | None] = {
        "raw": lake_layout.join(where.raw_uri, lake_layout.raw_prefix(source), hour, f"{name}.ndjson.gz"),
        "clean": None,
        "quarantine": None,
    }
    if write_raw:  # raw first: whatever fails later, the batch is already kept as received
        write_bytes(files["raw"], _gzip(raw_lines(delivery)))
    if batch.clean.num_rows:
        files["clean"] = lake_layout.join(where.staging_uri, lake_layout.clean_prefix(source), hour, f"{name}.parquet")
        _write_parquet(files["clean"], batch.clean, batch.source.contract.DEDUPLICATION_KEY)
    if batch.quarantined:
        files["quarantine"] = lake_layout.join(where.staging_uri, lake_layout.quarantine_prefix(source), hour,
                                               f"{name}.parquet")
        _write_parquet(files["quarantine"], _quarantine_table(batch))
    manifest = manifest_of(batch, hour.split("=", 1)[1], files)
    write_manifest(where.staging_uri, source, f"{hour}/{name}.json", manifest)
    return manifest


def ingest_hour_folder(delivery: Delivery) -> str:
    """`ingest_hour=YYYY-MM-DD-HH` of the delivery's first arrival: the folder of each of its batch's files."""
    first = str(_iso_times(delivery.arrivals_ms[:1])[0])
    return f"ingest_hour={first[:10]}-{first[11:13]}"


def manifest_of(batch: CleanedBatch, ingest_hour: str, files: dict[str, str | None]) -> dict[str, Any]:
    by_reason = batch.quarantined_by_reason
    delivery = batch.delivery
    return {
        "source": batch.source.name,
        "contract_version": batch.source.contract.VERSION,
        "batch_id": batch.batch_id,
        "stream": delivery.stream,
        "channel": delivery.channel,
        "first_position": delivery.positions[0],
        "last_position": delivery.positions[-1],
        "ingest_hour": ingest_hour,
        "received": len(delivery),
        "clean": batch.clean.num_rows,
        "quarantined": sum(by_reason.values()),
        "quarantined_by_reason": by_reason,
        "duplicates": batch.duplicates,
        "payload_bytes": sum(map(len, delivery.payloads)),
        "files": files,
    }


def raw_lines(delivery: Delivery) -> bytes:
    """One JSON envelope per record, in delivery order: its coordinates, and the payload as text
    when it is UTF-8 (`data`), else as received in base64 (`data_base64`).

    Built column-wise: msgspec escapes every string of a column in one call, and Arrow joins the
    pieces of all lines at once (a third faster than encoding an object per record).
    """
    texts = delivery.texts
    is_text = pa.array([text is not None for text in texts], pa.bool_())
    data_key = pc.if_else(is_text, b'"data":', b'"data_base64":')
    data = _literals([text if text is not None else b64 for text, b64 in zip(texts, delivery.data_base64)])
    times = pa.array(_iso_times(delivery.arrivals_ms), pa.string()).cast(pa.binary())
    positions = pa.array(delivery.positions, pa.string()).cast(pa.binary())
    if delivery.stream == "kinesis":
        parts = [b'{"shard_id":' + _literal(delivery.channel) + b',"sequence_number":"', positions,
                 b'","partition_key":', _literals(delivery.keys), b',"approximate_arrival":"', times, b'",']
    else:
        topic, _, partition = delivery.channel.rpartition("-")
        keys = pa.array(delivery.keys, pa.string())
        key_parts = pc.binary_join_element_wise(b'"key_base64":"', keys.cast(pa.binary()), b'",', b"")
        parts = [b'{"topic":' + _literal(topic) + b',"partition":' + str(int(partition)).encode() + b',"offset":',
                 positions, b',"timestamp":"', times, b'",', pc.fill_null(key_parts, b"")]
    lines = pc.binary_join_element_wise(*parts, data_key, data, b"}\n", b"")
    end = int(np.frombuffer(lines.buffers()[1], dtype=np.int32)[-1])
    joined = lines.buffers()[2][:end].to_pybytes()
    # Only a non-ASCII payload or key can hold a line breaker (str.isascii is O(1), and these
    # iterators stay in C): search those few, not the whole batch.
    values = chain(filter(None, texts), filter(None, delivery.keys))
    if any(map(_BREAKERS.search, filterfalse(str.isascii, values))):
        for raw, escaped in _LINE_BREAKERS:
            joined = joined.replace(raw, escaped)
    return joined


def _literals(values: list[str | None]) -> pa.Array:
    """Each value as a JSON literal (an escaped string, or null), as a binary column.

    msgspec writes them all in one buffer, one per line (a literal holds no raw newline); the column
    is made over that buffer, each value with its newline, which one slice kernel then drops: no
    Python bytes object per value."""
    encoded = _LITERALS.encode_lines(values)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    offsets[1:] = np.flatnonzero(np.frombuffer(encoded, dtype=np.uint8) == ord("\n")) + 1
    lines = pa.Array.from_buffers(pa.binary(), len(values), [None, pa.py_buffer(offsets), pa.py_buffer(encoded)])
    return pc.binary_slice(lines, 0, -1)


def _literal(value: str) -> bytes:
    return _LITERALS.encode(value)


def _iso_times(arrivals_ms: list[int]) -> np.ndarray:
    """ISO-8601 UTC times (milliseconds, "Z") of epoch milliseconds, formatted by numpy in C."""
    return np.datetime_as_string(np.array(arrivals_ms, dtype="datetime64[ms]"), unit="ms", timezone="UTC")


def _gzip(data: bytes) -> bytes:
    """A gzip member with a zero header time (the same bytes for the same batch). ISA-L's deflate
    is several times faster than zlib's at the same level (docs/decisions/0411)."""
    return igzip.compress(data, RAW_GZIP_LEVEL, mtime=0)


def _quarantine_table(batch: CleanedBatch) -> pa.Table:
    delivery = batch.delivery
    indices = pa.array([i for i, _ in batch.quarantined], pa.int64())
    arrivals = pc.take(pa.array(delivery.arrivals_ms, pa.int64()), indices)
    return pa.Table.from_pydict({
        "raw_payload": batch.quarantined_payloads,
        "source": [batch.source.name] * len(batch.quarantined),
        "reason": [rejected.reason for _, rejected in batch.quarantined],
        "message": [rejected.message for _, rejected in batch.quarantined],
        "shard": [delivery.channel] * len(batch.quarantined),
        "sequence_number": pc.take(pa.array(delivery.positions, pa.string()), indices),
        "ingested_at": pc.cast(pc.multiply(arrivals, 1000), TIMESTAMP),
    }, schema=QUARANTINE_SCHEMA)


def _write_parquet(uri: str, table: pa.Table, unique: tuple[str, ...] = ()) -> None:
    """Dictionary-encode every column but the `unique` ones and timestamps: trying a dictionary on
    columns that never repeat costs time and gains nothing."""
    repeating = [f.name for f in table.schema if f.name not in unique and not pa.types.is_timestamp(f.type)]
    with writing(uri) as (fs, path):  # whole or not at all: a live table may have registered the file
        pq.write_table(table, path, filesystem=fs, use_dictionary=repeating)
