"""A local Kinesis event source mapping with Lambda's batching semantics.

moto's own mapping invokes once per record and ignores BatchSize, so the local cloud polls the
shards itself, over the Kinesis API, and invokes the function through the Lambda API, as Lambda's
pollers do: a batch goes out when it holds BatchSize records, when the next record would take the
invocation payload past Lambda's 6 MB limit, or when MaximumBatchingWindowInSeconds has passed;
then per-shard ordering, ReportBatchItemFailures checkpointing, BisectBatchOnFunctionError,
MaximumRetryAttempts with a bounded exponential backoff, and an on-failure SQS destination that
carries the shard and sequence range of a batch given up on. An error while polling is logged and
polled past after the same backoff, as Lambda's pollers retry. Decision 0002 says how this follows
Lambda's documented behaviour.
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
    # Local only (AWS sets its own): the wait before a failed batch's first retry, doubled per retry
    # up to the bound. Short, so a local retry costs little; the same waits pace polls that fail.
    retry_backoff_seconds: float = 0.1
    max_retry_backoff_seconds: float = 2.0

    def retry_delay(self, retry: int) -> float:
        """The wait before the `retry`-th retry (1, 2, ...) of the same batch or poll."""
        doublings = min(retry - 1, 32)  # past the bound anyway; an unbounded power would overflow a float
        return min(self.max_retry_backoff_seconds, self.retry_backoff_seconds * 2.0 ** doublings)


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


class InvalidItemFailures(ValueError):
    """A ReportBatchItemFailures response Lambda cannot checkpoint from; the message names the bad part."""


def retry_index(failures: Any, sequence_numbers: list[str]) -> int | None:
    """Where a batch's retry starts, from the batchItemFailures a function returned; None: all succeeded.

    Lambda checkpoints before the lowest reported sequence number. An entry whose itemIdentifier is
    null, empty, misnamed or no sequence number of this batch makes the whole response unusable
    (Lambda: a complete failure): raises InvalidItemFailures, so no record is checkpointed on a guess.
    """
    if failures is None or failures == []:
        return None
    if not isinstance(failures, list):
        raise InvalidItemFailures(f"batchItemFailures {json.dumps(failures)} is not a list")
    index = {sequence: i for i, sequence in enumerate(sequence_numbers)}
    found: list[int] = []
    for entry in failures:
        identifier = entry.get("itemIdentifier") if isinstance(entry, dict) else None
        if not isinstance(identifier, str) or identifier not in index:
            raise InvalidItemFailures(f"batchItemFailures entry {json.dumps(entry)} names no sequence number "
                                      f"of the batch ({sequence_numbers[0]} to {sequence_numbers[-1]})")
        found.append(index[identifier])
    return min(found)


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


class Clock:
    """The poller's time: the wall clock for records' ages, a monotonic one for batching windows, and its
    waits (retry backoffs, window re-reads). Tests hand in one that only moves when the poller waits."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class _ShardReader:
    """A shard being drained: its iterator, and records read but not yet batched (a full payload left them)."""
    iterator: str
    size_of: RecordSizer
    unbatched: deque[dict[str, Any]] = field(default_factory=deque)


