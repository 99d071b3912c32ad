"""A local SQS event source mapping, for the live committer's FIFO queue (docs/decisions/0500).

As Lambda's SQS pollers do: receive up to BatchSize messages (a FIFO queue hands out a message group's
messages in order, and none of a group while some are in flight), invoke the function through the
Lambda API with the SQS event, delete what it handled, and leave the rest to reappear after the
visibility timeout: a function error leaves them all, ReportBatchItemFailures leaves the failed ones,
untouched. So a failed message whose visibility the function changed itself (the live committer's deferral,
decision 0504) reappears when the function said, and FIFO holds its group until then, as in AWS.
The queue's redrive policy (maxReceiveCount) moves a message that keeps failing to its dead-letter queue.
Each record carries the message's attributes (SentTimestamp, ApproximateReceiveCount, MessageGroupId...), as
Lambda's do.
"""
from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

import boto3

log = logging.getLogger(__name__)

IDLE_POLL_SECONDS = 0.2  # an idle queue is asked again this soon: the live path is about seconds


@dataclass
class SqsPollStats:
    messages: int = 0  # received (a redelivery counts again)
    invocations: int = 0
    failed: int = 0  # left for redelivery


class SqsPoller:
    """Delivers a queue's messages to a function, `batch_size` at a time."""

    def __init__(self, queue_url: str, function_name: str, *, batch_size: int = 10,
                 visibility_timeout_seconds: int = 30) -> None:
        self.queue_url, self.function_name = queue_url, function_name
        self.batch_size, self.visibility_timeout = batch_size, visibility_timeout_seconds
        self._sqs, self._lambda = boto3.client("sqs"), boto3.client("lambda")
        attributes = self._sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self._queue_arn = attributes["QueueArn"]
        self._region = self._sqs.meta.region_name

    def poll_once(self, stats: SqsPollStats) -> int:
        """Receive one batch and deliver it; returns how many messages it held."""
        messages = self._sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, AttributeNames=["All"],
            VisibilityTimeout=self.visibility_timeout).get("Messages", [])
        if not messages:
            return 0
        stats.messages += len(messages)
        stats.invocations += 1
        failed = self._invoke(messages)
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        stats.failed += len(messages) - len(done)
        return len(messages)

    def drain(self) -> SqsPollStats:
        """Deliver until the queue has nothing visible left (messages left for redelivery wait their turn)."""
        stats = SqsPollStats()
        while self.poll_once(stats):
            pass
        return stats

    def run_until(self, stop: threading.Event) -> SqsPollStats:
        stats = SqsPollStats()
        while not stop.is_set():
            try:
                if not self.poll_once(stats):
                    stop.wait(IDLE_POLL_SECONDS)
            except Exception:  # noqa: BLE001 - Lambda's pollers retry; so does this one
                log.exception("polling %s failed; polling again", self.queue_url)
                stop.wait(1.0)
        return stats

    def _invoke(self, messages: list[dict[str, Any]]) -> set[str]:
        """The ids of the messages the function did not handle (all of them when it failed)."""
        event = {"Records": [{
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {}, "md5OfBody": m["MD5OfBody"],
            "eventSource": "aws:sqs", "eventSourceARN": self._queue_arn, "awsRegion": self._region,
        } for m in messages]}
        response = self._lambda.invoke(FunctionName=self.function_name, Payload=json.dumps(event).encode())
        body = json.loads(response["Payload"].read() or b"null")
        if "FunctionError" in response:
            log.warning("function %s failed on %s messages: %s", self.function_name, len(messages),
                        (body or {}).get("errorMessage"))
            return {m["MessageId"] for m in messages}
        return {f["itemIdentifier"] for f in (body or {}).get("batchItemFailures", [])}
