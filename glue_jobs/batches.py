"""Staging batches as every source's writer leaves them: a manifest (written last) naming the batch's clean
and quarantine Parquet files, with the batch's counts. silver_merge finds the pending ones here, and each
silver target (glue_jobs/silver_*.py) reads their rows through `Source`.

Plain PySpark: ships to Glue with the jobs (docs/decisions/0110-exactly-once-batches.md).
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from py4j.protocol import Py4JJavaError
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, StringType, StructField, StructType, TimestampType

from glue_jobs.common import list_files, path_exists
from lambdas.contracts import lake_layout

MANIFEST_COUNTS = ("received", "clean", "quarantined", "duplicates")
BATCH_ID = "batch_id"  # the lineage column silver and ops.quarantine add to the staged rows
CLEAN, QUARANTINE_FILES = "clean", "quarantine"  # the kinds of staging file a manifest names
# Names the job puts into SQL literals: batch ids (shardId-...-seq-seq, sha256 hex, rate_date=D), sources.
_SAFE_NAME = re.compile(r"[A-Za-z0-9._:=+-]{1,256}")
_SCHEME = r"^[A-Za-z][A-Za-z0-9+.-]*:/*"  # stripped from a file URI before paths are compared
# Spark 3.5's words for a staged Parquet column whose type is not the one read (QueryExecutionErrors)
_TYPE_MISMATCH = re.compile(r"Parquet column cannot be converted in file (?P<file>\S+?)\. Column: \[(?P<column>[^\]]+)\], "
                            r"Expected: (?P<expected>[^,]+), Found: (?P<found>\w+)")
# A run lists the manifest index from an hour before the start of the last run that merged the source: an entry
# written while that run listed, or by a writer whose clock is behind, is still listed (docs/decisions/0114).
LISTING_OVERLAP = timedelta(hours=1)


class StagingError(ValueError):
    """A staging file or manifest breaks its writer's contract: the message names it."""


@dataclass(frozen=True)
class Batch:
    """One staged batch, as its manifest describes it."""
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
        """The batch's file of `kind`: CLEAN or QUARANTINE_FILES."""
        return self.clean_file if kind == CLEAN else self.quarantine_file

    def rows(self, kind: str) -> int:
        return self.clean if kind == CLEAN else self.quarantined


# A target's merge: writes the batches' clean rows (with BATCH_ID) to silver, idempotently; returns per batch
# id the rows counted clean in the ledger (the rest of the batch's staged rows are duplicates).
Merge = Callable[[SparkSession, DataFrame, list[Batch]], dict[str, int]]


@dataclass(frozen=True)
class Source:
    """How silver_merge reads one source's batches and where their rows go."""
    name: str                   # the manifests' `source`
    batch_key: str              # the manifest key holding the batch id
    # The staged clean columns to read, plus BATCH_ID; a column a file lacks reads as null, and a
    # non-nullable one may hold no null (else the writer broke its contract).
    clean_schema: Callable[[SparkSession], StructType]
    quarantine_schema: StructType  # the source's quarantine columns, plus BATCH_ID
    # the quarantine rows (plus `_file_time`, the file's modification time) -> ops.quarantine's columns
    to_quarantine: Callable[[DataFrame], DataFrame]
    merge: Merge


# The cleaner's quarantine columns (lambdas/cleaner/schemas.py), which are ops.quarantine's.
CLEANER_QUARANTINE = StructType([
    StructField("source", StringType(), False), StructField(BATCH_ID, StringType(), False),
    StructField("reason", StringType(), False), StructField("message", StringType(), False),
    StructField("shard", StringType(), True), StructField("sequence_number", StringType(), True),
    StructField("ingested_at", TimestampType(), False), StructField("raw_payload", BinaryType(), False),
])


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


def parse_manifest(path: str, text: str, sha256: str, source: Source) -> Batch:
    """A manifest's batch; it must be `source`'s and its ledger must balance, as every writer guarantees."""
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
    if manifest.get("source") != source.name:
        raise StagingError(f"manifest {path}: 'source' is {manifest.get('source')!r} under the manifests of "
                           f"{source.name!r}")
    return Batch(manifest_sha256=sha256, manifest_path=path, source=source.name,
                 batch_id=_name(path, manifest, source.batch_key), received=received, clean=clean,
                 quarantined=quarantined, duplicates=duplicates, quarantined_by_reason=dict(sorted(by_reason.items())),
                 clean_file=_file(path, files, CLEAN, clean),
                 quarantine_file=_file(path, files, QUARANTINE_FILES, quarantined))


def index_folders(index_uri: str, since: datetime | None, now: datetime) -> list[str]:
    """The index folders a run lists: each hour from `since` (the start of the last run that merged the source)
    less LISTING_OVERLAP, to `now` plus it (a writer's clock may run ahead); the whole index when the source was
    never merged (`since` None)."""
    if since is None:
        return [index_uri]
    hour = (since - LISTING_OVERLAP).astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    folders = []
    while hour <= now + LISTING_OVERLAP:
        folders.append(lake_layout.join(index_uri, lake_layout.written_hour_folder(hour)))
        hour += timedelta(hours=1)
    return folders


