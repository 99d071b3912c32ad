"""Glue job silver_merge: the staging batches not merged yet -> lake.silver.events and lake.ops.quarantine.

A batch is complete once the cleaner has written its manifest (last), which names the batch's clean
and quarantine files. The ledger lake.ops.merged_batches holds the SHA-256 of every manifest merged;
a run merges the others only, in four steps that are each harmless to repeat
(docs/decisions/0110-exactly-once-batches.md):

1. silver: the earliest-ingested copy of each event_id not in silver yet is inserted (an insert-only
   MERGE), tagged with the batch it came from; each batch's clean count is what silver then holds
   from it, whether this attempt or an interrupted one inserted it;
2. quarantine: the batches' rejected records replace any rows of the same batches;
3. ledger: one row per batch with its counts;
4. the step row in ops.pipeline_runs: the sum of this run's ledger rows.

A crash before step 3 leaves the batches pending, and the retry merges nothing twice and counts the
same numbers. Per batch: received = clean + quarantined + duplicates, where clean = rows silver holds
from this batch and duplicates = the cleaner's in-batch duplicates + staged rows silver already had.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType

from glue_jobs.common import (MERGED_BATCHES, QUARANTINE, SILVER_EVENTS, SUCCEEDED, glue_main, path_exists,
                              record_step, require_args, temp_view, utc_now)

JOB = "silver_merge"
ARGS = ("manifest_path", "run_id")
MANIFEST_COUNTS = ("received", "clean", "quarantined", "duplicates")
BATCH_ID = "batch_id"  # the lineage column silver and ops.quarantine add to the staged rows
CLEAN, QUARANTINE_FILES = "clean", "quarantine"  # the kinds of staging file a manifest names
# Names the job puts into SQL literals: the cleaner's ids (shardId-...-seq-seq) and contract names.
_SAFE_NAME = re.compile(r"[A-Za-z0-9._:=+-]{1,256}")


class StagingError(ValueError):
    """A staging file or manifest breaks the cleaner's contract: the message names it."""


@dataclass(frozen=True)
class Batch:
    """One cleaned batch, as its manifest describes it."""
    manifest_sha256: str
    manifest_path: str
    source: str
    batch_id: str
    received: int
    clean: int
    quarantined: int
    duplicates: int
    quarantined_by_reason: dict[str, int]
    clean_file: str | None       # None when the batch has no clean rows
    quarantine_file: str | None  # None when it has no quarantined rows

    def file(self, kind: str) -> str | None:
        """The batch's file of `kind`: CLEAN or QUARANTINE."""
        return self.clean_file if kind == CLEAN else self.quarantine_file

    def rows(self, kind: str) -> int:
        return self.clean if kind == CLEAN else self.quarantined


def _count(path: str, manifest: dict[str, Any], key: str) -> int:
    value = manifest.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise StagingError(f"manifest {path}: '{key}' must be a count >= 0, got {value!r}")
    return value


def _name(path: str, manifest: dict[str, Any], key: str) -> str:
    value = manifest.get(key)
    if not isinstance(value, str) or not _SAFE_NAME.fullmatch(value):
        raise StagingError(f"manifest {path}: '{key}' must be a name of letters, digits and ._:=+-, got {value!r}")
    return value


def _file(path: str, files: dict[str, Any], kind: str, rows: int) -> str | None:
    """The batch's `kind` file, which the manifest must name when the batch has such rows."""
    if not rows:
        return None
    uri = files.get(kind)
    if not isinstance(uri, str) or not uri:
        raise StagingError(f"manifest {path}: {rows} {kind} rows but no 'files.{kind}' naming their file")
    return uri


