"""Register the cleaners' clean staging files in a live Iceberg table, without rewriting them.

One committer per table (docs/decisions/0500): its commits never conflict, and whatever is waiting is
registered in one commit (Iceberg `add_files`). A file is registered once: each commit records the staging
files it added in its snapshot summary (`lakehouse.staged-files`), and the files that the table's retained
snapshots already record are skipped. That is the table's own history, not a second store that could
disagree with it, so a notification delivered twice, or a batch re-notified after a retry, adds nothing.

The same committer records each notified batch's ledger in the table's batches table (`live.<table>_batches`,
docs/decisions/0502), one row per batch, by the same rule: each commit records the batch ids it added
(`lakehouse.staged-batches`), and the batches a retained snapshot of that table records are skipped.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from lambdas.contracts.live import Ledger, Notification, batches_table, source_of

# The snapshot-summary property holding the staging files a commit registered (a JSON list of URIs)
STAGED_FILES = "lakehouse.staged-files"
# ... and the batches they belong to (the cleaner's batch ids), for readers and for trimming after the merge
STAGED_BATCHES = "lakehouse.staged-batches"


@dataclass(frozen=True)
class Staged:
    """One cleaned batch's clean staging file, as its manifest names it."""
    batch_id: str
    clean_file: str


@dataclass(frozen=True)
class Committed:
    registered: tuple[Staged, ...]  # added by this commit, in the order given
    already: tuple[Staged, ...]  # the table held them already: skipped
    snapshot_id: int | None  # the commit's snapshot; None when there was nothing to add


def registered_files(table: Table) -> set[str]:
    """Every staging file that a retained snapshot of `table` records as registered by a commit."""
    return _recorded(table, STAGED_FILES)


def _recorded(table: Table, prop: str) -> set[str]:
    """The union of the JSON lists that `table`'s retained snapshots record under `prop` in their summaries."""
    found: set[str] = set()
    for snapshot in table.metadata.snapshots:
        recorded = snapshot.summary.get(prop) if snapshot.summary else None
        if recorded:
            found.update(json.loads(recorded))
    return found


def commit(table: Table, staged: Sequence[Staged]) -> Committed:
    """Register the files of `staged` that `table` does not hold yet, in one commit."""
    held = registered_files(table)
    new = _first_of_each(s for s in staged if s.clean_file not in held)
    already = tuple(s for s in staged if s.clean_file in held)
    if not new:
        return Committed((), already, None)
    table.add_files([s.clean_file for s in new], snapshot_properties={
        STAGED_FILES: json.dumps([s.clean_file for s in new]),
        STAGED_BATCHES: json.dumps([s.batch_id for s in new])},
        check_duplicate_files=False)  # the summaries above are the check: no scan of every data file
    return Committed(new, already, table.current_snapshot().snapshot_id)


@dataclass(frozen=True)
class StagedLedger:
    """One staged batch's ledger, as its notification carries it (also a batch without a clean file)."""
    source: str
    batch_id: str
    clean_file: str | None
    ledger: Ledger

    def row(self) -> dict[str, object]:
        return {"source": self.source, "batch_id": self.batch_id, "staged_at": self.ledger.staged_at,
                "received": self.ledger.received, "clean": self.ledger.clean,
                "quarantined": self.ledger.quarantined, "duplicates": self.ledger.duplicates,
                "clean_file": self.clean_file}


def recorded_batches(table: Table) -> set[str]:
    """Every batch id that a retained snapshot of `table` records as added by a commit."""
    return _recorded(table, STAGED_BATCHES)


def record(table: Table, ledgers: Sequence[StagedLedger]) -> Committed:
    """Append a row to `table` (a batches table) for each batch of `ledgers` it does not hold yet, in one commit.
    `Committed` names the batches by their clean file, as `commit` does."""
    held = recorded_batches(table)
    new: dict[str, StagedLedger] = {}
    for item in ledgers:
        if item.batch_id not in held:
            new.setdefault(item.batch_id, item)  # a batch repeated in a delivery: its first notification
    already = tuple(Staged(s.batch_id, s.clean_file or "") for s in ledgers if s.batch_id in held)
    if not new:
        return Committed((), already, None)
    rows = pa.Table.from_pylist([s.row() for s in new.values()], schema=table.schema().as_arrow())
    table.append(rows, snapshot_properties={STAGED_BATCHES: json.dumps(list(new))})
    return Committed(tuple(Staged(s.batch_id, s.clean_file or "") for s in new.values()), already,
                     table.current_snapshot().snapshot_id)


def commit_notified(catalog: Catalog, table: str, notifications: Sequence[Notification]) -> tuple[Committed, Committed]:
    """One table's delivery: its clean files registered in `table`, then its ledgers recorded in its batches table.
    Each step skips what its table holds, so a delivery that failed between the two adds only what is missing."""
    files = commit(catalog.load_table(table), [Staged(n.batch_id, n.clean_file) for n in notifications if n.clean_file])
    source = source_of(table)
    ledgers = [StagedLedger(source, n.batch_id, n.clean_file, n.ledger) for n in notifications if n.ledger]
    return files, record(catalog.load_table(batches_table(table)), ledgers)


def _first_of_each(staged: Iterable[Staged]) -> tuple[Staged, ...]:
    """One entry per file: a notification repeated within one delivery registers the file once."""
    seen: dict[str, Staged] = {}
    for item in staged:
        seen.setdefault(item.clean_file, item)
    return tuple(seen.values())
