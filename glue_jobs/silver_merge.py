"""Glue job silver_merge: staged clickstream Parquet -> lake.silver.events, deduplicated on event_id.

Reads every clean staging file and every batch manifest, keeps the earliest-ingested copy of each
event_id, and MERGEs it into silver inserting only unseen event_ids (a re-run adds nothing). Then
appends its step row to ops.pipeline_runs with the conservation ledger:
received = clean + quarantined + duplicates, where clean = rows inserted now and duplicates = the
cleaner's in-batch duplicates + staged rows not inserted (already in silver, or repeated across batches).
"""
from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from glue_jobs.common import (SILVER_EVENTS, SUCCEEDED, append_step_row, current_total_records, glue_main,
                              path_exists, require_args, utc_now)

JOB = "silver_merge"
ARGS = ("clean_path", "manifest_path", "run_id")
MANIFEST_COUNTS = ("received", "clean", "quarantined", "duplicates")


class StagingError(ValueError):
    """A staging file or manifest breaks the cleaner's contract: the message names it."""


def _parse_manifest(path: str, text: str) -> dict[str, Any]:
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as err:
        raise StagingError(f"manifest {path}: not JSON ({err})") from err
    if not isinstance(manifest, dict):
        raise StagingError(f"manifest {path}: not a JSON object")
    for key in MANIFEST_COUNTS:
        value = manifest.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise StagingError(f"manifest {path}: '{key}' must be a count >= 0, got {value!r}")
    by_reason = manifest.get("quarantined_by_reason", {})
    if not isinstance(by_reason, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in by_reason.values()):
        raise StagingError(f"manifest {path}: 'quarantined_by_reason' must map reason codes to counts")
    return manifest


def read_manifests(spark: SparkSession, uri: str) -> list[dict[str, Any]]:
    """Every batch manifest (*.json) under `uri`; none when the prefix does not exist yet."""
    if not path_exists(spark, uri):
        return []
    files = (spark.read.option("recursiveFileLookup", True).option("pathGlobFilter", "*.json")
             .text(uri, wholetext=True)
             .select(F.input_file_name().alias("path"), "value").collect())
    return [_parse_manifest(row.path, row.value) for row in files]


def read_staged(spark: SparkSession, uri: str, columns: StructType) -> DataFrame:
    """Every staged Parquet row under `uri` with silver's columns; empty when the prefix does not exist yet."""
    read_schema = StructType([StructField(f.name, f.dataType, True) for f in columns.fields])
    if not path_exists(spark, uri):
        return spark.createDataFrame([], read_schema)
    return (spark.read.schema(read_schema).option("recursiveFileLookup", True)
            .option("pathGlobFilter", "*.parquet").parquet(uri))


def _count_rows_and_nulls(staged: DataFrame, required: list[str], uri: str) -> int:
    """Row count; a null in a required column means the cleaner's output is broken: fail, naming it."""
    totals = staged.agg(F.count(F.lit(1)).alias("rows"),
                        *(F.count(F.when(F.col(c).isNull(), 1)).alias(c) for c in required)).first()
    bad = {c: totals[c] for c in required if totals[c]}
    if bad:
        raise StagingError(f"staged rows under {uri} have nulls in required columns: {bad}")
    return int(totals["rows"])


def dedupe(staged: DataFrame) -> DataFrame:
    """One row per event_id: the earliest ingested copy (ties broken by the other columns, deterministic)."""
    others = [c for c in staged.columns if c not in ("event_id", "ingested_at")]
    window = Window.partitionBy("event_id").orderBy(
        F.col("ingested_at").asc_nulls_last(), *(F.col(c).asc_nulls_last() for c in others))
    return staged.withColumn("_copy", F.row_number().over(window)).where("_copy = 1").drop("_copy")


def _merge(spark: SparkSession, source: DataFrame) -> None:
    view = f"silver_merge_source_{uuid.uuid4().hex}"  # session-scoped: unique, so runs never collide
    source.createOrReplaceTempView(view)
    try:
        spark.sql(f"MERGE INTO {SILVER_EVENTS} AS t USING {view} AS s ON t.event_id = s.event_id "
                  "WHEN NOT MATCHED THEN INSERT *")
    finally:
        spark.catalog.dropTempView(view)


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    """Merge the staged batches into silver.events and record the step; returns the ledger."""
    a = require_args(JOB, args, ARGS)
    started_at = utc_now()
    manifests = read_manifests(spark, a["manifest_path"])
    silver_columns = spark.table(SILVER_EVENTS).schema
    staged = read_staged(spark, a["clean_path"], silver_columns)
    required = [f.name for f in silver_columns.fields if not f.nullable]
    staged_rows = _count_rows_and_nulls(staged, required, a["clean_path"])

    before = current_total_records(spark, SILVER_EVENTS)
    if staged_rows:
        # Only unseen event_ids go to the MERGE, and a run with none commits nothing (no empty
        # snapshot per run); the MERGE still guards against a concurrent writer.
        unseen = (dedupe(staged).join(spark.table(SILVER_EVENTS).select("event_id"), "event_id", "left_anti")
                  .select(*silver_columns.fieldNames()).cache())
        if unseen.take(1):
            _merge(spark, unseen)
        unseen.unpersist()
    inserted = current_total_records(spark, SILVER_EVENTS) - before

    totals = {key: sum(m[key] for m in manifests) for key in MANIFEST_COUNTS}
    by_reason: Counter[str] = Counter()
    for manifest in manifests:
        by_reason.update(manifest.get("quarantined_by_reason", {}))
    message = (f"{staged_rows} staged rows from {len(manifests)} batch manifests; "
               f"{inserted} new in {SILVER_EVENTS}")
    if staged_rows != totals["clean"]:  # files without a manifest, or a manifest without its file
        message += f"; WARNING: staged rows ({staged_rows}) != manifests' clean ({totals['clean']})"
    ledger = {
        "received": totals["received"],
        "clean": inserted,
        "quarantined": totals["quarantined"],
        "duplicates": totals["duplicates"] + staged_rows - inserted,
        "quarantined_by_reason": dict(sorted(by_reason.items())),
    }
    append_step_row(spark, {
        "run_id": a["run_id"], "step": JOB, "status": SUCCEEDED, "started_at": started_at,
        "finished_at": utc_now(), "rows_written": inserted, "message": message,
        **ledger, "quarantined_by_reason": json.dumps(ledger["quarantined_by_reason"]),
    })
    return {"run_id": a["run_id"], "step": JOB, **ledger, "rows_written": inserted,
            "staged": staged_rows, "batches": len(manifests), "message": message}


if __name__ == "__main__":
    glue_main(JOB, run, ARGS)
