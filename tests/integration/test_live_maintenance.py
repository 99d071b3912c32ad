"""Keeping the live tables small (docs/decisions/0503), on real files: the real cleaner stages batches, the
committer registers them in a real Iceberg table (pyiceberg, sqlite catalog), silver and its ledger receive some
of them as a merge would, and the maintenance trims, compacts, expires and removes orphans. What the tests hold:
the rows (read back by the Athena stand-in), the staging files (never touched), and the committer's check that a
redelivered notification registers nothing, after a compaction, a trim and an expiry."""
from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table

from iceberg_tables.catalogs import local_catalog
from iceberg_tables.migrator import migrate
from iceberg_tables.specs import ALL_TABLES, LIVE_EVENTS, LIVE_TABLES, OPS_MERGED_BATCHES
from lakehouse.analytics.athena import query
from lakehouse.cloud.pipeline import send_live_maintenance
from lambdas.contracts.live import Ledger, Notification
from lambdas.contracts.live import batches_table as batches_table_of
from lambdas.live_committer import maintenance
from lambdas.live_committer.committer import (Staged, StagedLedger, commit, record, recorded_batches,
                                              registered_files)
from lambdas.live_committer.handler import handler as live_handler
from lambdas.live_committer.maintenance import (BATCHES_KEY, MAINTENANCE, QUEUE_RETENTION, SNAPSHOT_RETENTION,
                                                TRIM_MARGIN, maintain, maintain_body, maintain_table, referenced)
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)
from tests.fixtures.staged_batches import stage, staged
from tests.integration.test_fresh_views import fresh, merge_into_silver


@pytest.fixture
def catalog(lake: Path) -> Catalog:  # noqa: F811 (the fixture above)
    both = local_catalog(lake / "warehouse", lake / "catalog.db")
    migrate(both, (*ALL_TABLES, *LIVE_TABLES))
    return both


def live(catalog: Catalog) -> Table:
    return catalog.load_table(LIVE_EVENTS.full_name)


def data_files(table: Table) -> list[str]:
    return sorted(table.inspect.files()["file_path"].to_pylist())


def live_rows(catalog: Catalog) -> Counter:
    """Every live row (each copy) by event id, as the Athena stand-in reads live.events."""
    return Counter(row[0] for row in query(catalog, "SELECT event_id FROM live.events")[1])


def rows_of(batches: list[Staged]) -> Counter:
    return Counter(r["event_id"] for s in batches for r in pq.read_table(s.clean_file.removeprefix("file://"))
                   .select(["event_id"]).to_pylist())


def record_merged(catalog: Catalog, batches: list[Staged], merged_at: datetime) -> None:
    """The batch ledger's rows silver_merge writes for `batches` (what the trim reads)."""
    ledger = catalog.load_table(OPS_MERGED_BATCHES.full_name)
    ledger.append(pa.Table.from_pylist([
        {"manifest_sha256": uuid.uuid4().hex, "source": "clickstream", "batch_id": s.batch_id,
         "manifest_path": f"file:///manifests/{s.batch_id}.json", "run_id": "run", "merged_at": merged_at,
         "received": 1, "clean": 1, "quarantined": 0, "duplicates": 0, "quarantined_by_reason": "{}"}
        for s in batches], schema=ledger.schema().as_arrow()))


def committed_one_by_one(catalog: Catalog, batches: list[Staged]) -> None:
    for s in batches:
        commit(live(catalog), [s])


def test_the_trim_removes_exactly_the_files_of_batches_merged_before_the_margin(catalog: Catalog) -> None:
    written, _ = stage(4)
    old, recent, pending, older = staged(written)
    committed_one_by_one(catalog, [old, recent, pending, older])
    now = datetime.now(timezone.utc)
    record_merged(catalog, [old], now - TRIM_MARGIN - timedelta(minutes=1))
    record_merged(catalog, [older], now - 3 * TRIM_MARGIN)
    record_merged(catalog, [recent], now - TRIM_MARGIN + timedelta(minutes=5))  # within the margin: kept

    done = maintain_table(catalog, LIVE_EVENTS.full_name, now)
    assert (done.trimmed_files, done.trimmed_batches, done.compacted_files) == (2, 2, 0)  # one file per group left
    table = live(catalog)
    assert data_files(table) == sorted([recent.clean_file, pending.clean_file])
    trims = [s for s in table.metadata.snapshots if s.summary.get(MAINTENANCE) == "trim"]
    assert len(trims) == 1 and trims[0].summary["deleted-data-files"] == "2"
    assert trims[0].summary.operation.value != "append"  # the Live dashboard's commits are the appends
    assert live_rows(catalog) == rows_of([recent, pending])  # every copy of the kept batches, nothing else
    # metadata only: every staging file is still there for the batch
    assert all(Path(s.clean_file.removeprefix("file://")).exists() for s in (old, recent, pending, older))


