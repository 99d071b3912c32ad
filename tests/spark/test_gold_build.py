"""gold_build on real PySpark + Iceberg: every gold table equals tests.ground_truth's pure-Python
computation over the same silver rows, which the tests write straight into silver (no silver job);
incremental rebuilds touch only the dates the new silver data touched, checked in gold's commit
summaries and data files; re-runs and retries leave gold identical."""
from __future__ import annotations

import functools
from datetime import date, timedelta
from typing import Any

import pytest
from pyiceberg.expressions import EqualTo
from pyspark.sql import Row, SparkSession

from glue_jobs import gold_build, gold_changes
from glue_jobs.common import (GOLD_DAILY_KPIS, GOLD_FUNNEL_DAILY, GOLD_PRODUCT_SALES_DAILY, SILVER_EVENTS,
                              SILVER_FX_RATES, SILVER_ORDER_EVENTS, SILVER_ORDER_LINES, SILVER_PRODUCTS, lineage)
from tests import ground_truth as truth
from tests.fixtures.spark import SparkLake
from tests.spark.gold_silver import (CATALOG_VERSIONS, DAYS, GOLD, MISSING_DAY, Silver, assert_gold_is_expected, click_rows,
                                     commit_dates, fx_rows, gold, order_rows, product_rows, rates_of, seeded, utc)
from tests.spark.staging import T0

pytestmark = pytest.mark.slow
@pytest.fixture
def lake(empty_spark_lake: SparkLake) -> SparkLake:
    return empty_spark_lake


def gold_files(spark: SparkSession, table: str) -> dict[date, set[str]]:
    files: dict[date, set[str]] = {}
    for row in spark.sql(f"SELECT partition.event_date AS d, file_path FROM {table}.files").collect():
        files.setdefault(row.d, set()).add(row.file_path)
    return files


def test_every_gold_table_equals_an_independent_computation(spark: SparkSession, lake: SparkLake) -> None:
    silver = seeded(lake)

    result = gold_build.run(spark, {"run_id": "run-g1"})

    expected = assert_gold_is_expected(spark, silver)
    kpis, sales = expected[GOLD_DAILY_KPIS], expected[GOLD_PRODUCT_SALES_DAILY]
    # the cases the inputs were made for are really there
    assert {d for d, _ in kpis} >= set(DAYS) and any(c == "ZZ" for _, c in kpis)
    assert {k for k, v in kpis.items() if v["revenue_usd"] is None} and all(
        d == MISSING_DAY for (d, _), v in kpis.items() if v["revenue_usd"] is None)
    assert any(v["units_refunded"] and not v["units_sold"] for v in sales.values())  # a refund-only day
    assert {p for (_, p), v in sales.items() if v["name"] is None} >= {"P-00007", "P-00008"}
    assert {v["name"] for (d, p), v in sales.items() if p == "P-00002"} == {"Rain Shell", "Rain Shell, navy"}
    assert any(v["name"] is None for (d, p), v in sales.items() if p == "P-00006" and d < date(2026, 3, 3))
    funnel = expected[GOLD_FUNNEL_DAILY]  # sessions that paid: fewer than paid orders (shared and no sessions)
    assert 0 < sum(v["paid_sessions"] for v in funnel.values()) < sum(v["paid_orders"] for v in funnel.values())

    assert result["dates"] is None  # no earlier build: every date
    assert result["rows_written"] == sum(len(rows) for rows in expected.values())
    assert {t: r["rows_written"] for t, r in result["tables"].items()} == {t: len(expected[t]) for t in GOLD}
    # the missing rates are counted per date and currency: order events in daily_kpis, lines and prices in sales
    money = [o for o in silver.orders if o["event_type"] in ("order_paid", "order_refunded")]
    missing_orders = {c: sum(1 for o in money if o["event_time"].date() == MISSING_DAY and o["currency"] == c)
                      for c in ("EUR", "GBP", "JPY")}
    assert result["tables"][GOLD_DAILY_KPIS]["missing_fx_rates"] == ", ".join(
        f"{MISSING_DAY} {c} {n}" for c, n in sorted(missing_orders.items()) if n)
    assert result["tables"][GOLD_FUNNEL_DAILY]["missing_fx_rates"] == ""
    assert str(MISSING_DAY) in result["tables"][GOLD_PRODUCT_SALES_DAILY]["missing_fx_rates"]
    [step] = lake.catalog.load_table("ops.pipeline_runs").scan(
        row_filter=EqualTo("step", "gold_build")).to_arrow().to_pylist()
    assert (step["run_id"], step["status"], step["rows_written"]) == ("run-g1", "SUCCEEDED", result["rows_written"])
    assert f"money null where no FX rate (date currency records): {MISSING_DAY} EUR" in step["message"]
    updated = {r["updated_at"] for t in GOLD for r in lake.catalog.load_table(t.removeprefix("lake.")).scan()
               .to_arrow().to_pylist()}
    assert updated == {step["started_at"]}


