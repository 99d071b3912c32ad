"""live.order_events and the live ledgers on real files (issue 14, decisions 0500-0502): the real orders cleaner
stages batches on a local lake and notifies a real SQS FIFO queue (a moto server), the live committer registers
them in real Iceberg tables (pyiceberg, sqlite catalog), and the Athena stand-in (DuckDB) reads the fresh views.
The expected rows are the generator's own clean order events; the expected ledgers are the manifests'."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog import Catalog

from iceberg_tables.catalogs import local_catalog
from iceberg_tables.migrator import migrate
from iceberg_tables.specs import (ALL_TABLES, LIVE_ORDER_EVENTS, LIVE_ORDER_EVENTS_BATCHES, LIVE_TABLES,
                                  SILVER_FX_RATES, SILVER_ORDER_EVENTS)
from iceberg_tables.views import FRESH_ORDER_EVENTS, MINUTE_ORDERS, MINUTE_QUARANTINE, ORIGIN
from lakehouse.analytics.athena import query
from lakehouse.sources.fx_fixture import rates_for
from lakehouse.sources.generator import GeneratedOrders
from lambdas.contracts import orders
from lambdas.contracts.live import Notification, parse
from lambdas.live_committer.committer import STAGED_BATCHES, commit_notified
from lambdas.live_committer.handler import handler as live_handler
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)
from tests.fixtures.staged_batches import fifo_queue, notifications, received, stage, stage_orders
from tests.ground_truth import SIGN  # cash basis, as gold (glue_jobs/gold_metrics.py)

KEY = orders.DEDUPLICATION_KEY
STAGED_AT = datetime(2026, 11, 27, 10, 20, 30, tzinfo=timezone.utc)


@pytest.fixture
def catalog(lake: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:  # noqa: F811 (the fixture above)
    monkeypatch.setenv("LAKEHOUSE_WAREHOUSE", str(lake / "warehouse"))
    monkeypatch.setenv("LAKEHOUSE_CATALOG_DB", str(lake / "catalog.db"))
    both = local_catalog(lake / "warehouse", lake / "catalog.db")
    migrate(both, (*ALL_TABLES, *LIVE_TABLES))
    return both


def clean_rows(manifest: dict) -> list[dict]:
    return pq.read_table(manifest["files"]["clean"].removeprefix("file://")).to_pylist()


def key(row: dict) -> tuple:
    return tuple(row[k].astimezone(timezone.utc) if k == "event_time" else row[k] for k in KEY)


def sqs_event(bodies: list[str]) -> dict:
    return {"Records": [{"messageId": f"m{i}", "body": body} for i, body in enumerate(bodies)]}


@pytest.mark.usefixtures("local_cloud")  # a real moto server stands in for SQS
def test_order_batches_are_registered_once_even_when_delivered_twice(
        catalog: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    queue = fifo_queue("live-commits")
    monkeypatch.setenv("LIVE_QUEUE_URL", queue)
    written, generated = stage_orders(3)
    messages = received(queue)
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {LIVE_ORDER_EVENTS.full_name}
    notified = [parse(m["Body"]) for m in messages]
    assert [(n.batch_id, n.clean_file, n.ledger.received, n.ledger.clean, n.ledger.quarantined,
             n.ledger.duplicates) for n in notified] == [
        (m["batch_id"], m["files"]["clean"], m["received"], m["clean"], m["quarantined"], m["duplicates"])
        for m in written]

    event = sqs_event([m["Body"] for m in messages])
    assert live_handler(event, None) == {"batchItemFailures": []}
    assert live_handler(event, None) == {"batchItemFailures": []}  # SQS delivered it again
    assert live_handler(sqs_event([m["Body"] for m in messages[:1]] * 2), None) == {"batchItemFailures": []}
    table = catalog.load_table(LIVE_ORDER_EVENTS.full_name)
    assert len(table.metadata.snapshots) == 1 and len(table.inspect.files()) == len(written)
    _, rows = query(catalog, f"SELECT order_id, event_type, event_time FROM {LIVE_ORDER_EVENTS.full_name}")
    assert len(rows) == sum(m["clean"] for m in written)  # each staged row once
    assert {key(dict(zip(KEY, r))) for r in rows} == {key(vars(e)) for e in generated.clean_events}
    batches = catalog.load_table(LIVE_ORDER_EVENTS_BATCHES.full_name)
    assert len(batches.metadata.snapshots) == 1
    assert json.loads(batches.current_snapshot().summary[STAGED_BATCHES]) == [m["batch_id"] for m in written]
    assert sorted(r["batch_id"] for r in batches.scan().to_arrow().to_pylist()) == sorted(m["batch_id"] for m in written)


def stage_with_resends() -> tuple[list[dict], GeneratedOrders]:
    """Three batches of generated order events, then a fourth re-sending the first batch's first 40 records (a
    producer's retry): a key staged in two batches, the later copy ingested later."""
    written, generated = stage_orders(3)
    written, _ = stage_orders(1, 40, records=generated.records[:40], first_sequence_index=300)
    assert len(written) == 4
    return written, generated


