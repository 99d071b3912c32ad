"""`lakehouse smoke`'s pieces that need no running pipeline: the names it reaches in AWS, and how it counts
what the cleaner staged since it started (tests/e2e/test_cli_workflows.py runs it whole against `lakehouse up`)."""
from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cdk_app import config
from lakehouse.operations import smoke
from lambdas.common.manifests import index_entry_uri, write_manifest
from lambdas.contracts import clickstream, orders


def test_aws_target_names_the_deployed_resources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # a shell's other region: the staging listing must not use it
    env = config.load("dev", overrides={"account": "111122223333"})
    target = smoke.aws_target(env)
    assert os.environ["AWS_REGION"] == env.region
    assert target.state_machine_arn == "arn:aws:states:eu-west-1:111122223333:stateMachine:lakehouse-dev-batch-pipeline"
    assert target.staging_uri == "s3://lakehouse-dev-staging-111122223333-eu-west-1"
    assert "/aws/lambda/lakehouse-dev-cleaner" in target.cleaner_logs


def test_staged_records_counts_new_entries_whose_manifests_exist(tmp_path: Path) -> None:
    staging = (tmp_path / "staging").as_uri()
    now = datetime.now(timezone.utc)
    write_manifest(staging, clickstream.SOURCE, "ingest_hour=x/old.json", {"received": 7},
                   written_at=now - timedelta(hours=3))  # before the window
    write_manifest(staging, clickstream.SOURCE, "ingest_hour=x/earlier.json", {"received": 5})
    started = now - timedelta(hours=1)
    before = smoke._index_entries(staging, started)
    assert len(before) == 1

    write_manifest(staging, clickstream.SOURCE, "ingest_hour=x/a.json", {"received": 3})
    write_manifest(staging, clickstream.SOURCE, "ingest_hour=y/b.json", {"received": 4}, written_at=started)
    write_manifest(staging, orders.SOURCE, "ingest_hour=x/o.json", {"received": 100})  # another source
    # an entry whose manifest is not written yet (its writer is between the two writes) counts nothing
    dangling = index_entry_uri(staging, clickstream.SOURCE, "ingest_hour=x/c.json", now)
    Path(dangling.removeprefix("file://")).write_text('{"manifest": "ingest_hour=x/c.json"}')

    new = smoke._index_entries(staging, started) - before
    assert len(new) == 3
    assert smoke._staged_records(staging, new) == 3 + 4
