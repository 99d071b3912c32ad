"""record_run writes with pyiceberg into the sqlite catalog that this process's Spark session holds
open, as in the local cloud (where both run in one process), and Spark keeps writing afterwards."""
from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from glue_jobs import gold_build, silver_merge
from lambdas.record_run.handler import BadRunEvent, handler
from tests.fixtures.spark import SparkLake
from tests.spark.staging import job_args, make_events, write_batch

pytestmark = pytest.mark.slow


@pytest.fixture
def lake(empty_spark_lake: SparkLake, monkeypatch: pytest.MonkeyPatch) -> SparkLake:
    """The emptied lake, named in record_run's environment as the local cloud does."""
    for key, value in empty_spark_lake.env.items():
        monkeypatch.setenv(key, value)
    return empty_spark_lake


def run_rows(spark: SparkSession, run_id: str) -> dict[str, dict]:
    rows = spark.sql(f"SELECT * FROM lake.ops.pipeline_runs WHERE run_id = '{run_id}'").collect()
    return {r.step: r.asDict() for r in rows}


def test_pyiceberg_and_spark_take_turns_on_one_catalog(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    write_batch(tmp_path, "b1", make_events(range(0, 30), seed=21), duplicates_dropped=2,
                quarantined_by_reason={"BAD_COUNTRY": 4})
    merged = silver_merge.run(spark, job_args(tmp_path, "exec-1"))  # Spark commits first

    recorded = handler({"run_id": "exec-1", "status": "SUCCEEDED", "started_at": "2026-03-02T08:00:00.123Z",
                        "steps": {"silver_merge": {"JobRunState": "SUCCEEDED", "ExecutionTime": 7}}}, None)

    rows = run_rows(spark, "exec-1")  # Spark sees pyiceberg's commit
    assert set(rows) == {"silver_merge", "run"}
    run = rows["run"]
    assert (run["status"], run["received"], run["clean"], run["quarantined"], run["duplicates"]) == (
        "SUCCEEDED", merged["received"], merged["clean"], merged["quarantined"], merged["duplicates"])
    assert run["received"] == 36 and json.loads(run["quarantined_by_reason"]) == {"BAD_COUNTRY": 4}
    assert run["started_at"].isoformat().startswith("2026-03-02T08:00:00.123")
    assert run["message"] == "SUCCEEDED: silver_merge SUCCEEDED (7 s)"
    assert recorded["started_at"] == "2026-03-02T08:00:00.123000+00:00"

    gold_build.run(spark, {"run_id": "exec-1"})  # Spark commits after pyiceberg did
    handler({"run_id": "exec-2", "status": "FAILED", "started_at": "2026-03-02T09:00:00Z",
             "steps": {"error": {"Error": "States.TaskFailed", "Cause": "GoldBuild: boom"}}}, None)

    assert set(run_rows(spark, "exec-1")) == {"silver_merge", "gold_build", "run"}
    failed = run_rows(spark, "exec-2")["run"]
    assert failed["status"] == "FAILED" and failed["message"] == "States.TaskFailed: GoldBuild: boom"
    assert failed["received"] is None  # the run failed before silver_merge recorded a ledger


def test_a_retried_record_replaces_the_runs_row(spark: SparkSession, lake: SparkLake) -> None:
    """Step Functions retries RecordSuccess after an error, which can follow an append that committed."""
    event = {"run_id": "exec-3", "status": "SUCCEEDED", "started_at": "2026-03-02T10:00:00Z", "steps": {}}
    first = handler(event, None)
    second = handler(event, None)  # the retry

    rows = spark.sql("SELECT step, finished_at FROM lake.ops.pipeline_runs WHERE run_id = 'exec-3'").collect()
    assert [r.step for r in rows] == ["run"]
    assert rows[0].finished_at.replace(tzinfo=timezone.utc).isoformat() == second["finished_at"] != first["finished_at"]


def test_a_skipped_run_is_recorded_with_its_reason_and_no_ledger(lake: SparkLake) -> None:
    """A batch run that found another holding the run lock: its own row, so every start leaves a trace."""
    handler({"run_id": "exec-3", "status": "SKIPPED", "started_at": "2026-03-02T10:00:00Z",
             "steps": {"error": {"Error": "BatchAlreadyRunning", "Cause": "Another run holds the run lock."}}}, None)

    [row] = lake.catalog.load_table("ops.pipeline_runs").scan().to_arrow().to_pylist()
    assert (row["run_id"], row["step"], row["status"]) == ("exec-3", "run", "SKIPPED")
    assert row["message"] == "BatchAlreadyRunning: Another run holds the run lock."
    assert (row["received"], row["clean"], row["quarantined"], row["duplicates"]) == (None, None, None, None)


@pytest.mark.parametrize(("event", "error"), [
    ({"status": "SUCCEEDED", "started_at": "2026-03-02T08:00:00Z"}, "event has no 'run_id'"),
    ({"run_id": "x", "status": "DONE", "started_at": "2026-03-02T08:00:00Z"}, "'status' must be one of"),
    ({"run_id": "x", "status": "FAILED", "started_at": "yesterday"}, "'started_at' is not ISO-8601"),
])
def test_bad_events_are_refused_with_the_field_named(lake: SparkLake, event: dict, error: str) -> None:
    with pytest.raises(BadRunEvent, match=error):
        handler(event, None)
    assert lake.catalog.load_table("ops.pipeline_runs").scan().to_arrow().num_rows == 0
