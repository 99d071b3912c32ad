"""What the Glue jobs share: table names, arguments, snapshots, the step row of ops.pipeline_runs, the Glue entry point.

Plain PySpark only: in AWS this module ships to Glue with --extra-py-files (Glue 5.0 has no
pyiceberg), locally the jobs run on lakehouse.lake.spark's session.
"""
from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession
from pyspark.sql import functions as F

# = cdk_app.config.CATALOG_NAME and iceberg_tables' specs (a unit test keeps them equal).
CATALOG = "lake"
SILVER_EVENTS = f"{CATALOG}.silver.events"
SILVER_ORDER_EVENTS = f"{CATALOG}.silver.order_events"
SILVER_ORDER_LINES = f"{CATALOG}.silver.order_lines"
SILVER_ORDERS = f"{CATALOG}.silver.orders"
SILVER_PRODUCTS = f"{CATALOG}.silver.products"
SILVER_FX_RATES = f"{CATALOG}.silver.fx_rates"
GOLD_DAILY_KPIS = f"{CATALOG}.gold.daily_kpis"
GOLD_FUNNEL_DAILY = f"{CATALOG}.gold.funnel_daily"
GOLD_PRODUCT_SALES_DAILY = f"{CATALOG}.gold.product_sales_daily"
PIPELINE_RUNS = f"{CATALOG}.ops.pipeline_runs"
QUARANTINE = f"{CATALOG}.ops.quarantine"
MERGED_BATCHES = f"{CATALOG}.ops.merged_batches"
QUALITY_RESULTS = f"{CATALOG}.ops.quality_results"
# Every table of iceberg_tables.specs.ALL_TABLES, in its order: the maintenance job keeps them all.
ALL_TABLES = (SILVER_EVENTS, SILVER_ORDER_EVENTS, SILVER_ORDER_LINES, SILVER_ORDERS, SILVER_PRODUCTS, SILVER_FX_RATES,
              GOLD_DAILY_KPIS, GOLD_FUNNEL_DAILY, GOLD_PRODUCT_SALES_DAILY,
              PIPELINE_RUNS, QUARANTINE, MERGED_BATCHES, QUALITY_RESULTS)

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
# Snapshot operation of compaction and manifest rewrites: the rows stay the same.
REPLACE = "replace"


class JobArgumentError(ValueError):
    """A Glue job argument is missing, empty or malformed: the message names the job and the argument."""


def require_args(job: str, args: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """The named arguments (other keys, e.g. Glue's JOB_NAME, are ignored)."""
    missing = [name for name in names if not str(args.get(name) or "").strip()]
    if missing:
        raise JobArgumentError(f"{job}: missing job argument(s) {', '.join('--' + m for m in missing)}")
    return {name: str(args[name]).strip() for name in names}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _hadoop_path(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    """Hadoop's file system and path of a URI (file://, s3:// on Glue)."""
    path = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


def path_exists(spark: SparkSession, uri: str) -> bool:
    """Whether a file or prefix exists."""
    fs, path = _hadoop_path(spark, uri)
    return fs.exists(path)


def list_files(spark: SparkSession, uri: str, *, recursive: bool) -> list[str]:
    """The files under `uri` as Hadoop names them (none when it does not exist); hidden files (a local writer's
    temporary `.name.tmp`) left out."""
    fs, path = _hadoop_path(spark, uri)
    if not fs.exists(path):
        return []
    found, files = fs.listFiles(path, recursive), []
    while found.hasNext():
        name = found.next().getPath().toString()
        if not name.rsplit("/", 1)[-1].startswith((".", "_")):
            files.append(name)
    return files


def require_utc(spark: SparkSession, job: str) -> None:
    """Dates are UTC dates: refuse a session whose time zone would shift them."""
    zone = spark.conf.get("spark.sql.session.timeZone")
    if zone not in ("UTC", "Etc/UTC", "Z", "+00:00"):
        raise RuntimeError(f"{job}: Spark session time zone is {zone!r}; set spark.sql.session.timeZone=UTC")


def lineage(spark: SparkSession, table: str) -> list[Row]:
    """The table's current snapshot and its ancestors still kept, newest first (snapshot_id, operation,
    summary); empty when the table has no snapshot."""
    snapshots = {row.snapshot_id: row for row in spark.sql(
        f"SELECT snapshot_id, parent_id, operation, summary FROM {table}.snapshots").collect()}
    main = spark.sql(f"SELECT snapshot_id FROM {table}.refs WHERE name = 'main'").collect()
    chain: list[Row] = []
    current = main[0].snapshot_id if main else None
    while current in snapshots:
        chain.append(snapshots[current])
        current = snapshots[current].parent_id
    return chain


@contextmanager
def temp_view(df: DataFrame) -> Iterator[str]:
    """`df` as a session temp view for SQL (MERGE), under a unique name so concurrent runs never collide."""
    name = f"job_view_{uuid.uuid4().hex}"
    df.createOrReplaceTempView(name)
    try:
        yield name
    finally:
        df.sparkSession.catalog.dropTempView(name)


def record_step(spark: SparkSession, row: Mapping[str, Any]) -> None:
    """Write the step's row of ops.pipeline_runs; a retried step replaces its run's earlier row, so there
    is one row per run and step. Columns the row leaves out are null."""
    schema = spark.table(PIPELINE_RUNS).schema
    unknown = set(row) - set(schema.fieldNames())
    if unknown:
        raise ValueError(f"{PIPELINE_RUNS} has no column(s) {sorted(unknown)}")
    key = {"run_id": row["run_id"], "step": row["step"]}
    # A check and an append: half the time of a MERGE, and the DELETE happens on retries only.
    if spark.table(PIPELINE_RUNS).where((F.col("run_id") == key["run_id"]) & (F.col("step") == key["step"])).take(1):
        spark.sql(f"DELETE FROM {PIPELINE_RUNS} WHERE run_id = :run_id AND step = :step", args=key)
    values = tuple(row.get(name) for name in schema.fieldNames())
    spark.createDataFrame([values], schema).writeTo(PIPELINE_RUNS).append()


def glue_main(job: str, run: Callable[[SparkSession, dict[str, str]], dict[str, Any]],
              arg_names: Sequence[str]) -> None:
    """Glue's entry point: resolve the arguments, run the job on Glue's session, commit the Glue job."""
    from awsglue.context import GlueContext  # only on Glue
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
    from pyspark.context import SparkContext

    args = getResolvedOptions(sys.argv, ["JOB_NAME", *arg_names])
    glue_context = GlueContext(SparkContext.getOrCreate())
    glue_job = Job(glue_context)
    glue_job.init(args["JOB_NAME"], args)
    result = run(glue_context.spark_session, args)
    print(json.dumps({"job": job, **result}, default=str))  # lands in the job's CloudWatch log
    glue_job.commit()
