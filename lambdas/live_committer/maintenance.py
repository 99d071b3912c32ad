"""Keep a live table small: trim what the batch has merged, compact the rest, expire snapshots, remove orphans
(docs/decisions/0503).

The committer stays the table's one writer (decision 0500): maintenance runs in the committer, when a "maintain"
message reaches it in the table's own SQS FIFO message group (sent on a schedule), so it never races a commit.
One run, in this order:

1. **trim**: one commit deleting the data files whose batches silver merged more than TRIM_MARGIN ago
   (the batch ledger, ops.merged_batches). Metadata only: the files are not touched, staging is never rewritten.
2. **compact**: the registered staging files still in the table become a few Parquet files in the table's own
   location, one commit replacing them (the staging files stay where they are, for the batch). Files whose
   batches are all merged are compacted apart from the others, so that the trim is not held back.
   A compacted file names its batches in its Parquet footer (BATCHES_KEY): it can be trimmed long after the
   snapshot that registered its rows has expired.
3. **expire**: snapshots older than SNAPSHOT_RETENTION, which exceeds the queue's message retention
   (QUEUE_RETENTION): a redelivered notification always finds the snapshot that registered its file, whatever
   trims and compactions removed since (committer.registered_files reads the summaries, not the current files).
   pyiceberg's expiry only edits the metadata: it deletes no file.
4. **orphans**: files under the table's own location that no retained snapshot references (compacted files of
   expired snapshots, their manifests, old metadata files), once older than ORPHAN_MIN_AGE. Nothing outside the
   location is considered, so a staging file is never deleted (and the committer's role cannot delete one).

The table's batches table (live.<table>_batches, decision 0502), which the same committer appends to with every
commit, is kept small in the same run: its rows of the last LEDGER_ROWS_KEPT rewritten into one file, then the
same expiry and orphan removal. Without it, each commit adds a file and a snapshot to it for good, and a commit's
cost grows with the snapshots (docs/performance.md).
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
from pyarrow import fs as pafs
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import AlwaysTrue, And, EqualTo, GreaterThanOrEqual
from pyiceberg.io.pyarrow import ArrowScan, PyArrowFileIO, parquet_file_to_data_file, schema_to_pyarrow
from pyiceberg.manifest import DataFile
from pyiceberg.table import FileScanTask, Table

from lambdas.contracts import live
from lambdas.contracts.live import BadNotification
from lambdas.live_committer.committer import STAGED_BATCHES, STAGED_FILES

MAINTAIN = "maintain"  # a maintain message: {"maintain": "live.events"}, in the table's message group
# How often each live table gets one (EventBridge Scheduler in AWS, `lakehouse up` locally): planning reads at most
# this much of commits not yet compacted into one manifest (docs/performance.md)
SCHEDULE_EVERY = timedelta(minutes=15)
# The live queue keeps a message this long (cdk_app/live_committer.py, the local cloud). Short, because the
# snapshots must outlive it and each retained snapshot makes every commit slower (pyiceberg copies the whole
# metadata several times a commit: docs/performance.md); a notification that waited longer is dropped, and its rows
# reach fresh.events when the batch merges them (within its schedule), as for a lost notification (decision 0503).
QUEUE_RETENTION = timedelta(hours=1)
# Snapshots are kept longer than any message can wait in the queue (decision 0500's check reaches back this far):
# a message is sent before the commit that registers its file, so it is redelivered within QUEUE_RETENTION of it.
SNAPSHOT_RETENTION = QUEUE_RETENTION + timedelta(minutes=30)
# A batch's live rows go this long after silver merged it: a query that read silver before the merge (Athena's
# limit is 30 minutes) still finds them in live.
TRIM_MARGIN = timedelta(hours=1)
# A file unreferenced for this long is an orphan; the table has one writer, so no running write can be younger
# than its last commit, but a reader may still plan from a metadata file it loaded a while ago.
ORPHAN_MIN_AGE = timedelta(hours=1)
# How far before its registration a batch can have been merged: a notification replayed from the dead-letter queue
# (kept 14 days) registers a batch the ledger recorded that long ago, which the trim must still find.
LEDGER_LOOKBACK = timedelta(days=14)
MIN_INPUT_FILES = 2  # compact once this many staging files wait
MAX_INPUT_FILES = 1000  # at most this many per run (the next run takes the rest): the function's 1-minute limit
TARGET_FILE_BYTES = 64 * 1024 * 1024  # inputs (their Parquet sizes) per compacted file
BATCHES_KEY = STAGED_BATCHES.encode()  # a compacted file's Parquet footer: the batches its rows come from
MAINTENANCE = "lakehouse.maintenance"  # a maintenance commit's summary says which: 'trim' or 'compact'
LEDGER = "ops.merged_batches"
# The batches tables keep this much of their per-batch ledgers: the Live dashboard shows the last hour, the local
# serving file the last two days (lakehouse/analytics/serving.py)
LEDGER_ROWS_KEPT = timedelta(days=7)
SOURCE_OF_TABLE = {f"{live.NAMESPACE}.{table}": source for source, table in live.TABLE_OF_SOURCE.items()}


def maintain_body(table: str) -> str:
    """The message that makes the committer maintain `table` ('live.events')."""
    return json.dumps({MAINTAIN: table})


def maintain_request(body: str) -> str | None:
    """The table a maintain message names; None when `body` is not one (a notification)."""
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or set(message) != {MAINTAIN}:
        return None
    if message[MAINTAIN] not in SOURCE_OF_TABLE:
        raise BadNotification(f"maintain names unknown live table {message[MAINTAIN]!r}: the live tables are "
                              f"{sorted(SOURCE_OF_TABLE)}")
    return str(message[MAINTAIN])


@dataclass
class Maintained:
    trimmed_files: int = 0
    trimmed_batches: int = 0
    compacted_files: int = 0  # staging files replaced
    compacted_into: list[str] = field(default_factory=list)  # the files written
    expired_snapshots: int = 0
    orphans_deleted: list[str] = field(default_factory=list)
    unknown_files: list[str] = field(default_factory=list)  # no batch known: left alone
    ledger_rows_kept: int | None = None  # the batches table's rows after its compaction (None: not compacted)

    def counts(self) -> dict[str, int]:
        return {"trimmed_files": self.trimmed_files, "trimmed_batches": self.trimmed_batches,
                "compacted_files": self.compacted_files, "compacted_into": len(self.compacted_into),
                "expired_snapshots": self.expired_snapshots, "orphans_deleted": len(self.orphans_deleted),
                "unknown_files": len(set(self.unknown_files)), "ledger_rows_kept": self.ledger_rows_kept or 0}


def merged_batches(catalog: Catalog, table: str, since: datetime) -> dict[str, datetime]:
    """batch id -> when silver merged it (the latest version), from the ledger, for `table`'s source, merged
    at or after `since`."""
    ledger = catalog.load_table(LEDGER)
    rows = ledger.scan(row_filter=And(EqualTo("source", SOURCE_OF_TABLE[table]),
                                      GreaterThanOrEqual("merged_at", since.isoformat())),
                       selected_fields=("batch_id", "merged_at")).to_arrow().to_pylist()
    merged: dict[str, datetime] = {}
    for row in rows:
        merged[row["batch_id"]] = max(row["merged_at"], merged.get(row["batch_id"], row["merged_at"]))
    return merged


def maintain_table(catalog: Catalog, name: str, now: datetime | None = None) -> Maintained:
    """Maintain the live table `name`, reading the batch ledger of its source."""
    now = now or datetime.now(timezone.utc)
    table = catalog.load_table(name)
    # a batch was merged no earlier than it was staged, which was before its notification was sent (or replayed)
    oldest = min((s.timestamp_ms for s in table.metadata.snapshots), default=None)
    since = (datetime.fromtimestamp(oldest / 1000, timezone.utc) if oldest else now) - QUEUE_RETENTION - LEDGER_LOOKBACK
    done = maintain(table, lambda: merged_batches(catalog, name, since), now)
    maintain_batches_table(catalog.load_table(live.batches_table(name)), now, done)
    return done


def maintain_batches_table(table: Table, now: datetime, done: Maintained) -> None:
    """The batches table's rows of the last LEDGER_ROWS_KEPT in one file (when it has more than one), then the same
    expiry and orphan removal as the live table's."""
    if len(_current_files(table)) >= MIN_INPUT_FILES:
        rows = table.scan(row_filter=GreaterThanOrEqual("staged_at", (now - LEDGER_ROWS_KEPT).isoformat())).to_arrow()
        table.overwrite(rows, snapshot_properties={MAINTENANCE: "compact"})
        done.ledger_rows_kept = rows.num_rows
        table = table.refresh()
    live_table_expired, done.expired_snapshots = done.expired_snapshots, 0
    table = _expire(table, now, done)  # sets the count when it expires any
    done.expired_snapshots += live_table_expired
    _remove_orphans(table, now, done)


