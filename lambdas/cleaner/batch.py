"""One Kinesis batch through the contract: every record ends up clean, quarantined or a duplicate.

No I/O here. The ledger of a batch must balance (received == clean + quarantined + duplicates);
if it ever does not, that is a bug, and the batch fails loudly instead of losing records.
"""
from __future__ import annotations

import base64
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from lambdas.cleaner.rules import Clean, Rejected, clean

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class ConservationError(RuntimeError):
    """The batch's ledger does not balance: a record would be lost or counted twice."""


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    data: bytes
    shard_id: str
    sequence_number: str
    partition_key: str
    arrival: datetime  # Kinesis' approximate arrival time, UTC


@dataclass(frozen=True, slots=True)
class CleanRow:
    event: Clean
    ingested_at: datetime


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    record: KinesisRecord
    rejected: Rejected


@dataclass
class CleanedBatch:
    records: list[KinesisRecord]
    clean: list[CleanRow] = field(default_factory=list)
    quarantined: list[QuarantineRow] = field(default_factory=list)
    duplicates: int = 0

    @property
    def batch_id(self) -> str:
        """`{shardId}-{firstSeq}-{lastSeq}`: the same for a retried batch, so its files are overwritten."""
        return f"{self.records[0].shard_id}-{self.records[0].sequence_number}-{self.records[-1].sequence_number}"

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(row.rejected.reason for row in self.quarantined).items()))


def parse_event(event: dict[str, Any]) -> list[KinesisRecord]:
    """The records of a Lambda Kinesis event, in delivery order (all from one shard)."""
    records = []
    for item in event.get("Records", []):
        kinesis = item["kinesis"]
        shard_id, _, _ = item["eventID"].partition(":")
        records.append(KinesisRecord(
            data=base64.b64decode(kinesis["data"], validate=True),
            shard_id=shard_id,
            sequence_number=kinesis["sequenceNumber"],
            partition_key=kinesis.get("partitionKey", ""),
            # Kinesis gives milliseconds as float seconds; round to them so no float noise shows.
            arrival=_EPOCH + timedelta(milliseconds=round(float(kinesis["approximateArrivalTimestamp"]) * 1000)),
        ))
    shards = sorted({r.shard_id for r in records})
    if len(shards) > 1:
        # File names and the retry checkpoint assume Lambda's one-shard batches.
        raise ValueError(f"a Kinesis batch must come from one shard, got records of {', '.join(shards)}")
    return records


def clean_batch(records: list[KinesisRecord], *, now: datetime) -> CleanedBatch:
    """Apply the contract to each record; drop re-sends of an event_id already clean in this batch."""
    batch = CleanedBatch(records=records)
    seen: set[str] = set()
    for record in records:
        result = clean(record.data, now=now)
        if isinstance(result, Rejected):
            batch.quarantined.append(QuarantineRow(record, result))
        elif result.event_id in seen:
            batch.duplicates += 1
        else:
            seen.add(result.event_id)
            batch.clean.append(CleanRow(result, record.arrival))
    accounted = len(batch.clean) + len(batch.quarantined) + batch.duplicates
    if accounted != len(records):
        raise ConservationError(f"batch {batch.batch_id}: received {len(records)} but accounted for {accounted} "
                                f"({len(batch.clean)} clean, {len(batch.quarantined)} quarantined, "
                                f"{batch.duplicates} duplicates)")
    return batch
