"""The data-quality checks' Athena engine over the real Athena API of the local cloud (moto stands in
for AWS and runs no SQL: each query's result rows are queued through moto's API, in order)."""
from __future__ import annotations

import json
import urllib.request
from datetime import datetime, timezone

import boto3
import pytest

from cdk_app import config
from lakehouse.cloud.local_cloud import LocalCloud
from lambdas.data_quality.checks import all_checks
from lambdas.data_quality.engines import AthenaEngine
from lambdas.data_quality.handler import run_checks

ENV = config.load("local")
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=timezone.utc)


def _queue_results(cloud: LocalCloud, rows: list[list[str | None]]) -> None:
    """One result per query: a header row, then one row of these values (None: SQL NULL, no VarCharValue)."""
    def row(values: list[str | None]) -> dict:
        return {"Data": [{} if v is None else {"VarCharValue": v} for v in values]}
    body = {"account_id": ENV.account, "region": ENV.region,
            "results": [{"rows": [row([f"_col{i}" for i in range(len(r))]), row(r)]} for r in rows]}
    request = urllib.request.Request(f"{cloud.endpoint}/moto-api/static/athena/query-results",
                                     data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request) as response:  # noqa: S310 - our own loopback server
        assert response.status == 201


@pytest.fixture
def workgroup(local_cloud: LocalCloud) -> str:
    local_cloud.reset()
    name = ENV.quality_workgroup_name
    boto3.client("athena").create_work_group(
        Name=name, Configuration={"ResultConfiguration": {"OutputLocation": "s3://results/data-quality/"}})
    return name


def test_every_check_runs_in_the_workgroup_and_its_row_is_read_as_numbers(local_cloud: LocalCloud,
                                                                         workgroup: str) -> None:
    checks = all_checks("run-7", ENV.quality, NOW)
    fresh = str(NOW.timestamp() - 120)  # the newest event two minutes old
    # volume: 70 events in the last day, 490 in the 7 before, the oldest 9 days old
    special = {"freshness": [fresh, "50"], "ledger_held": ["0", "0", "10"], "staging_merged": ["0", "0", "0", "0"],
               "volume": ["70", "490", str(NOW.timestamp() - 9 * 86400)]}
    rows = [special.get(c.name, ["0", "10"]) for c in checks]
    _queue_results(local_cloud, rows)
    athena = boto3.client("athena")
    sent: list[str] = []
    athena.meta.events.register("before-parameter-build.athena.StartQueryExecution",
                                lambda params, **_: sent.append((params["QueryString"], params["WorkGroup"])))

    results = run_checks(AthenaEngine(workgroup, client=athena, poll_seconds=0.01), "run-7", ENV.quality, NOW)

    assert sent == [(c.sql, workgroup) for c in checks]
    assert [r.passed for r in results] == [True] * len(checks)
    freshness = next(r for r in results if r.check_name == "freshness")
    assert freshness.observed == pytest.approx(120)
    assert [r.observed for r in results if r.check_name == "volume"] == [pytest.approx(1.0)] * 2


def test_a_null_is_read_as_none(local_cloud: LocalCloud, workgroup: str) -> None:
    _queue_results(local_cloud, [[None, "0"]])
    [freshness] = [c for c in all_checks("run-8", ENV.quality, NOW)
                   if (c.name, c.table) == ("freshness", "silver.events")]
    [row] = AthenaEngine(workgroup, poll_seconds=0.01).rows(freshness.sql)
    assert row == (None, 0.0)
    assert freshness.result(row).message == "silver.events is empty: no event has ever arrived"