def test_fresh_events_is_unchanged_by_the_trim(catalog: Catalog) -> None:
    written, clean_ids = stage(3)
    batches = staged(written)
    committed_one_by_one(catalog, batches)
    for manifest in written[:2]:
        merge_into_silver(catalog, manifest)
    record_merged(catalog, batches[:2], datetime.now(timezone.utc))
    before = fresh(catalog)
    assert {event_id for event_id, _ in before} == clean_ids and set(before.values()) == {1}

    done = maintain_table(catalog, LIVE_EVENTS.full_name, datetime.now(timezone.utc) + TRIM_MARGIN * 2)
    assert done.trimmed_files == 2
    assert data_files(live(catalog)) == [batches[2].clean_file]
    assert fresh(catalog) == before  # each event once, from the same origin


def test_compaction_keeps_every_row_in_the_tables_own_location(catalog: Catalog) -> None:
    written, _ = stage(4)
    batches = staged(written)
    committed_one_by_one(catalog, batches)
    before = live_rows(catalog)

    done = maintain(live(catalog), dict, datetime.now(timezone.utc))
    table = live(catalog)
    assert done.compacted_files == 4 and len(done.compacted_into) == 1
    (compacted,) = data_files(table)
    assert compacted.startswith(table.location() + "/data/") and compacted == done.compacted_into[0]
    footer = pq.read_metadata(compacted.removeprefix("file://")).metadata
    assert json.loads(footer[BATCHES_KEY]) == sorted(s.batch_id for s in batches)  # in path order
    assert live_rows(catalog) == before  # every copy, re-sends included
    assert all(Path(s.clean_file.removeprefix("file://")).exists() for s in batches)
    assert table.current_snapshot().summary[MAINTENANCE] == "compact"


def test_a_compacted_file_is_trimmed_once_all_its_batches_are_merged(catalog: Catalog) -> None:
    written, _ = stage(3)
    batches = staged(written)
    committed_one_by_one(catalog, batches)
    now = datetime.now(timezone.utc)
    maintain(live(catalog), dict, now)  # compacted: one file of three batches
    merged = now - 2 * TRIM_MARGIN
    record_merged(catalog, batches[:2], merged)
    assert maintain_table(catalog, LIVE_EVENTS.full_name, now).trimmed_files == 0  # one batch still unmerged
    record_merged(catalog, batches[2:], merged)
    assert maintain_table(catalog, LIVE_EVENTS.full_name, now).trimmed_files == 1
    assert data_files(live(catalog)) == [] and live_rows(catalog) == Counter()


def test_merged_files_are_compacted_apart_from_the_pending_ones(catalog: Catalog) -> None:
    written, _ = stage(4)
    batches = staged(written)
    committed_one_by_one(catalog, batches)
    now = datetime.now(timezone.utc)
    record_merged(catalog, batches[:2], now)  # merged within the margin: not trimmed yet
    done = maintain_table(catalog, LIVE_EVENTS.full_name, now)
    assert (done.trimmed_files, done.compacted_files, len(done.compacted_into)) == (0, 4, 2)
    # past the margin the merged pair's file goes, the pending pair's stays
    later = maintain_table(catalog, LIVE_EVENTS.full_name, now + TRIM_MARGIN * 2)
    assert later.trimmed_files == 1 and live_rows(catalog) == rows_of(batches[2:])


