"""The live committer on real files: the real cleaner stages batches on a local lake, the committer registers
their clean files in a real Iceberg table (pyiceberg, sqlite catalog), and the Athena stand-in (DuckDB) reads
them back; the expected rows are the generator's own clean events, not the cleaner's output."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyiceberg.catalog import Catalog

from iceberg_tables.catalogs import local_catalog
from iceberg_tables.migrator import migrate
from iceberg_tables.specs import LIVE_EVENTS, LIVE_EVENTS_BATCHES, LIVE_TABLES
from lakehouse.analytics.athena import query
from lambdas.contracts.live import BadNotification, Notification, parse
from lambdas.live_committer.committer import STAGED_BATCHES, STAGED_FILES, commit, registered_files
from lambdas.live_committer.handler import handler as live_handler
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)
from tests.fixtures.staged_batches import fifo_queue, received, stage, staged


@pytest.fixture
def catalog(lake: Path) -> Catalog:  # noqa: F811 (the fixture above)
    live = local_catalog(lake / "warehouse", lake / "catalog.db")
    migrate(live, LIVE_TABLES)
    return live


def live_ids(catalog: Catalog) -> list[str]:
    return sorted(row[0] for row in query(catalog, "SELECT event_id FROM live.events")[1])


def test_every_clean_file_is_registered_once_in_one_commit(catalog: Catalog) -> None:
    written, clean_ids = stage(3)
    batches = staged(written)
    assert len(batches) == 3

    committed = commit(catalog.load_table(LIVE_EVENTS.full_name), batches)
    table = catalog.load_table(LIVE_EVENTS.full_name)
    assert committed.registered == tuple(batches) and committed.already == ()
    assert [s.snapshot_id for s in table.metadata.snapshots] == [committed.snapshot_id]  # one commit
    summary = table.current_snapshot().summary
    assert json.loads(summary[STAGED_BATCHES]) == [s.batch_id for s in batches]
    assert int(summary["added-data-files"]) == 3
    # the generator's clean events; a re-send in a later batch is a second live row until fresh.events dedupes it
    ids = live_ids(catalog)
    assert set(ids) == clean_ids
    assert len(ids) == sum(m["clean"] for m in written)  # each staged row once


def test_a_delivery_repeated_or_overlapping_adds_nothing_twice(catalog: Catalog) -> None:
    written, _ = stage(3)
    first, second, third = staged(written)
    table = catalog.load_table(LIVE_EVENTS.full_name)
    commit(table, [first, first])  # the same notification twice in one delivery
    again = commit(table, [first, second])  # redelivered with a new one
    assert again.registered == (second,) and again.already == (first,)
    nothing = commit(table, [second, first])
    assert (nothing.registered, nothing.snapshot_id) == ((), None)
    commit(table, [third])
    table = catalog.load_table(LIVE_EVENTS.full_name)
    assert len(table.metadata.snapshots) == 3
    assert registered_files(table) == {first.clean_file, second.clean_file, third.clean_file}
    assert len(table.inspect.files()) == 3  # each file is one data file of the table
    assert len(live_ids(catalog)) == sum(m["clean"] for m in written)


def test_files_a_commit_records_are_read_from_every_retained_snapshot(catalog: Catalog) -> None:
    written, _ = stage(2)
    one, two = staged(written)
    table = catalog.load_table(LIVE_EVENTS.full_name)
    commit(table, [one])
    commit(table, [two])
    history = [json.loads(s.summary[STAGED_FILES]) for s in catalog.load_table(LIVE_EVENTS.full_name).metadata.snapshots]
    assert history == [[one.clean_file], [two.clean_file]]


def sqs_event(bodies: list[str]) -> dict:
    """An SQS FIFO batch as Lambda delivers it (only the fields the handler reads, and the group id)."""
    return {"Records": [{"messageId": f"m{i}", "body": body, "attributes": {"MessageGroupId": "live.events"}}
                        for i, body in enumerate(bodies)]}


def notifications(written: list[dict]) -> list[str]:
    return [Notification("live.events", s.batch_id, s.clean_file).body() for s in staged(written)]


def test_the_handler_commits_a_delivery_and_a_redelivery_adds_nothing(
        catalog: Catalog, lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(lake / "warehouse"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_DB", str(lake / "catalog.db"))
    written, clean_ids = stage(2)
    event = sqs_event(notifications(written))
    assert live_handler(event, None) == {"batchItemFailures": []}
    assert live_handler(event, None) == {"batchItemFailures": []}  # SQS delivered it again
    assert len(catalog.load_table(LIVE_EVENTS.full_name).metadata.snapshots) == 1
    assert set(live_ids(catalog)) == clean_ids and len(live_ids(catalog)) == sum(m["clean"] for m in written)


@pytest.mark.parametrize(("body", "message"), [
    ("not json", "a notification must be JSON with 'table', 'batch_id' and 'clean_file'"),
    ('{"table": "live.events"}', "a notification must be JSON with 'table', 'batch_id' and 'clean_file'"),
    ('{"table": "silver.events", "batch_id": "b", "clean_file": "file:///c.parquet"}',
     "unknown live table 'silver.events'"),
    ('{"table": "live.events", "batch_id": "b", "clean_file": null, "received": 3}', "a ledger needs all of"),
    ('{"table": "live.events", "batch_id": "b", "clean_file": null, "staged_at": "2026-12-08T01:00:00", '
     '"received": 3, "clean": 0, "quarantined": 3, "duplicates": 0}', "has no UTC offset"),
])
def test_a_bad_notification_is_named(body: str, message: str) -> None:
    with pytest.raises(BadNotification, match=message):
        live_handler(sqs_event([body]), None)


def test_a_failed_commit_reports_that_tables_messages_for_redelivery(
        catalog: Catalog, lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(lake / "warehouse"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_DB", str(lake / "catalog.db"))
    written, _ = stage(1)
    catalog.drop_table(LIVE_EVENTS.full_name)  # the commit fails: the table is gone
    result = live_handler(sqs_event(notifications(written)), None)
    assert result == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


@pytest.mark.usefixtures("local_cloud")  # a real moto server stands in for SQS
def test_the_cleaner_notifies_each_staged_batch_in_the_tables_group_and_the_committer_registers_it(
        catalog: Catalog, lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    queue = fifo_queue("live-commits")
    monkeypatch.setenv("LIVE_QUEUE_URL", queue)
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(lake / "warehouse"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_DB", str(lake / "catalog.db"))
    written, clean_ids = stage(3)
    messages = received(queue)
    notified = [parse(m["Body"]) for m in messages]
    # every staged batch, with its manifest's ledger (decision 0502)
    assert [(n.table, n.batch_id, n.clean_file) for n in notified] == [
        ("live.events", m["batch_id"], m["files"]["clean"]) for m in written]
    assert [n.ledger and (n.ledger.received, n.ledger.clean, n.ledger.quarantined, n.ledger.duplicates)
            for n in notified] == [(m["received"], m["clean"], m["quarantined"], m["duplicates"]) for m in written]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"live.events"}
    event = {"Records": [{"messageId": m["MessageId"], "body": m["Body"]} for m in messages]}
    assert live_handler(event, None) == {"batchItemFailures": []}
    assert set(live_ids(catalog)) == clean_ids
    ledgers = catalog.load_table(LIVE_EVENTS_BATCHES.full_name).scan().to_arrow().to_pylist()
    assert sorted((r["source"], r["batch_id"], r["received"], r["quarantined"]) for r in ledgers) == sorted(
        ("clickstream", m["batch_id"], m["received"], m["quarantined"]) for m in written)


@pytest.mark.usefixtures("local_cloud")
def test_a_failed_notification_leaves_the_batch_staged(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("LIVE_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/000000000000/no-such-queue.fifo")
    written, _ = stage(1)
    assert [m["clean"] for m in written] and all(m["files"]["clean"] for m in written)