def parse_manifest(path: str, text: str, sha256: str) -> Batch:
    """A manifest's batch; its ledger must balance, as the cleaner guarantees."""
    try:
        manifest = json.loads(text)
    except json.JSONDecodeError as err:
        raise StagingError(f"manifest {path}: not JSON ({err})") from err
    if not isinstance(manifest, dict):
        raise StagingError(f"manifest {path}: not a JSON object")
    received, clean, quarantined, duplicates = (_count(path, manifest, key) for key in MANIFEST_COUNTS)
    by_reason = manifest.get("quarantined_by_reason", {})
    if not isinstance(by_reason, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in by_reason.values()):
        raise StagingError(f"manifest {path}: 'quarantined_by_reason' must map reason codes to counts")
    if sum(by_reason.values()) != quarantined:
        raise StagingError(f"manifest {path}: quarantined_by_reason sums to {sum(by_reason.values())}, "
                           f"not quarantined ({quarantined})")
    if received != clean + quarantined + duplicates:
        raise StagingError(f"manifest {path}: received ({received}) != clean ({clean}) + quarantined "
                           f"({quarantined}) + duplicates ({duplicates})")
    files = manifest.get("files") or {}
    if not isinstance(files, dict):
        raise StagingError(f"manifest {path}: 'files' must be an object")
    return Batch(manifest_sha256=sha256, manifest_path=path, source=_name(path, manifest, "source"),
                 batch_id=_name(path, manifest, "batch_id"), received=received, clean=clean,
                 quarantined=quarantined, duplicates=duplicates, quarantined_by_reason=dict(sorted(by_reason.items())),
                 clean_file=_file(path, files, CLEAN, clean),
                 quarantine_file=_file(path, files, QUARANTINE_FILES, quarantined))


def pending_batches(spark: SparkSession, manifest_uri: str) -> list[Batch]:
    """The batches under `manifest_uri` whose manifest (by content) is not in the ledger, by manifest path."""
    if not path_exists(spark, manifest_uri):
        return []
    manifests = (spark.read.option("recursiveFileLookup", True).option("pathGlobFilter", "*.json")
                 .text(manifest_uri, wholetext=True)
                 .select(F.input_file_name().alias("path"), "value", F.sha2("value", 256).alias("sha256")))
    merged = spark.table(MERGED_BATCHES).select(F.col("manifest_sha256").alias("sha256"))
    batches: dict[str, Batch] = {}  # a byte-identical copy of a manifest is the same batch
    for row in sorted(manifests.join(merged, "sha256", "left_anti").collect(), key=lambda r: r.path):
        batches.setdefault(row.sha256, parse_manifest(row.path, row.value, row.sha256))
    by_id: dict[tuple[str, str], list[str]] = {}
    for batch in batches.values():
        by_id.setdefault((batch.source, batch.batch_id), []).append(batch.manifest_path)
    clashes = {key: paths for key, paths in by_id.items() if len(paths) > 1}
    if clashes:
        raise StagingError(f"one batch id in several differing manifests: {clashes}")
    return list(batches.values())


def _file_name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def read_batch_files(spark: SparkSession, batches: list[Batch], kind: str, columns: StructType) -> DataFrame:
    """The rows of the batches' `kind` files with `columns`; BATCH_ID comes from the manifest naming the file."""
    files = {b.file(kind): b for b in batches if b.file(kind)}
    if not files:
        return spark.createDataFrame([], columns)
    names = [_file_name(uri) for uri in files]
    if len(set(names)) != len(names):  # files are told apart by name below
        raise StagingError(f"{kind} files with the same name in one run: {sorted(files)}")
    missing = [f"{uri} (named by {b.manifest_path})" for uri, b in files.items() if not path_exists(spark, uri)]
    if missing:
        raise StagingError(f"{kind} file(s) missing: {'; '.join(missing)}")
    read_schema = StructType([StructField(f.name, f.dataType, True) for f in columns.fields if f.name != BATCH_ID])
    owners = spark.createDataFrame([(_file_name(uri), b.batch_id) for uri, b in files.items()],
                                   f"file_name string, {BATCH_ID} string")
    rows = (spark.read.schema(read_schema).parquet(*files)
            .select("*", F.col("_metadata.file_name").alias("file_name")))
    return rows.join(F.broadcast(owners), "file_name").select(*columns.fieldNames())


