"""silver_merge finds batches through the manifest index, by the hour each manifest was written: it lists the
hours since the last run that merged the source, not every manifest ever written (docs/decisions/0114)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from glue_jobs import silver_merge
from glue_jobs.batches import index_folders, indexed_manifests
from glue_jobs.common import FAILED, SUCCEEDED, record_step
from lambdas.common import manifests
from lambdas.common.storage import write_bytes
from lambdas.contracts import clickstream, lake_layout
from tests.fixtures.spark import SparkLake
from tests.spark.staging import job_args, make_events, manifest_file, write_batch

pytestmark = pytest.mark.slow


def merged_batch_ids(lake: SparkLake) -> set[str]:
    return set(lake.catalog.load_table("ops.merged_batches").scan().to_arrow()["batch_id"].to_pylist())


def test_a_run_lists_the_index_hours_since_the_last_merge(
        spark: SparkSession, empty_spark_lake: SparkLake, tmp_path: Path) -> None:
    """Old manifests are never read again, whatever they hold; a batch written now is found in whichever ingest
    hour it lands (a replay writes into old ones); an entry whose manifest is not written yet waits for it."""
    now = datetime.now(timezone.utc)
    write_batch(tmp_path, "b1", make_events(range(0, 3), seed=1))
    # written three days ago and broken since: a run that read it would refuse the clickstream
    write_batch(tmp_path, "old", make_events(range(3, 6), seed=1), hour="2026-02-26-10",
                written_at=now - timedelta(days=3))
    result = silver_merge.run(spark, job_args(tmp_path, "run-1"))  # the first run lists the whole index
    assert result["refused"] == {} and merged_batch_ids(empty_spark_lake) == {"b1", "old"}
    manifest_file(tmp_path, "old", "2026-02-26-10").write_text("{not json")

    write_batch(tmp_path, "replayed", make_events(range(6, 9), seed=1), hour="2026-02-20-03")
    unfinished = "ingest_hour=2026-03-01-21/b2.json"  # its writer died between the entry and the manifest
    manifests.write_manifest(tmp_path.as_uri(), clickstream.SOURCE, unfinished, {}, put=_only_the_index)
    result = silver_merge.run(spark, job_args(tmp_path, "run-2"))
    assert result["refused"] == {}, "an old manifest outside the window was read"
    assert merged_batch_ids(empty_spark_lake) == {"b1", "old", "replayed"}

    write_batch(tmp_path, "b2", make_events(range(9, 12), seed=1))  # the writer's retry
    assert silver_merge.run(spark, job_args(tmp_path, "run-3"))["refused"] == {}
    assert merged_batch_ids(empty_spark_lake) == {"b1", "old", "replayed", "b2"}


def _only_the_index(uri: str, data: bytes) -> None:
    if f"/{lake_layout.manifest_index_prefix(clickstream.SOURCE)}" in uri:
        write_bytes(uri, data)


def test_the_window_is_the_hours_since_the_source_last_merged(spark: SparkSession, tmp_path: Path) -> None:
    """Entries of a simulated day, one per hour: a run whose source last merged five hours ago lists those
    hours and the one before, however many hours the index holds."""
    staging = tmp_path.as_uri()
    now = datetime.now(timezone.utc).replace(minute=30)
    for hours_ago in range(24):
        manifests.write_manifest(staging, clickstream.SOURCE, f"h{hours_ago:02d}.json", {},
                                 written_at=now - timedelta(hours=hours_ago))
    index = lake_layout.join(staging, lake_layout.manifest_index_prefix(clickstream.SOURCE))
    folders = index_folders(index, now - timedelta(hours=5), now)
    manifest_uri = lake_layout.join(staging, lake_layout.manifest_prefix(clickstream.SOURCE))
    listed = sorted(path.rsplit("/", 1)[1] for path in indexed_manifests(spark, manifest_uri, folders))
    assert listed == [f"h{hours_ago:02d}.json" for hours_ago in range(7)]
    assert len(indexed_manifests(spark, manifest_uri, [index])) == 24


def test_a_refused_source_keeps_its_window_open(spark: SparkSession, empty_spark_lake: SparkLake) -> None:
    """The window starts at the last run that merged the source: a run that refused it does not count, nor does
    a run that did not succeed."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    assert silver_merge.last_merged(spark, ["clickstream"]) == {}  # never merged: the whole index is listed
    for run_id, hours_ago, status in (("r1", 30, SUCCEEDED), ("r2", 20, SUCCEEDED), ("r3", 10, FAILED)):
        record_step(spark, {"run_id": run_id, "step": "silver_merge", "status": status,
                            "started_at": now - timedelta(hours=hours_ago), "finished_at": now})
    record_step(spark, {"run_id": "r2", "step": silver_merge.refused_step("orders"), "status": FAILED,
                        "started_at": now - timedelta(hours=20), "finished_at": now})
    assert silver_merge.last_merged(spark, ["clickstream", "orders", "products"]) == {
        "clickstream": now - timedelta(hours=20), "orders": now - timedelta(hours=30),
        "products": now - timedelta(hours=20)}