def indexed_manifests(spark: SparkSession, manifest_uri: str, folders: list[str]) -> list[str]:
    """The manifests that the index entries in `folders` name and that exist (an entry is written just before
    its manifest, so a writer that died between the two left an entry naming nothing)."""
    named: dict[str, set[str]] = {}  # a manifest folder: the names in it that entries name
    for folder in folders:
        for entry in list_files(spark, folder, recursive=True):
            relative = entry.split(f"/{lake_layout.WRITTEN_HOUR}=", 1)[1].split("/", 1)[1]
            parent, _, name = lake_layout.join(manifest_uri, relative).rpartition("/")
            named.setdefault(parent, set()).add(name)
    return [path for parent, names in named.items() for path in list_files(spark, parent, recursive=False)
            if path.rsplit("/", 1)[-1] in names]


def pending_batches(spark: SparkSession, manifest_uri: str, index_uri: str, source: Source, merged: DataFrame,
                    since: datetime | None) -> list[Batch]:
    """The batches whose manifests the index lists since `since` (index_folders) and whose content is not among
    `merged`'s `manifest_sha256` (the ledger), by manifest path."""
    paths = indexed_manifests(spark, manifest_uri, index_folders(index_uri, since, datetime.now(timezone.utc)))
    if not paths:
        return []
    manifests = (spark.read.text(paths, wholetext=True)
                 .select(F.input_file_name().alias("path"), "value", F.sha2("value", 256).alias("sha256")))
    done = merged.select(F.col("manifest_sha256").alias("sha256"))
    batches: dict[str, Batch] = {}  # a byte-identical copy of a manifest is the same batch
    for row in sorted(manifests.join(done, "sha256", "left_anti").collect(), key=lambda r: r.path):
        batches.setdefault(row.sha256, parse_manifest(row.path, row.value, row.sha256, source))
    by_id: dict[str, list[str]] = {}
    for batch in batches.values():
        by_id.setdefault(batch.batch_id, []).append(batch.manifest_path)
    clashes = {key: paths for key, paths in by_id.items() if len(paths) > 1}
    if clashes:
        raise StagingError(f"one {source.name} batch id in several differing manifests: {clashes}")
    return list(batches.values())


def _path_key(spark: SparkSession, uri: str) -> str:
    """A file URI as Spark's `_metadata.file_path` spells it, without its scheme: Hadoop's URI encoding
    ('=' kept, ' ' as %20), authority (an S3 bucket) included."""
    parsed = spark.sparkContext._jvm.org.apache.hadoop.fs.Path(uri).toUri()
    return f"{parsed.getRawAuthority() or ''}{parsed.getRawPath()}".lstrip("/")


def read_batch_files(spark: SparkSession, batches: list[Batch], kind: str, columns: StructType,
                     *, file_time: bool = False) -> DataFrame:
    """The rows of the batches' `kind` files with `columns` (a column a file lacks reads as null); BATCH_ID
    comes from the manifest naming the file; `file_time` adds `_file_time`, the file's modification time."""
    out = StructType([*columns.fields, StructField("_file_time", TimestampType())]) if file_time else columns
    named = [(uri, b) for b in batches if (uri := b.file(kind))]
    if not named:
        return spark.createDataFrame([], out)
    keys = {uri: _path_key(spark, uri) for uri, _ in named}
    naming: dict[str, list[str]] = {}  # a file (however its URI is spelled): the manifests naming it
    for uri, b in named:
        naming.setdefault(keys[uri], []).append(b.manifest_path)
    shared = {key: paths for key, paths in naming.items() if len(paths) > 1}
    if shared:
        raise StagingError(f"one {kind} file named by several manifests: {shared}")
    files = dict(named)
    missing = [f"{uri} (named by {b.manifest_path})" for uri, b in files.items() if not path_exists(spark, uri)]
    if missing:
        raise StagingError(f"{kind} file(s) missing: {'; '.join(missing)}")
    read_schema = StructType([StructField(f.name, f.dataType, True) for f in columns.fields if f.name != BATCH_ID])
    owners = spark.createDataFrame([(keys[uri], b.batch_id) for uri, b in files.items()],
                                   f"_path string, {BATCH_ID} string")
    rows = (spark.read.schema(read_schema).parquet(*files)
            .select("*", F.regexp_replace("_metadata.file_path", _SCHEME, "").alias("_path"),
                    F.col("_metadata.file_modification_time").alias("_file_time")))
    return rows.join(F.broadcast(owners), "_path").select(*out.fieldNames())


def check_batch_rows(rows: DataFrame, batches: list[Batch], kind: str, required: list[str]) -> None:
    """Each batch's file holds the rows its manifest counts, with no null in a required column; else the
    writer's output is broken: fail, naming the batches."""
    counted = rows.groupBy(BATCH_ID).agg(
        F.count(F.lit(1)).alias("_rows"), *(F.count(F.when(F.col(c).isNull(), 1)).alias(f"_null_{c}") for c in required))
    try:  # the first read of the files' rows: a column of the wrong type fails here
        stats = {r[BATCH_ID]: r for r in counted.collect()}
    except Py4JJavaError as error:
        mismatch = _TYPE_MISMATCH.search(str(error))
        if mismatch is None:
            raise
        raise StagingError(f"{kind} file {mismatch['file']} holds {mismatch['column']} as {mismatch['found']}, "
                           f"not {mismatch['expected']}") from None
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

