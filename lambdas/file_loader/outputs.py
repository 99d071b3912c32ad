"""What a loaded catalog file becomes: where each output goes, its schema, and a streaming writer.

Every name derives from the file's content hash (its `file_id`), so loading the same bytes again
(a redelivered event, a retry, the file dropped twice) writes the same objects, never new ones.
Storage goes through the cleaner's pyarrow filesystem resolver: one code path for file:// and s3://.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from lambdas.common import manifests
from lambdas.common.storage import resolve
from lambdas.contracts import lake_layout
from lambdas.contracts import products as contract

_TIMESTAMP = pa.timestamp("us", tz="UTC")
_ARROW_TYPES = {
    "string": pa.string(), "boolean": pa.bool_(), "timestamp": _TIMESTAMP, "integer": pa.int64(),
    "decimal": pa.decimal128(12, contract.PRICE_SCALE),  # 10 integer digits: MAX_PRICE fits
}

# Derived from the contract, so staging follows it when it evolves. Every column is required.
CLEAN_SCHEMA = pa.schema([pa.field(f.name, _ARROW_TYPES[f.type], nullable=False)
                          for f in contract.FIELDS + contract.EXTRA_CLEAN_COLUMNS])
QUARANTINE_SCHEMA = pa.schema([
    pa.field("raw_payload", pa.binary(), nullable=False),  # the line's bytes, without its line break
    pa.field("source", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),  # a contract.Reason code
    pa.field("message", pa.string(), nullable=False),
    pa.field("file_id", pa.string(), nullable=False),
    pa.field("line_number", pa.int64(), nullable=False),
    pa.field("source_uri", pa.string(), nullable=False),  # where the file was dropped
    pa.field("ingested_at", _TIMESTAMP, nullable=False),
])


@dataclass(frozen=True)
class Locations:
    landing_uri: str  # zone roots: file:///abs/path or s3://bucket
    raw_uri: str
    staging_uri: str

    def raw_copy(self, file_id: str) -> str:
        return lake_layout.join(self.raw_uri, lake_layout.raw_prefix(contract.SOURCE), f"{file_id}.csv")

    def clean(self, file_id: str) -> str:
        return lake_layout.join(self.staging_uri, lake_layout.clean_prefix(contract.SOURCE), f"{file_id}.parquet")

    def quarantine(self, file_id: str) -> str:
        return lake_layout.join(self.staging_uri, lake_layout.quarantine_prefix(contract.SOURCE),
                                f"{file_id}.parquet")

    @staticmethod
    def manifest_name(file_id: str) -> str:
        """The manifest's path under the source's manifest prefix."""
        return f"{file_id}.json"

    def manifest(self, file_id: str) -> str:
        """Written last: a file is loaded once its manifest exists."""
        return manifests.manifest_uri(self.staging_uri, contract.SOURCE, self.manifest_name(file_id))


class ParquetSink:
    """One Parquet file written a row group at a time; nothing is created until the first rows come."""

    def __init__(self, uri: str, schema: pa.Schema) -> None:
        self.uri, self._schema = uri, schema
        self._writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, columns: dict[str, list[object]]) -> None:
        table = pa.Table.from_pydict(columns, schema=self._schema)
        if not table.num_rows:
            return
        if self._writer is None:
            fs, path = resolve(self.uri)
            self._writer = pq.ParquetWriter(path, self._schema, filesystem=fs)
        self._writer.write_table(table)
        self.rows += table.num_rows

    def close(self) -> str | None:
        """The file's URI, or None when no row was written (and so no file exists)."""
        if self._writer is None:
            return None
        self._writer.close()
        return self.uri
