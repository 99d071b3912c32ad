"""silver_merge on real PySpark + Iceberg: dedupe within and across batches, only the batches not merged yet,
the quarantine, the ledgers, and broken staging refused per source, named."""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq
import pytest
from pyiceberg.expressions import EqualTo
from pyspark.sql import SparkSession

from glue_jobs import silver_merge
from glue_jobs.common import JobArgumentError
from tests.fixtures.spark import SparkLake
from tests.spark.staging import (CLEAN_SCHEMA, T0, expected_silver, job_args, make_events, manifest_file, order_event,
                                 quarantine_rows, resend, rows_by_event_id, write_batch, write_order_batch)

pytestmark = pytest.mark.slow
LEDGER = ("received", "clean", "quarantined", "duplicates")


@pytest.fixture
def lake(empty_spark_lake: SparkLake) -> SparkLake:
    return empty_spark_lake


def silver_rows(lake: SparkLake) -> list[dict]:
    return rows_by_event_id(lake.catalog.load_table("silver.events").scan().to_arrow())


def silver_batch_of(lake: SparkLake) -> dict[str, str]:
    rows = lake.catalog.load_table("silver.events").scan(selected_fields=("event_id", "batch_id")).to_arrow()
    return dict(zip(rows["event_id"].to_pylist(), rows["batch_id"].to_pylist()))


def step_rows(lake: SparkLake, run_id: str) -> list[dict]:
    return lake.catalog.load_table("ops.pipeline_runs").scan(row_filter=EqualTo("run_id", run_id)).to_arrow().to_pylist()


def ledger_rows(lake: SparkLake) -> dict[str, dict]:
    rows = lake.catalog.load_table("ops.merged_batches").scan().to_arrow().to_pylist()
    return {r["batch_id"]: r for r in rows}


def quarantine(lake: SparkLake) -> list[tuple]:
    rows = lake.catalog.load_table("ops.quarantine").scan().to_arrow().to_pylist()
    return sorted((r["batch_id"], r["sequence_number"], r["reason"], r["raw_payload"]) for r in rows)


def expected_quarantine(*batches: tuple[str, dict[str, int]]) -> list[tuple]:
    return sorted((batch_id, r["sequence_number"], r["reason"], r["raw_payload"])
                  for batch_id, by_reason in batches for r in quarantine_rows(batch_id, by_reason))


def refusal(spark: SparkSession, lake: SparkLake, staging: Path, run_id: str) -> str:
    """Run silver_merge on `staging`, whose clickstream staging is broken: the job does not fail, it refuses the
    source and records why in a FAILED step row; returns why."""
    result = silver_merge.run(spark, job_args(staging, run_id))
    why = result["refused"]["clickstream"]
    rows = {r["step"]: r for r in step_rows(lake, run_id)}
    assert rows["silver_merge:clickstream"]["status"] == "FAILED" and why in rows["silver_merge:clickstream"]["message"]
    assert rows["silver_merge"]["status"] == "SUCCEEDED" and "clickstream REFUSED" in rows["silver_merge"]["message"]
    return why