def merge_into_silver(catalog: Catalog, manifest: dict) -> None:
    """What silver_merge does to one orders batch, for this test: its clean rows whose key silver lacks, the
    earliest ingested copy of each, with their item count and batch id."""
    held = {key(dict(zip(KEY, r))) for r in query(catalog, "SELECT order_id, event_type, event_time FROM "
                                                          "silver.order_events")[1]}
    first: dict[tuple, dict] = {}
    for row in sorted(clean_rows(manifest), key=lambda r: r["ingested_at"]):
        if key(row) not in held:
            first.setdefault(key(row), {**row, "item_count": len(row["items"]), "batch_id": manifest["batch_id"]})
    table = catalog.load_table(SILVER_ORDER_EVENTS.full_name)
    table.append(pa.Table.from_pylist(list(first.values()), schema=table.schema().as_arrow()))


def fresh(catalog: Catalog) -> Counter:
    _, rows = query(catalog, f"SELECT order_id, event_type, event_time, {ORIGIN} FROM {FRESH_ORDER_EVENTS.full_name}")
    return Counter((key(dict(zip(KEY, r[:3]))), r[3]) for r in rows)


def test_fresh_order_events_holds_each_clean_order_event_once_across_a_merge(catalog: Catalog) -> None:
    written, generated = stage_with_resends()
    expected = {key(vars(e)) for e in generated.clean_events}
    commit_notified(catalog, LIVE_ORDER_EVENTS.full_name, notifications(written, "orders", STAGED_AT))
    before = fresh(catalog)
    assert {k for k, _ in before} == expected and set(before.values()) == {1}
    assert {origin for _, origin in before} == {"live"}
    staged_keys = Counter(key(r) for m in written for r in clean_rows(m))
    assert max(staged_keys.values()) == 2  # the re-sent ones

    for merged in range(1, len(written) + 1):  # batch by batch, as the batch run merges them
        merge_into_silver(catalog, written[merged - 1])
        now = fresh(catalog)
        assert {k for k, _ in now} == expected and set(now.values()) == {1}
        assert {k for k, origin in now if origin == "silver"} == {key(r) for m in written[:merged] for r in clean_rows(m)}
    assert {origin for _, origin in now} == {"silver"}  # the live rows are still there: silver wins


def test_a_live_order_event_is_silvers_row_to_be(catalog: Catalog) -> None:
    """Before the merge, fresh.order_events' live row is what silver will hold: the earliest ingested copy, its
    item count the number of its lines, its total exact."""
    written, generated = stage_with_resends()
    commit_notified(catalog, LIVE_ORDER_EVENTS.full_name, notifications(written, "orders", STAGED_AT))
    columns, rows = query(catalog, f"SELECT order_id, event_type, event_time, total, currency, item_count, "
                                   f"ingested_at, batch_id FROM {FRESH_ORDER_EVENTS.full_name}")
    live = {key(r): r for r in (dict(zip(columns, row)) for row in rows)}
    earliest: dict[tuple, datetime] = {}
    for m in written:
        for r in clean_rows(m):
            earliest[key(r)] = min(earliest.get(key(r), r["ingested_at"]), r["ingested_at"])
    for event in generated.clean_events:
        row = live[key(vars(event))]
        assert (row["total"], row["currency"], row["item_count"], row["batch_id"]) == (
            event.total, event.currency, len(event.items), None)
        assert row["ingested_at"] == earliest[key(vars(event))]


