"""The maintenance job on real PySpark + Iceberg procedures: every table keeps its rows at the current
snapshot (read back by pyiceberg too), small files are compacted, old snapshots and orphan files go,
and the batch jobs carry on incrementally afterwards."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo
from pyspark.sql import SparkSession

from glue_jobs import common, gold_build, maintenance, silver_merge
from iceberg_tables.specs import ALL_TABLES, GOLD_KPI_COUNTS
from tests.fixtures.spark import SparkLake
from tests.spark.staging import T0, expected_gold, expected_silver, job_args, make_events, write_batch

pytestmark = pytest.mark.slow
ARGS = {"run_id": "maint-1", "snapshot_retention_hours": "0", "retain_last": "1", "orphan_min_age_hours": "24"}
THREE_DAYS = 3 * 24 * 3600


@pytest.fixture
def lake(empty_spark_lake: SparkLake) -> SparkLake:
    return empty_spark_lake


def rows_by_pyiceberg(lake: SparkLake) -> dict[str, list[tuple]]:
    """Every table's rows at its current snapshot, read by the other engine (pyiceberg)."""
    return {spec.full_name: sorted((tuple(r.values()) for r in
                                    lake.catalog.load_table(spec.full_name).scan().to_arrow().to_pylist()), key=repr)
            for spec in ALL_TABLES}


def age_every_file(root: Path, seconds: int) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (time.time() - seconds, time.time() - seconds))


def snapshot_ids(spark: SparkSession, table: str) -> set[int]:
    return {row.snapshot_id for row in spark.sql(f"SELECT snapshot_id FROM {table}.snapshots").collect()}


def kpis(lake: SparkLake) -> dict:
    """gold.daily_kpis' click counts (the events staged here have no orders)."""
    rows = lake.catalog.load_table("gold.daily_kpis").scan().to_arrow().to_pylist()
    return {(r["event_date"], r["country"]): {name: r[name] for name, _, _ in GOLD_KPI_COUNTS} for r in rows}


def test_maintenance_keeps_every_row_and_compacts_expires_and_removes_orphans(
        spark: SparkSession, lake: SparkLake, tmp_path: Path) -> None:
    events = []
    for i in range(2):  # two runs: several small files per partition, several snapshots per table
        batch = make_events(range(i * 15, i * 15 + 15), seed=40 + i, start=T0, hours=30)
        events += batch
        write_batch(tmp_path, f"b{i}", batch, quarantined_by_reason={"BAD_JSON": 1})
        silver_merge.run(spark, job_args(tmp_path, f"run-{i}"))
        gold_build.run(spark, {"run_id": f"run-{i}"})
    runs = lake.catalog.load_table("ops.pipeline_runs")  # pyiceberg writes too, as record_run does
    runs.append(pa.Table.from_pylist([{"run_id": "run-2", "step": "run", "status": "SUCCEEDED",
                                       "started_at": T0}], schema=runs.schema().as_arrow()))
    before = rows_by_pyiceberg(lake)
    silver_files = spark.table("lake.silver.events.files").count()
    snapshots = {t: snapshot_ids(spark, t) for t in common.ALL_TABLES}
    current = {t: common.lineage(spark, t)[0].snapshot_id for t in common.ALL_TABLES}
    # Every file is three days old now, so only references tell live files from orphans; plus one
    # real orphan (a failed write's file) and one too young to judge (a write still running).
    age_every_file(lake.warehouse, THREE_DAYS)
    data = Path(lake.catalog.load_table("silver.events").location().removeprefix("file://")) / "data"
    orphan, young = data / "orphan-of-a-failed-write.parquet", data / "being-written.parquet"
    orphan.write_bytes(b"PAR1")
    young.write_bytes(b"PAR1")
    os.utime(orphan, (time.time() - THREE_DAYS,) * 2)

    result = maintenance.run(spark, ARGS)

    after = rows_by_pyiceberg(lake)
    [step] = [r for r in after["ops.pipeline_runs"] if r[:2] == ("maint-1", "maintenance")]
    after["ops.pipeline_runs"].remove(step)
    assert after == before
    assert spark.table("lake.silver.events").count() == len(expected_silver(events))
    silver = result["tables"][common.SILVER_EVENTS]
    assert silver["data_files_rewritten"] >= 2 and silver["data_files_added"] < silver["data_files_rewritten"]
    assert spark.table("lake.silver.events.files").count() < silver_files
    assert (silver["orphan_files_deleted"], orphan.exists(), young.exists()) == (1, False, True)
    # retention 0, retain_last 1: of the snapshots before, only the current one is left (then come
    # maintenance's own compaction and manifest rewrite, and pipeline_runs' step row)
    assert {t: snapshot_ids(spark, t) & ids for t, ids in snapshots.items()} == {t: {i} for t, i in current.items()}
    assert step[2] == "SUCCEEDED" and all(t in step[-1] for t in common.ALL_TABLES)

    # the pipeline carries on incrementally: gold's bookmark is still an ancestor of silver's snapshot
    late = make_events(range(100, 110), seed=49, start=T0, hours=2)
    write_batch(tmp_path, "b9", late)
    merged = silver_merge.run(spark, job_args(tmp_path, "run-9"))
    built = gold_build.run(spark, {"run_id": "run-9"})

    assert merged["clean"] == 10 and built["dates"] == sorted({e["event_time"].date().isoformat() for e in late})
    assert kpis(lake) == expected_gold(expected_silver(events + late))