def test_a_broken_source_is_refused_alone_and_merges_once_mended(
        spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    """One bad clickstream manifest: its source waits, named; orders merge in the same run. Mended, the same run's
    retry merges clickstream and its refusal row is gone."""
    write_batch(tmp_path, "b1", make_events(range(0, 3), seed=11))
    write_batch(tmp_path, "b2", make_events(range(3, 6), seed=11))
    write_order_batch(tmp_path, "ob1", [order_event("o1", "placed", T0)])
    path = manifest_file(tmp_path, "b2")
    good = path.read_text()
    path.write_text("{not json")

    assert "b2.json: not JSON" in refusal(spark, lake, tmp_path, "run-1")
    assert set(ledger_rows(lake)) == {"ob1"} and silver_rows(lake) == []
    assert lake.catalog.load_table("silver.order_events").scan().to_arrow().num_rows == 1

    path.write_text(good)
    again = silver_merge.run(spark, job_args(tmp_path, "run-1"))
    assert again["refused"] == {} and set(ledger_rows(lake)) == {"ob1", "b1", "b2"}
    assert sorted(r["step"] for r in step_rows(lake, "run-1")) == ["silver_merge"]
    assert len(silver_rows(lake)) == 6


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
    q1, q2 = {"BAD_TIMESTAMP": 2, "MISSING_FIELD": 1}, {"BAD_TIMESTAMP": 3}
    m1 = write_batch(tmp_path, "b1", first_staged, duplicates_dropped=4, quarantined_by_reason=q1)
    m2 = write_batch(tmp_path, "b2", second_staged, duplicates_dropped=1, quarantined_by_reason=q2)
    staged = first_staged + second_staged
    expected = expected_silver(staged)
    assert len(expected) == 60 and next(r for r in expected if r["event_id"] == "e0010")["user_agent"] == "earliest copy"

    result = silver_merge.run(spark, job_args(tmp_path, "run-1"))

    assert silver_rows(lake) == expected
    spark_ids = sorted(r.event_id for r in spark.table("lake.silver.events").select("event_id").collect())
    assert spark_ids == [r["event_id"] for r in expected]
    batch_of = silver_batch_of(lake)
    assert batch_of["e0010"] == "b2" and batch_of["e0003"] == "b1"
    assert (result["received"], result["clean"], result["quarantined"], result["duplicates"]) == (76, 60, 6, 10)
    assert result["received"] == m1["received"] + m2["received"]
    assert result["quarantined_by_reason"] == {"BAD_TIMESTAMP": 5, "MISSING_FIELD": 1}
    [row] = step_rows(lake, "run-1")
    assert row["step"] == "silver_merge" and row["status"] == "SUCCEEDED"
    assert (row["received"], row["clean"], row["quarantined"], row["duplicates"], row["rows_written"]) == (
        76, 60, 6, 10, 60)
    assert json.loads(row["quarantined_by_reason"]) == {"BAD_TIMESTAMP": 5, "MISSING_FIELD": 1}
    assert row["finished_at"] >= row["started_at"]
    # per batch: clean = rows silver holds from it; each batch's own ledger balances
    ledger = ledger_rows(lake)
    assert {b: tuple(r[k] for k in LEDGER) for b, r in ledger.items()} == {
        "b1": (m1["received"], 39, 3, 4 + 3),  # 42 staged rows of 40 ids; e0010 is b2's earlier copy
        "b2": (m2["received"], 21, 3, 1 + 2)}  # 23 staged: 20 new ids, e0010, and e0003, e0004 (b1's)
    assert list(batch_of.values()).count("b1") == 39
    assert ledger["b1"]["manifest_sha256"] == hashlib.sha256(manifest_file(tmp_path, "b1").read_bytes()).hexdigest()
    assert all(r["run_id"] == "run-1" for r in ledger.values())
    assert quarantine(lake) == expected_quarantine(("b1", q1), ("b2", q2))

    snapshots_before = {t: spark.table(f"lake.{t}.snapshots").count()
                        for t in ("silver.events", "ops.quarantine", "ops.merged_batches")}
    again = silver_merge.run(spark, job_args(tmp_path, "run-2"))

    assert silver_rows(lake) == expected and quarantine(lake) == expected_quarantine(("b1", q1), ("b2", q2))
    assert {t: spark.table(f"lake.{t}.snapshots").count() for t in snapshots_before} == snapshots_before
    assert (again["batches"], again["received"], again["clean"], again["quarantined"], again["duplicates"]) == (
        0, 0, 0, 0, 0)
    [row2] = step_rows(lake, "run-2")
    assert (row2["received"], row2["clean"], row2["rows_written"], row2["quarantined_by_reason"]) == (0, 0, 0, "{}")


def test_a_later_run_merges_only_the_new_batches(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    first = make_events(range(0, 10), seed=3)
    write_batch(tmp_path, "b1", first, quarantined_by_reason={"BAD_JSON": 2})
    silver_merge.run(spark, job_args(tmp_path, "run-a"))
    merged = silver_rows(lake)

    late = make_events(range(10, 15), seed=4)
    # re-sent copy ingested EARLIER than silver's: silver keeps what it merged first
    m2 = write_batch(tmp_path, "b2", late + [resend(first[0], delay=timedelta(seconds=-1), page_url="too late")],
                     quarantined_by_reason={"BAD_COUNTRY": 1})
    result = silver_merge.run(spark, job_args(tmp_path, "run-b"))

    assert (result["batches"], result["received"], result["clean"], result["quarantined"], result["duplicates"]) == (
        1, m2["received"], 5, 1, 1)
    assert silver_rows(lake) == sorted(merged + expected_silver(late), key=lambda r: r["event_id"])
    assert quarantine(lake) == expected_quarantine(("b1", {"BAD_JSON": 2}), ("b2", {"BAD_COUNTRY": 1}))
    assert {b: r["run_id"] for b, r in ledger_rows(lake).items()} == {"b1": "run-a", "b2": "run-b"}


def test_a_batch_without_its_manifest_waits_for_it(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    """The cleaner writes the manifest last: staged files without one are a batch still being written."""
    events = make_events(range(0, 3), seed=5)
    write_batch(tmp_path, "b1", events)
    manifest = manifest_file(tmp_path, "b1")
    text = manifest.read_text()
    manifest.unlink()

    waiting = silver_merge.run(spark, job_args(tmp_path, "run-1"))
    manifest.write_text(text)
    merged = silver_merge.run(spark, job_args(tmp_path, "run-2"))

    assert (waiting["batches"], waiting["clean"]) == (0, 0)
    assert (merged["batches"], merged["clean"]) == (1, 3) and silver_rows(lake) == expected_silver(events)


def test_a_re_cleaned_batch_is_merged_again_and_replaces_its_quarantine(
        spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    """A replay after a contract fix re-cleans a batch under its id: its manifest changes, so it is pending
    again; its once-quarantined records now reach silver and leave ops.quarantine."""
    events = make_events(range(0, 8), seed=6)
    write_batch(tmp_path, "b1", events[:5], quarantined_by_reason={"BAD_COUNTRY": 3})
    silver_merge.run(spark, job_args(tmp_path, "run-1"))

    write_batch(tmp_path, "b1", events, quarantined_by_reason={"BAD_TIMESTAMP": 1})
    replayed = silver_merge.run(spark, job_args(tmp_path, "run-2"))

    assert silver_rows(lake) == expected_silver(events)
    assert quarantine(lake) == expected_quarantine(("b1", {"BAD_TIMESTAMP": 1}))
    assert (replayed["received"], replayed["clean"], replayed["quarantined"], replayed["duplicates"]) == (9, 8, 1, 0)


def test_missing_staging_is_no_data_not_a_crash(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    result = silver_merge.run(spark, job_args(tmp_path / "nothing-yet", "run-empty"))

    assert (result["received"], result["clean"], result["quarantined"], result["duplicates"]) == (0, 0, 0, 0)
    assert silver_rows(lake) == []
    [row] = step_rows(lake, "run-empty")
    assert row["rows_written"] == 0 and row["quarantined_by_reason"] == "{}"


@pytest.mark.parametrize(("change", "error"), [
    ({"clean": -1}, r"b1\.json: 'clean' must be a count >= 0, got -1"),
    ({"received": 99}, r"b1\.json: received \(99\) != clean \(3\) \+ quarantined \(1\) \+ duplicates \(0\)"),
    ({"quarantined_by_reason": {"BAD_JSON": 2}}, r"b1\.json: quarantined_by_reason sums to 2, not quarantined \(1\)"),
    ({"batch_id": "b1' OR '1'='1"}, r"b1\.json: 'batch_id' must be a name of letters"),
    ({"files": {"clean": None, "quarantine": None}}, r"b1\.json: 3 clean rows but no 'files.clean'"),
])
def test_a_broken_manifest_is_named_and_nothing_is_written(
        spark: SparkSession, lake: SparkLake, tmp_path: Path, change: dict, error: str) -> None:
    write_batch(tmp_path, "b1", make_events(range(0, 3), seed=7), quarantined_by_reason={"BAD_JSON": 1})
    path = manifest_file(tmp_path, "b1")
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))

    assert re.search(error, refusal(spark, lake, tmp_path, "run-bad"))
    assert silver_rows(lake) == [] and quarantine(lake) == [] and ledger_rows(lake) == {}


def _same_id_as_b1(staging: Path) -> None:
    path = manifest_file(staging, "b2")
    path.write_text(json.dumps({**json.loads(path.read_text()), "batch_id": "b1"}))


def _b1s_file_in_b2(staging: Path) -> None:
    b1, path = json.loads(manifest_file(staging, "b1").read_text()), manifest_file(staging, "b2")
    path.write_text(json.dumps({**json.loads(path.read_text()), "files": b1["files"]}))


def _from_orders(staging: Path) -> None:
    path = manifest_file(staging, "b2")
    path.write_text(json.dumps({**json.loads(path.read_text()), "source": "orders"}))


def _a_json_list(staging: Path) -> None:
    manifest_file(staging, "b2").write_text("[]")


def _event_time_as_text(staging: Path) -> None:
    """b2's clean file rewritten as a broken writer would: event_time a string, where the contract has a timestamp."""
    path = Path(json.loads(manifest_file(staging, "b2").read_text())["files"]["clean"].removeprefix("file://"))
    table = pq.read_table(path)
    at = table.schema.get_field_index("event_time")
    pq.write_table(table.set_column(at, "event_time", pa.compute.cast(table.column(at), pa.string())), path)


@pytest.mark.parametrize(("breaks", "error"), [
    (_same_id_as_b1, r"one clickstream batch id in several differing manifests: \{'b1': \[.*b1\.json.*b2\.json"),
    (_b1s_file_in_b2, r"one clean file named by several manifests: .*b1\.parquet"),
    (_from_orders, r"b2\.json: 'source' is 'orders' under the manifests of 'clickstream'"),
    (_a_json_list, r"b2\.json: not a JSON object"),
    (_event_time_as_text, r"clean file \S*b2\.parquet holds event_time as BINARY, not timestamp"),
])
def test_staging_that_breaks_a_writers_promise_is_refused_naming_it(
        spark: SparkSession, lake: SparkLake, tmp_path: Path, breaks: Callable[[Path], None], error: str) -> None:
    write_batch(tmp_path, "b1", make_events(range(0, 3), seed=12))
    write_batch(tmp_path, "b2", make_events(range(3, 6), seed=12))
    breaks(tmp_path)

    assert re.search(error, refusal(spark, lake, tmp_path, "run-broken"))
    assert silver_rows(lake) == [] and ledger_rows(lake) == {}


def test_staged_files_that_disagree_with_their_manifest_fail_loudly(
        spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    rows = make_events(range(0, 3), seed=8)
    rows[1]["user_id"] = None
    nullable = pa.schema([f.with_nullable(True) for f in CLEAN_SCHEMA])  # a broken cleaner's output
    write_batch(tmp_path, "b1", rows, schema=nullable)
    write_batch(tmp_path, "b2", make_events(range(3, 6), seed=8))
    path = manifest_file(tmp_path, "b2")
    path.write_text(json.dumps({**json.loads(path.read_text()), "clean": 4, "received": 4}))

    why = refusal(spark, lake, tmp_path, "run-null")
    assert "b1.parquet has nulls in required columns: {'user_id': 1}" in why
    assert "b2.json counts 4 clean rows, its file holds 3" in why
    assert silver_rows(lake) == []


def test_a_missing_staged_file_is_named(spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    manifest = write_batch(tmp_path, "b1", make_events(range(0, 3), seed=9))
    Path(manifest["files"]["clean"].removeprefix("file://")).unlink()

    assert re.search(r"clean file\(s\) missing: .*b1\.parquet \(named by .*b1\.json\)",
                     refusal(spark, lake, tmp_path, "run-gone"))


def test_missing_argument_is_named(spark: SparkSession) -> None:
    with pytest.raises(JobArgumentError, match="silver_merge: missing job argument.*--clickstream_manifest_path"):
        silver_merge.run(spark, {"run_id": "r", "JOB_NAME": "ignored"})
