"""One delivery through its contract: every record ends up clean, quarantined or a duplicate.

No I/O here. The batch is cleaned as a whole (the source's columnar path, where it has one), and
only the records that path does not accept are looked at one by one, by the reference rules. The
ledger must balance (received == clean + quarantined + duplicates); if it ever does not, that is a
bug, and the batch fails loudly instead of losing records.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lambdas.cleaner import clickstream, orders
from lambdas.cleaner.events import Delivery
from lambdas.cleaner.pii import IpMasker, masked_payload, masked_text
from lambdas.cleaner.rules import Rejected
from lambdas.cleaner.schemas import CLEAN_SCHEMAS, TIMESTAMP
from lambdas.contracts import clickstream as clickstream_contract
from lambdas.contracts import orders as orders_contract

RecordRules = Callable[..., "dict[str, Any] | Rejected"]
ColumnarRules = Callable[..., "tuple[np.ndarray, dict[str, pa.Array]]"]
_INDEX = "__record"


class ConservationError(RuntimeError):
    """The batch's ledger does not balance: a record would be lost or counted twice."""


@dataclass(frozen=True)
class Source:
    """A contract and the cleaner's two ways of applying it."""

    contract: ModuleType
    clean_record: RecordRules
    clean_columns: ColumnarRules | None = None

    @property
    def name(self) -> str:
        return self.contract.SOURCE

    @property
    def schema(self) -> pa.Schema:
        return CLEAN_SCHEMAS[self.name]


SOURCES: dict[str, Source] = {
    clickstream_contract.SOURCE: Source(clickstream_contract, clickstream.clean_record, clickstream.clean_columns),
    orders_contract.SOURCE: Source(orders_contract, orders.clean_record),
}


@dataclass(frozen=True)
class CleanedBatch:
    delivery: Delivery
    source: Source
    clean: pa.Table  # the clean schema, in delivery order, without in-batch duplicates
    quarantined: list[tuple[int, Rejected]]  # (record index, why), in delivery order
    quarantined_payloads: list[bytes]  # each quarantined record with its personal data masked
    duplicates: int

    @property
    def batch_id(self) -> str:
        return self.delivery.batch_id

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(rejected.reason for _, rejected in self.quarantined).items()))


def judged_at(delivery: Delivery, clock: datetime) -> datetime:
    """The time a delivery's timestamps are judged against: its last record's arrival, so a retry, a replay
    or a backlog gives every record the verdict and bytes of the first attempt (decision 0400). Never later
    than `clock`: a Kafka producer's own record timestamps (CreateTime) must not widen the window."""
    return min(datetime.fromtimestamp(max(delivery.arrivals_ms) / 1000, timezone.utc), clock)


def clean_batch(delivery: Delivery, source: Source, *, now: datetime, masker: IpMasker) -> CleanedBatch:
    """Apply the contract to every record; drop re-sends of a key already clean in this delivery."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    payloads = delivery.payloads
    limit = source.contract.MAX_RECORD_BYTES
    fast_indices = np.zeros(0, dtype=np.int64)
    tables = []
    if source.clean_columns is not None:
        fast_indices, columns = source.clean_columns(_candidates(delivery, limit), now=now, masker=masker)
        if len(fast_indices):
            tables.append(_table(columns, fast_indices, source.schema))
    slow = np.ones(len(payloads), dtype=bool)
    slow[fast_indices] = False
    clean_rows: list[dict[str, Any]] = []
    quarantined: list[tuple[int, Rejected]] = []
    for i in np.flatnonzero(slow).tolist():
        result = source.clean_record(payloads[i], now=now, masker=masker)
        if isinstance(result, Rejected):  # the message may quote the bad value: personal data, at times
            quarantined.append((i, Rejected(result.reason, masked_text(result.message, masker))))
        else:
            clean_rows.append({**result, _INDEX: i})
    if clean_rows:
        tables.append(pa.Table.from_pylist(clean_rows, schema=_with_index(source.schema)))
    candidates = _in_order(tables, source.schema)
    clean = _first_of_each_key(candidates, source.contract.DEDUPLICATION_KEY)
    batch = CleanedBatch(delivery, source, _with_arrivals(clean, delivery.arrivals_ms, source.schema), quarantined,
                         [masked_payload(payloads[i], masker) for i, _ in quarantined],
                         duplicates=candidates.num_rows - clean.num_rows)
    _check_ledger(batch)
    return batch


def _candidates(delivery: Delivery, limit: int) -> list[bytes | None]:
    """The records the columnar path may try: None where it must not look (too large, not UTF-8)."""
    payloads = delivery.payloads
    sizes = np.fromiter(map(len, payloads), dtype=np.int64, count=len(payloads))
    not_text = np.equal(np.array(delivery.texts, dtype=object), None)
    candidates: list[bytes | None] = list(payloads)
    for i in np.flatnonzero((sizes > limit) | not_text).tolist():
        candidates[i] = None
    return candidates


def _with_index(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name != "ingested_at"] + [pa.field(_INDEX, pa.int64(), nullable=False)])


def _table(columns: dict[str, pa.Array], indices: np.ndarray, schema: pa.Schema) -> pa.Table:
    target = _with_index(schema)
    arrays = [columns[f.name] for f in target if f.name != _INDEX] + [pa.array(indices, pa.int64())]
    return pa.Table.from_arrays(arrays, schema=target)


def _in_order(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    if not tables:
        return _with_index(schema).empty_table()
    table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
    return table.sort_by(_INDEX) if len(tables) > 1 else table


def _first_of_each_key(table: pa.Table, key: tuple[str, ...]) -> pa.Table:
    """The first row (in delivery order) of each deduplication key."""
    if table.num_rows < 2:
        return table
    firsts = table.group_by(list(key), use_threads=False).aggregate([(_INDEX, "min")])[f"{_INDEX}_min"]
    if len(firsts) == table.num_rows:
        return table
    return table.filter(pc.is_in(table[_INDEX], value_set=firsts))


def _with_arrivals(table: pa.Table, arrivals_ms: list[int], schema: pa.Schema) -> pa.Table:
    """The clean table in the staged schema: `ingested_at` is each record's arrival time."""
    arrivals = pc.take(pa.array(arrivals_ms, pa.int64()), table[_INDEX])
    ingested_at = pc.cast(pc.multiply(arrivals, 1000), TIMESTAMP)
    columns = {name: table[name] for name in table.column_names if name != _INDEX}
    columns["ingested_at"] = ingested_at
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def _check_ledger(batch: CleanedBatch) -> None:
    """Each record was decided once: the columnar and per-record paths split the batch, no more."""
    received = len(batch.delivery)
    accounted = batch.clean.num_rows + len(batch.quarantined) + batch.duplicates
    if accounted != received:
        raise ConservationError(f"batch {batch.batch_id}: received {received} but accounted for {accounted} "
                                f"({batch.clean.num_rows} clean, {len(batch.quarantined)} quarantined, "
                                f"{batch.duplicates} duplicates)")