def test_a_redelivered_notification_registers_nothing_after_compaction_trim_and_expiry(catalog: Catalog) -> None:
    written, _ = stage(3)
    batches = staged(written)
    committed_one_by_one(catalog, batches)
    now = datetime.now(timezone.utc)
    maintain(live(catalog), dict, now)  # compacted: the staging files are no longer the table's files
    assert not set(data_files(live(catalog))) & {s.clean_file for s in batches}
    assert commit(live(catalog), batches).registered == ()

    record_merged(catalog, batches, now - timedelta(minutes=1))
    # the latest a message can be redelivered: the queue's retention after it was sent (before its commit)
    latest = now + QUEUE_RETENTION
    done = maintain_table(catalog, LIVE_EVENTS.full_name, latest)
    assert done.trimmed_files == 1 and data_files(live(catalog)) == []  # trimmed: the table holds no file
    assert done.expired_snapshots == 0  # every snapshot is younger than SNAPSHOT_RETENTION
    assert registered_files(live(catalog)) == {s.clean_file for s in batches}
    again = commit(live(catalog), batches)
    assert (again.registered, again.snapshot_id) == ((), None)
    assert live_rows(catalog) == Counter()


def test_expiry_keeps_the_snapshots_of_the_queues_retention_and_no_older(catalog: Catalog) -> None:
    assert SNAPSHOT_RETENTION > QUEUE_RETENTION
    written, _ = stage(3)
    batches = staged(written)
    committed_one_by_one(catalog, batches)
    committed = [s.snapshot_id for s in live(catalog).metadata.snapshots]
    newest = max(s.timestamp_ms for s in live(catalog).metadata.snapshots) / 1000
    at = datetime.fromtimestamp(newest, timezone.utc)

    kept = maintain(live(catalog), dict, at + QUEUE_RETENTION)  # compacts, then expires nothing
    assert kept.expired_snapshots == 0
    assert set(committed) <= {s.snapshot_id for s in live(catalog).metadata.snapshots}

    gone = maintain(live(catalog), dict, at + SNAPSHOT_RETENTION + timedelta(minutes=1))
    table = live(catalog)
    assert gone.expired_snapshots == len(committed)  # the compaction's snapshot is the current one: kept
    assert [s.snapshot_id for s in table.metadata.snapshots] == [table.current_snapshot().snapshot_id]
    assert live_rows(catalog) == rows_of(batches)


def test_orphans_are_only_unreferenced_files_of_the_tables_location(catalog: Catalog) -> None:
    written, _ = stage(3)
    batches = staged(written)
    committed_one_by_one(catalog, batches)
    now = datetime.now(timezone.utc)
    first = maintain(live(catalog), dict, now)  # compacted into a file of the table
    record_merged(catalog, batches, now)
    much_later = now + SNAPSHOT_RETENTION + timedelta(hours=2)
    done = maintain_table(catalog, LIVE_EVENTS.full_name, much_later)  # trims it, expires, then removes orphans
    table = live(catalog)
    assert done.trimmed_files == 1 and done.expired_snapshots >= 4
    assert first.compacted_into[0].removeprefix("file://") in done.orphans_deleted
    location = table.location().removeprefix("file://")
    assert all(path.startswith(location + "/") for path in done.orphans_deleted)
    assert all(Path(s.clean_file.removeprefix("file://")).exists() for s in batches)  # staging untouched
    left = {str(p) for p in Path(location).rglob("*") if p.is_file()}
    assert left == {p.removeprefix("file://") for p in referenced(table)} & left
    assert table.metadata_location.removeprefix("file://") in left
    assert live_rows(catalog) == Counter()  # the table still reads