class KinesisPoller:
    """Reads every shard of a stream and invokes a function with batches of its records."""

    def __init__(self, stream_name: str, function_name: str, settings: MappingSettings, *,
                 kinesis: Any = None, clock: Clock | None = None) -> None:
        self.stream_name, self.function_name, self.settings = stream_name, function_name, settings
        self.last_error: str | None = None            # the latest failed poll's error, until a poll succeeds
        self.stopped_by: BaseException | None = None  # what ended run_until, when it was not `stop`
        self._clock = clock or Clock()
        self._kinesis = kinesis or boto3.client("kinesis")
        self._lambda = boto3.client("lambda")
        self._sqs = boto3.client("sqs")
        summary = self._kinesis.describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]
        self._stream_arn = summary["StreamARN"]
        self._region = self._kinesis.meta.region_name
        self._iterators: dict[str, str] = {}

    def run_until(self, stop: threading.Event) -> PollStats:
        """Poll continuously, as Lambda's pollers do, until `stop` is set (for `lakehouse up`).

        A poll that fails is logged and tried again after a backoff, from the last checkpoint: Lambda
        retries whatever keeps it from invoking until the records expire, and so does this. Only what
        is no Exception (SystemExit, KeyboardInterrupt...) ends it: recorded in `stopped_by`, re-raised.
        """
        stats = PollStats()
        errors = 0  # failed polls in a row
        try:
            while not stop.is_set():
                try:
                    delivered = self.drain()
                except Exception as error:
                    errors += 1
                    self._poll_failed(error, errors)
                    stop.wait(self.settings.retry_delay(errors))
                    continue
                if errors:
                    log.warning("stream %s: polling again after %s failed polls", self.stream_name, errors)
                    errors, self.last_error = 0, None
                for name in ("records", "invocations", "retries", "failed_batches", "failed_records"):
                    setattr(stats, name, getattr(stats, name) + getattr(delivered, name))
                if not delivered.records:
                    stop.wait(IDLE_POLL_SECONDS)
        except BaseException as error:
            self.stopped_by = error
            log.critical("stream %s: polling stopped on %r; its records no longer reach %s", self.stream_name,
                         error, self.function_name)
            raise
        return stats

    def _poll_failed(self, error: Exception, in_a_row: int) -> None:
        self.last_error = f"{type(error).__name__}: {error}"
        # The traceback once per run of failures; a stuck stream then logs one line per retry.
        log.error("stream %s: poll %s in a row failed, retrying in %.1f s: %s", self.stream_name, in_a_row,
                  self.settings.retry_delay(in_a_row), self.last_error, exc_info=in_a_row == 1)

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
                deadline = self._clock.monotonic() + self.settings.batching_window_seconds
            remaining = deadline - self._clock.monotonic()
            if remaining <= 0:
                return batch
            if caught_up:
                self._clock.sleep(min(WINDOW_POLL_SECONDS, remaining))

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
            ok, retry_from = self._invoke(records, shard_id)
            if ok and retry_from is None:
                continue
            attempts[key] = attempts.get(key, 0) + 1
            if attempts[key] > self.settings.max_retry_attempts:
                self._give_up(records, shard_id, stats)
                continue
            stats.retries += 1
            self._clock.sleep(self.settings.retry_delay(attempts[key]))
            if retry_from is not None:
                # ReportBatchItemFailures: everything before the failed item is checkpointed.
                pending.insert(0, records[retry_from:])
            elif self.settings.bisect_on_error and len(records) > 1:
                half = len(records) // 2
                pending[:0] = [records[:half], records[half:]]
            else:
                pending.insert(0, records)

    def _split_expired(self, records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(records still young enough to deliver, records past MaximumRecordAgeInSeconds)."""
        if self.settings.max_record_age_seconds < 0:
            return records, []
        oldest = self._clock.time() - self.settings.max_record_age_seconds
        young: list[dict[str, Any]] = []
        expired: list[dict[str, Any]] = []
        for record in records:
            (expired if record["ApproximateArrivalTimestamp"].timestamp() < oldest else young).append(record)
        return young, expired

    def _invoke(self, records: list[dict[str, Any]], shard_id: str) -> tuple[bool, int | None]:
        """(function succeeded, index of the record to retry from when its response failed some)."""
        event = kinesis_event(records, shard_id, self._stream_arn, self._region)
        response = self._lambda.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        body = json.loads(response["Payload"].read() or b"null")
        if "FunctionError" in response:
            log.warning("function %s failed on %s records of %s: %s", self.function_name, len(records),
                        shard_id, (body or {}).get("errorMessage"))
            return False, None
        if not self.settings.report_batch_item_failures:
            return True, None
        try:
            return True, retry_index((body or {}).get("batchItemFailures"), [r["SequenceNumber"] for r in records])
        except InvalidItemFailures as error:
            log.warning("function %s, %s records of %s: %s; as Lambda does, the whole batch counts as failed",
                        self.function_name, len(records), shard_id, error)
            return True, 0

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