def test_the_quarantine_rate_per_source_and_minute_is_the_manifests(catalog: Catalog) -> None:
    clicks, _ = stage(2)
    order_batches, _ = stage_orders(3)
    # a batch the orders cleaner quarantines whole: no clean file, still notified with its ledger
    [garbage] = [m for m in stage_orders(1, 20, records=[b"not json"] * 20, first_sequence_index=10_000)[0]
                 if m["batch_id"] not in {b["batch_id"] for b in order_batches}]
    assert garbage["files"]["clean"] is None and garbage["quarantined"] == garbage["received"] == 20
    order_batches.append(garbage)
    minutes = [STAGED_AT, STAGED_AT + timedelta(minutes=1)]
    staged_in = {m["batch_id"]: minutes[i % 2] for i, m in enumerate([*clicks, *order_batches])}
    for table, source, written in (("live.events", "clickstream", clicks),
                                   ("live.order_events", "orders", order_batches)):
        ledgers = [n for m in written for n in notifications([m], source, staged_in[m["batch_id"]])]
        commit_notified(catalog, table, ledgers)
        commit_notified(catalog, table, ledgers)  # redelivered: recorded once
    expected: dict[tuple, list[int]] = {}
    for source, written in (("clickstream", clicks), ("orders", order_batches)):
        for m in written:
            sums = expected.setdefault((staged_in[m["batch_id"]].replace(second=0), source), [0, 0, 0, 0])
            for i, name in enumerate(("received", "clean", "quarantined", "duplicates")):
                sums[i] += m[name]
    _, rows = query(catalog, f"SELECT minute, source, received, clean, quarantined, duplicates, quarantine_rate "
                             f"FROM {MINUTE_QUARANTINE.full_name}")
    assert {(minute, source): [received, clean, quarantined, duplicates]
            for minute, source, received, clean, quarantined, duplicates, _ in rows} == expected
    for _, _, received, _, quarantined, _, rate in rows:
        assert rate == pytest.approx(quarantined / received)


def test_a_notification_from_a_cleaner_of_before_the_ledger_is_registered_and_not_counted(catalog: Catalog) -> None:
    written, _ = stage_orders(1)
    [manifest] = written
    old = Notification(LIVE_ORDER_EVENTS.full_name, manifest["batch_id"], manifest["files"]["clean"])
    assert json.loads(old.body()) == {"table": "live.order_events", "batch_id": manifest["batch_id"],
                                      "clean_file": manifest["files"]["clean"]}
    assert live_handler(sqs_event([old.body()]), None) == {"batchItemFailures": []}
    assert len(catalog.load_table(LIVE_ORDER_EVENTS.full_name).inspect.files()) == 1
    assert catalog.load_table(LIVE_ORDER_EVENTS_BATCHES.full_name).metadata.snapshots == []


def test_orders_and_revenue_per_minute_are_the_generators_at_gold_rates(catalog: Catalog) -> None:
    """fresh.minute_orders against the generator's clean order events and the FX fixture's rates, computed here as
    gold computes revenue (paid minus refunded totals, at the event day's rate), with the newest earlier rate for
    the days silver.fx_rates has no rate for yet (provisional)."""
    written, generated = stage_with_resends()
    commit_notified(catalog, LIVE_ORDER_EVENTS.full_name, notifications(written, "orders", STAGED_AT))
    days = sorted({e.event_time.astimezone(timezone.utc).date() for e in generated.clean_events})
    rated = days[:2]  # the later days have no rate yet, as today has none until the batch merges it
    rates = {(day, currency): usd for day in rated for currency, usd in rates_for(day).items() if currency != "USD"}
    fx = catalog.load_table(SILVER_FX_RATES.full_name)
    fx.append(pa.Table.from_pylist([
        {"rate_date": day, "currency": currency, "usd_per_unit": usd, "published_date": day, "carried_forward": False,
         "batch_id": "fx-test"} for (day, currency), usd in rates.items()], schema=fx.schema().as_arrow()))

    def rate(day: date, currency: str) -> tuple[float, bool]:
        if currency == "USD":
            return 1.0, False
        known = max(d for d in rated if d <= day)
        return rates[(known, currency)], known < day

    by_minute: dict[datetime, list] = defaultdict(list)
    for e in generated.clean_events:
        by_minute[e.event_time.astimezone(timezone.utc).replace(second=0, microsecond=0)].append(e)
    expected = {}
    for minute, events in by_minute.items():
        money: dict[str, Decimal] = defaultdict(Decimal)  # exact per currency, converted once, as gold
        for e in events:
            if e.event_type in SIGN:
                money[e.currency] += SIGN[e.event_type] * e.total
        converted = [(float(amount), *rate(minute.date(), currency)) for currency, amount in money.items()]
        expected[minute] = (len({e.order_id for e in events if e.event_type == "order_placed"}),
                            len({e.order_id for e in events if e.event_type == "order_paid"}),
                            sum(amount * usd for amount, usd, _ in converted), any(late for *_, late in converted))
    _, rows = query(catalog, f"SELECT minute, orders, paid_orders, revenue_usd, provisional FROM {MINUTE_ORDERS.full_name}")
    assert {minute: (n, paid_n, late) for minute, n, paid_n, _, late in rows} == {
        minute: (n, paid_n, late) for minute, (n, paid_n, _, late) in expected.items()}
    assert {minute: revenue for minute, _, _, revenue, _ in rows} == pytest.approx(
        {minute: revenue for minute, (_, _, revenue, _) in expected.items()})
    assert {provisional for *_, provisional in rows} == {True, False}  # both kinds of day are there
