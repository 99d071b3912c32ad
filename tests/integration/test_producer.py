"""The Kinesis producer against a real moto server (which enforces PutRecords' 500-record and 5 MiB limits).

Retry behaviour that AWS shows and moto can't produce (entries refused under throttling) is injected by
a stand-in for AWS's Kinesis client that forwards the entries it accepts to moto.
"""
from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest

from lakehouse.sources.generator import generate
from lakehouse.sources.producer import ProducerError, partition_key, put_records
from tests.fixtures.local_cloud import create_stream as _stream  # on the session's moto server

pytestmark = pytest.mark.usefixtures("local_cloud")

MIB = 1024 * 1024
THROTTLED = {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "Rate exceeded for shard"}


class Recording:
    """Forwards every call to moto and keeps what each PutRecords call sent and got back."""

    def __init__(self) -> None:
        self.kinesis = boto3.client("kinesis")
        self.calls: list[list[dict[str, Any]]] = []
        self.responses: list[dict[str, Any]] = []

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs["Records"])
        self.responses.append(self.kinesis.put_records(**kwargs))
        return self.responses[-1]


def _stored(stream: str) -> list[bytes]:
    """Every record in the stream, shard by shard, read straight from moto."""
    kinesis = boto3.client("kinesis")
    data: list[bytes] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while True:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            data += [r["Data"] for r in page["Records"]]
            if not page["Records"]:
                break
            iterator = page["NextShardIterator"]
    return data


def _within_limits(calls: list[list[dict[str, Any]]]) -> bool:
    return all(len(call) <= 500 and sum(len(e["Data"]) + len(e["PartitionKey"].encode()) for e in call) <= 5 * MIB
               for call in calls)


@pytest.mark.parametrize(("count", "data_bytes", "key", "expected_calls"), [
    # 1,001 tiny records: the count limit splits them, 500 + 500 + 1.
    (1001, 20, "k", [500, 500, 1]),
    # 20 records of 900 KiB (921,600 + a 16-byte key = 921,616 bytes): 5 make 4,608,080 bytes, 6 would make
    # 5,529,696 > 5 MiB (5,242,880), so the size limit splits them, 5 per call, long before 500.
    (20, 900 * 1024, "0123456789abcdef", [5, 5, 5, 5]),
    # The limit counts partition keys, as UTF-8: 10 x 524,287 bytes of data is 5,242,870 (fits), but with
    # 16-byte keys (8 x "ü") it is 5,243,030 (does not): 9 + 1.
    (10, 524_287, "ü" * 8, [9, 1]),
    # Exactly 5 MiB fits in one call: 5 x (1,048,560 + 16) = 5,242,880.
    (6, MIB - 16, "0123456789abcdef", [5, 1]),
])
def test_calls_stay_within_putrecords_limits(count: int, data_bytes: int, key: str, expected_calls: list[int]) -> None:
    stream = _stream()
    records = [i.to_bytes(4, "big") + bytes([i % 251]) * (data_bytes - 4) for i in range(count)]
    client = Recording()

    result = put_records(stream, records, [key] * count, client=client)

    assert [len(call) for call in client.calls] == expected_calls
    assert _within_limits(client.calls)
    assert result.calls == len(expected_calls) and result.records == count and result.retried_entries == 0
    assert _stored(stream) == records  # one shard: all of them, each once, in order


def _shard_of(key: str, ranges: list[tuple[int, int, str]]) -> str:
    """Kinesis' mapping: the MD5 of the partition key as a 128-bit integer, in the shard whose range holds it."""
    hashed = int.from_bytes(hashlib.md5(key.encode()).digest(), "big")  # noqa: S324 - Kinesis' own hash
    return next(shard for low, high, shard in ranges if low <= hashed <= high)


def test_partition_keys_spread_records_over_every_shard() -> None:
    shards = 5
    stream = _stream(shards)
    ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]), s["ShardId"])
              for s in boto3.client("kinesis").list_shards(StreamName=stream)["Shards"]]
    records = generate(1000, seed=5, defect_rate=0.0).records
    keys = [partition_key(r) for r in records]
    client = Recording()

    put_records(stream, records, keys, client=client)

    expected = [_shard_of(k, ranges) for k in keys]
    assert [e["ShardId"] for response in client.responses for e in response["Records"]] == expected
    per_shard = {shard: expected.count(shard) for _, _, shard in ranges}
    assert len(per_shard) == shards
    # Even spread: 200 a shard on average; a skewed key would leave some shard far below that.
    assert min(per_shard.values()) >= 100, per_shard
    assert [partition_key(bytes(r)) for r in records] == keys  # a re-sent record keeps its key and shard


class Refusing:
    """Stands in for AWS's Kinesis under throttling that never ends for some entries: it refuses the
    entries whose data is in `refused` on every call and puts the others to moto."""

    def __init__(self, refused: set[bytes]) -> None:
        self.kinesis = boto3.client("kinesis")
        self.refused = refused
        self.calls: list[list[bytes]] = []

    def put_records(self, StreamName: str, Records: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - AWS's
        self.calls.append([e["Data"] for e in Records])
        accepted = [e for e in Records if e["Data"] not in self.refused]
        if accepted:
            self.kinesis.put_records(StreamName=StreamName, Records=accepted)
        return {"FailedRecordCount": len(Records) - len(accepted),
                "Records": [THROTTLED if e["Data"] in self.refused else {"SequenceNumber": "1"}
                            for e in Records]}


def test_entries_refused_after_every_retry_are_named_and_the_others_put_once() -> None:
    stream = _stream()
    records = [f"record-{i}".encode() for i in range(700)]  # two calls: 500 + 200
    refused_at = [3, 250, 650]  # in both calls: the first call's failure must not stop the second
    client = Refusing({records[i] for i in refused_at})

    with pytest.raises(ProducerError) as raised:
        put_records(stream, records, ["k"] * len(records), client=client, max_attempts=3, base_delay=0.001)

    assert str(raised.value).startswith("3 record(s) were not accepted by Kinesis after retries")
    assert [i for i, _ in raised.value.failed] == refused_at
    assert all("ProvisionedThroughputExceededException" in reason for _, reason in raised.value.failed)
    # Each call: a first attempt, then two re-sends of only the refused entries.
    first, second = records[:500], records[500:]
    refused_first, refused_second = [records[3], records[250]], [records[650]]
    assert client.calls == [first, refused_first, refused_first, second, refused_second, refused_second]
    kept = [r for i, r in enumerate(records) if i not in refused_at]
    assert _stored(stream) == kept  # every accepted record exactly once, none of the refused
