"""The replay workflow on the local cloud (a real moto server over HTTP, standing in for AWS; real cleaner,
real Spark jobs): a contract fix re-applied to records already cleaned, from the raw zone, exactly once."""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Callable

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cdk_app import config
from lakehouse.cloud.poller import KinesisPoller, MappingSettings
from lakehouse.cloud.provision import Provisioned
from lakehouse.lake.catalog import migrated_catalog
from lakehouse.lake.layout import LocalLake
from lakehouse.operations import workflows
from lakehouse.sources.generator import generate
from lakehouse.sources.producer import put_records
from lambdas.cleaner import clickstream, rules
from lambdas.contracts.countries import ISO_3166_ALPHA2
from tests.fixtures.batch_runs import WAIT_SECONDS, Gate, in_background, stand_in_jobs

ENV = config.load("local")
BROKEN_COUNTRY = "FR"


def table(lake: LocalLake, name: str) -> pa.Table:
    catalog, _ = migrated_catalog(lake.warehouse, lake.catalog_db)
    return catalog.load_table(name).scan().to_arrow()


def test_a_contract_fix_is_replayed_from_the_raw_zone_exactly_once(
        pipeline: tuple[LocalLake, Provisioned], monkeypatch: pytest.MonkeyPatch) -> None:
    lake, resources = pipeline
    generated = generate(1200, seed=31, defect_rate=0.05)
    started = datetime.now(timezone.utc)

    # The bug: a cleaner that takes FR for an unknown country (both its columnar and its per-record path).
    valid = frozenset(ISO_3166_ALPHA2 - {BROKEN_COUNTRY})
    with monkeypatch.context() as bug:
        bug.setattr(clickstream, "_COUNTRIES", pa.array(sorted(valid), pa.string()))
        bug.setattr(rules, "ISO_3166_ALPHA2", valid)
        put_records(resources.stream_name, generated.records, generated.partition_keys)
        settings = MappingSettings(batch_size=ENV.cleaner_batch_size, on_failure_queue_url=resources.dlq_url)
        assert KinesisPoller(resources.stream_name, resources.cleaner_function, settings).drain().failed_batches == 0
    first = workflows.run(resources.state_machine_arn, name="before-the-fix")
    assert first.status == "SUCCEEDED", first.cause

    truth = {e.event_id: e for e in generated.clean_events}
    french = {i for i, e in truth.items() if e.country == BROKEN_COUNTRY}
    silver = table(lake, "silver.events")
    assert set(silver["event_id"].to_pylist()) == truth.keys() - french and french
    quarantine = table(lake, "ops.quarantine")
    wrongly = Counter(quarantine["reason"].to_pylist())["BAD_COUNTRY"] - generated.counts.quarantined_by_reason.get(
        "BAD_COUNTRY", 0)
    assert wrongly >= len(french)  # each French event, and any re-sent copy of it in another batch

    # The fix is deployed (the patch is gone): replay the range the records arrived in.
    replay = workflows.run(resources.replay_state_machine_arn, {
        "from": (started - timedelta(minutes=1)).isoformat(), "to": datetime.now(timezone.utc).isoformat()},
        name="contract-fix")
    assert replay.status == "SUCCEEDED", replay.cause
    assert replay.output["totals"]["records"] == len(generated.records)
    assert replay.output["batch"]["status"] == "SUCCEEDED"

    silver = table(lake, "silver.events")
    ids = silver["event_id"].to_pylist()
    assert sorted(ids) == sorted(truth)  # every event once: the French ones now too, nothing twice
    by_id = {row["event_id"]: row for row in silver.select(["event_id", "country", "event_time"]).to_pylist()}
    assert all(by_id[i]["country"] == BROKEN_COUNTRY and by_id[i]["event_time"] == truth[i].event_time
               for i in french)
    quarantine = table(lake, "ops.quarantine")
    assert Counter(quarantine["reason"].to_pylist()) == Counter(generated.counts.quarantined_by_reason)
    runs = table(lake, "ops.pipeline_runs")
    child = runs.filter(pc.and_(pc.equal(runs["run_id"], "contract-fix-batch"), pc.equal(runs["step"], "run")))
    assert child["status"].to_pylist() == ["SUCCEEDED"]

    # Replaying again changes nothing: the re-cleaned batches are byte-identical, so no manifest is new.
    ledger_rows = table(lake, "ops.merged_batches").num_rows
    again = workflows.run(resources.replay_state_machine_arn, {
        "from": (started - timedelta(minutes=1)).isoformat(), "to": datetime.now(timezone.utc).isoformat()},
        name="contract-fix-again")
    assert again.status == "SUCCEEDED", again.cause
    assert table(lake, "ops.merged_batches").num_rows == ledger_rows
    assert sorted(table(lake, "silver.events")["event_id"].to_pylist()) == sorted(truth)

    # A range with no raw batches re-cleans nothing; its batch run finds nothing to merge.
    empty = workflows.run(resources.replay_state_machine_arn, {"from": "2020-01-01T00:00:00Z",
                                                               "to": "2020-01-02T00:00:00Z"}, name="empty-range")
    assert empty.status == "SUCCEEDED", empty.cause
    assert empty.output["totals"]["batches"] == 0 and table(lake, "ops.merged_batches").num_rows == ledger_rows


def test_a_backwards_range_fails_readably_before_anything_runs(pipeline: tuple[LocalLake, Provisioned]) -> None:
    _, resources = pipeline
    backwards = workflows.run(resources.replay_state_machine_arn, {"from": "2020-01-02T00:00:00Z",
                                                                   "to": "2020-01-01T00:00:00Z"}, name="backwards")
    assert backwards.status == "FAILED"
    assert backwards.error == "BadReplayRequest" and "'from' (2020-01-02T00:00:00+00:00) must be before 'to'" \
        in backwards.cause
    assert [s.name for s in backwards.steps] == ["ReCleanRawZone"]  # no batch run was started


def test_a_replay_whose_batch_run_is_skipped_fails_and_says_so(
        pipeline: tuple[LocalLake, Provisioned], gates: Callable[..., Gate]) -> None:
    """A batch run holds the run lock, so the replay's child run is skipped (a success, for a schedule tick):
    the replay fails and says why, rather than succeed having merged nothing."""
    _, resources = pipeline
    gate = gates("running")
    stand_in_jobs(silver=gate.job)
    running = in_background(resources.state_machine_arn, "running")
    assert gate.reached.wait(WAIT_SECONDS)
    replay = workflows.run(resources.replay_state_machine_arn, {"from": "2020-01-01T00:00:00Z",
                                                                "to": "2020-01-02T00:00:00Z"}, name="during-a-run")
    gate.open()

    assert replay.status == "FAILED" and replay.error == "BatchAlreadyRunning"
    assert "the next batch run merges" in replay.cause
    assert replay.output is None and [s.name for s in replay.steps][-2:] == ["BatchRan", "BatchAlreadyRunning"]
    assert running.result(WAIT_SECONDS).status == "SUCCEEDED" and gate.ran == ["running"]