def maintain(table: Table, merged: Callable[[], Mapping[str, datetime]], now: datetime) -> Maintained:
    """Trim, compact, expire and remove orphans of `table` (see the module's doc); `merged()` is the ledger."""
    done = Maintained()
    if table.current_snapshot() is not None:
        merged_at = merged()
        table = _trim(table, merged_at, now, done)
        table = _compact(table, merged_at, done)
    table = _expire(table, now, done)
    _remove_orphans(table, now, done)
    return done


def _current_files(table: Table) -> list[DataFile]:
    snapshot = table.current_snapshot()
    if snapshot is None:
        return []
    return [entry.data_file for manifest in snapshot.manifests(table.io)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=True)]


def _in_location(table: Table, path: str) -> bool:
    return path.startswith(table.location().rstrip("/") + "/")


def _batches_of(table: Table, files: Iterable[DataFile], done: Maintained) -> dict[str, tuple[str, ...]]:
    """Each file's batches: a staging file's from the snapshot that registered it, a compacted file's from its
    footer. A file with neither (its registering snapshot expired before a compaction took it) is left alone."""
    registered: dict[str, tuple[str, ...]] = {}
    for snapshot in table.metadata.snapshots:
        summary = snapshot.summary or {}
        if summary.get(STAGED_FILES):
            for path, batch in zip(json.loads(summary[STAGED_FILES]), json.loads(summary[STAGED_BATCHES])):
                registered[path] = (batch,)
    found: dict[str, tuple[str, ...]] = {}
    for data_file in files:
        path = data_file.file_path
        if _in_location(table, path):
            with table.io.new_input(path).open() as stream:
                footer = pq.read_metadata(stream).metadata or {}
            if BATCHES_KEY in footer:
                found[path] = tuple(json.loads(footer[BATCHES_KEY]))
                continue
        elif path in registered:
            found[path] = registered[path]
            continue
        done.unknown_files.append(path)
    return found


