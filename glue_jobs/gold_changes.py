"""Which gold dates the silver changes since a gold table's last build touched (docs/decisions/0111, 0131).

A gold commit records, per silver input, the snapshot it read (summary property
`lakehouse.silver-snapshot-id.<table>`, `none` for a table without snapshot), atomically with its rows.
The next build compares each input's current snapshot with its bookmark:
- facts (silver.events, order_events, order_lines, partitioned by day(event_time)): the partitions of
  the data files the later snapshots added or removed (`all_entries`);
- silver.fx_rates: the rate_date of every (rate_date, currency, rate) row that differs between the two
  snapshots (a small table: a full diff works for any write mode);
- silver.products: the dates with a sale of a product whose catalog version of that day (name,
  category, price, currency; gold_metrics.product_of_day) differs between the two snapshots.
None (no usable bookmark, e.g. expired snapshots) means every date.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import reduce

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from glue_jobs.common import REPLACE, SILVER_EVENTS, SILVER_ORDER_EVENTS, SILVER_ORDER_LINES
from glue_jobs.gold_metrics import PAID, REFUNDED, product_of_day

BOOKMARK_PREFIX = "lakehouse.silver-snapshot-id."
NO_SNAPSHOT = "none"
# Partition field of the fact tables, day(event_time) (iceberg_tables.specs.partition_field_name; a unit test checks).
SILVER_DAY = "event_time_day"
FACTS = (SILVER_EVENTS, SILVER_ORDER_EVENTS, SILVER_ORDER_LINES)
FX_COLUMNS = ("rate_date", "currency", "usd_per_unit")
CATALOG_COLUMNS = ("name", "category", "price", "price_currency")

Bookmarks = Mapping[str, "int | None"]  # silver table -> snapshot read (None: the table had none)


def bookmark_property(table: str) -> str:
    return BOOKMARK_PREFIX + table.rsplit(".", 1)[-1]


def bookmark_properties(bookmarks: Bookmarks) -> dict[str, str]:
    return {bookmark_property(t): NO_SNAPSHOT if s is None else str(s) for t, s in bookmarks.items()}


def built_from(gold: Sequence[Row], inputs: Sequence[str]) -> dict[str, int | None] | None:
    """The silver snapshots the current gold rows were built from; None when another writer changed
    them since, or the commit lacks an input's bookmark (built by an older job)."""
    for snapshot in gold:
        if any(k.startswith(BOOKMARK_PREFIX) for k in snapshot.summary):
            values = [snapshot.summary.get(bookmark_property(t)) for t in inputs]
            if None in values:
                return None
            return {t: None if v == NO_SNAPSHOT else int(v) for t, v in zip(inputs, values)}
        if snapshot.operation != REPLACE:  # compaction keeps the rows; anything else may not
            return None
    return None


def changed_snapshots(silver: Sequence[Row], since: int | None) -> list[int] | None:
    """Silver's snapshots after `since` (None: the table had no snapshot then) that changed rows;
    None when `since` is no longer an ancestor."""
    changed = []
    for snapshot in silver:
        if since is not None and snapshot.snapshot_id == since:
            return changed
        if snapshot.operation != REPLACE:
            changed.append(snapshot.snapshot_id)
        if snapshot.parent_id == since:  # `since` itself may be expired: its child still names it
            return changed
    return changed if since is None and not silver else None


def fact_dates(spark: SparkSession, table: str, snapshot_ids: list[int]) -> list[date]:
    """The partitions (UTC dates) where these snapshots of a fact table added or removed files."""
    if not snapshot_ids:
        return []
    rows = (spark.table(f"{table}.all_entries")
            .where(F.col("status").isin(1, 2) & F.col("snapshot_id").isin(snapshot_ids))  # 1 added, 2 deleted
            .select(F.col(f"data_file.partition.{SILVER_DAY}").alias("day")).distinct().collect())
    return sorted(row.day for row in rows)


def _differing(old: DataFrame, new: DataFrame) -> DataFrame:
    return old.exceptAll(new).unionByName(new.exceptAll(old))


def fx_dates(old: DataFrame, new: DataFrame) -> list[date]:
    """The rate dates whose rates differ between two versions of silver.fx_rates."""
    rows = _differing(old.select(*FX_COLUMNS), new.select(*FX_COLUMNS)).select("rate_date").distinct().collect()
    return sorted(row.rate_date for row in rows)


def catalog_dates(old: DataFrame, new: DataFrame, order_lines: DataFrame) -> list[date]:
    """The dates with a paid or refunded line of a product whose version of that day differs between
    two versions of silver.products."""
    products = _differing(old, new).select("product_id").distinct()
    sold = (order_lines.where(F.col("event_type").isin(PAID, REFUNDED))
            .join(F.broadcast(products), "product_id")
            .select(F.to_date("event_time").alias("event_date"), "product_id").distinct())
    before, after = product_of_day(sold, old), product_of_day(sold, new)
    same = reduce(lambda a, b: a & b, (before[c].eqNullSafe(after[c]) for c in CATALOG_COLUMNS))
    changed = before.join(after, ["event_date", "product_id"]).where(~same)
    return sorted(row.event_date for row in changed.select("event_date").distinct().collect())
