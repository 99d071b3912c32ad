"""A local Kinesis event source mapping with Lambda's batching semantics.

moto's own mapping invokes once per record and ignores BatchSize, so the local cloud polls the
shards itself, over the Kinesis API, and invokes the function through the Lambda API, as Lambda's
pollers do: a batch goes out when it holds BatchSize records, when the next record would take the
invocation payload past Lambda's 6 MB limit, or when MaximumBatchingWindowInSeconds has passed;
then per-shard ordering, ReportBatchItemFailures checkpointing, BisectBatchOnFunctionError,
MaximumRetryAttempts, and an on-failure SQS destination that carries the shard and sequence range
of a batch given up on. Decision 0002 says how this follows Lambda's documented batching.
"""
from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import boto3

log = logging.getLogger(__name__)

MAX_PAYLOAD_BYTES = 6_291_456  # Lambda's "6 MB": an invoke payload "must be smaller than 6291456 bytes"
IDLE_POLL_SECONDS = 1.0        # Lambda reads an idle Kinesis shard about once a second
WINDOW_POLL_SECONDS = 0.2      # re-reads while a batching window is open: sooner, so local windows fill


@dataclass(frozen=True)
class MappingSettings:
    batch_size: int
    batching_window_seconds: float = 0.0
    max_retry_attempts: int = 3
    max_record_age_seconds: int = -1  # -1: no limit, as on AWS
    bisect_on_error: bool = True
    report_batch_item_failures: bool = True
    on_failure_queue_url: str | None = None


@dataclass
class PollStats:
    records: int = 0          # records read from the stream
    invocations: int = 0
    retries: int = 0
    failed_batches: int = 0   # batches given up on and sent to the on-failure destination
    failed_records: int = 0
    per_shard: dict[str, int] = field(default_factory=dict)


def _event_record(r: dict[str, Any], shard_id: str, stream_arn: str, region: str) -> dict[str, Any]:
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": r["PartitionKey"],
            "sequenceNumber": r["SequenceNumber"],
            "data": base64.b64encode(r["Data"]).decode("ascii"),
            "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{r['SequenceNumber']}",
        "eventName": "aws:kinesis:record",
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def kinesis_event(records: list[dict[str, Any]], shard_id: str, stream_arn: str, region: str) -> dict[str, Any]:
    """A Lambda Kinesis event for GetRecords records, shaped as Lambda delivers it."""
    return {"Records": [_event_record(r, shard_id, stream_arn, region) for r in records]}


# json.dumps(kinesis_event(...)) is this many bytes plus, per record, its RecordSizer size.
EMPTY_EVENT_BYTES = len(json.dumps({"Records": []})) - len(", ")


