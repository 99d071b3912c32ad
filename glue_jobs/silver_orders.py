"""silver.order_events, silver.order_lines and silver.orders from the orders' batches.

- order_events: an insert-only merge on the contract's DEDUPLICATION_KEY (glue_jobs/first_copies);
- order_lines: the items of every event silver.order_events holds from these batches, taken from the copy
  it holds (its owner batch's), one row per line, inserted where missing (so a retry adds the lines an
  interrupted attempt did not write, even when another copy of the key arrived meanwhile);
- orders: the state of every order_id the batches carry, recomputed from ALL its events in silver: the
  latest by (event_time, status rank), so a late or out-of-order event never regresses a newer state.
Each write is idempotent (docs/decisions/0120-silver-orders-products-fx.md).
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (ArrayType, DecimalType, LongType, StringType, StructField, StructType,
                               TimestampType)

from glue_jobs.batches import BATCH_ID, CLEANER_QUARANTINE, Batch, Source
from glue_jobs.common import SILVER_ORDER_EVENTS, SILVER_ORDER_LINES, SILVER_ORDERS, temp_view, utc_now
from glue_jobs.first_copies import OWNER, append_new, clean_counts, first_copies, insert_unseen
from glue_jobs.table_diff import changed
from lambdas.contracts import orders

KEY = orders.DEDUPLICATION_KEY
LINE_KEY = (*KEY, "line_number")
# Status rank breaks ties of event_time: placed < paid < cancelled < refunded (the contract's order).
RANK = {event_type: rank for rank, event_type in enumerate(orders.EVENT_TYPES, start=1)}
STATUS_OF = {event_type: event_type.removeprefix("order_") for event_type in orders.EVENT_TYPES}
# The time columns of silver.orders: the first event_time of each status.
STATUS_TIMES = {event_type: f"{status}_at" for event_type, status in STATUS_OF.items()}

_AMOUNT = DecimalType(orders.AMOUNT_PRECISION, orders.AMOUNT_SCALE)
# The cleaner's staged columns (lambdas/cleaner/schemas.py); `country` came with contract v2 and
# `session_id` with v3, so an older file reads them as null.
STAGED = StructType([
    StructField("order_id", StringType(), False), StructField("event_type", StringType(), False),
    StructField("event_time", TimestampType(), False), StructField("event_time_offset", StringType(), True),
    StructField("user_id", StringType(), False), StructField("country", StringType(), True),
    StructField("currency", StringType(), False), StructField("total", _AMOUNT, False),
    StructField("items", ArrayType(StructType([
        StructField("product_id", StringType(), False), StructField("qty", LongType(), False),
        StructField("unit_price", _AMOUNT, False)])), False),
    StructField("session_id", StringType(), True),
    StructField("ingested_at", TimestampType(), False), StructField(BATCH_ID, StringType(), True),
])


def merge(spark: SparkSession, staged: DataFrame, batches: list[Batch]) -> dict[str, int]:
    """Merge the order events, their lines and the orders' states; per batch, its order events
    silver.order_events holds from it."""
    events = staged.withColumn("item_count", F.size("items"))
    chosen = first_copies(spark, SILVER_ORDER_EVENTS, events, KEY).cache()
    try:
        clean = clean_counts(events, chosen, KEY)
        insert_unseen(spark, SILVER_ORDER_EVENTS, chosen)
        # The lines of the copy silver holds: the owner's own staged copy, not the staged dedupe's winner,
        # which after a crash may be another batch's copy of the same key (then the held one had no lines).
        insert_lines(spark, events.join(chosen.select(*KEY, OWNER), list(KEY)).where(F.col(OWNER) == F.col(BATCH_ID)))
        update_orders(spark, chosen.select("order_id").distinct())
    finally:
        chosen.unpersist()
    return clean


def insert_lines(spark: SparkSession, owned: DataFrame) -> None:
    """The items of the events silver holds from these batches, one row per line, where not yet there."""
    lines = (owned.select(*KEY, "currency", BATCH_ID, F.posexplode("items").alias("_position", "_item"))
             .select(*KEY, (F.col("_position") + 1).cast("int").alias("line_number"),
                     *(F.col(f"_item.{name}").alias(name) for name in orders.ITEM_FIELDS), "currency", BATCH_ID))
    held = spark.table(SILVER_ORDER_LINES).select(*LINE_KEY)
    append_new(SILVER_ORDER_LINES,
               lines.join(held, list(LINE_KEY), "left_anti").select(*spark.table(SILVER_ORDER_LINES).columns))


def _rank() -> Column:
    return F.coalesce(*(F.when(F.col("event_type") == t, F.lit(r)) for t, r in RANK.items()))


def order_states(events: DataFrame) -> DataFrame:
    """Per order_id, its state from `events` (silver.order_events rows): the latest event by (event_time,
    rank) gives status, user, currency, total and item count; the latest event that has a country gives
    the country, and the latest that has a session_id the session_id; each status's first event_time its
    `<status>_at`."""
    latest = F.struct("event_time", _rank())
    status = F.coalesce(*(F.when(F.col("event_type") == t, F.lit(s)) for t, s in STATUS_OF.items()))
    state = events.groupBy("order_id").agg(
        F.max_by(F.struct(status.alias("status"), "user_id", "currency", "total", "item_count",
                          F.col("event_time").alias("status_time")), latest).alias("_latest"),
        *(F.max_by(c, F.when(F.col(c).isNotNull(), latest)).alias(c) for c in ("country", "session_id")),
        *(F.min(F.when(F.col("event_type") == t, F.col("event_time"))).alias(c) for t, c in STATUS_TIMES.items()))
    return state.select("order_id", "_latest.*", "country", "session_id", *STATUS_TIMES.values())


def update_orders(spark: SparkSession, touched: DataFrame) -> None:
    """Recompute the touched orders from all their events; MERGE the rows that changed (updated_at is the
    only column a recomputation of unchanged events leaves different, so an unchanged order is not rewritten)."""
    columns = spark.table(SILVER_ORDERS).columns
    state = order_states(spark.table(SILVER_ORDER_EVENTS).join(touched, "order_id"))
    compared = [c for c in columns if c != "updated_at"]
    rows = (changed(state, spark.table(SILVER_ORDERS), compared)
            .withColumn("updated_at", F.lit(utc_now())).select(*columns))
    if rows.take(1):
        with temp_view(rows) as view:
            spark.sql(f"MERGE INTO {SILVER_ORDERS} AS t USING {view} AS s ON t.order_id = s.order_id "
                      "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")


SOURCE = Source(name=orders.SOURCE, batch_key="batch_id", clean_schema=lambda spark: STAGED,
                quarantine_schema=CLEANER_QUARANTINE, to_quarantine=lambda rows: rows, merge=merge)
