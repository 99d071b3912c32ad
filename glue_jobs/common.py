"""What the Glue jobs share: table names, arguments, the step row of ops.pipeline_runs, the Glue entry point.

Plain PySpark only: in AWS this module ships to Glue with --extra-py-files (Glue 5.0 has no
pyiceberg), locally the jobs run on lakehouse.spark's session.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pyspark.sql import SparkSession

# = cdk_app.config.CATALOG_NAME and iceberg_tables' specs (a unit test keeps them equal).
CATALOG = "lake"
SILVER_EVENTS = f"{CATALOG}.silver.events"
GOLD_DAILY_KPIS = f"{CATALOG}.gold.daily_kpis"
PIPELINE_RUNS = f"{CATALOG}.ops.pipeline_runs"

SUCCEEDED = "SUCCEEDED"


class JobArgumentError(ValueError):
    """A Glue job argument is missing or empty: the message names the job and the argument."""


def require_args(job: str, args: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    """The named arguments (other keys, e.g. Glue's JOB_NAME, are ignored)."""
    missing = [name for name in names if not str(args.get(name) or "").strip()]
    if missing:
        raise JobArgumentError(f"{job}: missing job argument(s) {', '.join('--' + m for m in missing)}")
    return {name: str(args[name]).strip() for name in names}


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def path_exists(spark: SparkSession, uri: str) -> bool:
    """Whether a file or prefix exists, through Hadoop's file systems (file://, s3:// on Glue)."""
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).exists(path)


def require_utc(spark: SparkSession, job: str) -> None:
    """Dates are UTC dates: refuse a session whose time zone would shift them."""
    zone = spark.conf.get("spark.sql.session.timeZone")
    if zone not in ("UTC", "Etc/UTC", "Z", "+00:00"):
        raise RuntimeError(f"{job}: Spark session time zone is {zone!r}; set spark.sql.session.timeZone=UTC")


def current_total_records(spark: SparkSession, table: str) -> int:
    """Rows in the table's current snapshot, from its metadata (no data scan); 0 when it has none."""
    rows = spark.sql(f"""
        SELECT s.summary['total-records'] AS total
        FROM {table}.history h JOIN {table}.snapshots s ON h.snapshot_id = s.snapshot_id
        WHERE h.is_current_ancestor ORDER BY h.made_current_at DESC LIMIT 1""").collect()
    return int(rows[0].total) if rows and rows[0].total is not None else 0


def append_step_row(spark: SparkSession, row: Mapping[str, Any]) -> None:
    """Append one row to ops.pipeline_runs; columns it leaves out are null."""
    schema = spark.table(PIPELINE_RUNS).schema
    unknown = set(row) - set(schema.fieldNames())
    if unknown:
        raise ValueError(f"{PIPELINE_RUNS} has no column(s) {sorted(unknown)}")
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
