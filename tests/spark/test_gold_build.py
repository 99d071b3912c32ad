"""gold_build on real PySpark + Iceberg, checked against a pure-Python count over the same input rows,
and read back through pyiceberg (the reader the local Athena stand-in and Lambdas use)."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from pyiceberg.expressions import EqualTo
from pyspark.sql import Row, SparkSession

from glue_jobs import gold_build, silver_merge
from tests.fixtures.spark import SparkLake
from tests.spark.staging import T0, expected_gold, expected_silver, job_args, make_events, resend, write_batch

pytestmark = pytest.mark.slow
KPIS = ("active_users", "sessions", "events", "page_views", "product_views", "add_to_cart", "checkouts")


@pytest.fixture
def lake(empty_spark_lake: SparkLake) -> SparkLake:
    return empty_spark_lake


def gold_by_pyiceberg(lake: SparkLake) -> dict[tuple[date, str], dict[str, int]]:
    rows = lake.catalog.load_table("gold.daily_kpis").scan().to_arrow().to_pylist()
    return {(r["event_date"], r["country"]): {k: r[k] for k in KPIS} for r in rows}


def gold_by_spark(spark: SparkSession) -> dict[tuple[date, str], dict[str, int]]:
    return {(r.event_date, r.country): {k: r[k] for k in KPIS} for r in spark.table("lake.gold.daily_kpis").collect()}


def gold_files(spark: SparkSession) -> dict[date, set[str]]:
    files: dict[date, set[str]] = {}
    for row in spark.sql("SELECT partition.event_date AS d, file_path FROM lake.gold.daily_kpis.files").collect():
        files.setdefault(row.d, set()).add(row.file_path)
    return files


def test_gold_equals_an_independent_count_and_leaves_no_stale_rows(
        spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    events = make_events(range(0, 300), seed=11, start=T0, hours=70)  # four UTC dates, 21:00 day 1 -> day 4
    staged = events + [resend(events[7], delay=timedelta(minutes=1)), resend(events[8], delay=timedelta(hours=3))]
    write_batch(tmp_path, "b1", staged)
    silver_merge.run(spark, job_args(tmp_path, "run-g1"))
    silver = expected_silver(staged)
    expected = expected_gold(silver)
    assert len({d for d, _ in expected}) == 4  # the test covers several UTC dates

    result = gold_build.run(spark, {"run_id": "run-g1"})

    assert result["dates"] is None  # no earlier build from this silver: every date
    assert gold_by_pyiceberg(lake) == expected
    assert gold_by_spark(spark) == expected
    assert result["rows_written"] == len(expected)
    [step] = lake.catalog.load_table("ops.pipeline_runs").scan(
        row_filter=EqualTo("step", "gold_build")).to_arrow().to_pylist()
    assert (step["run_id"], step["status"], step["rows_written"]) == ("run-g1", "SUCCEEDED", len(expected))
    updated = {r["updated_at"] for r in lake.catalog.load_table("gold.daily_kpis").scan().to_arrow().to_pylist()}
    assert len(updated) == 1 and step["started_at"] == updated.pop()

    # silver loses its first date (e.g. a correction): the rebuild must drop that date's gold rows
    first_date = min(d for d, _ in expected)
    spark.sql(f"DELETE FROM lake.silver.events WHERE event_time < TIMESTAMP '{first_date + timedelta(days=1)} 00:00:00'")
    again = gold_build.run(spark, {"run_id": "run-g2"})

    assert again["dates"] == [first_date.isoformat()]
    remaining = [r for r in silver if r["event_time"].date() > first_date]
    assert gold_by_pyiceberg(lake) == expected_gold(remaining)
    assert first_date not in {d for d, _ in gold_by_pyiceberg(lake)}


def test_late_events_update_their_own_day_and_no_other_days_files(
        spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    events = make_events(range(0, 200), seed=13, start=T0, hours=70)  # 2026-03-01 .. 2026-03-04
    write_batch(tmp_path, "b1", events)
    silver_merge.run(spark, job_args(tmp_path, "run-1"))
    gold_build.run(spark, {"run_id": "run-1"})
    days = sorted({e["event_time"].date() for e in events})
    newest, late_day = days[-1], days[-1] - timedelta(days=3)
    files_before = gold_files(spark)
    assert set(files_before) == set(days)

    # events 3 days older than the newest day, arriving (ingested) now, with a re-send of an old event
    late = make_events(range(200, 230), seed=14, start=T0 + timedelta(minutes=30), hours=2)
    assert {e["event_time"].date() for e in late} == {late_day}
    late = [{**e, "ingested_at": e["ingested_at"] + timedelta(days=3)} for e in late]
    write_batch(tmp_path, "b2", late + [resend(events[0], delay=timedelta(days=3))], hour="2026-03-04-23")
    silver_merge.run(spark, job_args(tmp_path, "run-2"))
    result = gold_build.run(spark, {"run_id": "run-2"})

    partitions = {r.event_id: r.day for r in spark.sql(
        "SELECT event_id, _partition.event_time_day AS day FROM lake.silver.events").collect()}
    assert {partitions[e["event_id"]] for e in late} == {late_day}  # in their event-time partition
    assert result["dates"] == [late_day.isoformat()]
    assert gold_by_pyiceberg(lake) == expected_gold(expected_silver(events + late))
    files_after = gold_files(spark)
    assert files_after[late_day].isdisjoint(files_before[late_day])
    assert {d: files_after[d] for d in days if d != late_day} == {
        d: files_before[d] for d in days if d != late_day}  # other days' data files are not rewritten
    assert late_day == date(2026, 3, 1) and newest == date(2026, 3, 4)

    nothing_new = gold_build.run(spark, {"run_id": "run-3"})
    assert (nothing_new["dates"], nothing_new["rows_written"]) == ([], 0)
    assert gold_files(spark) == files_after


def test_empty_silver_empties_gold(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    write_batch(tmp_path, "b1", make_events(range(0, 20), seed=12))
    silver_merge.run(spark, job_args(tmp_path, "run-e1"))
    gold_build.run(spark, {"run_id": "run-e1"})
    assert gold_by_pyiceberg(lake)
    spark.sql("DELETE FROM lake.silver.events")

    result = gold_build.run(spark, {"run_id": "run-e2"})

    assert result["rows_written"] == 0 and gold_by_pyiceberg(lake) == {}


def test_refuses_a_non_utc_session(spark: SparkSession) -> None:
    spark.conf.set("spark.sql.session.timeZone", "Europe/Berlin")
    try:
        with pytest.raises(RuntimeError, match="time zone is 'Europe/Berlin'; set spark.sql.session.timeZone=UTC"):
            gold_build.run(spark, {"run_id": "run-tz"})
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def snapshot(snapshot_id: int, parent_id: int | None, operation: str, **summary: str) -> Row:
    return Row(snapshot_id=snapshot_id, parent_id=parent_id, operation=operation, summary=summary)


def test_the_bookmark_survives_compaction_but_not_another_writer() -> None:
    built = snapshot(1, None, "overwrite", **{gold_build.BOOKMARK: "42"})
    assert gold_build.built_from([snapshot(3, 2, "replace"), snapshot(2, 1, "replace"), built]) == 42
    assert gold_build.built_from([snapshot(2, 1, "delete"), built]) is None  # someone else changed gold
    assert gold_build.built_from([snapshot(2, 1, "replace")]) is None  # the bookmarked commit expired
    assert gold_build.built_from([]) is None


def test_silver_changes_since_the_bookmark_skip_compactions_and_need_an_unbroken_chain() -> None:
    chain = [snapshot(5, 4, "append"), snapshot(4, 3, "replace"), snapshot(3, 2, "overwrite"), snapshot(2, 1, "append")]
    assert gold_build.changed_snapshots(chain, 2) == [5, 3]
    assert gold_build.changed_snapshots(chain, 5) == []
    assert gold_build.changed_snapshots(chain, 1) == [5, 3, 2]  # 1 expired, but its child names it
    assert gold_build.changed_snapshots(chain, 0) is None  # expired further back, or rolled back