@pytest.mark.parametrize(("change", "error"), [
    ({"orphan_min_age_hours": "1"}, r"--orphan_min_age_hours must be >= 24, got '1'"),
    ({"retain_last": "0"}, r"--retain_last must be >= 1, got '0'"),
    ({"retain_last": "1.5"}, r"--retain_last must be a whole number, got '1.5'"),
    ({"snapshot_retention_hours": "a week"}, r"--snapshot_retention_hours must be a number, got 'a week'"),
    ({"snapshot_retention_hours": "nan"}, r"--snapshot_retention_hours must be >= 0, got 'nan'"),
    ({"run_id": ""}, r"maintenance: missing job argument\(s\) --run_id"),
])
def test_bad_arguments_are_named(spark: SparkSession, change: dict, error: str) -> None:
    with pytest.raises(common.JobArgumentError, match=error):
        maintenance.run(spark, {**ARGS, **change})


def test_a_failure_is_recorded_naming_the_table_then_raised(
        spark: SparkSession, lake: SparkLake, monkeypatch: pytest.MonkeyPatch) -> None:
    real = maintenance.maintain

    def failing(spark: SparkSession, table: str, *args: object) -> dict[str, int]:
        if table == common.GOLD_DAILY_KPIS:
            raise RuntimeError("commit conflict\nstack trace line")
        return real(spark, table, *args)

    monkeypatch.setattr(maintenance, "maintain", failing)
    with pytest.raises(RuntimeError, match="commit conflict"):
        maintenance.run(spark, {**ARGS, "run_id": "maint-fail"})

    [row] = lake.catalog.load_table("ops.pipeline_runs").scan(row_filter=EqualTo("run_id", "maint-fail")).to_arrow() \
        .to_pylist()
    assert row["status"] == "FAILED" and row["step"] == "maintenance"
    *done, failure = row["message"].split("; ")
    # every table before the failing one was maintained, in order; it stopped there
    before = common.ALL_TABLES[:common.ALL_TABLES.index(common.GOLD_DAILY_KPIS)]
    assert [part.split(": ", 1)[0] for part in done] == list(before)
    assert done[0].startswith("lake.silver.events: expired_data_files_deleted")
    assert failure == "FAILED lake.gold.daily_kpis: RuntimeError: commit conflict"
