"""Kinesis producer: PutRecords in batches, retrying only the entries that failed.

The same code puts to AWS and to the local cloud (boto3 honours AWS_ENDPOINT_URL).
"""
from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from typing import Any, Sequence

import boto3

MAX_RECORDS_PER_CALL = 500          # PutRecords limit
MAX_BYTES_PER_CALL = 5 * 1024 * 1024  # PutRecords limit, data plus partition keys
MAX_BYTES_PER_RECORD = 1024 * 1024    # Kinesis limit, data plus partition key


class ProducerError(RuntimeError):
    """Some records could not be put after every retry; `failed` says which and why."""

    def __init__(self, failed: list[tuple[int, str]]) -> None:
        self.failed = failed
        sample = "; ".join(f"record {i}: {reason}" for i, reason in failed[:3])
        super().__init__(f"{len(failed)} record(s) were not accepted by Kinesis after retries ({sample})")


@dataclass
class PutResult:
    records: int = 0
    calls: int = 0
    retried_entries: int = 0


def partition_key(record: bytes) -> str:
    """A key spread evenly over shards, the same for a re-sent record (so its duplicate meets it)."""
    return hashlib.sha1(record).hexdigest()[:16]  # noqa: S324 - spreading, not security


def unsendable(records: Sequence[bytes], partition_keys: Sequence[str]) -> list[int]:
    """Indices of records Kinesis would refuse (over 1 MiB with their key): callers must account for them."""
    return [i for i, (data, key) in enumerate(zip(records, partition_keys, strict=True))
            if len(data) + len(key.encode()) > MAX_BYTES_PER_RECORD]


def _batches(records: Sequence[bytes], keys: Sequence[str]) -> list[list[int]]:
    """Indices of records grouped within PutRecords' count and size limits."""
    batches: list[list[int]] = []
    current: list[int] = []
    size = 0
    for i, (data, key) in enumerate(zip(records, keys, strict=True)):
        entry = len(data) + len(key.encode())
        if current and (len(current) == MAX_RECORDS_PER_CALL or size + entry > MAX_BYTES_PER_CALL):
            batches.append(current)
            current, size = [], 0
        current.append(i)
        size += entry
    if current:
        batches.append(current)
    return batches


def put_records(stream_name: str, records: Sequence[bytes], partition_keys: Sequence[str], *,
                client: Any = None, max_attempts: int = 6, base_delay: float = 0.1) -> PutResult:
    """Put every record, in order within each call, retrying failed entries with jittered backoff.

    A batch whose entries keep failing does not stop the later batches: every record that can be
    put is put, then ProducerError names all the records that could not be (none go missing unsaid).
    """
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    kinesis = client or boto3.client("kinesis")
    result = PutResult(records=len(records))
    refused: list[tuple[int, str]] = []
    for batch in _batches(records, partition_keys):
        refused += _put_batch(kinesis, stream_name, records, partition_keys, batch, result, max_attempts, base_delay)
    if refused:
        raise ProducerError(refused)
    return result


def _put_batch(kinesis: Any, stream_name: str, records: Sequence[bytes], keys: Sequence[str], batch: list[int],
               result: PutResult, max_attempts: int, base_delay: float) -> list[tuple[int, str]]:
    """Put one batch, re-sending only its failed entries; return those still failing after the last attempt."""
    pending = batch
    failed: list[tuple[int, str]] = []
    for attempt in range(max_attempts):
        if attempt:
            result.retried_entries += len(pending)
            # Full jitter: spreads retries of throttled producers instead of synchronising them.
            time.sleep(random.uniform(0, base_delay * 2 ** (attempt - 1)))
        response = kinesis.put_records(
            StreamName=stream_name,
            Records=[{"Data": records[i], "PartitionKey": keys[i]} for i in pending],
        )
        result.calls += 1
        failed = [(i, f"{entry['ErrorCode']}: {entry.get('ErrorMessage', '')}")
                  for i, entry in zip(pending, response["Records"], strict=True) if "ErrorCode" in entry]
        if not failed:
            break
        pending = [i for i, _ in failed]
    return failed
