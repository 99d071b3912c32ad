"""The real-time half's contract (docs/decisions/0500, 0502): which live table each source's clean staging files are
registered in, and the notification a cleaner sends once a batch is staged, to the committer's SQS FIFO queue
(message group: the table, so one committer at a time commits to it).

Every staged batch of a source with a live table is notified, with its manifest's ledger (received, clean,
quarantined, duplicates) and when it was staged, also a batch without clean rows: the committer registers the
clean file in the live table and records the ledger in the table's batches table (`live.<table>_batches`), the
live quarantine rate's source.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

NAMESPACE = "live"
# a source's live table, in NAMESPACE
TABLE_OF_SOURCE: dict[str, str] = {"clickstream": "events", "orders": "order_events"}
BATCHES_SUFFIX = "_batches"  # live.<table>_batches: one row per staged batch of live.<table>'s source
LEDGER = ("received", "clean", "quarantined", "duplicates")  # the manifest's counts a notification carries


class BadNotification(ValueError):
    """A message the committer cannot act on: the message names the field."""


@dataclass(frozen=True)
class Ledger:
    """A staged batch's manifest counts (received = clean + quarantined + duplicates), and when it was staged."""
    staged_at: datetime  # the cleaner's clock once the batch's manifest was written (UTC)
    received: int
    clean: int
    quarantined: int
    duplicates: int


@dataclass(frozen=True)
class Notification:
    table: str  # 'live.events'
    batch_id: str
    clean_file: str | None  # the batch's clean staging file, written before its manifest; None: no clean rows
    ledger: Ledger | None = None  # None only from a cleaner of before the ledger (decision 0502)

    def body(self) -> str:
        message: dict[str, Any] = {"table": self.table, "batch_id": self.batch_id, "clean_file": self.clean_file}
        if self.ledger:
            message["staged_at"] = self.ledger.staged_at.isoformat()
            message.update({name: getattr(self.ledger, name) for name in LEDGER})
        return json.dumps(message)

    def deduplication_id(self) -> str:
        """SQS FIFO's: the same batch notified twice within five minutes is delivered once."""
        return hashlib.sha256(self.body().encode()).hexdigest()

    @classmethod
    def of_manifest(cls, table: str, manifest: dict[str, Any], staged_at: datetime) -> "Notification":
        """The notification of a staged batch, from its manifest (lambdas/cleaner/writer.py)."""
        return cls(table, manifest["batch_id"], manifest["files"]["clean"],
                   Ledger(staged_at, *(int(manifest[name]) for name in LEDGER)))


def live_table(source: str) -> str | None:
    """'live.<table>' of a source, or None for a source without a live table."""
    return f"{NAMESPACE}.{TABLE_OF_SOURCE[source]}" if source in TABLE_OF_SOURCE else None


def batches_table(table: str) -> str:
    """'live.<table>_batches': where the committer of 'live.<table>' records each notified batch's ledger."""
    return f"{table}{BATCHES_SUFFIX}"


def source_of(table: str) -> str:
    """The source whose batches 'live.<table>' registers."""
    return next(source for source in TABLE_OF_SOURCE if live_table(source) == table)


def parse(body: str) -> Notification:
    try:
        message = json.loads(body)
        clean_file = message["clean_file"]
        notification = Notification(str(message["table"]), str(message["batch_id"]),
                                    None if clean_file is None else str(clean_file), _ledger(message))
    except (ValueError, KeyError, TypeError) as error:
        raise BadNotification(f"a notification must be JSON with 'table', 'batch_id' and 'clean_file', got "
                              f"{body[:200]!r}: {error}") from None
    known = {f"{NAMESPACE}.{name}" for name in TABLE_OF_SOURCE.values()}
    if notification.table not in known:
        raise BadNotification(f"unknown live table {notification.table!r}: the live tables are {sorted(known)}")
    return notification


def _ledger(message: dict[str, Any]) -> Ledger | None:
    """The ledger of a message that has one; a message with part of one is malformed (ValueError)."""
    names = ("staged_at", *LEDGER)
    present = [name for name in names if name in message]
    if not present:
        return None
    if len(present) < len(names):
        raise ValueError(f"a ledger needs all of {', '.join(names)}; missing {set(names) - set(present)}")
    staged_at = datetime.fromisoformat(message["staged_at"])
    if staged_at.tzinfo is None:
        raise ValueError(f"staged_at {message['staged_at']!r} has no UTC offset")
    return Ledger(staged_at, *(int(message[name]) for name in LEDGER))
