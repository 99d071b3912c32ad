"""Glue job gold_build: lake.silver.events -> lake.gold.daily_kpis, rebuilt whole.

One row per UTC date and country. The table is overwritten in one commit, so a date or country
that left silver leaves gold too, and readers see either the old or the new table, never a mix.
"""
from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_jobs.common import (GOLD_DAILY_KPIS, SILVER_EVENTS, SUCCEEDED, append_step_row, current_total_records,
                              glue_main, require_args, require_utc, utc_now)

JOB = "gold_build"
ARGS = ("run_id",)
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


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    """Rebuild gold.daily_kpis from silver.events and record the step; returns the rows written."""
    a = require_args(JOB, args, ARGS)
    require_utc(spark, JOB)
    started_at = utc_now()
    gold_columns = spark.table(GOLD_DAILY_KPIS).columns
    kpis = daily_kpis(spark.table(SILVER_EVENTS), started_at).select(*gold_columns)
    kpis.writeTo(GOLD_DAILY_KPIS).overwrite(F.lit(True))  # replaces every row: no stale date survives
    rows = current_total_records(spark, GOLD_DAILY_KPIS)
    message = f"rebuilt {GOLD_DAILY_KPIS} from {SILVER_EVENTS}: {rows} rows (date x country)"
    append_step_row(spark, {
        "run_id": a["run_id"], "step": JOB, "status": SUCCEEDED, "started_at": started_at,
        "finished_at": utc_now(), "rows_written": rows, "message": message,
    })
    return {"run_id": a["run_id"], "step": JOB, "rows_written": rows, "message": message}


if __name__ == "__main__":
    glue_main(JOB, run, ARGS)
