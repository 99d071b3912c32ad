"""Replay the batches the event source mapping gave up on (its on-failure queue), without duplicates.

Each failure message names a shard and a sequence range (Lambda's KinesisBatchInfo), or, from an MSK
mapping, topic-partitions and offset ranges (KafkaBatchInfo). Kinesis records are fetched again from
the stream while it retains them, else from the raw zone; Kafka records from the raw zone (no broker is
reachable from here, and its envelopes carry the Kafka coordinates). They are handed to the cleaner as
the same batch, in the event shape it first came in: its output names are deterministic per channel and
position range, so a replayed batch overwrites, never duplicates, and silver's first copy per event_id
does the rest. A message is deleted only after its batch was cleaned; a message that is neither kind is
reported and kept.
"""
from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from datetime import datetime, timezone
from typing import Any

import boto3
import pyarrow.fs as pafs
from botocore.exceptions import ClientError

from lakehouse.cloud.poller import kinesis_event
from lambdas.cleaner.raw import read_delivery

log = logging.getLogger(__name__)


class ReplayError(RuntimeError):
    """A batch could not be replayed: the message names it and why; its DLQ message is kept."""


@dataclass
class ReplayResult:
    batches: int = 0
    records: int = 0
    from_stream: int = 0
    from_raw: int = 0
    failed: list[str] = field(default_factory=list)


def _from_stream(kinesis: Any, stream_arn: str, shard_id: str, start: str, end: str) -> list[dict[str, Any]]:
    """The records from `start` to `end` while the stream still retains them; [] when it doesn't."""
    try:
        iterator = kinesis.get_shard_iterator(StreamName=stream_arn.split("/", 1)[1], ShardId=shard_id,
                                              ShardIteratorType="AT_SEQUENCE_NUMBER",
                                              StartingSequenceNumber=start)["ShardIterator"]
    except ClientError as error:  # trimmed, expired or deleted: the raw zone is the source then
        log.info("stream no longer serves %s %s: %s", shard_id, start, error.response["Error"]["Code"])
        return []
    records: list[dict[str, Any]] = []
    while iterator:
        response = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        for record in response["Records"]:
            if int(record["SequenceNumber"]) > int(end):
                return records
            records.append(record)
        if not response["Records"]:
            break
        iterator = response.get("NextShardIterator")
    return records


class _RawZone:
    """The raw zone's batch files, listed once per replay, not once per failure message. What the
    replayed batches write meanwhile holds their own records, and failure ranges never overlap."""

    def __init__(self, raw_uri: str) -> None:
        self.filesystem, self._root = pafs.FileSystem.from_uri(raw_uri)

    @cached_property
    def files(self) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self._root, recursive=True, allow_not_found=True)
        return [info for info in self.filesystem.get_file_info(selector)
                if info.is_file and info.path.endswith(".ndjson.gz")]


def _raw_records(raw: _RawZone, channel: str, start: str, end: str) -> list[tuple[str, str | None, int, bytes]]:
    """(position, key, arrival ms, payload) of a channel's range as the raw zone kept it, in order."""
    found: dict[str, tuple[str, str | None, int, bytes]] = {}
    for info in raw.files:
        if not info.base_name.startswith(channel):
            continue
        with raw.filesystem.open_input_stream(info.path, compression=None) as stream:
            delivery = read_delivery(info.path, stream.read())
        if delivery.channel != channel:
            continue
        for record in zip(delivery.positions, delivery.keys, delivery.arrivals_ms, delivery.payloads):
            if int(start) <= int(record[0]) <= int(end):
                found[record[0]] = record
    return [found[position] for position in sorted(found, key=int)]


def _from_raw(raw: _RawZone, shard_id: str, start: str, end: str) -> list[dict[str, Any]]:
    """The Kinesis records of the range, as PutRecords-shaped dicts for `kinesis_event`."""
    return [{"SequenceNumber": position, "PartitionKey": key, "Data": data,
             "ApproximateArrivalTimestamp": datetime.fromtimestamp(arrival_ms / 1000, timezone.utc)}
            for position, key, arrival_ms, data in _raw_records(raw, shard_id, start, end)]


