"""`lakehouse smoke`: the first check of a deployed environment (docs/deploy.md), and of `lakehouse up` locally.

It puts a few valid clickstream events with fresh ids on the stream, waits until the cleaner has staged them
(new entries in the manifest index), runs the batch pipeline, then asks Athena (locally: its DuckDB stand-in,
through the same engines the quality checks use) for those ids in silver.events and checks the run's ledger in
ops.pipeline_runs. The first step that fails stops the test with what it saw and where to look.
"""
from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import boto3
from pyarrow import fs as pafs

from cdk_app import config
from cdk_app.config import EnvConfig
from lakehouse.lake.layout import LocalLake
from lakehouse.operations import workflows
from lakehouse.sources.generator import LABEL_CLEAN, generate
from lakehouse.sources.producer import put_records
from lambdas.common.manifests import manifest_uri
from lambdas.common.storage import read_bytes, resolve
from lambdas.contracts import clickstream, lake_layout
from lambdas.data_quality.engines import Engine

Progress = Callable[[str], None]


class SmokeFailed(RuntimeError):
    """A step of the smoke test found something wrong: the message says what, and where to look."""


@dataclass(frozen=True)
class Target:
    """One environment's deployed pipeline as the smoke test reaches it."""

    env: EnvConfig
    staging_uri: str
    state_machine_arn: str
    engine: Callable[[], Engine]  # made after the batch run, so that it sees the run's snapshots
    cleaner_logs: str  # where to look when nothing is staged


def aws_target(env: EnvConfig) -> Target:
    """The deployed `env` in its account and region (names as cdk_app/config.py gives them)."""
    from cdk_app.secure_bucket import bucket_name  # imports CDK: only needed for a deployed environment
    from lambdas.data_quality.engines import AthenaEngine

    # the staging listing goes through lambdas.common.storage, whose S3 filesystem takes its region from here
    os.environ["AWS_REGION"] = env.region
    return Target(
        env=env,
        staging_uri=f"s3://{bucket_name(env, 'staging')}",
        state_machine_arn=f"arn:aws:states:{env.region}:{env.account}:stateMachine:{env.state_machine_name}",
        engine=lambda: AthenaEngine(env.workgroup_name, client=boto3.client("athena", region_name=env.region)),
        cleaner_logs=f"the log group /aws/lambda/{env.cleaner_for(clickstream.SOURCE)} and its on-failure queue",
    )


def local_target(lake: LocalLake) -> Target:
    """The running `lakehouse up` of `lake` (raises NoLocalCloud when there is none)."""
    from lakehouse.analytics.quality_engine import StandInEngine
    from lakehouse.cloud.pipeline import connect_to_local_cloud
    from lakehouse.lake.catalog import local_catalog

    info = connect_to_local_cloud(lake)
    return Target(
        env=config.load("local"),
        staging_uri=lake.staging_uri,
        state_machine_arn=info.resources.state_machine_arn,
        engine=lambda: StandInEngine(local_catalog(lake.warehouse, lake.catalog_db)),
        cleaner_logs="the output of `lakehouse up`",
    )


def _index_entries(staging_uri: str, since: datetime) -> set[str]:
    """URIs of the clickstream's manifest-index entries in the hours from `since` to now."""
    index = lake_layout.join(staging_uri, lake_layout.manifest_index_prefix(clickstream.SOURCE))
    found: set[str] = set()
    hour, now = since.replace(minute=0, second=0, microsecond=0), datetime.now(timezone.utc)
    while hour <= now:
        folder = lake_layout.join(index, lake_layout.written_hour_folder(hour))
        fs, path = resolve(folder, make_parent=False)
        selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
        found |= {lake_layout.join(folder, info.path[len(path):])
                  for info in fs.get_file_info(selector) if info.type == pafs.FileType.File}
        hour += timedelta(hours=1)
    return found


def _staged_records(staging_uri: str, entries: set[str]) -> int:
    """Records received by the manifests these index entries name (an entry whose manifest is not there yet
    counts nothing)."""
    total = 0
    for entry in entries:
        relative = json.loads(read_bytes(entry))["manifest"]
        try:
            manifest = json.loads(read_bytes(manifest_uri(staging_uri, clickstream.SOURCE, relative)))
        except FileNotFoundError:
            continue
        total += manifest["received"]
    return total


def run(target: Target, events: int, wait_seconds: float, progress: Progress, poll_seconds: float = 2.0) -> None:
    """The smoke test; raises SmokeFailed at the first step that fails."""
    env = target.env
    started = datetime.now(timezone.utc)
    before = _index_entries(target.staging_uri, started)
    generated = generate(events, seed=secrets.randbits(32), defect_rate=0.0)  # fresh ids on every run
    expected = {e.event_id for e, label in zip(generated.events, generated.labels) if label == LABEL_CLEAN}
    put = put_records(env.stream_name, generated.records, generated.partition_keys,
                      client=boto3.client("kinesis", region_name=env.region))
    progress(f"put {put.records} events on {env.stream_name} ({len(expected)} distinct, valid)")

    deadline, staged = time.monotonic() + wait_seconds, 0
    while True:
        staged = _staged_records(target.staging_uri, _index_entries(target.staging_uri, started) - before)
        if staged >= put.records or time.monotonic() > deadline:
            break
        time.sleep(poll_seconds)
    if staged < put.records:
        raise SmokeFailed(f"the cleaner staged {staged} of {put.records} records in {wait_seconds:.0f} s: "
                          f"look at {target.cleaner_logs}")
    progress(f"the cleaner staged them ({staged} records in new batches)")

    run_id = f"smoke-{started:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    execution = workflows.run(target.state_machine_arn, name=run_id,
                              sfn=boto3.client("stepfunctions", region_name=env.region))
    if execution.outcome != "SUCCEEDED":
        raise SmokeFailed(f"batch run {run_id}: {execution.outcome} {execution.error or ''} {execution.cause or ''}"
                          .strip())
    progress(f"batch run {run_id} SUCCEEDED: " + ", ".join(s.name for s in execution.steps))

    engine = target.engine()
    try:
        ids = ", ".join(f"'{event_id}'" for event_id in sorted(expected))
        [(in_silver,)] = engine.rows(f"SELECT count(*) FROM silver.events WHERE event_id IN ({ids})")
        [(rows, unbalanced, run_succeeded)] = engine.rows(
            "SELECT count(*), "
            # a step without a ledger (gold_build) has received NULL
            "sum(CASE WHEN received IS NULL OR received = clean + quarantined + duplicates THEN 0 ELSE 1 END), "
            "max(CASE WHEN step = 'run' AND status = 'SUCCEEDED' THEN 1 ELSE 0 END) "
            f"FROM ops.pipeline_runs WHERE run_id = '{run_id}'")
    finally:
        engine.close()
    if in_silver != len(expected):
        raise SmokeFailed(f"silver.events holds {in_silver:.0f} of the {len(expected)} events (Athena, workgroup "
                          f"{env.workgroup_name}): look at ops.quarantine and the run's silver_merge row")
    progress(f"silver.events holds all {len(expected)} events")
    if not rows or not run_succeeded or unbalanced:
        raise SmokeFailed(f"ops.pipeline_runs for {run_id}: {rows:.0f} rows, 'run' row SUCCEEDED: "
                          f"{bool(run_succeeded)}, rows where received != clean + quarantined + duplicates: "
                          f"{unbalanced or 0:.0f}")
    progress(f"ops.pipeline_runs: {rows:.0f} rows for {run_id}, each received = clean + quarantined + duplicates")
