"""silver.products (SCD type 2) from the product catalog's batches (one batch = one dropped file).

For every product_id a run's files carry, its history is rebuilt from the versions silver holds plus the
staged rows, ordered by the catalog's updated_at (valid_from):
- one version per (product_id, valid_from): silver's, unless a staged row restates that moment with other
  attributes (the file merged last wins; among one run's files, the one ingested last);
- every distinct updated_at is a version, even one with its neighbour's attributes: the catalog's timestamps
  win, so the history is the same whatever order the files arrive and merge in; an unchanged row restated
  with its updated_at makes no new version;
- valid_to = the next version's valid_from; is_current on the last.
A file dropped late with older updated_at values so slots into the history where it belongs. The rebuilt
histories replace the old ones in one MERGE (rows inserted, updated and deleted in one commit), and a
rebuild of a rebuilt history with the same files changes nothing: retries are harmless
(docs/decisions/0120-silver-orders-products-fx.md).
"""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (BinaryType, BooleanType, DecimalType, LongType, StringType, StructField, StructType,
                               TimestampType)

from glue_jobs.batches import BATCH_ID, Batch, Source
from glue_jobs.common import SILVER_PRODUCTS, temp_view
from glue_jobs.table_diff import changed
from lambdas.contracts import products

ATTRIBUTES = ("name", "category", "price", "currency", "active")
KEY = ("product_id", "valid_from")
_STAGED, _DELETE = "_staged", "_delete"

# The file loader's staged columns (lambdas/file_loader/outputs.py): every one required.
STAGED = StructType([
    StructField("product_id", StringType(), False), StructField("name", StringType(), False),
    StructField("category", StringType(), False), StructField("price", DecimalType(12, products.PRICE_SCALE), False),
    StructField("currency", StringType(), False), StructField("active", BooleanType(), False),
    StructField("updated_at", TimestampType(), False), StructField("file_id", StringType(), False),
    StructField("line_number", LongType(), False), StructField("ingested_at", TimestampType(), False),
    StructField(BATCH_ID, StringType(), True),
])
QUARANTINE = StructType([
    StructField("raw_payload", BinaryType(), False), StructField("source", StringType(), False),
    StructField("reason", StringType(), False), StructField("message", StringType(), False),
    StructField("file_id", StringType(), False), StructField("line_number", LongType(), False),
    StructField("source_uri", StringType(), False), StructField("ingested_at", TimestampType(), False),
    StructField(BATCH_ID, StringType(), True),
])


def to_quarantine(rows: DataFrame) -> DataFrame:
    """ops.quarantine's columns: the line and file go into the message (the batch id is the file's sha256)."""
    return rows.select("source", BATCH_ID, "reason", "ingested_at", "raw_payload",
                       F.concat(F.lit("line "), F.col("line_number").cast("string"), F.lit(" of "), "source_uri",
                                F.lit(": "), "message").alias("message"),
                       F.lit(None).cast("string").alias("shard"), F.lit(None).cast("string").alias("sequence_number"))


def _attributes() -> F.Column:
    return F.struct(*ATTRIBUTES)


def histories(candidates: DataFrame) -> DataFrame:
    """The SCD2 rows of `candidates` (silver's versions with _staged false, staged rows with _staged true and
    their ingested_at): one version per key, valid_to and is_current set. Identical neighbours are not merged:
    that drops the later moment for good, and a late file's version between them would then run past it (0120)."""
    by_key = Window.partitionBy(*KEY)
    newest_staged_first = by_key.orderBy(F.col(_STAGED).desc(), F.col("ingested_at").desc_nulls_last(),
                                         F.col("file_id").desc(), F.col("line_number").desc())
    silver_first = by_key.orderBy(F.col(_STAGED).asc(), F.col("ingested_at").desc_nulls_last(),
                                  F.col("file_id").desc(), F.col("line_number").desc())
    # The attributes a key ends up with, then the row carrying them: silver's own when it agrees (so its
    # lineage stays), else the newest staged.
    versions = (candidates.withColumn("_wanted", F.first(_attributes()).over(newest_staged_first))
                .where(_attributes() == F.col("_wanted"))
                .withColumn("_pick", F.row_number().over(silver_first)).where("_pick = 1"))
    by_time = Window.partitionBy("product_id").orderBy("valid_from")
    return (versions.withColumn("valid_to", F.lead("valid_from").over(by_time))
            .withColumn("is_current", F.col("valid_to").isNull()))


def merge(spark: SparkSession, staged: DataFrame, batches: list[Batch]) -> dict[str, int]:
    """Rebuild the touched products' histories; every staged row is accepted (clean), changed or not."""
    columns = spark.table(SILVER_PRODUCTS).columns
    touched = staged.select("product_id").distinct()
    held = spark.table(SILVER_PRODUCTS).join(touched, "product_id").cache()
    try:
        candidates = held.select(*columns, F.lit(None).cast("timestamp").alias("ingested_at"),
                                 F.lit(False).alias(_STAGED)).unionByName(
            staged.select("product_id", *ATTRIBUTES, F.col("updated_at").alias("valid_from"),
                          F.lit(None).cast("timestamp").alias("valid_to"), F.lit(False).alias("is_current"),
                          "file_id", "line_number", "ingested_at", F.lit(True).alias(_STAGED)))
        wanted = histories(candidates).select(*columns)
        replace(spark, wanted, held.select(*columns))
    finally:
        held.unpersist()
    return {batch.batch_id: batch.clean for batch in batches}


def replace(spark: SparkSession, wanted: DataFrame, held: DataFrame) -> None:
    """Make silver's rows of the touched products `wanted`: one MERGE inserts, updates and deletes the rows
    that differ (commits nothing when none do)."""
    upserts = changed(wanted, held, wanted.columns).withColumn(_DELETE, F.lit(False))
    deletes = held.join(wanted, list(KEY), "left_anti").withColumn(_DELETE, F.lit(True))
    changes = upserts.unionByName(deletes)
    if not changes.take(1):
        return
    columns = ", ".join(wanted.columns)
    with temp_view(changes) as view:
        spark.sql(f"""MERGE INTO {SILVER_PRODUCTS} AS t USING {view} AS s
            ON t.product_id = s.product_id AND t.valid_from = s.valid_from
            WHEN MATCHED AND s.{_DELETE} THEN DELETE
            WHEN MATCHED THEN UPDATE SET {", ".join(f"t.{c} = s.{c}" for c in wanted.columns)}
            WHEN NOT MATCHED AND NOT s.{_DELETE} THEN INSERT ({columns}) VALUES ({", ".join(f"s.{c}" for c in wanted.columns)})""")


SOURCE = Source(name=products.SOURCE, batch_key="file_id", clean_schema=lambda spark: STAGED,
                quarantine_schema=QUARANTINE, to_quarantine=to_quarantine, merge=merge)
