"""Replay the batches the event source mapping gave up on (its on-failure queue), without duplicates.

Each failure message names a shard and a sequence range (Lambda's KinesisBatchInfo). The records
are fetched again from the stream while it retains them, else from the raw zone, and handed to
the cleaner as the same batch: its output names are deterministic per shard and sequence range,
so a replayed batch overwrites, never duplicates, and silver's MERGE on event_id does the rest.
A message is deleted only after its batch was cleaned.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import boto3
import pyarrow.fs as pafs
from botocore.exceptions import ClientError

from lakehouse.poller import kinesis_event
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


def _from_raw(raw_uri: str, shard_id: str, start: str, end: str) -> list[dict[str, Any]]:
    """The records of the range as the raw zone kept them (its envelopes carry the Kinesis coordinates)."""
    filesystem, root = pafs.FileSystem.from_uri(raw_uri)
    selector = pafs.FileSelector(root, recursive=True, allow_not_found=True)
    found: dict[str, dict[str, Any]] = {}
    for info in filesystem.get_file_info(selector):
        if not (info.is_file and info.base_name.startswith(shard_id) and info.path.endswith(".ndjson.gz")):
            continue
        with filesystem.open_input_stream(info.path, compression=None) as stream:
            delivery = read_delivery(info.path, stream.read())
        for position, key, arrival_ms, data in zip(delivery.positions, delivery.keys, delivery.arrivals_ms,
                                                   delivery.payloads):
            if delivery.channel == shard_id and int(start) <= int(position) <= int(end):
                found[position] = {"SequenceNumber": position, "PartitionKey": key, "Data": data,
                                   "ApproximateArrivalTimestamp": datetime.fromtimestamp(arrival_ms / 1000,
                                                                                         timezone.utc)}
    return [found[seq] for seq in sorted(found, key=int)]


def replay_dlq(queue_url: str, function_name: str, raw_uri: str, max_messages: int = 1000) -> ReplayResult:
    """Reprocess every batch in the on-failure queue through the cleaner; returns what was replayed."""
    sqs, kinesis, lam = boto3.client("sqs"), boto3.client("kinesis"), boto3.client("lambda")
    region = kinesis.meta.region_name
    result = ReplayResult()
    while result.batches + len(result.failed) < max_messages:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=300).get("Messages", [])
        if not messages:
            break
        for message in messages:
            info = json.loads(message["Body"])["KinesisBatchInfo"]
            batch = f"{info['shardId']} {info['startSequenceNumber']}..{info['endSequenceNumber']}"
            try:
                records = _from_stream(kinesis, info["streamArn"], info["shardId"],
                                       info["startSequenceNumber"], info["endSequenceNumber"])
                source = "stream"
                if len(records) != info["batchSize"]:
                    records = _from_raw(raw_uri, info["shardId"], info["startSequenceNumber"],
                                        info["endSequenceNumber"])
                    source = "raw"
                if len(records) != info["batchSize"]:
                    raise ReplayError(f"batch {batch}: found {len(records)} of its {info['batchSize']} "
                                      "records in neither the stream nor the raw zone")
                event = kinesis_event(records, info["shardId"], info["streamArn"], region)
                response = lam.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
                body = json.loads(response["Payload"].read() or b"null")
                if "FunctionError" in response or (body or {}).get("batchItemFailures"):
                    raise ReplayError(f"batch {batch}: the cleaner failed again: {body}")
            except ReplayError as error:
                log.error("%s", error)
                result.failed.append(str(error))
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            result.batches += 1
            result.records += len(records)
            if source == "stream":
                result.from_stream += len(records)
            else:
                result.from_raw += len(records)
    return result
