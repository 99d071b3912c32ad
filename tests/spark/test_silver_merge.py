"""silver_merge on real PySpark + Iceberg: dedupe within and across batches, idempotent re-runs, the ledger."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo
from pyspark.sql import SparkSession

from glue_jobs import silver_merge
from glue_jobs.common import JobArgumentError
from tests.fixtures.spark import SparkLake
from tests.spark.staging import (CLEAN_SCHEMA, expected_silver, job_args, make_events, resend, rows_by_event_id,
                                 write_batch)

pytestmark = pytest.mark.slow


@pytest.fixture
def lake(empty_spark_lake: SparkLake) -> SparkLake:
    return empty_spark_lake


def silver_rows(lake: SparkLake) -> list[dict]:
    return rows_by_event_id(lake.catalog.load_table("silver.events").scan().to_arrow())


def step_rows(lake: SparkLake, run_id: str) -> list[dict]:
    return lake.catalog.load_table("ops.pipeline_runs").scan(row_filter=EqualTo("run_id", run_id)).to_arrow().to_pylist()


def test_dedupes_within_and_across_batches_and_a_rerun_changes_nothing(
        spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    first = make_events(range(0, 40), seed=1)
    first_staged = first + [resend(first[1], delay=timedelta(minutes=5), page_url="later copy"),
                            resend(first[2], delay=timedelta(seconds=1), user_agent="later copy")]
    second_new = make_events(range(40, 60), seed=2)
    second_staged = second_new + [
        resend(first[3], delay=timedelta(hours=1), page_url="resent in batch 2"),
        resend(first[4], delay=timedelta(hours=2)),
        # an earlier copy in a later batch: the earliest ingested copy wins within a run
        resend(first[10], delay=timedelta(seconds=-5), user_agent="earliest copy"),
    ]
    m1 = write_batch(tmp_path, "b1", first_staged, duplicates_dropped=4,
                     quarantined_by_reason={"BAD_TIMESTAMP": 2, "MISSING_FIELD": 1})
    m2 = write_batch(tmp_path, "b2", second_staged, duplicates_dropped=1, quarantined_by_reason={"BAD_TIMESTAMP": 3})
    staged = first_staged + second_staged
    expected = expected_silver(staged)
    assert len(expected) == 60 and next(r for r in expected if r["event_id"] == "e0010")["user_agent"] == "earliest copy"

    result = silver_merge.run(spark, job_args(tmp_path, "run-1"))

    assert silver_rows(lake) == expected
    spark_rows = sorted((r.asDict() for r in spark.table("lake.silver.events").collect()), key=lambda r: r["event_id"])
    assert [r["event_id"] for r in spark_rows] == [r["event_id"] for r in expected]
    received = m1["received"] + m2["received"]
    assert result["received"] == received == 76
    assert result["clean"] == 60 and result["quarantined"] == 6
    assert result["duplicates"] == 5 + (len(staged) - 60)
    assert result["received"] == result["clean"] + result["quarantined"] + result["duplicates"]
    assert result["quarantined_by_reason"] == {"BAD_TIMESTAMP": 5, "MISSING_FIELD": 1}
    [row] = step_rows(lake, "run-1")
    assert row["step"] == "silver_merge" and row["status"] == "SUCCEEDED"
    assert (row["received"], row["clean"], row["quarantined"], row["duplicates"], row["rows_written"]) == (
        76, 60, 6, 10, 60)
    assert json.loads(row["quarantined_by_reason"]) == {"BAD_TIMESTAMP": 5, "MISSING_FIELD": 1}
    assert row["finished_at"] >= row["started_at"]

    snapshots_before = spark.table("lake.silver.events.snapshots").count()
    again = silver_merge.run(spark, job_args(tmp_path, "run-2"))

    assert silver_rows(lake) == expected
    assert spark.table("lake.silver.events.snapshots").count() == snapshots_before  # not even an empty commit
    assert (again["received"], again["clean"], again["quarantined"], again["duplicates"]) == (76, 0, 6, 5 + len(staged))


def test_a_later_run_inserts_only_new_event_ids(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    first = make_events(range(0, 10), seed=3)
    write_batch(tmp_path, "b1", first)
    silver_merge.run(spark, job_args(tmp_path, "run-a"))
    merged = silver_rows(lake)

    late = make_events(range(10, 15), seed=4)
    # re-sent copies ingested EARLIER than silver's: silver keeps what it merged first
    write_batch(tmp_path, "b2", late + [resend(first[0], delay=timedelta(seconds=-1), page_url="too late")])
    result = silver_merge.run(spark, job_args(tmp_path, "run-b"))

    assert result["clean"] == 5 and result["rows_written"] == 5
    assert silver_rows(lake) == sorted(merged + expected_silver(late), key=lambda r: r["event_id"])


def test_missing_staging_is_no_data_not_a_crash(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    result = silver_merge.run(spark, job_args(tmp_path / "nothing-yet", "run-empty"))

    assert (result["received"], result["clean"], result["quarantined"], result["duplicates"]) == (0, 0, 0, 0)
    assert silver_rows(lake) == []
    [row] = step_rows(lake, "run-empty")
    assert row["rows_written"] == 0 and row["quarantined_by_reason"] == "{}"


def test_staged_rows_without_manifest_are_flagged(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    write_batch(tmp_path, "b1", make_events(range(0, 3), seed=5))
    (tmp_path / "manifests" / "clickstream" / "ingest_hour=2026-03-01-21" / "b1.json").unlink()

    result = silver_merge.run(spark, job_args(tmp_path, "run-orphan"))

    assert result["clean"] == 3 and result["received"] == 0
    assert "staged rows (3) != manifests' clean (0)" in result["message"]


def test_bad_manifest_names_the_file(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    write_batch(tmp_path, "b1", make_events(range(0, 3), seed=6))
    bad = tmp_path / "manifests" / "clickstream" / "ingest_hour=2026-03-01-21" / "b1.json"
    bad.write_text(json.dumps({"received": 3, "clean": -1, "quarantined": 0, "duplicates": 0}))

    with pytest.raises(silver_merge.StagingError, match=r"b1\.json: 'clean' must be a count"):
        silver_merge.run(spark, job_args(tmp_path, "run-bad"))
    assert silver_rows(lake) == []


def test_null_in_a_required_column_fails_loudly(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    rows = make_events(range(0, 3), seed=7)
    rows[1]["user_id"] = None
    nullable = pa.schema([f.with_nullable(True) for f in CLEAN_SCHEMA])  # a broken cleaner's output
    write_batch(tmp_path, "b1", rows, schema=nullable)

    with pytest.raises(silver_merge.StagingError, match=r"nulls in required columns: \{'user_id': 1\}"):
        silver_merge.run(spark, job_args(tmp_path, "run-null"))
    assert silver_rows(lake) == []


def test_missing_argument_is_named(spark: SparkSession) -> None:
    with pytest.raises(JobArgumentError, match="silver_merge: missing job argument.*--manifest_path"):
        silver_merge.run(spark, {"clean_path": "file:///x", "run_id": "r", "JOB_NAME": "ignored"})
