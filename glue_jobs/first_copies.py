"""Insert-only merge on a deduplication key: a silver table keeps the first copy it merged of each key.

Shared by silver.events (event_id) and silver.order_events (order_id, event_type, event_time). Among the
staged copies of one key the earliest ingested wins; a key the table holds already is not inserted again
(docs/decisions/0102-silver-merge-ledger.md). Counting is repeatable: a batch's clean rows are the keys
the table holds *from that batch*, whether this attempt or an interrupted one inserted them (0110).
"""
from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from glue_jobs.batches import BATCH_ID

HELD, OWNER = "_held", "_owner"


def dedupe(staged: DataFrame, key: Sequence[str]) -> DataFrame:
    """One row per key: the earliest ingested copy (ties broken by the other columns, deterministic)."""
    others = [c for c in staged.columns if c not in (*key, "ingested_at")]
    window = Window.partitionBy(*key).orderBy(
        F.col("ingested_at").asc_nulls_last(), *(F.col(c).asc_nulls_last() for c in others))
    return staged.withColumn("_copy", F.row_number().over(window)).where("_copy = 1").drop("_copy")


def first_copies(spark: SparkSession, table: str, staged: DataFrame, key: Sequence[str]) -> DataFrame:
    """One staged row per key with HELD (the table has the key already) and OWNER: the batch whose copy the
    table holds once the unseen keys are inserted (the one it had, else this copy's)."""
    held = spark.table(table).select(*key, F.lit(True).alias(HELD), F.col(BATCH_ID).alias("_held_from"))
    return (dedupe(staged, key).join(held, list(key), "left")
            .withColumn(OWNER, F.when(F.col(HELD), F.col("_held_from")).otherwise(F.col(BATCH_ID)))
            .drop("_held_from"))


def clean_counts(staged: DataFrame, chosen: DataFrame, key: Sequence[str]) -> dict[str, int]:
    """Per batch: its staged keys whose copy the table holds from this batch (`chosen`: first_copies')."""
    return {row[BATCH_ID]: row["count"] for row in (
        staged.select(*key, BATCH_ID).distinct().join(chosen.select(*key, OWNER), list(key))
        .where(F.col(OWNER) == F.col(BATCH_ID)).groupBy(BATCH_ID).count().collect())}


def append_new(table: str, rows: DataFrame) -> None:
    """Append `rows` (the table's columns, keys it lacks: the caller anti-joined them); commits nothing when
    there are none. An append, not a MERGE: the anti-join already did the MERGE's work, and the run lock
    (one batch run at a time) means no other writer can insert the same keys meanwhile
    (docs/decisions/0150-batch-benchmark-and-the-arrow-merge.md)."""
    if rows.take(1):
        rows.writeTo(table).append()


def insert_unseen(spark: SparkSession, table: str, chosen: DataFrame) -> None:
    """Insert `chosen`'s keys the table lacks (commits nothing when there are none)."""
    append_new(table, chosen.where(F.col(HELD).isNull()).select(*spark.table(table).columns))
