"""silver.fx_rates from the FX connector's batches (one per rate_date; a re-fetched day is a new version).

The published rates are upserted on (rate_date, currency); silver keeps the latest published rate of each
day and currency (a later version of a day replaces the rates it has, and never removes one: a failed
re-fetch does not erase a good rate). Then, per currency, every day from its first published rate through
the newest rate_date of any currency that has no published rate carries the latest earlier one forward
(carried_forward, published_date = that day). The table is small (currencies x days), so the carried rows
are derived from all published rows each run, and only rows that differ are written: a published rate
arriving late replaces its carried row and re-derives the days after it; a retry writes nothing
(docs/decisions/0120-silver-orders-products-fx.md).
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, DateType, DoubleType, IntegerType, StringType, StructField, StructType

from glue_jobs.batches import BATCH_ID, Batch, Source
from glue_jobs.common import SILVER_FX_RATES, temp_view
from glue_jobs.table_diff import changed
from lambdas.contracts import fx_rates

KEY = fx_rates.IDENTIFIER
_CARRIED = ("usd_per_unit", "published_date", BATCH_ID)  # what a carried-forward day takes from its rate

# The connector's staged columns (lambdas/api_connector/writer.py): every one required.
STAGED = StructType([
    StructField("rate_date", DateType(), False), StructField("currency", StringType(), False),
    StructField("usd_per_unit", DoubleType(), False), StructField(BATCH_ID, StringType(), True),
])
QUARANTINE = StructType([
    StructField("raw_payload", BinaryType(), False), StructField("source", StringType(), False),
    StructField("reason", StringType(), False), StructField("message", StringType(), False),
    StructField("rate_date", DateType(), False), StructField("page", IntegerType(), False),
    StructField(BATCH_ID, StringType(), True),
])


def to_quarantine(rows: DataFrame) -> DataFrame:
    """ops.quarantine's columns: the page goes into the message (the batch id names the day); the connector
    records no arrival time per row, so ingested_at is when it wrote the quarantine file."""
    return rows.select("source", BATCH_ID, "reason", F.col("_file_time").alias("ingested_at"), "raw_payload",
                       F.concat(F.lit("page "), F.col("page").cast("string"), F.lit(": "), "message").alias("message"),
                       F.lit(None).cast("string").alias("shard"), F.lit(None).cast("string").alias("sequence_number"))


def with_carried_days(published: DataFrame) -> DataFrame:
    """Every (day, currency) from the currency's first published rate through the newest published day of any
    currency: the published rate, else the latest earlier one carried forward."""
    last_day = published.agg(F.max("rate_date").alias("_last"))
    days = (published.groupBy("currency").agg(F.min("rate_date").alias("_first")).crossJoin(last_day)
            .select("currency", F.explode(F.sequence("_first", "_last")).alias("rate_date")))
    rates = published.select(*KEY, F.struct(*_CARRIED).alias("_rate"))
    until_today = Window.partitionBy("currency").orderBy("rate_date").rowsBetween(Window.unboundedPreceding, 0)
    return (days.join(rates, list(KEY), "left")
            .withColumn("_rate", F.last("_rate", ignorenulls=True).over(until_today))
            .select(*KEY, *(F.col(f"_rate.{c}").alias(c) for c in _CARRIED))
            .withColumn("carried_forward", F.col("published_date") != F.col("rate_date")))


def merge(spark: SparkSession, staged: DataFrame, batches: list[Batch]) -> dict[str, int]:
    """Upsert the published rates and re-derive the carried days; every staged rate is clean."""
    columns = spark.table(SILVER_FX_RATES).columns
    held = spark.table(SILVER_FX_RATES).cache()
    try:
        fresh = staged.select(*KEY, "usd_per_unit", F.col("rate_date").alias("published_date"),
                              F.lit(False).alias("carried_forward"), BATCH_ID)
        kept = held.where(~F.col("carried_forward")).join(fresh.select(*KEY), list(KEY), "left_anti")
        wanted = with_carried_days(kept.select(*columns).unionByName(fresh.select(*columns))).select(*columns)
        upsert(spark, changed(wanted, held, columns))
    finally:
        held.unpersist()
    return {batch.batch_id: batch.clean for batch in batches}


def upsert(spark: SparkSession, rows: DataFrame) -> None:
    """Insert or replace `rows` on (rate_date, currency); commits nothing when there are none."""
    if rows.take(1):
        with temp_view(rows) as view:
            spark.sql(f"MERGE INTO {SILVER_FX_RATES} AS t USING {view} AS s "
                      "ON t.rate_date = s.rate_date AND t.currency = s.currency "
                      "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")


SOURCE = Source(name=fx_rates.SOURCE, batch_key="batch_id", clean_schema=lambda spark: STAGED,
                quarantine_schema=QUARANTINE, to_quarantine=to_quarantine, merge=merge)
