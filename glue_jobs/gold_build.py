"""Glue job gold_build: lake.silver.events -> lake.gold.daily_kpis, rebuilding only the dates silver changed.

One row per UTC date and country. Each build records the silver snapshot it read in the summary of
its gold commit (property lakehouse.silver-snapshot-id), atomically with the rows. The next build
finds the data files that silver's later snapshots added or removed (its `all_entries` metadata),
and overwrites exactly the gold dates of their partitions, old dates touched by late events
included, in one commit; other dates' files are left as they are. It rebuilds everything when
there is no usable bookmark: the first build, gold changed by another writer, silver rolled back,
or silver's snapshots after the bookmark expired (docs/decisions/0111-gold-rebuilds-changed-dates.md).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from glue_jobs.common import (GOLD_DAILY_KPIS, REPLACE, SILVER_EVENTS, SUCCEEDED, glue_main, lineage, record_step,
                              require_args, require_utc, utc_now)

JOB = "gold_build"
ARGS = ("run_id",)
# Summary properties of gold's commits: the silver snapshot read, the run, the dates rebuilt.
BOOKMARK = "lakehouse.silver-snapshot-id"
RUN = "lakehouse.run-id"
DATES = "lakehouse.rebuilt-dates"
ALL_DATES = "all"
# Silver's partition field, day(event_time) (iceberg_tables.specs.partition_field_name; a unit test checks).
SILVER_DAY = "event_time_day"
# Gold column -> silver event_type it counts (the clickstream contract's EVENT_TYPES; a unit test checks).
EVENT_TYPE_COUNTS = {
    "page_views": "page_view",
    "product_views": "product_view",
    "add_to_cart": "add_to_cart",
    "checkouts": "checkout_started",
}


def daily_kpis(events: DataFrame, updated_at: Any) -> DataFrame:
    """The KPIs of silver events per UTC date (the session must be in UTC) and country."""
    return (events.groupBy(F.to_date("event_time").alias("event_date"), "country")
            .agg(F.countDistinct("user_id").alias("active_users"),
                 F.countDistinct("session_id").alias("sessions"),
                 F.count(F.lit(1)).alias("events"),
                 *(F.count(F.when(F.col("event_type") == kind, 1)).alias(column)
                   for column, kind in EVENT_TYPE_COUNTS.items()))
            .withColumn("updated_at", F.lit(updated_at).cast("timestamp")))


def built_from(gold: list[Row]) -> int | None:
    """The silver snapshot the current gold rows were built from; None when another writer changed them."""
    for snapshot in gold:
        if BOOKMARK in snapshot.summary:
            return int(snapshot.summary[BOOKMARK])
        if snapshot.operation != REPLACE:  # compaction keeps the rows; anything else may not
            return None
    return None


def changed_snapshots(silver: list[Row], since: int) -> list[int] | None:
    """Silver's snapshots after `since` that changed rows; None when `since` is no longer an ancestor."""
    changed = []
    for snapshot in silver:
        if snapshot.snapshot_id == since:
            return changed
        if snapshot.operation != REPLACE:
            changed.append(snapshot.snapshot_id)
        if snapshot.parent_id == since:  # `since` itself may be expired: its child still names it
            return changed
    return None


def changed_dates(spark: SparkSession, snapshot_ids: list[int]) -> list[date]:
    """The silver partitions (UTC dates) where these snapshots added or removed files."""
    if not snapshot_ids:
        return []
    rows = (spark.table(f"{SILVER_EVENTS}.all_entries")
            .where(F.col("status").isin(1, 2) & F.col("snapshot_id").isin(snapshot_ids))  # 1 added, 2 deleted
            .select(F.col(f"data_file.partition.{SILVER_DAY}").alias("day")).distinct().collect())
    return sorted(row.day for row in rows)


def _on_dates(dates: list[date]) -> Column:
    """event_time within these UTC dates, as ranges Iceberg prunes partitions with."""
    def day(d: date) -> Column:
        start = datetime.combine(d, time(), timezone.utc)
        return (F.col("event_time") >= F.lit(start)) & (F.col("event_time") < F.lit(start + timedelta(days=1)))
    return reduce(lambda a, b: a | b, map(day, dates))


def _rebuild(spark: SparkSession, run_id: str, current: int | None, dates: list[date] | None,
             updated_at: datetime) -> Row:
    """Overwrite the dates (None: all) with their KPIs at silver snapshot `current`; returns gold's new snapshot."""
    events = spark.table(SILVER_EVENTS) if current is None else spark.sql(
        f"SELECT * FROM {SILVER_EVENTS} VERSION AS OF {current}")
    if dates is not None:
        events = events.where(_on_dates(dates))
    kpis = daily_kpis(events, updated_at).select(*spark.table(GOLD_DAILY_KPIS).columns)
    properties = {RUN: run_id, DATES: ALL_DATES if dates is None else ",".join(map(str, dates))}
    if current is not None:
        properties[BOOKMARK] = str(current)
    writer = kpis.writeTo(GOLD_DAILY_KPIS)
    for key, value in properties.items():
        writer = writer.option(f"snapshot-property.{key}", value)
    # One commit: the dates' old rows go (whole partitions), their new rows come, readers see either.
    writer.overwrite(F.lit(True) if dates is None else F.col("event_date").isin(dates))
    return lineage(spark, GOLD_DAILY_KPIS)[0]


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    """Rebuild the gold dates silver changed since the last build and record the step; returns the
    dates rebuilt (ISO strings; None when every date was)."""
    a = require_args(JOB, args, ARGS)
    require_utc(spark, JOB)
    started_at = utc_now()
    silver, gold = lineage(spark, SILVER_EVENTS), lineage(spark, GOLD_DAILY_KPIS)
    since = built_from(gold)
    changes = changed_snapshots(silver, since) if since is not None else None
    dates = None if changes is None else changed_dates(spark, changes)  # None: every date
    current = silver[0].snapshot_id if silver else None

    if dates == [] and gold and gold[0].summary.get(RUN) == a["run_id"]:
        commit: Row | None = gold[0]  # an earlier attempt of this run rebuilt gold, then failed: report that
    elif dates == [] or (current is None and not gold):
        commit = None
    else:
        commit = _rebuild(spark, a["run_id"], current, dates, started_at)
    if commit is None:
        rows, rebuilt = 0, ""
        message = f"{GOLD_DAILY_KPIS} is up to date with {SILVER_EVENTS} snapshot {current}"
    else:
        rows, rebuilt = int(commit.summary.get("added-records", 0)), commit.summary[DATES]
        message = (f"rebuilt {'every date' if rebuilt == ALL_DATES else 'dates ' + rebuilt} of {GOLD_DAILY_KPIS} "
                   f"from {SILVER_EVENTS} snapshot {commit.summary.get(BOOKMARK)}: {rows} rows")
    record_step(spark, {
        "run_id": a["run_id"], "step": JOB, "status": SUCCEEDED, "started_at": started_at,
        "finished_at": utc_now(), "rows_written": rows, "message": message,
    })
    return {"run_id": a["run_id"], "step": JOB, "rows_written": rows, "message": message,
            "dates": None if rebuilt == ALL_DATES else [d for d in rebuilt.split(",") if d]}


if __name__ == "__main__":
    glue_main(JOB, run, ARGS)