def _replace(table: Table, kind: str, removed: Sequence[DataFile], added: Sequence[DataFile]) -> Table:
    """One commit removing `removed` and adding `added` (data files): the rows of the two are the same (a
    compaction), or the removed rows are merged into silver (a trim)."""
    with table.transaction() as transaction:
        with transaction.update_snapshot(snapshot_properties={MAINTENANCE: kind}).overwrite() as update:
            for data_file in removed:
                update.delete_data_file(data_file)
            for data_file in added:
                update.append_data_file(data_file)
    return table.refresh()


def _trim(table: Table, merged_at: Mapping[str, datetime], now: datetime, done: Maintained) -> Table:
    files = _current_files(table)
    batches = _batches_of(table, files, done)
    cutoff = now - TRIM_MARGIN
    trimmed = [f for f in files if f.file_path in batches
               and all(b in merged_at and merged_at[b] < cutoff for b in batches[f.file_path])]
    if not trimmed:
        return table
    done.trimmed_files = len(trimmed)
    done.trimmed_batches = len({b for f in trimmed for b in batches[f.file_path]})
    return _replace(table, "trim", trimmed, [])


def _compact(table: Table, merged_at: Mapping[str, datetime], done: Maintained) -> Table:
    """The staging files (outside the table's location), in the order they were registered, those of merged
    batches apart from the others; each group into files of about TARGET_FILE_BYTES."""
    files = [f for f in _current_files(table) if not _in_location(table, f.file_path)][:MAX_INPUT_FILES]
    batches = _batches_of(table, files, done)
    files = [f for f in files if f.file_path in batches]
    groups: dict[bool, list[DataFile]] = {}
    for data_file in sorted(files, key=lambda f: f.file_path):
        merged = all(b in merged_at for b in batches[data_file.file_path])
        groups.setdefault(merged, []).append(data_file)
    removed: list[DataFile] = []
    added: list[DataFile] = []
    for group in groups.values():
        if len(group) < MIN_INPUT_FILES:
            continue
        for chunk in _chunks(group):
            added.append(_write_compacted(table, chunk, batches))
            removed += chunk
    if not removed:
        return table
    done.compacted_files = len(removed)
    done.compacted_into = [f.file_path for f in added]
    return _replace(table, "compact", removed, added)