def check_batch_rows(rows: DataFrame, batches: list[Batch], kind: str, required: list[str]) -> None:
    """Each batch's file holds the rows its manifest counts, with no null in a required column; else the
    cleaner's output is broken: fail, naming the batches."""
    stats = {r[BATCH_ID]: r for r in rows.groupBy(BATCH_ID).agg(
        F.count(F.lit(1)).alias("_rows"), *(F.count(F.when(F.col(c).isNull(), 1)).alias(f"_null_{c}") for c in required)
    ).collect()}
    problems = []
    for batch in batches:
        found = stats.get(batch.batch_id)
        held = found["_rows"] if found else 0
        if held != batch.rows(kind):
            problems.append(f"{batch.manifest_path} counts {batch.rows(kind)} {kind} rows, its file holds {held}")
        nulls = {c: found[f"_null_{c}"] for c in required if found and found[f"_null_{c}"]}
        if nulls:
            problems.append(f"{batch.file(kind)} has nulls in required columns: {nulls}")
    if problems:
        raise StagingError("; ".join(problems))


def dedupe(staged: DataFrame) -> DataFrame:
    """One row per event_id: the earliest ingested copy (ties broken by the other columns, deterministic)."""
    others = [c for c in staged.columns if c not in ("event_id", "ingested_at")]
    window = Window.partitionBy("event_id").orderBy(
        F.col("ingested_at").asc_nulls_last(), *(F.col(c).asc_nulls_last() for c in others))
    return staged.withColumn("_copy", F.row_number().over(window)).where("_copy = 1").drop("_copy")


def merge_silver(spark: SparkSession, staged: DataFrame) -> dict[str, int]:
    """Insert the event_ids silver does not hold yet (commits nothing when there are none); returns per
    batch its staged event_ids that silver then holds from it (inserted now, or by an interrupted attempt)."""
    held = spark.table(SILVER_EVENTS).select("event_id", F.lit(True).alias("_held"),
                                             F.col(BATCH_ID).alias("_held_from"))
    # Whose copy of each event_id silver holds after the MERGE: the one it had, else the earliest staged.
    chosen = (dedupe(staged).join(held, "event_id", "left")
              .withColumn("_owner", F.when(F.col("_held"), F.col("_held_from")).otherwise(F.col(BATCH_ID)))
              .cache())
    try:
        clean = (staged.select("event_id", BATCH_ID).distinct().join(chosen.select("event_id", "_owner"), "event_id")
                 .where(F.col("_owner") == F.col(BATCH_ID)).groupBy(BATCH_ID).count().collect())
        unseen = chosen.where(F.col("_held").isNull()).select(*staged.columns)
        if unseen.take(1):
            # The MERGE, not an append, so a concurrent writer's event_ids are not inserted twice.
            with temp_view(unseen) as view:
                spark.sql(f"MERGE INTO {SILVER_EVENTS} AS t USING {view} AS s ON t.event_id = s.event_id "
                          "WHEN NOT MATCHED THEN INSERT *")
    finally:
        chosen.unpersist()
    return {row[BATCH_ID]: row["count"] for row in clean}


def _batches_condition(batches: list[Batch]) -> str:
    """SQL: the rows of these batches (names are checked by parse_manifest, so they are safe literals)."""
    by_source: dict[str, list[str]] = {}
    for batch in batches:
        by_source.setdefault(batch.source, []).append(batch.batch_id)
    parts = []
    for source, ids in sorted(by_source.items()):
        quoted = ", ".join(f"'{batch_id}'" for batch_id in ids)
        parts.append(f"(source = '{source}' AND {BATCH_ID} IN ({quoted}))")
    return " OR ".join(parts)


