"""Glue job maintenance: keep every lake table healthy with Iceberg's Spark procedures.

For each table of iceberg_tables.specs (glue_jobs.common.ALL_TABLES), in this order:
1. expire_snapshots older than the retention, keeping the newest `retain_last`: time travel ends
   there, and the files only the expired snapshots used are deleted;
2. rewrite_data_files: compaction of small files (bin-packing, per partition);
3. rewrite_manifests: one manifest per partition range instead of one per commit;
4. remove_orphan_files older than the threshold: files no snapshot references (failed writes).
Expiry comes first so that the two snapshots maintenance makes keep their parent, the last one a
job wrote: gold_build's bookmark stays reachable through them (decision 0112). The files
compaction replaces are deleted by the next run's expiry. None of the steps changes the rows a
reader sees at the current snapshot. The step row in ops.pipeline_runs lists what each table got;
a failure records a FAILED row naming the table, then fails the job so the state machine's Retry
and Catch see it.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import SparkSession

from glue_jobs.common import (ALL_TABLES, CATALOG, FAILED, SUCCEEDED, JobArgumentError, glue_main, record_step,
                              require_args, require_utc, utc_now)

JOB = "maintenance"
ARGS = ("run_id", "snapshot_retention_hours", "retain_last", "orphan_min_age_hours")
# Iceberg's remove_orphan_files refuses younger files: a running write's files are not referenced yet.
MIN_ORPHAN_AGE_HOURS = 24
# Compact a partition once it has this many files (Iceberg's default of 5 lets small tables grow more).
MIN_INPUT_FILES = 2


def _number(args: dict[str, str], name: str, minimum: float) -> float:
    try:
        value = float(args[name])
    except ValueError:
        raise JobArgumentError(f"{JOB}: --{name} must be a number, got {args[name]!r}") from None
    if not value >= minimum:  # also refuses NaN
        raise JobArgumentError(f"{JOB}: --{name} must be >= {minimum:g}, got {args[name]!r}")
    return value


def _timestamp(moment: datetime) -> str:
    """A SQL literal of a naive UTC time for a procedure argument (the session is UTC; procedures take
    no expressions)."""
    return f"TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S.%f}'"


def maintain(spark: SparkSession, table: str, retention: timedelta, retain_last: int,
             orphans_before: datetime) -> dict[str, int]:
    """Run the four procedures on `table` (`lake.namespace.table`); returns what each one did."""
    name = table.removeprefix(f"{CATALOG}.")
    system = f"{CATALOG}.system"
    expire_before = utc_now().replace(tzinfo=None) - retention
    expired = spark.sql(f"CALL {system}.expire_snapshots(table => '{name}', older_than => "
                        f"{_timestamp(expire_before)}, retain_last => {retain_last})").first()
    compacted = spark.sql(f"CALL {system}.rewrite_data_files(table => '{name}', "
                          f"options => map('min-input-files', '{MIN_INPUT_FILES}'))").first()
    manifests = spark.sql(f"CALL {system}.rewrite_manifests(table => '{name}')").first()
    orphans = spark.sql(f"CALL {system}.remove_orphan_files(table => '{name}', older_than => "
                        f"{_timestamp(orphans_before)})").collect()
    return {
        "expired_data_files_deleted": expired.deleted_data_files_count,
        "expired_manifest_lists_deleted": expired.deleted_manifest_lists_count,
        "data_files_rewritten": compacted.rewritten_data_files_count,
        "data_files_added": compacted.added_data_files_count,
        "manifests_rewritten": manifests.rewritten_manifests_count,
        "manifests_added": manifests.added_manifests_count,
        "orphan_files_deleted": len(orphans),
    }


def _summary(done: dict[str, dict[str, int]]) -> list[str]:
    return [f"{table}: " + ", ".join(f"{key} {value}" for key, value in counts.items())
            for table, counts in done.items()]


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    """Maintain every table and record the step; returns what was done per table."""
    a = require_args(JOB, args, ARGS)
    retention = _number(a, "snapshot_retention_hours", 0)
    retain_last = _number(a, "retain_last", 1)
    orphan_age = _number(a, "orphan_min_age_hours", MIN_ORPHAN_AGE_HOURS)
    if retain_last != int(retain_last):
        raise JobArgumentError(f"{JOB}: --retain_last must be a whole number, got {a['retain_last']!r}")
    require_utc(spark, JOB)
    started_at = utc_now()
    done: dict[str, dict[str, int]] = {}
    for table in ALL_TABLES:
        try:
            done[table] = maintain(spark, table, timedelta(hours=retention), int(retain_last),
                                   started_at.replace(tzinfo=None) - timedelta(hours=orphan_age))
        except Exception as error:
            failure = f"FAILED {table}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            record_step(spark, {"run_id": a["run_id"], "step": JOB, "status": FAILED, "started_at": started_at,
                                "finished_at": utc_now(), "message": "; ".join([*_summary(done), failure])})
            raise
    message = "; ".join(_summary(done))
    record_step(spark, {"run_id": a["run_id"], "step": JOB, "status": SUCCEEDED, "started_at": started_at,
                        "finished_at": utc_now(), "message": message})
    return {"run_id": a["run_id"], "step": JOB, "tables": done, "message": message}


if __name__ == "__main__":
    glue_main(JOB, run, ARGS)
