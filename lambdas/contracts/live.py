"""The real-time half's contract (docs/decisions/0500): which live table each source's clean staging files are
registered in, and the notification a cleaner sends once a batch is staged, to the committer's SQS FIFO queue
(message group: the table, so one committer at a time commits to it)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

NAMESPACE = "live"
TABLE_OF_SOURCE: dict[str, str] = {"clickstream": "events"}  # a source's live table, in NAMESPACE


class BadNotification(ValueError):
    """A message the committer cannot act on: the message names the field."""


@dataclass(frozen=True)
class Notification:
    table: str  # 'live.events'
    batch_id: str
    clean_file: str  # the batch's clean staging file, written before its manifest

    def body(self) -> str:
        return json.dumps({"table": self.table, "batch_id": self.batch_id, "clean_file": self.clean_file})

    def deduplication_id(self) -> str:
        """SQS FIFO's: the same batch notified twice within five minutes is delivered once."""
        return hashlib.sha256(self.body().encode()).hexdigest()


def live_table(source: str) -> str | None:
    """'live.<table>' of a source, or None for a source without a live table."""
    return f"{NAMESPACE}.{TABLE_OF_SOURCE[source]}" if source in TABLE_OF_SOURCE else None


def parse(body: str) -> Notification:
    try:
        message = json.loads(body)
        notification = Notification(str(message["table"]), str(message["batch_id"]), str(message["clean_file"]))
    except (ValueError, KeyError, TypeError) as error:
        raise BadNotification(f"a notification must be JSON with 'table', 'batch_id' and 'clean_file', got "
                              f"{body[:200]!r}: {error}") from None
    known = {f"{NAMESPACE}.{name}" for name in TABLE_OF_SOURCE.values()}
    if notification.table not in known:
        raise BadNotification(f"unknown live table {notification.table!r}: the live tables are {sorted(known)}")
    return notification