class RecordSizer:
    """The bytes one record adds to the invoke payload json.dumps(kinesis_event(...)), exactly.

    Lambda counts the JSON event against its 6 MB limit, and in it base64 makes n data bytes
    4*ceil(n/3). Encoding every record twice (to measure, then to send) would be wasted work, so
    the envelope, the same for every record of a shard, is measured once, and only the parts
    that vary are added per record: partition key, sequence number (also in eventID), arrival time.
    """

    def __init__(self, shard_id: str, stream_arn: str, region: str) -> None:
        blank = {"PartitionKey": "", "SequenceNumber": "", "Data": b"",
                 "ApproximateArrivalTimestamp": datetime.fromtimestamp(0, timezone.utc)}
        envelope = len(json.dumps(_event_record(blank, shard_id, stream_arn, region)))
        # json writes floats with repr(); the blank's key and time are taken out, ", " added.
        self._fixed = envelope - len(json.dumps("")) - len(repr(0.0)) + len(", ")

    def __call__(self, r: dict[str, Any]) -> int:
        return (self._fixed + len(json.dumps(r["PartitionKey"])) + 2 * len(r["SequenceNumber"])
                + len(repr(r["ApproximateArrivalTimestamp"].timestamp())) + 4 * -(-len(r["Data"]) // 3))


@dataclass
class _ShardReader:
    """A shard being drained: its iterator, and records read but not yet batched (a full payload left them)."""
    iterator: str
    size_of: RecordSizer
    unbatched: deque[dict[str, Any]] = field(default_factory=deque)


class KinesisPoller:
    """Reads every shard of a stream and invokes a function with batches of its records."""

    def __init__(self, stream_name: str, function_name: str, settings: MappingSettings, *,
                 kinesis: Any = None) -> None:
        self.stream_name, self.function_name, self.settings = stream_name, function_name, settings
        self._kinesis = kinesis or boto3.client("kinesis")
        self._lambda = boto3.client("lambda")
        self._sqs = boto3.client("sqs")
        summary = self._kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
        self._stream_arn = summary["StreamARN"]
        self._region = self._kinesis.meta.region_name
        self._iterators: dict[str, str] = {}

    def run_until(self, stop: threading.Event) -> PollStats:
        """Poll continuously, as Lambda's pollers do, until `stop` is set (for `lakehouse up`)."""
        stats = PollStats()
        while not stop.is_set():
            delivered = self.drain()
            for name in ("records", "invocations", "retries", "failed_batches", "failed_records"):
                setattr(stats, name, getattr(stats, name) + getattr(delivered, name))
            if not delivered.records:
                stop.wait(IDLE_POLL_SECONDS)
        return stats

    def drain(self) -> PollStats:
        """Deliver every record now in the stream, shard by shard, then return (records stay checkpointed)."""
        stats = PollStats()
        shards = self._kinesis.list_shards(StreamName=self.stream_name)["Shards"]
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = self._iterators.get(shard_id) or self._kinesis.get_shard_iterator(
                StreamName=self.stream_name, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            reader = _ShardReader(iterator, RecordSizer(shard_id, self._stream_arn, self._region))
            while batch := self._next_batch(reader):
                stats.records += len(batch)
                stats.per_shard[shard_id] = stats.per_shard.get(shard_id, 0) + len(batch)
                self._deliver(batch, shard_id, stats)
            self._iterators[shard_id] = reader.iterator  # only now: an error above re-reads, never skips
        return stats

    def _next_batch(self, reader: _ShardReader) -> list[dict[str, Any]]:
        """The shard's next batch, cut when the first of Lambda's three conditions holds.

        BatchSize records; or the next record would take the payload to MAX_PAYLOAD_BYTES; or
        the batching window, opened when the batch's first record is found, has passed. With a
        window of 0 that is whatever one read returned. Empty when the shard has nothing new.
        """
        batch: list[dict[str, Any]] = []
        payload = EMPTY_EVENT_BYTES
        deadline: float | None = None
        while True:
            caught_up = False  # left-over records, no read this round: the next read needn't wait
            if not reader.unbatched:
                response = self._kinesis.get_records(ShardIterator=reader.iterator,
                                                     Limit=self.settings.batch_size - len(batch))
                reader.iterator = response["NextShardIterator"]
                reader.unbatched.extend(response["Records"])
                caught_up = response.get("MillisBehindLatest", 0) == 0
            while reader.unbatched and len(batch) < self.settings.batch_size:
                grown = payload + reader.size_of(reader.unbatched[0])
                if batch and grown >= MAX_PAYLOAD_BYTES:
                    return batch  # the record waits, first in the next batch; one alone goes as it is
                batch.append(reader.unbatched.popleft())
                payload = grown
            if len(batch) == self.settings.batch_size or (not batch and caught_up):
                return batch
            if not batch:
                continue  # an empty read behind the tip of the shard: Kinesis has more further on
            if deadline is None:
                deadline = time.monotonic() + self.settings.batching_window_seconds
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return batch
            if caught_up:
                time.sleep(min(WINDOW_POLL_SECONDS, remaining))

    def _deliver(self, batch: list[dict[str, Any]], shard_id: str, stats: PollStats) -> None:
        """Invoke until the batch succeeds, retrying from the failed checkpoint, bisecting on errors."""
        pending = [batch]
        attempts: dict[str, int] = {}
        while pending:
            records, expired = self._split_expired(pending.pop(0))
            if expired:
                self._give_up(expired, shard_id, stats, condition="RecordAgeExceeded")
            if not records:
                continue
            key = records[0]["SequenceNumber"] + ":" + records[-1]["SequenceNumber"]
            stats.invocations += 1
            ok, failed_from = self._invoke(records, shard_id)
            if ok and failed_from is None:
                continue
            attempts[key] = attempts.get(key, 0) + 1
            if attempts[key] > self.settings.max_retry_attempts:
                self._give_up(records, shard_id, stats)
                continue
            stats.retries += 1
            if failed_from is not None:
                # ReportBatchItemFailures: everything before the failed item is checkpointed.
                retry = [r for r in records if int(r["SequenceNumber"]) >= int(failed_from)]
                pending.insert(0, retry)
            elif self.settings.bisect_on_error and len(records) > 1:
                half = len(records) // 2
                pending[:0] = [records[:half], records[half:]]
            else:
                pending.insert(0, records)

    def _split_expired(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(records still young enough to deliver, records past MaximumRecordAgeInSeconds)."""
        if self.settings.max_record_age_seconds < 0:
            return records, []
        oldest = datetime.now(timezone.utc).timestamp() - self.settings.max_record_age_seconds
        young: list[dict[str, Any]] = []
        expired: list[dict[str, Any]] = []
        for record in records:
            (expired if record["ApproximateArrivalTimestamp"].timestamp() < oldest else young).append(record)
        return young, expired

    def _invoke(self, records: list[dict[str, Any]], shard_id: str) -> tuple[bool, str | None]:
        """(function succeeded, sequence number to retry from when it reported item failures)."""
        event = kinesis_event(records, shard_id, self._stream_arn, self._region)
        response = self._lambda.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        body = json.loads(response["Payload"].read() or b"null")
        if "FunctionError" in response:
            log.warning("function %s failed on %s records of %s: %s", self.function_name, len(records),
                        shard_id, (body or {}).get("errorMessage"))
            return False, None
        failures = (body or {}).get("batchItemFailures") if self.settings.report_batch_item_failures else None
        if failures:
            return True, min((f["itemIdentifier"] for f in failures), key=int)
        return True, None

    def _give_up(self, records: list[dict[str, Any]], shard_id: str, stats: PollStats,
                 condition: str = "RetryAttemptsExhausted") -> None:
        stats.failed_batches += 1
        stats.failed_records += len(records)
        log.error("giving up on %s records of %s: %s", len(records), shard_id, condition)
        if self.settings.on_failure_queue_url is None:
            return
        arrival = [r["ApproximateArrivalTimestamp"] for r in records]
        message = {
            "version": "1.0",
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "requestContext": {"condition": condition, "functionArn": self.function_name,
                               "approximateInvokeCount": self.settings.max_retry_attempts + 1},
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["SequenceNumber"],
                "endSequenceNumber": records[-1]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": min(arrival).isoformat(),
                "approximateArrivalOfLastRecord": max(arrival).isoformat(),
                "batchSize": len(records),
                "streamArn": self._stream_arn,
            },
        }
        self._sqs.send_message(QueueUrl=self.settings.on_failure_queue_url, MessageBody=json.dumps(message))
