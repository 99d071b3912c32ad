"""Register the cleaners' clean staging files in a live Iceberg table, without rewriting them.

One committer per table (docs/decisions/0500): its commits never conflict, and whatever is waiting is
registered in one commit (Iceberg `add_files`). A file is registered once: each commit records the staging
files it added in its snapshot summary (`lakehouse.staged-files`), and the files that the table's retained
snapshots already record are skipped. That is the table's own history, not a second store that could
disagree with it, so a notification delivered twice, or a batch re-notified after a retry, adds nothing.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyiceberg.table import Table

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
    files: set[str] = set()
    for snapshot in table.metadata.snapshots:
        recorded = snapshot.summary.get(STAGED_FILES) if snapshot.summary else None
        if recorded:
            files.update(json.loads(recorded))
    return files


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


def _first_of_each(staged: Iterable[Staged]) -> tuple[Staged, ...]:
    """One entry per file: a notification repeated within one delivery registers the file once."""
    seen: dict[str, Staged] = {}
    for item in staged:
        seen.setdefault(item.clean_file, item)
    return tuple(seen.values())
