"""silver.events from the clickstream's batches: an insert-only merge on event_id (glue_jobs/first_copies)."""
from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from glue_jobs.batches import CLEANER_QUARANTINE, Batch, Source
from glue_jobs.common import SILVER_EVENTS
from glue_jobs.first_copies import clean_counts, first_copies, insert_unseen
from lambdas.contracts import clickstream

KEY = ("event_id",)


def staged_schema(spark: SparkSession) -> StructType:
    """The cleaner stages silver's columns but batch_id, which silver_merge adds from the manifest."""
    return spark.table(SILVER_EVENTS).schema


def merge(spark: SparkSession, staged: DataFrame, batches: list[Batch]) -> dict[str, int]:
    """Insert the event_ids silver lacks; per batch, its event_ids silver then holds from it."""
    chosen = first_copies(spark, SILVER_EVENTS, staged, KEY).cache()
    try:
        clean = clean_counts(staged, chosen, KEY)
        insert_unseen(spark, SILVER_EVENTS, chosen)
    finally:
        chosen.unpersist()
    return clean


SOURCE = Source(name=clickstream.SOURCE, batch_key="batch_id", clean_schema=staged_schema,
                quarantine_schema=CLEANER_QUARANTINE, to_quarantine=lambda rows: rows, merge=merge)
