"""Glue job silver_merge: every source's staging batches not merged yet -> silver and lake.ops.quarantine.

A batch is complete once its writer has written its manifest (last), which names the batch's clean and
quarantine files. The ledger lake.ops.merged_batches holds the SHA-256 of every manifest merged; a run
merges the others only, in four steps that are each harmless to repeat
(docs/decisions/0110-exactly-once-batches.md, 0120-silver-orders-products-fx.md):

1. silver, per source (glue_jobs/silver_*.py): clickstream -> silver.events, orders -> silver.order_events,
   order_lines and orders, products -> silver.products (SCD2), fx_rates -> silver.fx_rates; every write is
   idempotent, and each batch's clean count is taken from what silver then holds;
2. quarantine: every source's rejected rows replace any rows of the same batches;
3. ledger: one row per batch with its counts;
4. the step row in ops.pipeline_runs: the sum of this run's ledger rows, all sources.

A crash before step 3 leaves the batches pending, and the retry merges nothing twice and counts the
same numbers. Per batch: received = clean + quarantined + duplicates.

Sources are isolated: staging that breaks its writer's contract (a bad manifest, files that disagree with
it) refuses that source's batches before anything of them is written; they stay pending, the other sources
merge, and the refusal is recorded as a FAILED `silver_merge:<source>` row of ops.pipeline_runs naming the
batch, which the run's quality step turns into a failed check and an alert.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from functools import reduce
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from glue_jobs import silver_events, silver_fx_rates, silver_orders, silver_products
from glue_jobs.batches import (BATCH_ID, CLEAN, MANIFEST_COUNTS, QUARANTINE_FILES, Batch, Source, StagingError,
                               check_batch_rows, pending_batches, read_batch_files)
from glue_jobs.common import (FAILED, MERGED_BATCHES, PIPELINE_RUNS, QUARANTINE, SUCCEEDED, glue_main, record_step,
                              require_args, utc_now)
from lambdas.contracts.lake_layout import manifest_argument, manifest_index_argument

JOB = "silver_merge"
SOURCES: tuple[Source, ...] = (silver_events.SOURCE, silver_orders.SOURCE, silver_products.SOURCE,
                               silver_fx_rates.SOURCE)
ARGS = ("run_id", *(argument(source.name) for source in SOURCES
                    for argument in (manifest_argument, manifest_index_argument)))


def merge_source(spark: SparkSession, source: Source, batches: list[Batch]) -> tuple[dict[str, int], DataFrame]:
    """Check the batches' clean and quarantine rows against their manifests, then merge the clean ones into
    silver; per batch id, its clean count, and the quarantine rows to load. A StagingError comes before any
    write."""
    schema = source.clean_schema(spark)
    quarantined = _quarantine_rows(spark, source, batches)
    staged = read_batch_files(spark, batches, CLEAN, schema).cache()
    try:
        check_batch_rows(staged, batches, CLEAN, [f.name for f in schema.fields if not f.nullable])
        return source.merge(spark, staged, batches), quarantined
    finally:
        staged.unpersist()


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


def _quarantine_rows(spark: SparkSession, source: Source, batches: list[Batch]) -> DataFrame:
    """The batches' rejected rows in ops.quarantine's columns, checked against their manifests."""
    schema = spark.table(QUARANTINE).schema
    staged = read_batch_files(spark, batches, QUARANTINE_FILES, source.quarantine_schema, file_time=True)
    rows = source.to_quarantine(staged).select(*schema.fieldNames())
    check_batch_rows(rows, batches, QUARANTINE_FILES, [f.name for f in schema.fields if not f.nullable])
    return rows


def load_quarantine(spark: SparkSession, batches: list[Batch], quarantined: list[DataFrame]) -> None:
    """The batches' rejected records (`quarantined`: merge_source's, per source) replace whatever ops.quarantine
    holds of the same batches (rows of an interrupted attempt, or of an earlier version of a re-cleaned batch)."""
    rows = reduce(DataFrame.unionByName, quarantined)
    condition = _batches_condition(batches)
    if spark.table(QUARANTINE).where(condition).take(1):
        spark.sql(f"DELETE FROM {QUARANTINE} WHERE {condition}")
    if any(b.quarantined for b in batches):
        rows.writeTo(QUARANTINE).append()


def record_batches(spark: SparkSession, batches: list[Batch], clean: dict[tuple[str, str], int], run_id: str,
                   merged_at: datetime) -> None:
    """Append the batches' ledger rows; `clean`: per (source, batch id), its clean count."""
    ledger = spark.table(MERGED_BATCHES).schema
    rows = []
    for b in batches:
        held = clean.get((b.source, b.batch_id), 0)
        rows.append({
            "manifest_sha256": b.manifest_sha256, "source": b.source, BATCH_ID: b.batch_id,
            "manifest_path": b.manifest_path, "run_id": run_id, "merged_at": merged_at, "received": b.received,
            "clean": held, "quarantined": b.quarantined, "duplicates": b.duplicates + b.clean - held,
            "quarantined_by_reason": json.dumps(b.quarantined_by_reason),
        })
    spark.createDataFrame([tuple(r[name] for name in ledger.fieldNames()) for r in rows], ledger) \
        .writeTo(MERGED_BATCHES).append()


