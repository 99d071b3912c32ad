"""The live committer Lambda: fed by an SQS FIFO queue, one message group per live table, so one invocation
at a time commits to a table (docs/decisions/0500).

Each message is a cleaner's notification of a staged batch (lambdas/contracts/live.py: the table, the batch id
and its clean file, sent once the batch's manifest is written). Every file waiting for one table is
registered in one commit (committer.commit), which skips what the table's snapshots record as registered, and
their ledgers recorded in the table's batches table (committer.record, the same rule). A failed commit reports
that table's messages as failed (ReportBatchItemFailures) and SQS redelivers them in order; the other
tables' commits stand. A maintain message in a table's group (maintenance.py, sent on a schedule) maintains the
table after the delivery's commits: the committer stays its one writer.

Environment: the catalog's (iceberg_tables.catalogs: LAKEHOUSE_WAREHOUSE + LAKEHOUSE_CATALOG_DB locally,
WAREHOUSE_URI in AWS).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any

from aws_lambda_powertools import Logger

from iceberg_tables.catalogs import catalog_from_env
from lambdas.contracts.live import Notification, parse
from lambdas.live_committer.committer import commit_notified
from lambdas.live_committer.maintenance import maintain_request, maintain_table

logger = Logger(service="live_committer")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    waiting: dict[str, list[tuple[str, Notification]]] = defaultdict(list)
    maintain: dict[str, list[str]] = defaultdict(list)  # a table's maintain messages (maintenance.py)
    for record in event.get("Records", []):
        if (to_maintain := maintain_request(record["body"])) is not None:
            maintain[to_maintain].append(record["messageId"])
            continue
        notified = parse(record["body"])  # a malformed message fails the delivery, and ends in the DLQ
        waiting[notified.table].append((record["messageId"], notified))
    catalog = catalog_from_env()
    failures = []
    for table, items in waiting.items():
        notified_batches = [n for _, n in items]
        try:
            done, ledgers = commit_notified(catalog, table, notified_batches)
        except Exception:  # noqa: BLE001 (any failure: this table's messages are redelivered, in order)
            logger.exception("commit failed", extra={"table": table,
                                                     "batches": [n.batch_id for n in notified_batches]})
            failures += [{"itemIdentifier": message_id} for message_id, _ in items]
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
