"""Read the batch pipeline's alerts where the local cloud delivers them: the SQS queue subscribed to the
alert topic (in AWS, people or a pager subscribe to the topic instead)."""
from __future__ import annotations

import json
from dataclasses import dataclass

import boto3


@dataclass(frozen=True)
class Alert:
    subject: str
    message: str


def take_alerts(queue_url: str) -> list[Alert]:
    """Every alert waiting in the queue, oldest first as far as SQS tells; each is removed once read.

    The state machine publishes before its execution ends, and SNS delivers to SQS within the
    publish, so an ended execution's alert is already waiting."""
    sqs = boto3.client("sqs")
    found: list[Alert] = []
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            envelope = json.loads(message["Body"])  # SNS's notification, not raw delivery: it keeps the subject
            found.append(Alert(subject=envelope.get("Subject") or "", message=envelope["Message"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return found