def _sums(rows: list[Any]) -> dict[str, Any]:
    by_reason: Counter[str] = Counter()
    for row in rows:
        by_reason.update(json.loads(row.quarantined_by_reason))
    return {"batches": len(rows), **{key: sum(r[key] for r in rows) for key in MANIFEST_COUNTS},
            "quarantined_by_reason": dict(sorted(by_reason.items()))}


def run_ledger(spark: SparkSession, run_id: str) -> dict[str, Any]:
    """The sums of the ledger rows this run wrote (an earlier attempt of the same run included), in all and
    per source (`sources`)."""
    rows = spark.table(MERGED_BATCHES).where(F.col("run_id") == run_id).collect()
    return {**_sums(rows), "sources": {source.name: _sums([r for r in rows if r.source == source.name])
                                       for source in SOURCES}}


def refused_step(source: str) -> str:
    """The ops.pipeline_runs step of a source whose staging silver_merge refused."""
    return f"{JOB}:{source}"


def _clear_refusals(spark: SparkSession, run_id: str, sources: list[str]) -> None:
    """Delete this run's refusal rows of `sources`: an earlier attempt refused them, this one merged them."""
    steps = [refused_step(name) for name in sources]
    if spark.table(PIPELINE_RUNS).where((F.col("run_id") == run_id) & F.col("step").isin(steps)).take(1):
        spark.sql(f"DELETE FROM {PIPELINE_RUNS} WHERE run_id = :run_id AND step IN ({', '.join(map(repr, steps))})",
                  args={"run_id": run_id})


def last_merged(spark: SparkSession, sources: list[str]) -> dict[str, datetime]:
    """Per source, the start of the last run whose silver_merge succeeded without refusing it (absent: none did).
    Its manifest index is listed from there: a refused source's window stays open until it merges."""
    runs = spark.table(PIPELINE_RUNS)
    succeeded = runs.where((F.col("step") == JOB) & (F.col("status") == SUCCEEDED)).select("run_id", "started_at")
    refused = runs.where(F.col("step").startswith(f"{JOB}:")).select(
        "run_id", F.substring_index("step", ":", -1).alias("source"))
    names = spark.createDataFrame([(name,) for name in sources], "source string")
    return {row.source: datetime.fromtimestamp(row.started, timezone.utc) for row in (
        succeeded.crossJoin(names).join(refused, ["run_id", "source"], "left_anti")
        .groupBy("source").agg(F.max(F.unix_timestamp("started_at")).alias("started")).collect())}


def _merge_pending(spark: SparkSession, a: dict[str, str]) -> dict[str, str]:
    """Merge each source's pending batches and record them; a source whose staging breaks its contract is
    refused whole (nothing of it written, its batches left pending): {source: why} of those."""
    since = last_merged(spark, [source.name for source in SOURCES])
    merged = spark.table(MERGED_BATCHES).select("manifest_sha256").cache()
    done: list[Batch] = []
    clean: dict[tuple[str, str], int] = {}
    quarantined: list[DataFrame] = []
    refused: dict[str, str] = {}
    try:
        for source in SOURCES:
            try:
                batches = pending_batches(spark, a[manifest_argument(source.name)],
                                          a[manifest_index_argument(source.name)], source, merged,
                                          since.get(source.name))
                if not batches:
                    continue
                counts, rows = merge_source(spark, source, batches)
            except StagingError as error:
                refused[source.name] = str(error)
                continue
            done += batches
            clean.update({(source.name, batch_id): count for batch_id, count in counts.items()})
            quarantined.append(rows)
    finally:
        merged.unpersist()
    if done:
        load_quarantine(spark, done, quarantined)
        record_batches(spark, done, clean, a["run_id"], utc_now())
    return refused


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    """Merge every source's pending staging batches and record them; returns the run's ledger and `refused`,
    {source: why} of the sources whose staging broke its contract (recorded as FAILED steps, never raised)."""
    a = require_args(JOB, args, ARGS)
    started_at = utc_now()
    refused = _merge_pending(spark, a)
    _clear_refusals(spark, a["run_id"], [s.name for s in SOURCES if s.name not in refused])
    for name, why in refused.items():
        record_step(spark, {"run_id": a["run_id"], "step": refused_step(name), "status": FAILED,
                            "started_at": started_at, "finished_at": utc_now(),
                            "message": f"{name} staging refused, its batches left pending: {why}"})
    ledger = run_ledger(spark, a["run_id"])
    per_source = ", ".join(f"{name} {s['batches']} ({s['clean']} clean)" for name, s in ledger["sources"].items())
    message = (f"{ledger['batches']} batches merged: {per_source}; "
               f"{ledger['quarantined']} rows in {QUARANTINE}"
               + "".join(f"; {name} REFUSED: {why}" for name, why in refused.items()))
    record_step(spark, {
        "run_id": a["run_id"], "step": JOB, "status": SUCCEEDED, "started_at": started_at,
        "finished_at": utc_now(), "rows_written": ledger["clean"], "message": message,
        **{key: ledger[key] for key in MANIFEST_COUNTS},
        "quarantined_by_reason": json.dumps(ledger["quarantined_by_reason"]),
    })
    return {"run_id": a["run_id"], "step": JOB, **ledger, "rows_written": ledger["clean"], "message": message,
            "refused": refused}


if __name__ == "__main__":
    glue_main(JOB, run, ARGS)
