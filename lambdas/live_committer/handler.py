"""The live committer Lambda: fed by an SQS FIFO queue, one message group per live table, so one invocation
at a time commits to a table (docs/decisions/0500).

Each message is a cleaner's notification of a staged batch: {"table": "live.events", "manifest": URI}. The
batch's manifest names its clean file; every file waiting for one table is registered in one commit
(committer.commit), which skips what the table's snapshots record as registered. A failed commit reports
that table's messages as failed (ReportBatchItemFailures) and SQS redelivers them in order; the other
tables' commits stand.

Environment: the catalog's (iceberg_tables.catalogs: LAKEHOUSE_WAREHOUSE + LAKEHOUSE_CATALOG_DB locally,
WAREHOUSE_URI in AWS).
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from aws_lambda_powertools import Logger

from iceberg_tables.catalogs import catalog_from_env
from iceberg_tables.specs import LIVE_TABLES
from lambdas.common.storage import read_bytes
from lambdas.live_committer.committer import Staged, commit, staged_from_manifest

logger = Logger(service="live_committer")
TABLES = frozenset(spec.full_name for spec in LIVE_TABLES)


class BadNotification(ValueError):
    """A message this function cannot act on: the message names the field."""


def notification(table: str, manifest_uri: str) -> str:
    """The message body a cleaner sends for a staged batch (its group id is `table`)."""
    return json.dumps({"table": table, "manifest": manifest_uri})


def _parse(body: str) -> tuple[str, str]:
    try:
        message = json.loads(body)
        table, manifest = message["table"], message["manifest"]
    except (ValueError, KeyError, TypeError) as error:
        raise BadNotification(f"a notification must be JSON with 'table' and 'manifest', got {body[:200]!r}: "
                              f"{error}") from None
    if table not in TABLES:
        raise BadNotification(f"unknown live table {table!r}: the live tables are {sorted(TABLES)}")
    return table, manifest


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    waiting: dict[str, list[tuple[str, Staged | None]]] = defaultdict(list)
    for record in event.get("Records", []):
        table, manifest_uri = _parse(record["body"])  # a malformed message fails the batch: it goes to the DLQ
        waiting[table].append((record["messageId"], staged_from_manifest(json.loads(read_bytes(manifest_uri)))))
    catalog = catalog_from_env()
    failures = []
    for table, items in waiting.items():
        staged = [s for _, s in items if s is not None]
        try:
            done = commit(catalog.load_table(table), staged)
        except Exception:  # noqa: BLE001 (any failure: this table's messages are redelivered, in order)
            logger.exception("commit failed", extra={"table": table, "batches": [s.batch_id for s in staged]})
            failures += [{"itemIdentifier": message_id} for message_id, _ in items]
            continue
        logger.info("committed", extra={"table": table, "snapshot_id": done.snapshot_id,
                                        "registered": [s.batch_id for s in done.registered],
                                        "already": [s.batch_id for s in done.already]})
    return {"batchItemFailures": failures}