def test_the_committer_maintains_on_a_maintain_message_in_the_tables_group(
        catalog: Catalog, lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(lake / "warehouse"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_DB", str(lake / "catalog.db"))
    written, _ = stage(3)
    batches = staged(written)
    bodies = [Notification("live.events", s.batch_id, s.clean_file).body() for s in batches]
    records = [{"messageId": f"m{i}", "body": body} for i, body in enumerate(
        [bodies[0], maintain_body(LIVE_EVENTS.full_name), *bodies[1:]])]
    assert live_handler({"Records": records}, None) == {"batchItemFailures": []}
    table = live(catalog)
    kinds = [s.summary.get(MAINTENANCE) or s.summary.operation.value for s in table.metadata.snapshots]
    assert kinds == ["append", "compact"]  # the delivery's commit, then the maintenance
    assert live_rows(catalog) == rows_of(batches)


def test_a_failed_maintenance_does_not_hold_back_the_notifications(
        catalog: Catalog, lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(lake / "warehouse"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_DB", str(lake / "catalog.db"))
    written, _ = stage(1)
    (batch,) = staged(written)

    def broken(*_: object) -> None:
        raise RuntimeError("maintenance broke")
    monkeypatch.setattr("lambdas.live_committer.handler.maintain_table", broken)
    notified = Notification("live.events", batch.batch_id, batch.clean_file).body()
    event = {"Records": [{"messageId": "m0", "body": maintain_body(LIVE_EVENTS.full_name)},
                         {"messageId": "m1", "body": notified}]}
    assert live_handler(event, None) == {"batchItemFailures": []}  # logged; the next scheduled message retries
    assert data_files(live(catalog)) == [batch.clean_file]


def test_a_maintain_message_naming_no_live_table_is_refused() -> None:
    with pytest.raises(maintenance.BadNotification, match="unknown live table 'silver.events'"):
        live_handler({"Records": [{"messageId": "m0", "body": json.dumps({"maintain": "silver.events"})}]}, None)


@pytest.mark.usefixtures("local_cloud")  # a real moto server stands in for SQS
def test_the_local_schedules_maintain_message_travels_in_the_tables_fifo_group_behind_its_notifications(
        catalog: Catalog, lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName=f"live-commits-{uuid.uuid4().hex[:8]}.fifo",
                             Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(lake / "warehouse"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_DB", str(lake / "catalog.db"))
    written, _ = stage(2)
    batches = staged(written)
    for s in batches:  # what the cleaner sends, then what `lakehouse up` sends on its schedule, in the same group
        sqs.send_message(QueueUrl=queue, MessageGroupId=LIVE_EVENTS.full_name,
                         MessageBody=Notification("live.events", s.batch_id, s.clean_file).body())
    tables = send_live_maintenance(queue)
    assert LIVE_EVENTS.full_name in tables
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                       AttributeNames=["MessageGroupId"]).get("Messages", []):
        messages += batch
    maintains = {json.loads(m["Body"])["maintain"]: m["Attributes"]["MessageGroupId"]
                 for m in messages if "maintain" in json.loads(m["Body"])}
    assert maintains == {table: table for table in tables}  # each into its own table's group
    event = {"Records": [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]}
    assert live_handler(event, None) == {"batchItemFailures": []}
    assert [s.summary.get(MAINTENANCE) or s.summary.operation.value for s in live(catalog).metadata.snapshots] == [
        "append", "compact"]


def test_the_batches_table_keeps_its_recent_ledgers_in_one_file_and_its_snapshots_bounded(catalog: Catalog) -> None:
    """Every commit appends to live.events_batches: the same maintenance keeps it from growing a file and a
    snapshot per commit for good (decision 0502's table, LEDGER_ROWS_KEPT of its rows)."""
    now = datetime.now(timezone.utc)
    ages = [maintenance.LEDGER_ROWS_KEPT + timedelta(hours=1), timedelta(hours=2), timedelta(minutes=5)]
    batches_table = catalog.load_table(batches_table_of(LIVE_EVENTS.full_name))
    for n, age in enumerate(ages):  # one commit each, as the committer records them
        ledger = Ledger(staged_at=now - age, received=10, clean=8, quarantined=1, duplicates=1)
        record(batches_table, [StagedLedger("clickstream", f"b{n}", f"file:///staging/b{n}.parquet", ledger)])
        batches_table = batches_table.refresh()
    assert len(data_files(batches_table)) == 3

    done = maintain_table(catalog, LIVE_EVENTS.full_name, now)

    batches_table = batches_table.refresh()
    assert done.ledger_rows_kept == 2 and len(data_files(batches_table)) == 1
    assert sorted(batches_table.scan().to_arrow()["batch_id"].to_pylist()) == ["b1", "b2"]  # the last 7 days'
    assert recorded_batches(batches_table) == {"b0", "b1", "b2"}  # a redelivery of any is still recorded once

    later = maintain_table(catalog, LIVE_EVENTS.full_name, now + SNAPSHOT_RETENTION + timedelta(minutes=1))
    assert later.expired_snapshots >= 3 and len(batches_table.refresh().metadata.snapshots) == 1
