"""The local event source mapping against a real moto server (Kinesis, Lambda and SQS APIs over HTTP).

The functions here are test handlers registered with the local providers, so each test can
observe exactly which batches Lambda's semantics deliver.
"""
from __future__ import annotations

import base64
import json
import logging
import random
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pytest

from lakehouse.cloud.local_cloud import LocalCloud
from lakehouse.cloud.poller import (EMPTY_EVENT_BYTES, MAX_PAYLOAD_BYTES, Clock, KinesisPoller, MappingSettings,
                                    RecordSizer, kinesis_event)
from lakehouse.cloud.provision import Provisioned
from lakehouse.lake.layout import LocalLake
from lakehouse.sources.producer import put_records
from tests.fixtures.local_cloud import create_stream as _stream
from tests.fixtures.local_cloud import register_function as _function

pytestmark = pytest.mark.usefixtures("local_cloud")


def _payloads(event: dict[str, Any]) -> list[int]:
    return [int(base64.b64decode(r["kinesis"]["data"])) for r in event["Records"]]


class VirtualClock(Clock):
    """Time that moves only when the poller waits, and by exactly what it waits: a batching window or a
    record's age then means the same on a busy machine as on an idle one. It starts at the wall clock,
    since moto stamps a record's arrival with it."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def _put(stream: str, values: list[int], key: str = "k") -> None:
    put_records(stream, [str(v).encode() for v in values], [key] * len(values))


def test_batches_honour_batch_size_and_shard_order() -> None:
    stream = _stream()
    batches: list[list[int]] = []
    fn = _function(lambda event, ctx: batches.append(_payloads(event)) or {"batchItemFailures": []})
    _put(stream, list(range(1, 251)))

    stats = KinesisPoller(stream, fn, MappingSettings(batch_size=100)).drain()

    assert [len(b) for b in batches] == [100, 100, 50]
    assert [v for b in batches for v in b] == list(range(1, 251))
    assert stats.records == 250 and stats.invocations == 3 and stats.retries == 0


def test_partition_keys_spread_over_shards_and_every_record_is_delivered_once() -> None:
    stream = _stream(shards=2)
    seen: list[int] = []
    fn = _function(lambda event, ctx: seen.extend(_payloads(event)) or {"batchItemFailures": []})
    values = list(range(400))
    put_records(stream, [str(v).encode() for v in values], [f"user-{v % 37}" for v in values])

    stats = KinesisPoller(stream, fn, MappingSettings(batch_size=64)).drain()

    assert sorted(seen) == values
    assert len(stats.per_shard) == 2 and all(n > 0 for n in stats.per_shard.values())


def test_reported_item_failure_retries_from_that_record_only() -> None:
    stream = _stream()
    calls: list[list[int]] = []
    _put(stream, list(range(10)))

    def handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        values = _payloads(event)
        calls.append(values)
        if len(calls) == 1:  # the first delivery fails at value 6
            failed = event["Records"][6]["kinesis"]["sequenceNumber"]
            return {"batchItemFailures": [{"itemIdentifier": failed}]}
        return {"batchItemFailures": []}

    stats = KinesisPoller(stream, _function(handler), MappingSettings(batch_size=10)).drain()

    assert calls == [list(range(10)), [6, 7, 8, 9]]
    assert stats.retries == 1


def test_function_error_bisects_until_the_poison_record_is_isolated_and_sent_to_the_dlq() -> None:
    stream = _stream()
    queue = boto3.client("sqs").create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    delivered: list[int] = []
    _put(stream, list(range(8)))

    def handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        values = _payloads(event)
        if 5 in values:
            raise RuntimeError("cannot process 5")
        delivered.extend(values)
        return {"batchItemFailures": []}

    settings = MappingSettings(batch_size=8, max_retry_attempts=1, on_failure_queue_url=queue)
    stats = KinesisPoller(stream, _function(handler), settings).drain()

    assert sorted(delivered) == [0, 1, 2, 3, 4, 6, 7]
    assert stats.failed_batches == 1 and stats.failed_records == 1
    messages = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    info = json.loads(messages[0]["Body"])["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == info["endSequenceNumber"]
    assert info["shardId"] == "shardId-000000000000"


def test_drain_resumes_after_the_last_checkpoint() -> None:
    stream = _stream()
    seen: list[int] = []
    fn = _function(lambda event, ctx: seen.extend(_payloads(event)) or {"batchItemFailures": []})
    poller = KinesisPoller(stream, fn, MappingSettings(batch_size=50))
    _put(stream, [1, 2, 3])
    poller.drain()
    _put(stream, [4, 5])
    poller.drain()
    assert seen == [1, 2, 3, 4, 5]


def test_producer_retries_only_failed_entries() -> None:
    """Kinesis throttling is injected by wrapping the client (AWS behaviour moto can't produce)."""
    stream = _stream()
    real = boto3.client("kinesis")

    class Throttling:
        calls = 0

        def put_records(self, **kwargs: Any) -> dict[str, Any]:
            Throttling.calls += 1
            if Throttling.calls == 1:  # reject every other entry of the first call
                accepted = kwargs["Records"][::2]
                real.put_records(StreamName=kwargs["StreamName"], Records=accepted)
                return {"Records": [{"SequenceNumber": "1"} if i % 2 == 0 else
                                    {"ErrorCode": "ProvisionedThroughputExceededException", "ErrorMessage": "slow down"}
                                    for i in range(len(kwargs["Records"]))]}
            return real.put_records(**kwargs)

    result = put_records(stream, [str(v).encode() for v in range(10)], ["k"] * 10, client=Throttling(), base_delay=0.001)
    assert result.retried_entries == 5 and result.calls == 2
    seen: list[int] = []
    fn = _function(lambda event, ctx: seen.extend(_payloads(event)) or {"batchItemFailures": []})
    KinesisPoller(stream, fn, MappingSettings(batch_size=100)).drain()
    assert sorted(seen) == list(range(10))


def test_records_older_than_the_maximum_age_go_to_the_on_failure_destination() -> None:
    stream = _stream()
    queue = boto3.client("sqs").create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    seen: list[int] = []
    fn = _function(lambda event, ctx: seen.extend(_payloads(event)) or {"batchItemFailures": []})
    _put(stream, [1, 2, 3, 4])
    settings = MappingSettings(batch_size=10, max_record_age_seconds=3600, on_failure_queue_url=queue)
    # [1, 2, 3] arrived two hours ago, past the limit; [4] just now, far inside it however slow the machine
    stats = KinesisPoller(stream, fn, settings, kinesis=_arrived_earlier({b"1", b"2", b"3"}, hours=2)).drain()
    assert seen == [4]
    assert stats.failed_records == 3
    message = json.loads(boto3.client("sqs").receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert message["requestContext"]["condition"] == "RecordAgeExceeded"
    assert message["KinesisBatchInfo"]["batchSize"] == 3


def _arrived_earlier(payloads: set[bytes], hours: float) -> Any:
    """A Kinesis client that reports the records holding `payloads` as arrived `hours` earlier than moto
    stamped them (moto stamps arrival with the wall clock, and a test cannot wait hours)."""
    kinesis = boto3.client("kinesis")

    def age(parsed: dict[str, Any], **_: Any) -> None:
        for record in parsed.get("Records", []):
            if record["Data"] in payloads:
                record["ApproximateArrivalTimestamp"] -= timedelta(hours=hours)

    kinesis.meta.events.register("after-call.kinesis.GetRecords", age)
    return kinesis


def _put_once_caught_up(stream: str, values: list[int]) -> Any:
    """A Kinesis client that puts `values` after its first empty GetRecords that follows records.

    Handed to the poller, it makes the second group arrive just after the poller has read the
    first and found the shard caught up, whatever the machine's speed: the gap is one PutRecords
    call, far inside the windows used below, and nothing depends on when the test itself runs.
    """
    kinesis = boto3.client("kinesis")
    seen_records, pending = [False], [values]

    def after_read(parsed: dict[str, Any], **_: Any) -> None:
        seen_records[0] = seen_records[0] or bool(parsed.get("Records"))
        if seen_records[0] and not parsed.get("Records") and pending:
            _put(stream, pending.pop())

    kinesis.meta.events.register("after-call.kinesis.GetRecords", after_read)
    return kinesis


@pytest.mark.parametrize(("window", "expected"), [(0, [[1, 2, 3], [4, 5]]), (2, [[1, 2, 3, 4, 5]])])
def test_records_that_arrive_within_the_batching_window_join_the_batch(window: int, expected: list[list[int]]) -> None:
    stream = _stream()
    batches: list[list[int]] = []
    fn = _function(lambda event, ctx: batches.append(_payloads(event)) or {"batchItemFailures": []})
    _put(stream, [1, 2, 3])
    settings = MappingSettings(batch_size=100, batching_window_seconds=window)
    poller = KinesisPoller(stream, fn, settings, kinesis=_put_once_caught_up(stream, [4, 5]), clock=VirtualClock())

    stats = [poller.drain(), poller.drain()]  # the second drain delivers whatever the first left

    # Window 0: what one read returned goes at once. A window keeps gathering past a read that
    # finds the shard caught up, so the later group joins the batch.
    assert batches == expected
    assert sum(s.records for s in stats) == 5 and sum(s.invocations for s in stats) == len(expected)


def test_a_batch_within_its_window_goes_as_soon_as_it_reaches_batch_size() -> None:
    stream = _stream()
    batches: list[list[int]] = []
    fn = _function(lambda event, ctx: batches.append(_payloads(event)) or {"batchItemFailures": []})
    _put(stream, [1, 2, 3])
    settings = MappingSettings(batch_size=4, batching_window_seconds=2)
    poller = KinesisPoller(stream, fn, settings, kinesis=_put_once_caught_up(stream, list(range(4, 11))),
                           clock=VirtualClock())

    poller.drain()
    poller.drain()

    assert batches == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


def test_record_sizer_gives_the_exact_size_of_the_json_event() -> None:
    rng = random.Random(7)
    keys = ["k", "user-42", 'quote" and \\ and \u2028 and é', "x" * 256]
    arn, shard = "arn:aws:kinesis:eu-west-1:000000000000:stream/s", "shardId-000000000003"
    size_of = RecordSizer(shard, arn, "eu-west-1")
    for n in range(1, 40):
        records = [{"PartitionKey": rng.choice(keys), "SequenceNumber": str(rng.randrange(1, 10**56)),
                    "Data": rng.randbytes(rng.randrange(0, 300)),
                    "ApproximateArrivalTimestamp": datetime.fromtimestamp(rng.uniform(0, 2e9), timezone.utc)}
                   for _ in range(n)]
        payload = json.dumps(kinesis_event(records, shard, arn, "eu-west-1")).encode()
        assert len(payload) == EMPTY_EVENT_BYTES + sum(size_of(r) for r in records)


def test_batches_stop_short_of_lambdas_6_mb_payload_and_keep_order() -> None:
    stream = _stream()
    events: list[dict[str, Any]] = []
    fn = _function(lambda event, ctx: events.append(event) or {"batchItemFailures": []})
    sizes = [600_000 + 29_000 * (i % 13) for i in range(20)]  # about 15 MB in all, well under 1 MiB each
    put_records(stream, [f"{i:06d}".encode() + b"x" * (size - 6) for i, size in enumerate(sizes)], ["k"] * len(sizes))

    stats = KinesisPoller(stream, fn, MappingSettings(batch_size=100)).drain()

    def index(record: dict[str, Any]) -> int:
        return int(base64.b64decode(record["kinesis"]["data"][:8]))

    assert [index(r) for e in events for r in e["Records"]] == list(range(len(sizes)))  # order kept, none lost
    assert stats.records == len(sizes) and len(events) >= 3
    # Lambda counts the JSON event: each under the limit, and each cut only when the next record would not fit.
    sent = [len(json.dumps(e).encode()) for e in events]
    assert max(sent) < MAX_PAYLOAD_BYTES
    for event, following in zip(events, events[1:]):
        assert len(json.dumps({"Records": event["Records"] + following["Records"][:1]}).encode()) >= MAX_PAYLOAD_BYTES


@pytest.mark.parametrize("bad_entry", [
    lambda seqs: {"itemIdentifier": None},
    lambda seqs: {"itemIdentifier": ""},
    lambda seqs: {"itemIdentifier": "not-a-sequence-number"},
    lambda seqs: {"itemIdentifier": str(int(seqs[-1]) + 1)},   # checkpointing past it would skip records
    lambda seqs: {"itemIdentifier": str(int(seqs[0]) - 1)},    # before the batch: already checkpointed
    lambda seqs: {"itemIdentifer": seqs[3]},                   # a misspelt key: no itemIdentifier at all
    lambda seqs: seqs[3],                                      # not an object
], ids=["null", "empty", "not-a-number", "past-the-batch", "before-the-batch", "bad-key", "bare-string"])
def test_a_bad_item_identifier_fails_the_whole_batch_which_is_retried(
        bad_entry: Any, caplog: pytest.LogCaptureFixture) -> None:
    """Lambda treats a response it cannot checkpoint from as a complete failure of the batch (even beside a
    valid entry): the whole batch again, no record skipped, and the log names the entry."""
    stream = _stream()
    calls: list[list[int]] = []
    reported: list[Any] = []
    _put(stream, list(range(6)))

    def handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        calls.append(_payloads(event))
        if len(calls) > 1:
            return {"batchItemFailures": []}
        seqs = [r["kinesis"]["sequenceNumber"] for r in event["Records"]]
        reported.append(bad_entry(seqs))
        return {"batchItemFailures": [{"itemIdentifier": seqs[4]}, reported[0]]}

    with caplog.at_level(logging.WARNING, logger="lakehouse.cloud.poller"):
        stats = KinesisPoller(stream, _function(handler), MappingSettings(batch_size=10)).drain()

    assert calls == [list(range(6)), list(range(6))]
    assert stats.retries == 1 and stats.failed_records == 0
    assert any(json.dumps(reported[0]) in r.getMessage() for r in caplog.records), caplog.text


def test_a_batch_whose_item_identifiers_stay_bad_goes_to_the_on_failure_destination() -> None:
    stream = _stream()
    queue = boto3.client("sqs").create_queue(QueueName=f"dlq-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    fn = _function(lambda event, ctx: {"batchItemFailures": [{"itemIdentifier": None}]})
    _put(stream, list(range(5)))

    settings = MappingSettings(batch_size=10, max_retry_attempts=2, on_failure_queue_url=queue)
    stats = KinesisPoller(stream, fn, settings).drain()

    assert stats.invocations == 3 and stats.failed_batches == 1 and stats.failed_records == 5
    message = json.loads(boto3.client("sqs").receive_message(QueueUrl=queue)["Messages"][0]["Body"])
    assert message["KinesisBatchInfo"]["batchSize"] == 5


def test_retries_of_a_batch_back_off_exponentially_up_to_a_bound() -> None:
    stream = _stream()
    calls: list[list[int]] = []

    def handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        calls.append(_payloads(event))
        if len(calls) <= 4:
            raise RuntimeError("not yet")
        return {"batchItemFailures": []}

    _put(stream, [1, 2, 3])
    clock = VirtualClock()  # records what the poller waits before each retry, and waits for none of it
    settings = MappingSettings(batch_size=10, max_retry_attempts=5, bisect_on_error=False,
                               retry_backoff_seconds=1.0, max_retry_backoff_seconds=3.0)
    stats = KinesisPoller(stream, _function(handler), settings, clock=clock).drain()

    assert calls == [[1, 2, 3]] * 5 and stats.retries == 4
    assert clock.waits == [1.0, 2.0, 3.0, 3.0]


def _failing_list_shards(times: int) -> Any:
    """A Kinesis client whose first `times` ListShards calls raise, as an unexpected error in a poll would."""
    kinesis = boto3.client("kinesis")
    left = [times]

    def fail(**_: Any) -> None:
        if left[0] > 0:
            left[0] -= 1
            raise RuntimeError("the stream went away for a moment")

    kinesis.meta.events.register("before-call.kinesis.ListShards", fail)
    return kinesis


def test_an_error_in_a_polling_thread_is_logged_and_polling_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    stream = _stream()
    seen: list[int] = []
    settled = threading.Event()  # set by the first delivery, or by the polling thread ending

    def handler(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        seen.extend(_payloads(event))
        settled.set()
        return {"batchItemFailures": []}

    _put(stream, [1, 2, 3])
    poller = KinesisPoller(stream, _function(handler), MappingSettings(batch_size=10), kinesis=_failing_list_shards(2))
    stop = threading.Event()

    def poll() -> None:
        try:
            poller.run_until(stop)
        finally:
            settled.set()

    thread = threading.Thread(target=poll, name="poller-under-test")
    with caplog.at_level(logging.WARNING, logger="lakehouse.cloud.poller"):
        thread.start()
        settled.wait(120)
        stop.set()
        thread.join(120)

    assert seen == [1, 2, 3]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 2 and all(stream in e and "the stream went away for a moment" in e for e in errors)
    assert poller.last_error is None and poller.stopped_by is None  # it recovered


def test_a_poller_that_cannot_go_on_stops_serve_and_names_its_stream(
        pipeline: tuple[LocalLake, Provisioned], local_cloud: LocalCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    """The orders poller runs on its own thread in `lakehouse up`; if it cannot go on, `serve` must not
    carry on without it: every poller stops and `serve` raises, naming the stream and the error."""
    from lakehouse.cloud.pipeline import LocalPipeline, PollerStopped

    lake, resources = pipeline
    local = LocalPipeline(lake)
    local.cloud, local.resources = local_cloud, resources  # the session's cloud, already provisioned

    class Unrecoverable(BaseException):
        """Not an Exception: what run_until does not retry."""

    def drain() -> None:
        raise Unrecoverable("the orders poller cannot go on")

    orders = local.poller("orders")
    monkeypatch.setattr(orders, "drain", drain)
    stop = threading.Event()
    safety = threading.Timer(120, stop.set)  # only so that a serve that never ends cannot hang the run
    safety.start()
    try:
        with pytest.raises(PollerStopped) as raised:
            local.serve(stop)
    finally:
        safety.cancel()

    assert resources.kinesis_sources["orders"]["stream"] in str(raised.value)
    assert "the orders poller cannot go on" in str(raised.value)
    assert isinstance(orders.stopped_by, Unrecoverable)
    assert not (lake.root / "cloud.json").exists()
