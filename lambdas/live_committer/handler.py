"""The live committer Lambda: fed by an SQS FIFO queue, one message group per live table, so one invocation
at a time commits to a table (docs/decisions/0500).

Each message is a cleaner's notification of a staged batch (lambdas/contracts/live.py: the table, the batch id
and its clean file, sent once the batch's manifest is written). Every file waiting for one table is
registered in one commit (committer.commit), which skips what the table's snapshots record as registered, and
their ledgers recorded in the table's batches table (committer.record, the same rule). A failed commit reports
that table's messages as failed (ReportBatchItemFailures) and SQS redelivers them in order; the other
tables' commits stand. A maintain message in a table's group (maintenance.py, sent on a schedule) maintains the
table after the delivery's commits: the committer stays its one writer.

The commit cadence (decision 0504): with LIVE_COMMIT_EVERY_SECONDS above 0, a table's notifications whose oldest
was sent less than that long ago are not committed yet. Their visibility is set to the time left and they are
reported as failed, so FIFO holds the table's group until then, and the next delivery brings them with what
arrived meanwhile (up to FIFO_BATCH), in one commit. A message is deferred on its first receive only, never in a
full delivery, never beside a maintain message of its table.

Environment: the catalog's (iceberg_tables.catalogs: LAKEHOUSE_WAREHOUSE + LAKEHOUSE_CATALOG_DB locally,
WAREHOUSE_URI in AWS); LIVE_COMMIT_EVERY_SECONDS (0 or unset: commit every delivery) and LIVE_QUEUE_URL (the
queue whose messages it defers).
"""
from __future__ import annotations

import os
import time
from collections import defaultdict
from functools import lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger

from iceberg_tables.catalogs import catalog_from_env
from lambdas.common.environment import LIVE_QUEUE_URL
from lambdas.contracts.live import Notification, parse
from lambdas.live_committer.committer import commit_notified
from lambdas.live_committer.maintenance import maintain_request, maintain_table
from lambdas.live_committer.settings import COMMIT_EVERY, FIFO_BATCH

logger = Logger(service="live_committer")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    waiting: dict[str, list[tuple[dict[str, Any], Notification]]] = defaultdict(list)
    maintain: dict[str, list[str]] = defaultdict(list)  # a table's maintain messages (maintenance.py)
    for record in event.get("Records", []):
        if (to_maintain := maintain_request(record["body"])) is not None:
            maintain[to_maintain].append(record["messageId"])
            continue
        notified = parse(record["body"])  # a malformed message fails the delivery, and ends in the DLQ
        waiting[notified.table].append((record, notified))
    failures = []
    every = int(os.environ.get(COMMIT_EVERY) or 0)
    for table in [t for t in waiting if t not in maintain]:  # a maintain message is never held back
        records = [record for record, _ in waiting[table]]
        if (wait := deferral(records, every, time.time())) is not None and _hold(records, wait):
            logger.info("deferred", extra={"table": table, "messages": len(records), "seconds": wait})
            failures += [{"itemIdentifier": record["messageId"]} for record in records]
            del waiting[table]
    if not waiting and not maintain:
        return {"batchItemFailures": failures}
    catalog = catalog_from_env()
    for table, items in waiting.items():
        notified_batches = [n for _, n in items]
        try:
            done, ledgers = commit_notified(catalog, table, notified_batches)
        except Exception:  # noqa: BLE001 (any failure: this table's messages are redelivered, in order)
            logger.exception("commit failed", extra={"table": table,
                                                     "batches": [n.batch_id for n in notified_batches]})
            failures += [{"itemIdentifier": record["messageId"]} for record, _ in items]
            failures += [{"itemIdentifier": message_id} for message_id in maintain.pop(table, [])]  # in order
            continue
        logger.info("committed", extra={"table": table, "snapshot_id": done.snapshot_id,
                                        "registered": [s.batch_id for s in done.registered],
                                        "already": [s.batch_id for s in done.already],
                                        "ledgers_recorded": [s.batch_id for s in ledgers.registered]})
    for table in maintain:  # after the table's commits; a failure waits for the next scheduled message
        try:
            logger.info("maintained", extra={"table": table, **maintain_table(catalog, table).counts()})
        except Exception:  # noqa: BLE001 (the notifications behind it must not wait on it)
            logger.exception("maintenance failed", extra={"table": table})
    return {"batchItemFailures": failures}


def deferral(records: list[dict[str, Any]], every_s: int, now_s: float) -> int | None:
    """Whole seconds until the oldest of one table's `records` (notifications only) is `every_s` old, when the
    commit should wait for it; None to commit now: no cadence, a full delivery, a message received before (a
    deferred one, or a retried one, which must not wait), or the oldest less than a second from old enough."""
    if every_s <= 0 or not records or len(records) >= FIFO_BATCH:
        return None
    attributes = [record.get("attributes") or {} for record in records]
    if any(a.get("ApproximateReceiveCount") != "1" or "SentTimestamp" not in a for a in attributes):
        return None
    left_s = every_s - (now_s * 1000 - min(int(a["SentTimestamp"]) for a in attributes)) / 1000
    # rounded down, so a message waits at most the cadence; it may come back a little younger, but received before
    return int(left_s) if left_s >= 1 else None


def _hold(records: list[dict[str, Any]], seconds: int) -> bool:
    """Hide `records` for `seconds` (they stay in flight: FIFO holds their group); False when the queue refused
    any of them, and the caller commits them now instead of leaving them to the queue's visibility timeout."""
    url = os.environ.get(LIVE_QUEUE_URL)
    if not url:
        logger.warning("no LIVE_QUEUE_URL: committing without the cadence")
        return False
    try:
        response = _sqs(os.environ.get("AWS_ENDPOINT_URL")).change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": record["receiptHandle"], "VisibilityTimeout": seconds}
            for i, record in enumerate(records)])
    except Exception:  # noqa: BLE001 (the commit goes ahead: late is worse than one more commit)
        logger.exception("deferral failed: committing now")
        return False
    if response.get("Failed"):
        logger.warning("deferral refused: committing now", extra={"failed": response["Failed"]})
        return False
    return True


@lru_cache(maxsize=2)
def _sqs(endpoint: str | None) -> Any:
    """One SQS client per endpoint (AWS's, or the local cloud's AWS_ENDPOINT_URL)."""
    return boto3.client("sqs")
