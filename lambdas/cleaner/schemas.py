"""Arrow schemas of what the cleaner stages, derived from the contracts (so staging follows them)."""
from __future__ import annotations

import pyarrow as pa

from lambdas.contracts import clickstream, orders

TIMESTAMP = pa.timestamp("us", tz="UTC")
AMOUNT = pa.decimal128(orders.AMOUNT_PRECISION, orders.AMOUNT_SCALE)
_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "timestamp": TIMESTAMP,
    "decimal": AMOUNT,
    "items": pa.list_(pa.struct([
        pa.field("product_id", pa.string(), nullable=False),
        pa.field("qty", pa.int64(), nullable=False),
        pa.field("unit_price", AMOUNT, nullable=False),
    ])),
}


def _clean_schema(contract: object) -> pa.Schema:
    fields = contract.FIELDS  # type: ignore[attr-defined]
    extra = contract.EXTRA_CLEAN_COLUMNS  # type: ignore[attr-defined]
    return pa.schema([pa.field(f.name, _TYPES[f.type], nullable=not f.required) for f in fields]
                     + [pa.field(name, _TYPES[kind], nullable=False) for name, kind in extra])


CLEAN_SCHEMAS: dict[str, pa.Schema] = {c.SOURCE: _clean_schema(c) for c in (clickstream, orders)}

QUARANTINE_SCHEMA = pa.schema([
    # the record as received, its personal data masked (the exact bytes are in the raw zone)
    pa.field("raw_payload", pa.binary(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),  # a contract's reason code
    pa.field("message", pa.string(), nullable=False),
    pa.field("shard", pa.string(), nullable=False),  # Kinesis shard id, or Kafka "topic-partition"
    pa.field("sequence_number", pa.string(), nullable=False),  # Kinesis sequence number, or Kafka offset
    pa.field("ingested_at", TIMESTAMP, nullable=False),
])