def load_quarantine(spark: SparkSession, batches: list[Batch]) -> None:
    """The batches' rejected records replace whatever ops.quarantine holds of the same batches (rows of an
    interrupted attempt, or of an earlier version of a re-cleaned batch)."""
    condition = _batches_condition(batches)
    schema = spark.table(QUARANTINE).schema
    rows = read_batch_files(spark, batches, QUARANTINE_FILES, schema)
    check_batch_rows(rows, batches, QUARANTINE_FILES, [f.name for f in schema.fields if not f.nullable])
    if spark.table(QUARANTINE).where(condition).take(1):
        spark.sql(f"DELETE FROM {QUARANTINE} WHERE {condition}")
    if any(b.quarantined for b in batches):
        rows.writeTo(QUARANTINE).append()


def record_batches(spark: SparkSession, batches: list[Batch], clean: dict[str, int], run_id: str,
                   merged_at: datetime) -> None:
    """Append the batches' ledger rows; `clean`: per batch, its event_ids silver holds from it."""
    ledger = spark.table(MERGED_BATCHES).schema
    rows = [{
        "manifest_sha256": b.manifest_sha256, "source": b.source, BATCH_ID: b.batch_id,
        "manifest_path": b.manifest_path, "run_id": run_id, "merged_at": merged_at, "received": b.received,
        "clean": clean.get(b.batch_id, 0), "quarantined": b.quarantined,
        "duplicates": b.duplicates + b.clean - clean.get(b.batch_id, 0),
        "quarantined_by_reason": json.dumps(b.quarantined_by_reason),
    } for b in batches]
    spark.createDataFrame([tuple(r[name] for name in ledger.fieldNames()) for r in rows], ledger) \
        .writeTo(MERGED_BATCHES).append()


def run_ledger(spark: SparkSession, run_id: str) -> dict[str, Any]:
    """The sums of the ledger rows this run wrote (an earlier attempt of the same run included)."""
    rows = spark.table(MERGED_BATCHES).where(F.col("run_id") == run_id).collect()
    by_reason: Counter[str] = Counter()
    for row in rows:
        by_reason.update(json.loads(row.quarantined_by_reason))
    return {"batches": len(rows), **{key: sum(r[key] for r in rows) for key in MANIFEST_COUNTS},
            "quarantined_by_reason": dict(sorted(by_reason.items()))}


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    """Merge the pending staging batches and record them; returns the run's ledger."""
    a = require_args(JOB, args, ARGS)
    started_at = utc_now()
    batches = pending_batches(spark, a["manifest_path"])
    if batches:
        silver_columns = spark.table(SILVER_EVENTS).schema
        staged = read_batch_files(spark, batches, CLEAN, silver_columns).cache()
        try:
            check_batch_rows(staged, batches, CLEAN, [f.name for f in silver_columns.fields if not f.nullable])
            clean = merge_silver(spark, staged)
        finally:
            staged.unpersist()
        load_quarantine(spark, batches)
        record_batches(spark, batches, clean, a["run_id"], utc_now())
    ledger = run_ledger(spark, a["run_id"])
    message = (f"{ledger['batches']} batches merged: {ledger['clean']} new rows in {SILVER_EVENTS}, "
               f"{ledger['quarantined']} in {QUARANTINE}")
    record_step(spark, {
        "run_id": a["run_id"], "step": JOB, "status": SUCCEEDED, "started_at": started_at,
        "finished_at": utc_now(), "rows_written": ledger["clean"], "message": message,
        **{key: ledger[key] for key in MANIFEST_COUNTS},
        "quarantined_by_reason": json.dumps(ledger["quarantined_by_reason"]),
    })
    return {"run_id": a["run_id"], "step": JOB, **ledger, "rows_written": ledger["clean"], "message": message}


if __name__ == "__main__":
    glue_main(JOB, run, ARGS)