def _kafka_event(info: dict[str, Any], raw: _RawZone) -> tuple[dict[str, Any], int]:
    """The MSK event of a KafkaBatchInfo's ranges, rebuilt from the raw zone; and its record count."""
    records: dict[str, list[dict[str, Any]]] = {}
    for channel, ranges in sorted(info["recordsInfo"].items()):
        topic, _, partition = channel.rpartition("-")
        records[channel] = [{
            "topic": topic, "partition": int(partition), "offset": int(offset), "timestamp": arrival_ms,
            "timestampType": "CREATE_TIME", **({"key": key} if key is not None else {}),
            "value": base64.b64encode(data).decode("ascii"), "headers": [],
        } for offset, key, arrival_ms, data in _raw_records(raw, channel, ranges["firstRecordOffset"],
                                                            ranges["lastRecordOffset"])]
    event = {"eventSource": "aws:kafka", "eventSourceArn": info.get("eventSourceArn", ""),
             "bootstrapServers": info.get("bootstrapServers", ""), "records": records}
    return event, sum(map(len, records.values()))


def replay_dlq(queue_url: str, function_name: str, raw_uri: str, max_messages: int = 1000) -> ReplayResult:
    """Reprocess every batch in the on-failure queue through the cleaner; returns what was replayed."""
    sqs, kinesis, lam = boto3.client("sqs"), boto3.client("kinesis"), boto3.client("lambda")
    region = kinesis.meta.region_name
    raw = _RawZone(raw_uri)
    result = ReplayResult()
    while result.batches + len(result.failed) < max_messages:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=300).get("Messages", [])
        if not messages:
            break
        for message in messages:
            try:
                event, batch, count, source = _failed_batch(message["Body"], kinesis, raw, region)
                response = lam.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
                body = json.loads(response["Payload"].read() or b"null")
                if "FunctionError" in response or (body or {}).get("batchItemFailures"):
                    raise ReplayError(f"batch {batch}: the cleaner failed again: {body}")
            except (ReplayError, KeyError, TypeError, ValueError) as error:  # also a garbled record or raw file
                problem = str(error) if isinstance(error, ReplayError) else \
                    f"message {message.get('MessageId')}: cannot be replayed: {error!r}"
                log.error("%s", problem)
                result.failed.append(problem)
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            result.batches += 1
            result.records += count
            if source == "stream":
                result.from_stream += count
            else:
                result.from_raw += count
    return result


def _failed_batch(body: str, kinesis: Any, raw: _RawZone, region: str) -> tuple[dict[str, Any], str, int, str]:
    """(the cleaner's event, the batch's name, its record count, "stream" or "raw") of a failure record."""
    try:
        failure = json.loads(body)
    except ValueError:
        failure = None
    if isinstance(failure, dict) and "KinesisBatchInfo" in failure:
        info = failure["KinesisBatchInfo"]
        batch = f"{info['shardId']} {info['startSequenceNumber']}..{info['endSequenceNumber']}"
        records = _from_stream(kinesis, info["streamArn"], info["shardId"],
                               info["startSequenceNumber"], info["endSequenceNumber"])
        source = "stream"
        if len(records) != info["batchSize"]:
            records = _from_raw(raw, info["shardId"], info["startSequenceNumber"], info["endSequenceNumber"])
            source = "raw"
        found = len(records)
        event = kinesis_event(records, info["shardId"], info["streamArn"], region)
        where = "neither the stream nor the raw zone"
    elif isinstance(failure, dict) and "recordsInfo" in failure.get("KafkaBatchInfo", {}):
        info = failure["KafkaBatchInfo"]
        batch = ", ".join(f"{channel} {r['firstRecordOffset']}..{r['lastRecordOffset']}"
                          for channel, r in sorted(info["recordsInfo"].items()))
        event, found = _kafka_event(info, raw)
        source, where = "raw", "the raw zone"
    else:
        raise ReplayError(f"not an on-failure record of a Kinesis or MSK mapping (no KinesisBatchInfo or "
                          f"KafkaBatchInfo.recordsInfo): {body[:200]!r}")
    if found != info["batchSize"]:
        raise ReplayError(f"batch {batch}: found {found} of its {info['batchSize']} records in {where}")
    return event, batch, found, source