def test_refunds_subtract_on_their_own_day(spark: SparkSession, lake: SparkLake) -> None:
    silver = Silver(lake)
    paid_at, refunded_at = utc(2026, 3, 1, 23, 50), utc(2026, 3, 3, 0, 10)
    base = {"order_id": "o1", "event_time_offset": "+00:00", "user_id": "u1", "country": "DE", "currency": "EUR",
            "total": truth.Decimal("40.50"), "item_count": 1, "batch_id": "b"}
    events = [{**base, "event_type": kind, "event_time": at, "ingested_at": at}
              for kind, at in (("order_placed", paid_at - timedelta(minutes=5)), ("order_paid", paid_at),
                               ("order_refunded", refunded_at))]
    lines = [{"order_id": "o1", "event_type": e["event_type"], "event_time": e["event_time"], "line_number": 1,
              "product_id": "P-00001", "qty": 3, "unit_price": truth.Decimal("13.50"), "currency": "EUR",
              "batch_id": "b"} for e in events]
    silver.add(orders=(events, lines), products=product_rows(CATALOG_VERSIONS[:1]),
               fx=fx_rows([date(2026, 3, 1), date(2026, 3, 3)]))
    gold_build.run(spark, {"run_id": "run-r1"})

    expected = assert_gold_is_expected(spark, silver)
    rate = rates_of(silver.fx)
    kpis, sales = gold(spark, GOLD_DAILY_KPIS), gold(spark, GOLD_PRODUCT_SALES_DAILY)
    assert kpis[(date(2026, 3, 1), "DE")]["revenue_usd"] == pytest.approx(40.5 * rate[(date(2026, 3, 1), "EUR")])
    assert kpis[(date(2026, 3, 3), "DE")]["revenue_usd"] == pytest.approx(-40.5 * rate[(date(2026, 3, 3), "EUR")])
    assert (kpis[(date(2026, 3, 3), "DE")]["orders"], kpis[(date(2026, 3, 3), "DE")]["paid_orders"]) == (0, 0)
    assert kpis[(date(2026, 3, 3), "DE")]["conversion_rate"] is None  # no sessions that day
    refund_day = sales[(date(2026, 3, 3), "P-00001")]
    assert (refund_day["orders"], refund_day["units_sold"], refund_day["units_refunded"]) == (0, 0, 3)
    assert refund_day["revenue_usd"] == pytest.approx(-40.5 * rate[(date(2026, 3, 3), "EUR")])
    assert len(expected[GOLD_FUNNEL_DAILY]) == 2


def test_late_data_updates_its_own_day_in_every_gold_table_and_no_other_days_files(
        spark: SparkSession, lake: SparkLake) -> None:
    silver = seeded(lake)
    gold_build.run(spark, {"run_id": "run-1"})
    files_before = {t: gold_files(spark, t) for t in GOLD}
    late_day = DAYS[-1] - timedelta(days=3)

    # clicks and orders 3 days older than the newest day (a paid order and a refund among them)
    late_events = click_rows(range(300, 330), seed=14, start=T0 + timedelta(minutes=30), hours=2)
    late_orders = order_rows(6, seed=15, start=utc(2026, 3, 1, 1), hours=1, first=500)
    late_orders = tuple([r for r in rows if r["event_time"].date() == late_day] for rows in late_orders)
    assert {r["event_type"] for r in late_orders[0]} >= {"order_paid"}
    silver.add(events=late_events, orders=late_orders)
    result = gold_build.run(spark, {"run_id": "run-2"})

    assert result["dates"] == [late_day.isoformat()]
    assert {t: commit_dates(spark, t) for t in GOLD} == {t: late_day.isoformat() for t in GOLD}
    assert_gold_is_expected(spark, silver)
    for table in GOLD:
        after = gold_files(spark, table)
        assert after[late_day].isdisjoint(files_before[table].get(late_day, set())), table
        assert {d: f for d, f in after.items() if d != late_day} == {
            d: f for d, f in files_before[table].items() if d != late_day}, table  # other days not rewritten

    snapshots = {t: lineage(spark, t)[0].snapshot_id for t in GOLD}
    nothing_new = gold_build.run(spark, {"run_id": "run-3"})
    assert (nothing_new["dates"], nothing_new["rows_written"]) == ([], 0)
    assert {t: lineage(spark, t)[0].snapshot_id for t in GOLD} == snapshots  # no commit at all


def test_a_late_fx_rate_rebuilds_its_day_in_the_tables_with_money_only(spark: SparkSession, lake: SparkLake) -> None:
    silver = seeded(lake)
    gold_build.run(spark, {"run_id": "run-1"})
    funnel = lineage(spark, GOLD_FUNNEL_DAILY)[0].snapshot_id

    silver.add(fx=fx_rows([MISSING_DAY], seed=3))
    result = gold_build.run(spark, {"run_id": "run-2"})

    expected = assert_gold_is_expected(spark, silver)
    assert all(v["revenue_usd"] is not None for v in expected[GOLD_DAILY_KPIS].values())
    assert {t: r["dates"] for t, r in result["tables"].items()} == {
        GOLD_DAILY_KPIS: [str(MISSING_DAY)], GOLD_FUNNEL_DAILY: [], GOLD_PRODUCT_SALES_DAILY: [str(MISSING_DAY)]}
    assert lineage(spark, GOLD_FUNNEL_DAILY)[0].snapshot_id == funnel
    assert all(r["missing_fx_rates"] == "" for r in result["tables"].values())

    # a corrected rate (an overwrite in silver) rebuilds that rate's day only
    spark.sql(f"UPDATE {SILVER_FX_RATES} SET usd_per_unit = usd_per_unit * 2 "
              f"WHERE rate_date = DATE '{DAYS[0]}' AND currency = 'EUR'")
    silver.fx = [{**r, "usd_per_unit": r["usd_per_unit"] * 2} if (r["rate_date"], r["currency"]) == (DAYS[0], "EUR")
                 else r for r in silver.fx]
    again = gold_build.run(spark, {"run_id": "run-3"})
    assert again["dates"] == [str(DAYS[0])]
    assert_gold_is_expected(spark, silver)


def test_a_new_catalog_version_rebuilds_only_the_days_it_changes(spark: SparkSession, lake: SparkLake) -> None:
    silver = seeded(lake)
    gold_build.run(spark, {"run_id": "run-1"})
    kpis = lineage(spark, GOLD_DAILY_KPIS)[0].snapshot_id
    sold = sorted({d for (d, p) in gold(spark, GOLD_PRODUCT_SALES_DAILY) if p == "P-00004"})
    assert len(sold) >= 2

    # P-00004 changes price during the second-to-last day it sold: from that day on, sales show the new version
    change = utc(sold[-2].year, sold[-2].month, sold[-2].day, 18)
    spark.sql(f"UPDATE {SILVER_PRODUCTS} SET valid_to = TIMESTAMP '{change.isoformat()}', is_current = false "
              "WHERE product_id = 'P-00004' AND valid_to IS NULL")
    silver.products = [{**p, "valid_to": change, "is_current": False} if p["product_id"] == "P-00004" else p
                       for p in silver.products]
    [new] = product_rows([("P-00004", "Kettle 1.7l", "kitchen", "27.00", "GBP", change)])
    silver.add(products=[{**new, "line_number": 9}])
    result = gold_build.run(spark, {"run_id": "run-2"})

    assert result["tables"][GOLD_PRODUCT_SALES_DAILY]["dates"] == [str(d) for d in sold[-2:]]
    assert result["tables"][GOLD_DAILY_KPIS]["dates"] == [] and lineage(spark, GOLD_DAILY_KPIS)[0].snapshot_id == kpis
    sales = assert_gold_is_expected(spark, silver)[GOLD_PRODUCT_SALES_DAILY]
    assert [sales[(d, "P-00004")]["name"] for d in sold] == ["Kettle"] * (len(sold) - 2) + ["Kettle 1.7l"] * 2


def test_re_runs_and_a_retry_after_any_commit_leave_gold_identical(
        spark: SparkSession, lake: SparkLake, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded(lake)
    gold_build.run(spark, {"run_id": "run-1"})
    reference = {t: gold(spark, t) for t in GOLD}
    [reference_step] = spark.sql("SELECT rows_written FROM lake.ops.pipeline_runs WHERE run_id = 'run-1'").collect()

    for crash_after in range(len(GOLD)):  # the job dies after the first, second, third table's commit
        spark.sql("DELETE FROM lake.gold.daily_kpis")  # another writer: every table rebuilds from scratch
        for table in GOLD[1:]:
            spark.sql(f"DELETE FROM {table}")
        run_id = f"run-crash-{crash_after}"
        calls = []
        original = gold_build._rebuild

        @functools.wraps(original)
        def rebuild_then_crash(*args: Any, **kwargs: Any) -> Row:
            commit = original(*args, **kwargs)
            calls.append(commit)
            if len(calls) == crash_after + 1:
                raise RuntimeError("injected crash after a gold commit")
            return commit

        with monkeypatch.context() as patch:
            patch.setattr(gold_build, "_rebuild", rebuild_then_crash)
            with pytest.raises(RuntimeError, match="injected crash"):
                gold_build.run(spark, {"run_id": run_id})
        retried = gold_build.run(spark, {"run_id": run_id})  # the state machine's retry: same run id

        assert {t: gold(spark, t) for t in GOLD} == reference
        assert retried["rows_written"] == reference_step.rows_written
        assert retried["dates"] is None

    again = gold_build.run(spark, {"run_id": "run-again"})
    assert (again["rows_written"], again["dates"]) == (0, [])
    assert {t: gold(spark, t) for t in GOLD} == reference


def test_empty_silver_empties_gold(spark: SparkSession, lake: SparkLake) -> None:
    silver = seeded(lake)
    gold_build.run(spark, {"run_id": "run-e1"})
    assert all(gold(spark, t) for t in GOLD)
    for table in (SILVER_EVENTS, SILVER_ORDER_EVENTS, SILVER_ORDER_LINES):
        spark.sql(f"DELETE FROM {table}")

    result = gold_build.run(spark, {"run_id": "run-e2"})

    days = {r["event_time"].date() for r in silver.events + silver.orders}
    assert result["dates"] == sorted(map(str, days))  # the days silver's deletes touched
    assert result["rows_written"] == 0 and all(gold(spark, t) == {} for t in GOLD)


def test_refuses_a_non_utc_session(spark: SparkSession) -> None:
    spark.conf.set("spark.sql.session.timeZone", "Europe/Berlin")
    try:
        with pytest.raises(RuntimeError, match="time zone is 'Europe/Berlin'; set spark.sql.session.timeZone=UTC"):
            gold_build.run(spark, {"run_id": "run-tz"})
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def snapshot(snapshot_id: int, parent_id: int | None, operation: str, **summary: str) -> Row:
    return Row(snapshot_id=snapshot_id, parent_id=parent_id, operation=operation, summary=summary)


def test_the_bookmarks_survive_compaction_but_not_another_writer() -> None:
    inputs = ("lake.silver.events", "lake.silver.fx_rates")
    built = snapshot(1, None, "overwrite", **gold_changes.bookmark_properties(dict(zip(inputs, (42, None)))))
    assert built.summary == {"lakehouse.silver-snapshot-id.events": "42", "lakehouse.silver-snapshot-id.fx_rates": "none"}
    bookmarks = {"lake.silver.events": 42, "lake.silver.fx_rates": None}  # fx_rates had no snapshot yet
    assert gold_changes.built_from([snapshot(3, 2, "replace"), snapshot(2, 1, "replace"), built], inputs) == bookmarks
    assert gold_changes.built_from([snapshot(2, 1, "delete"), built], inputs) is None  # someone else changed gold
    assert gold_changes.built_from([snapshot(2, 1, "replace")], inputs) is None  # the bookmarked commit expired
    assert gold_changes.built_from([built], (*inputs, "lake.silver.products")) is None  # an input without bookmark
    assert gold_changes.built_from([], inputs) is None


def test_silver_changes_since_the_bookmark_skip_compactions_and_need_an_unbroken_chain() -> None:
    chain = [snapshot(5, 4, "append"), snapshot(4, 3, "replace"), snapshot(3, 2, "overwrite"), snapshot(2, 1, "append")]
    assert gold_changes.changed_snapshots(chain, 2) == [5, 3]
    assert gold_changes.changed_snapshots(chain, 5) == []
    assert gold_changes.changed_snapshots(chain, 1) == [5, 3, 2]  # 1 expired, but its child names it
    assert gold_changes.changed_snapshots(chain, 0) is None  # expired further back, or rolled back
    # bookmarked before the table had a snapshot: every change since its first snapshot, if still kept
    assert gold_changes.changed_snapshots([*chain, snapshot(1, None, "append")], None) == [5, 3, 2, 1]
    assert gold_changes.changed_snapshots(chain, None) is None
    assert gold_changes.changed_snapshots([], None) == []
