"""The two Lambda event shapes the cleaner reads, as deliveries: the records of one shard or
one topic-partition, in order, with their coordinates and payloads.

- Kinesis: `{"Records": [{"eventID": "shardId-...:seq", "kinesis": {"data", "sequenceNumber",
  "partitionKey", "approximateArrivalTimestamp"}}]}`, always one shard per invocation.
- MSK (and self-managed Kafka): `{"eventSource": "aws:kafka", "records": {"topic-partition":
  [{"topic", "partition", "offset", "timestamp", "key", "value"}]}}`, one or more partitions;
  `key` and `value` are base64, either may be absent (a tombstone has no value).
"""
from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any, Literal

Stream = Literal["kinesis", "msk"]


class EventError(ValueError):
    """The invocation's event is not a Lambda Kinesis or MSK event: a wiring bug, never bad data."""


@dataclass(frozen=True)
class Delivery:
    """One shard's (or one topic-partition's) records of an invocation, in delivery order."""

    stream: Stream
    channel: str                # Kinesis shard id, or Kafka "topic-partition"
    positions: list[str]        # sequence numbers, or offsets (decimal strings)
    keys: list[str | None]      # partition keys, or Kafka keys as received (base64)
    arrivals_ms: list[int]      # approximate arrival, or the Kafka record timestamp (ms since epoch)
    data_base64: list[str]      # payloads as received
    payloads: list[bytes]       # payloads decoded

    @property
    def batch_id(self) -> str:
        """`{channel}-{first}-{last}`: the same for a redelivered batch, so its files are overwritten."""
        return f"{self.channel}-{self.positions[0]}-{self.positions[-1]}"

    def __len__(self) -> int:
        return len(self.positions)


def parse_event(event: dict[str, Any]) -> list[Delivery]:
    """The deliveries of a Kinesis or MSK event (none for an empty one)."""
    if not isinstance(event, dict):
        raise EventError(f"expected a Lambda event object, got {type(event).__name__}")
    if event.get("eventSource") == "aws:kafka" or "records" in event:
        return _kafka(event)
    return _kinesis(event)


def _kinesis(event: dict[str, Any]) -> list[Delivery]:
    items = event.get("Records")
    if not isinstance(items, list):
        raise EventError("a Kinesis event needs a 'Records' list")
    if not items:
        return []
    try:
        shards = {item["eventID"].partition(":")[0] for item in items}
        if len(shards) > 1:
            # File names and the retry checkpoint assume Lambda's one-shard batches.
            raise EventError(f"a Kinesis batch must come from one shard, got records of {', '.join(sorted(shards))}")
        records = [item["kinesis"] for item in items]
        data = [r["data"] for r in records]
        positions = [r["sequenceNumber"] for r in records]
        keys = [r.get("partitionKey") for r in records]
        # Kinesis gives milliseconds as float seconds; round to them so no float noise shows.
        arrivals = [round(float(r["approximateArrivalTimestamp"]) * 1000) for r in records]
    except (KeyError, TypeError, AttributeError) as err:
        raise EventError(f"a Kinesis record lacks {err}") from err
    return [Delivery("kinesis", shards.pop(), positions, keys, arrivals, data, _decode(data, positions))]


def _kafka(event: dict[str, Any]) -> list[Delivery]:
    groups = event.get("records")
    if not isinstance(groups, dict):
        raise EventError("an MSK event needs a 'records' object of topic-partitions")
    deliveries = []
    for channel in sorted(groups):  # a fixed order, so a redelivered event writes in the same order
        items = sorted(groups[channel], key=lambda r: int(r["offset"]))
        if not items:
            continue
        try:
            data = [r.get("value") or "" for r in items]
            positions = [str(int(r["offset"])) for r in items]
            keys = [r.get("key") for r in items]
            arrivals = [int(r["timestamp"]) for r in items]
            topics = {f"{r['topic']}-{r['partition']}" for r in items}
        except (KeyError, TypeError, ValueError) as err:
            raise EventError(f"an MSK record of {channel!r} lacks or garbles {err}") from err
        if topics != {channel}:
            raise EventError(f"MSK records under {channel!r} name other partitions: {', '.join(sorted(topics))}")
        deliveries.append(Delivery("msk", channel, positions, keys, arrivals, data, _decode(data, positions)))
    return deliveries


def _decode(data: list[str], positions: list[str]) -> list[bytes]:
    try:
        return [binascii.a2b_base64(text, strict_mode=True) for text in data]
    except (binascii.Error, TypeError, ValueError):
        bad = next(p for p, text in zip(positions, data) if not _is_base64(text))
        raise EventError(f"the payload of record {bad} is not base64") from None


def _is_base64(text: Any) -> bool:
    try:
        binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, TypeError, ValueError):
        return False
    return True
