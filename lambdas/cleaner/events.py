"""The two Lambda event shapes the cleaner reads, as deliveries: the records of one shard or
one topic-partition, in order, with their coordinates and payloads.

- Kinesis: `{"Records": [{"eventID": "shardId-...:seq", "kinesis": {"data", "sequenceNumber",
  "partitionKey", "approximateArrivalTimestamp"}}]}`, always one shard per invocation.
- MSK (and self-managed Kafka): `{"eventSource": "aws:kafka", "records": {"topic-partition":
  [{"topic", "partition", "offset", "timestamp", "key", "value"}]}}`, one or more partitions;
  `key` and `value` are base64, either may be absent (a tombstone has no value).
"""
from __future__ import annotations

import re
from itertools import repeat
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Callable, Literal

import msgspec
import numpy as np

Stream = Literal["kinesis", "msk"]


class EventError(ValueError):
    """The invocation's event is not a Lambda Kinesis or MSK event: a wiring bug, never bad data."""


@dataclass(frozen=True, eq=False)
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

    def subset(self, indices: list[int]) -> "Delivery":
        """The records at `indices` (ascending), as a delivery of their own."""
        pick = [list(map(values.__getitem__, indices)) for values in
                (self.positions, self.keys, self.arrivals_ms, self.data_base64, self.payloads)]
        return Delivery(self.stream, self.channel, *pick)

    @cached_property
    def texts(self) -> list[str | None]:
        """Each payload as text, or None where it is not UTF-8 (decoded once, for cleaning and raw)."""
        return map_or_none(bytes.decode, self.payloads, UnicodeDecodeError)


def map_or_none(fn: Callable[[Any], Any], items: list[Any], *errors: type[Exception]) -> list[Any]:
    """`[fn(x) for x in items]`, with None where fn raises one of `errors`, run by map() in C:
    list.extend keeps what it got before an exception, and the map resumes after the failed item."""
    out: list[Any] = []
    remaining = iter(items)
    while True:
        try:
            out.extend(map(fn, remaining))
            return out
        except errors:
            out.append(None)


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
        ids = [item["eventID"] for item in items]
        shard = ids[0].partition(":")[0]
        if not all(map(str.startswith, ids, repeat(shard + ":"))):
            # File names and the retry checkpoint assume Lambda's one-shard batches.
            shards = sorted({event_id.partition(":")[0] for event_id in ids})
            raise EventError(f"a Kinesis batch must come from one shard, got records of {', '.join(shards)}")
        records = [item["kinesis"] for item in items]
        data = [r["data"] for r in records]
        positions = [r["sequenceNumber"] for r in records]
        keys = [r.get("partitionKey") for r in records]
        # Kinesis gives milliseconds as float seconds; round to them so no float noise shows.
        seconds = np.array([r["approximateArrivalTimestamp"] for r in records], dtype=np.float64)
        arrivals = np.rint(seconds * 1000).astype(np.int64).tolist()
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise EventError(f"a Kinesis record lacks or garbles {err}") from err
    return [Delivery("kinesis", shard, positions, keys, arrivals, data, _decode(data, positions))]


def _kafka(event: dict[str, Any]) -> list[Delivery]:
    groups = event.get("records")
    if not isinstance(groups, dict):
        raise EventError("an MSK event needs a 'records' object of topic-partitions")
    deliveries = []
    for channel in sorted(groups):  # a fixed order, so a redelivered event writes in the same order
        try:
            items = sorted(groups[channel], key=lambda r: int(r["offset"]))
            if not items:
                continue
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
        return msgspec.convert(data, list[bytes])  # base64 decoding in C, the whole list at once
    except msgspec.ValidationError as err:
        index = re.search(r"\$\[(\d+)\]", str(err))
        where = f"record {positions[int(index.group(1))]}" if index else "a record"
        raise EventError(f"the payload of {where} is not base64: {err}") from None