def _chunks(files: list[DataFile]) -> list[list[DataFile]]:
    chunks: list[list[DataFile]] = [[]]
    size = 0
    for data_file in files:
        if chunks[-1] and size + data_file.file_size_in_bytes > TARGET_FILE_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(data_file)
        size += data_file.file_size_in_bytes
    return chunks


def _write_compacted(table: Table, files: list[DataFile], batches: Mapping[str, tuple[str, ...]]) -> DataFile:
    """The rows of `files` as they are (every copy), in one Parquet file under the table's data location,
    with the table's field ids and, in the footer, the batches the rows come from."""
    schema = table.schema()
    tasks = [FileScanTask(data_file=f) for f in files]
    rows = ArrowScan(table.metadata, table.io, schema, AlwaysTrue()).to_table(tasks)
    arrow_schema = schema_to_pyarrow(schema, include_field_ids=True)
    names = list(dict.fromkeys(b for f in files for b in batches[f.file_path]))
    arrow_schema = arrow_schema.with_metadata({BATCHES_KEY: json.dumps(names).encode()})
    path = table.location_provider().new_data_location(f"compacted-{uuid.uuid4()}.parquet")
    with table.io.new_output(path).create(overwrite=False) as stream:
        pq.write_table(rows.cast(arrow_schema), stream, compression="zstd")
    return parquet_file_to_data_file(table.io, table.metadata, path)


def _expire(table: Table, now: datetime, done: Maintained) -> Table:
    """Forget the snapshots older than SNAPSHOT_RETENTION (never the current one); no file is deleted."""
    cutoff_ms = int((now - SNAPSHOT_RETENTION).timestamp() * 1000)
    current = table.current_snapshot()
    old = [s.snapshot_id for s in table.metadata.snapshots
           if s.timestamp_ms < cutoff_ms and (current is None or s.snapshot_id != current.snapshot_id)]
    if not old:
        return table
    table.maintenance.expire_snapshots().by_ids(old).commit()
    done.expired_snapshots = len(old)
    return table.refresh()


def referenced(table: Table) -> set[str]:
    """Every file of `table` that its metadata or a retained snapshot references: the metadata files of its log,
    the manifest lists, the manifests and the data files they hold (not those they record as deleted: no
    retained snapshot reads them), each manifest read once."""
    files = {table.metadata_location, *(entry.metadata_file for entry in table.metadata.metadata_log)}
    files.update(s.manifest_list for s in table.metadata.snapshots)
    files.update(f.statistics_path for f in table.metadata.statistics)
    manifests: dict[str, object] = {}
    with ThreadPoolExecutor(max_workers=16) as pool:
        for listed in pool.map(lambda s: s.manifests(table.io), table.metadata.snapshots):
            for manifest in listed:
                manifests.setdefault(manifest.manifest_path, manifest)
        files.update(manifests)
        for entries in pool.map(lambda m: m.fetch_manifest_entry(table.io, discard_deleted=True),
                                manifests.values()):
            files.update(entry.data_file.file_path for entry in entries)
    return files


def _remove_orphans(table: Table, now: datetime, done: Maintained) -> None:
    """Delete the files under the table's location that nothing references, once older than ORPHAN_MIN_AGE."""
    location = table.location().rstrip("/")
    scheme, netloc, root = PyArrowFileIO.parse_location(location)
    io = table.io if isinstance(table.io, PyArrowFileIO) else PyArrowFileIO(table.io.properties)
    filesystem = io.fs_by_scheme(scheme, netloc)
    listed = filesystem.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    keep = {_normal(path) for path in referenced(table)}
    cutoff = now - ORPHAN_MIN_AGE
    for info in listed:
        if info.type != pafs.FileType.File or info.mtime is None or _as_utc(info.mtime) >= cutoff:
            continue
        if _normal(info.path) in keep or not info.path.startswith(root.rstrip("/") + "/"):
            continue
        filesystem.delete_file(info.path)
        done.orphans_deleted.append(info.path)


def _normal(path: str) -> str:
    """A path without its scheme (file:///a, /a and s3://b/k, b/k compare equal)."""
    return path.split("://", 1)[1].lstrip("/") if "://" in path else path.lstrip("/")


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment

