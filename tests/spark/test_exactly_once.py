"""A job that fails after any of its commits and is retried (as the state machine does, with the same
run id) leaves every table with the same rows as a run that never failed; running the same batches
again changes no table but adds the re-run's own zero ledger."""
from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from glue_jobs import common, gold_build, silver_fx_rates, silver_merge, silver_orders, silver_products
from lakehouse.lake.spark import get_spark
from tests.fixtures.spark import SparkLake, empty_tables
from tests.spark.staging import (T0, drop_catalog, job_args, make_events, order_event, resend, write_batch,
                                 write_fx_day, write_order_batch)

pytestmark = pytest.mark.slow
# Wall-clock columns differ between any two runs; so do messages, which name snapshot ids.
VOLATILE = {"started_at", "finished_at", "merged_at", "updated_at", "message"}
DAY = timedelta(days=1)
Tables = dict[str, list[tuple]]


class InjectedCrash(RuntimeError):
    """The job dies right after the patched step returned (its commit is done)."""


def table_data(spark: SparkSession) -> Tables:
    """Every table's rows at its current snapshot, without the wall-clock columns."""
    data = {}
    for table in common.ALL_TABLES:
        frame = spark.table(table)
        rows = frame.select(*(c for c in frame.columns if c not in VOLATILE)).collect()
        data[table] = sorted((tuple(row) for row in rows), key=repr)
    return data


def batch_run(spark: SparkSession, staging: Path, run_id: str) -> None:
    silver_merge.run(spark, job_args(staging, run_id))
    gold_build.run(spark, {"run_id": run_id})


@pytest.fixture(scope="module")
def staging(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every source: two clickstream batches with re-sends within and across them, quarantined records and
    late events; orders out of order across two batches; two catalog files (one late, with older
    updated_at); FX days with a gap."""
    root = tmp_path_factory.mktemp("exactly_once") / "staging"
    first = make_events(range(0, 30), seed=31, hours=50)
    write_batch(root, "b1", first + [resend(first[0], delay=timedelta(seconds=3))], duplicates_dropped=2,
                quarantined_by_reason={"BAD_TIMESTAMP": 2, "UNKNOWN_EVENT_TYPE": 1})
    second = make_events(range(30, 45), seed=32, start=T0, hours=3)
    write_batch(root, "b2", second + [resend(first[5], delay=timedelta(seconds=-2))], quarantined_by_reason={"BAD_JSON": 1})
    hour = timedelta(hours=1)
    write_order_batch(root, "ob1", [order_event("o1", "paid", T0 + hour), order_event("o2", "placed", T0),
                                    order_event("o2", "refunded", T0 + 4 * hour)],
                      quarantined_by_reason={"TOTAL_MISMATCH": 1})
    write_order_batch(root, "ob2", [order_event("o1", "placed", T0, ingested_after=3 * hour),
                                    order_event("o2", "paid", T0 + hour, ingested_after=5 * hour),
                                    order_event("o2", "placed", T0, ingested_after=6 * hour)])
    drop_catalog(root, "new.csv", [f"P-00001,Shoe,shoes,12.00,EUR,true,{(T0 - 2 * DAY).isoformat()}",
                                   f"P-00002,Bag,bags,30.00,EUR,true,{(T0 - 2 * DAY).isoformat()}", "P-00003,bad"],
                 ingested_at=T0 - DAY)
    drop_catalog(root, "old.csv", [f"P-00001,Shoe,shoes,10.00,EUR,true,{(T0 - 9 * DAY).isoformat()}",
                                   f"P-00002,Bag,bags,30.00,EUR,true,{(T0 - 8 * DAY).isoformat()}"], ingested_at=T0)
    for n, rates in enumerate(({"EUR": 1.08, "GBP": 1.27}, {}, {"EUR": 1.09})):
        write_fx_day(root, T0.date() + n * DAY, rates)
    return root


@pytest.fixture(scope="module")
def reference(spark_session: SparkSession, spark_lake: SparkLake, staging: Path) -> Tables:
    """The tables after one uninterrupted batch run of `staging`."""
    spark = get_spark(spark_lake.warehouse, spark_lake.catalog_db)
    empty_tables(spark)
    batch_run(spark, staging, "run-1")
    data = table_data(spark)
    silver = (common.SILVER_EVENTS, common.SILVER_ORDER_EVENTS, common.SILVER_ORDER_LINES, common.SILVER_ORDERS,
              common.SILVER_PRODUCTS, common.SILVER_FX_RATES, common.QUARANTINE)
    assert all(data[table] for table in silver), "every source must reach silver for the comparison to mean much"
    assert {row[1] for row in data[common.MERGED_BATCHES]} == {"clickstream", "orders", "products", "fx_rates"}
    return data


def crash_after(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> None:
    original: Callable[..., Any] = getattr(module, name)

    @functools.wraps(original)
    def step_then_crash(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise InjectedCrash(f"after {module.__name__}.{name}")

    monkeypatch.setattr(module, name, step_then_crash)


@pytest.mark.parametrize(("module", "step"), [
    (silver_merge, "merge_source"),  # after silver.events
    (silver_orders, "insert_unseen"),  # after silver.order_events, before its lines
    (silver_orders, "insert_lines"),
    (silver_orders, "update_orders"),
    (silver_products, "replace"),
    (silver_fx_rates, "upsert"),
    (silver_merge, "load_quarantine"),
    (silver_merge, "record_batches"),
    (silver_merge, "record_step"),
    (gold_build, "_rebuild"),
    (gold_build, "record_step"),
], ids=lambda v: v if isinstance(v, str) else v.__name__.split(".")[-1])
def test_a_retry_after_a_crash_leaves_the_tables_as_one_clean_run(
        spark: SparkSession, staging: Path, reference: Tables, monkeypatch: pytest.MonkeyPatch,
        module: Any, step: str) -> None:
    empty_tables(spark)
    if module is gold_build:
        silver_merge.run(spark, job_args(staging, "run-1"))
    job = functools.partial((gold_build if module is gold_build else silver_merge).run, spark,
                            {**job_args(staging, "run-1"), "run_id": "run-1"})
    with monkeypatch.context() as patch:
        crash_after(patch, module, step)
        with pytest.raises(InjectedCrash):
            job()
    job()  # the state machine's retry: same run id
    if module is not gold_build:
        gold_build.run(spark, {"run_id": "run-1"})

    assert table_data(spark) == reference


def test_running_the_same_batches_again_changes_no_table(spark: SparkSession, staging: Path,
                                                         reference: Tables) -> None:
    empty_tables(spark)
    batch_run(spark, staging, "run-1")
    silver_snapshots = spark.table("lake.silver.events.snapshots").count()

    batch_run(spark, staging, "run-2")

    again = table_data(spark)
    runs = again.pop(common.PIPELINE_RUNS)
    assert again == {t: rows for t, rows in reference.items() if t != common.PIPELINE_RUNS}
    assert spark.table("lake.silver.events.snapshots").count() == silver_snapshots
    assert [r for r in runs if r[0] == "run-1"] == reference[common.PIPELINE_RUNS]
    rerun = {r[1]: r for r in runs if r[0] == "run-2"}
    assert set(rerun) == {"silver_merge", "gold_build"}
    assert rerun["silver_merge"][3:8] == (0, 0, 0, 0, 0)  # received, clean, quarantined, duplicates, rows
    assert rerun["gold_build"][7] == 0  # rows_written


def test_a_copy_arriving_between_a_crash_and_its_retry_leaves_the_owners_lines(
        spark: SparkSession, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The crash lands after silver.order_events took ob1's copy of an order event, before its lines; before the
    retry, ob2 brings another copy of the same key that wins the staged dedupe (it was ingested earlier). The
    lines must still come from the copy silver holds (ob1's), or the order event keeps no lines for good."""
    empty_tables(spark)
    root = tmp_path / "staging"
    held = order_event("o7", "placed", T0, items=[("P-00001", 2, "10.00"), ("P-00002", 1, "30.00")])
    write_order_batch(root, "ob1", [held])
    with monkeypatch.context() as patch:
        crash_after(patch, silver_orders, "insert_unseen")
        with pytest.raises(InjectedCrash):
            silver_merge.run(spark, job_args(root, "run-1"))
    write_order_batch(root, "ob2", [order_event("o7", "placed", T0, ingested_after=timedelta(seconds=1),
                                                items=[("P-00003", 1, "5.00")])])
    silver_merge.run(spark, job_args(root, "run-1"))

    events = spark.table(common.SILVER_ORDER_EVENTS).select("order_id", "batch_id", "item_count").collect()
    assert [tuple(e) for e in events] == [("o7", "ob1", 2)]
    lines = spark.table(common.SILVER_ORDER_LINES).orderBy("line_number").select(
        "line_number", "product_id", "qty", "batch_id").collect()
    assert [tuple(line) for line in lines] == [(1, "P-00001", 2, "ob1"), (2, "P-00002", 1, "ob1")]
