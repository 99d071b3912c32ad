"""The FX connector handler against the real fixture API over HTTP on 127.0.0.1, its key in a
Secrets Manager secret of the session's local cloud (moto stands in for AWS, nothing else is faked).

Staged rates are checked against the fixture's own rate function (`rates_for`), not against what the
connector read; every failure mode of the fixture is switched on in turn.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.sources.fx_fixture import (BAD_ENTRY_COUNTS, FIXTURE_API_KEY, REDIRECT_PATH, Fault, FxFixtureServer,
                                  rates_for)
from lambdas.api_connector.client import AuthenticationError, FetchError, FxApiClient
from lambdas.api_connector.handler import DaysFailed, handler
from lambdas.api_connector.retry import RetryPolicy
from lambdas.api_connector.secrets import SecretError
from lambdas.contracts import fx_rates as contract
from lambdas.contracts.fx_rates import Reason
from tests.fixtures.fx_fixture import CLIENT_TIMEOUT_SECONDS, put_api_key_secret
from tests.fixtures.local_cloud import register_function
from tests.index_entries import without_index_entries

DAY = date(2026, 10, 14)
PER_DAY = len(contract.CURRENCIES)
ATTEMPTS = 3
MAX_WAIT_SECONDS = 0.05  # the longest wait between two attempts


@pytest.fixture
def lake(tmp_path: Path, fx_api: FxFixtureServer, fx_secret: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The handler's environment: the fixture API, its secret, a local lake, a fast retry policy."""
    for key, value in connector_env(fx_api, fx_secret, (tmp_path / "raw").as_uri(),
                                    (tmp_path / "staging").as_uri()).items():
        monkeypatch.setenv(key, value)
    return tmp_path


def connector_env(api: FxFixtureServer, secret: str, raw_uri: str, staging_uri: str) -> dict[str, str]:
    return {
        "FX_API_BASE_URL": api.base_url, "FX_API_SECRET_ID": secret,
        "RAW_URI": raw_uri, "STAGING_URI": staging_uri, "POWERTOOLS_METRICS_NAMESPACE": "LakehouseTest",
        # shorter than the fixture's slow answers, and waits of milliseconds: a fast test
        "FX_API_TIMEOUT_SECONDS": str(CLIENT_TIMEOUT_SECONDS), "FX_API_MAX_ATTEMPTS": str(ATTEMPTS),
        "FX_API_BACKOFF_BASE_SECONDS": "0.01", "FX_API_BACKOFF_MAX_SECONDS": str(MAX_WAIT_SECONDS),
    }


def folder(day: date) -> str:
    return f"rate_date={day.isoformat()}"


def staged(lake: Path, day: date) -> dict[str, float]:
    table = pq.read_table(lake / "staging/clean/fx_rates" / folder(day) / "rates.parquet")
    assert set(table.column("rate_date").to_pylist()) == {day}
    return dict(zip(table.column("currency").to_pylist(), table.column("usd_per_unit").to_pylist()))


def manifest(lake: Path, day: date) -> dict[str, Any]:
    return json.loads((lake / "staging/manifests/fx_rates" / folder(day) / "manifest.json").read_text())


def quarantined(lake: Path, day: date) -> list[dict[str, Any]]:
    return pq.read_table(lake / "staging/quarantine/fx_rates" / folder(day) / "rejected.parquet").to_pylist()


def raw_bodies(lake: Path, day: date) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((lake / "raw/fx_rates" / folder(day)).iterdir())}


def balanced(m: dict[str, Any]) -> bool:
    return m["received"] == m["clean"] + m["quarantined"] + m["duplicates"] and \
        m["quarantined"] == sum(m["quarantined_by_reason"].values())


def metrics(capsys: pytest.CaptureFixture[str]) -> dict[tuple[str, str | None], float]:
    """EMF metrics printed by the handler, summed per (name, reason dimension)."""
    totals: Counter[tuple[str, str | None]] = Counter()
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values = blob[metric["Name"]]
                totals[(metric["Name"], blob.get("reason"))] += sum(values) if isinstance(values, list) else values
    return dict(totals)


def requested_pages(api: FxFixtureServer, day: date) -> list[int]:
    return [r.page for r in api.requests if r.day == day]


def test_a_day_is_staged_with_the_apis_rates(lake: Path, fx_api: FxFixtureServer,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    summary = handler({"date": DAY.isoformat()}, None)
    assert staged(lake, DAY) == rates_for(DAY)
    assert fx_api.page_count == 3 and requested_pages(fx_api, DAY) == [1, 2, 3]
    m = manifest(lake, DAY)
    assert (m["received"], m["clean"], m["quarantined"], m["duplicates"], m["pages"]) == (PER_DAY, PER_DAY, 0, 0, 3)
    assert m["complete"] and m["missing_currencies"] == [] and m["files"]["quarantine"] is None
    assert not (lake / "staging/quarantine").exists()
    # the raw zone keeps every page as the API sent it
    served = [json.loads(body) for body in raw_bodies(lake, DAY).values()]
    assert sorted(page["page"] for page in served) == [1, 2, 3]
    assert {e["currency"]: e["rate"] for page in served for e in page["rates"]} == rates_for(DAY)
    assert summary == {"days": [{k: m[k] for k in summary["days"][0]}], "failed": {}}
    counted = metrics(capsys)
    assert counted[("records_in", None)] == counted[("clean", None)] == PER_DAY
    assert counted[("days_staged", None)] == 1 and counted[("http_retries", None)] == 0


def test_a_backfill_range_stages_every_day(lake: Path, fx_api: FxFixtureServer) -> None:
    days = [date(2026, 2, 26) + timedelta(days=n) for n in range(5)]  # across the end of February
    summary = handler({"from": days[0].isoformat(), "to": days[-1].isoformat()}, None)
    assert [d["rate_date"] for d in summary["days"]] == [d.isoformat() for d in days]
    for day in days:
        assert staged(lake, day) == rates_for(day)
        assert balanced(manifest(lake, day))
    assert len({tuple(rates_for(day).values()) for day in days}) == 5  # the days really differ


def test_the_default_event_fetches_yesterday_utc(lake: Path, fx_api: FxFixtureServer) -> None:
    before = datetime.now(timezone.utc).date() - timedelta(days=1)
    handler({}, None)
    after = datetime.now(timezone.utc).date() - timedelta(days=1)
    # the day before the handler's "today", whichever side of midnight UTC the call fell on
    [fetched] = [day for day in sorted({before, after}) if (lake / "staging/clean/fx_rates" / folder(day)).exists()]
    assert staged(lake, fetched) == rates_for(fetched)
    handler({"scheduled_time": "2026-10-15T00:15:00Z"}, None)
    assert staged(lake, DAY) == rates_for(DAY)


def test_a_rerun_changes_no_byte_and_no_file(lake: Path, fx_api: FxFixtureServer) -> None:
    fx_api.inject(Fault.BAD_ENTRIES, dates=[DAY], pages=[1])  # so a quarantine file is re-run too
    event = {"from": (DAY - timedelta(days=1)).isoformat(), "to": DAY.isoformat()}
    handler(event, None)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in lake.rglob("*") if p.is_file()}
    assert len(before) == 2 * 6 + 1  # two days of 3 raw pages + clean + manifest + its index entry; one quarantine
    handler(event, None)
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in lake.rglob("*") if p.is_file()}
    assert after == before


def test_a_timeout_is_retried_and_the_day_staged(lake: Path, fx_api: FxFixtureServer,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    fx_api.inject(Fault.TIMEOUT, pages=[2], times=1)
    handler({"date": DAY.isoformat()}, None)
    assert staged(lake, DAY) == rates_for(DAY)
    assert requested_pages(fx_api, DAY) == [1, 2, 2, 3]
    assert metrics(capsys)[("http_retries", None)] == 1


@pytest.mark.parametrize("fault", [Fault.TIMEOUT, Fault.SERVER_ERROR, Fault.RATE_LIMITED])
def test_a_day_that_keeps_failing_is_left_alone_and_the_invocation_fails_naming_it(
        lake: Path, fx_api: FxFixtureServer, fault: Fault, capsys: pytest.CaptureFixture[str]) -> None:
    bad, good = DAY, DAY - timedelta(days=1)
    fx_api.inject(fault, dates=[bad], pages=[2])
    with pytest.raises(DaysFailed) as failed:
        handler({"from": good.isoformat(), "to": bad.isoformat()}, None)
    message = str(failed.value)
    assert "1 of 2 day(s) failed" in message and f"{bad.isoformat()}: fetch failed" in message
    assert f"gave up after {ATTEMPTS} attempts" in message
    assert requested_pages(fx_api, bad) == [1] + [2] * ATTEMPTS  # bounded: no attempt beyond the policy
    assert staged(lake, good) == rates_for(good)
    assert not list(lake.rglob(f"*{folder(bad)}*"))  # nothing of the failed day: the next run redoes it
    counted = metrics(capsys)
    assert counted[("fetch_failures", None)] == 1 and counted[("days_staged", None)] == 1
    assert counted[("http_retries", None)] == ATTEMPTS - 1


@pytest.mark.parametrize("fault", [Fault.SERVER_ERROR, Fault.RATE_LIMITED])
def test_transient_errors_are_retried_until_the_api_recovers(lake: Path, fx_api: FxFixtureServer,
                                                            fault: Fault) -> None:
    fx_api.retry_after = "0.02"
    fx_api.inject(fault, times=ATTEMPTS - 1)
    handler({"date": DAY.isoformat()}, None)
    assert staged(lake, DAY) == rates_for(DAY)
    status = {Fault.SERVER_ERROR: 503, Fault.RATE_LIMITED: 429}[fault]
    assert [r.status for r in fx_api.requests] == [status] * (ATTEMPTS - 1) + [200] * 3


@pytest.mark.parametrize("fault, reason", [
    (Fault.NOT_JSON, Reason.MALFORMED_BODY),
    (Fault.SCHEMA_MISMATCH, Reason.SCHEMA_MISMATCH),
    (Fault.WRONG_DATE, Reason.WRONG_DATE),
    (Fault.WRONG_QUOTE, Reason.WRONG_QUOTE_CURRENCY),
    (Fault.PAGINATION_LOOP, Reason.BAD_PAGINATION),
])
def test_a_malformed_page_is_quarantined_with_its_raw_body_and_the_day_is_not_staged(
        lake: Path, fx_api: FxFixtureServer, fault: Fault, reason: str, capsys: pytest.CaptureFixture[str]) -> None:
    fx_api.inject(fault, dates=[DAY], pages=[2])
    summary = handler({"date": DAY.isoformat()}, None)  # bad data is not an error: no retry would fix it
    assert summary["failed"] == {}
    m = manifest(lake, DAY)
    page_one = fx_api.page_size
    assert not m["complete"] and m["files"]["clean"] is None and balanced(m)
    assert m["quarantined_by_reason"] == {reason: 1, Reason.INCOMPLETE_DAY: page_one}
    assert not (lake / "staging/clean/fx_rates" / folder(DAY)).exists()
    (body_row,) = [row for row in quarantined(lake, DAY) if row["reason"] == reason]
    assert body_row["page"] == 2 and "page 2" in body_row["message"]
    page_two = [body for name, body in raw_bodies(lake, DAY).items() if name.startswith("page-0002-")]
    assert page_two == [body_row["raw_payload"]]  # the body exactly as the API sent it
    counted = metrics(capsys)
    assert counted[("days_incomplete", None)] == 1 and counted[("quarantined", reason)] == 1


@pytest.mark.parametrize("fault", [Fault.MISSING_DAY, Fault.EMPTY_DAY])
def test_a_missing_day_is_quarantined_and_counted_then_filled_by_a_rerun(
        lake: Path, fx_api: FxFixtureServer, fault: Fault, capsys: pytest.CaptureFixture[str]) -> None:
    fx_api.inject(fault, dates=[DAY])
    handler({"date": DAY.isoformat()}, None)
    m = manifest(lake, DAY)
    assert (m["received"], m["clean"], m["quarantined"], m["complete"]) == (1, 0, 1, False)
    (row,) = quarantined(lake, DAY)
    assert row["reason"] == Reason.MISSING_DAY and DAY.isoformat() in row["message"]
    assert row["raw_payload"] == next(iter(raw_bodies(lake, DAY).values()))
    assert metrics(capsys)[("missing_days", None)] == 1

    fx_api.reset()  # the provider publishes the day
    handler({"date": DAY.isoformat()}, None)
    assert staged(lake, DAY) == rates_for(DAY)
    m = manifest(lake, DAY)
    assert (m["received"], m["clean"], m["quarantined"], m["complete"]) == (PER_DAY, PER_DAY, 0, True)
    assert not (lake / "staging/quarantine/fx_rates" / folder(DAY) / "rejected.parquet").exists()


def test_bad_entries_cost_only_themselves(lake: Path, fx_api: FxFixtureServer) -> None:
    fx_api.inject(Fault.BAD_ENTRIES, pages=[1, 3])
    handler({"date": DAY.isoformat()}, None)
    m = manifest(lake, DAY)
    bad = 2 * sum(BAD_ENTRY_COUNTS.values())
    assert (m["received"], m["clean"], m["quarantined"], m["complete"]) == (PER_DAY + bad, PER_DAY, bad, True)
    assert m["quarantined_by_reason"] == {reason: 2 * n for reason, n in BAD_ENTRY_COUNTS.items()}
    assert staged(lake, DAY) == rates_for(DAY)


def test_a_repeated_rate_is_a_duplicate_and_a_contradicting_one_is_quarantined(lake: Path,
                                                                              fx_api: FxFixtureServer) -> None:
    fx_api.inject(Fault.DUPLICATES, pages=[2])
    handler({"date": DAY.isoformat()}, None)
    m = manifest(lake, DAY)
    truth = rates_for(DAY)
    conflicted = sorted(truth)[fx_api.page_size + 1]  # the second currency of page 2
    assert (m["received"], m["clean"], m["quarantined"], m["duplicates"]) == (PER_DAY + 2, PER_DAY - 1, 2, 1)
    assert m["quarantined_by_reason"] == {Reason.CONFLICTING_RATE: 2}
    assert m["missing_currencies"] == [conflicted]
    assert staged(lake, DAY) == {c: r for c, r in truth.items() if c != conflicted}


class LambdaContext:
    """The one method of Lambda's context object the handler uses."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms, self.aws_request_id = remaining_ms, "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_days_that_cannot_finish_in_the_time_left_are_not_started(lake: Path, fx_api: FxFixtureServer) -> None:
    event = {"from": (DAY - timedelta(days=1)).isoformat(), "to": DAY.isoformat()}
    # the worst case of one request with the test's policy: 3 timeouts and the 2 longest waits between them
    worst_ms = (ATTEMPTS * CLIENT_TIMEOUT_SECONDS + (ATTEMPTS - 1) * MAX_WAIT_SECONDS) * 1000
    with pytest.raises(DaysFailed, match="2 of 2 day.*not started: too little time left"):
        handler(event, LambdaContext(remaining_ms=int(worst_ms) - 100))
    assert fx_api.requests == [] and not lake.joinpath("staging").exists()
    assert len(handler(event, LambdaContext(remaining_ms=int(worst_ms) + 100))["days"]) == 2


def test_a_rotated_key_is_reread_and_a_refused_one_fails_clearly(lake: Path, fx_api: FxFixtureServer,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    secret = put_api_key_secret("local-only-wrong-key")
    monkeypatch.setenv("FX_API_SECRET_ID", secret)
    with pytest.raises(AuthenticationError, match="refuses the key"):
        handler({"date": DAY.isoformat()}, None)
    assert [r.status for r in fx_api.requests] == [401, 401]  # re-read once, then stopped
    assert not (lake / "staging").exists()

    # the operator stores the right key; the connector's cached wrong one is refused, then re-read
    boto3.client("secretsmanager").put_secret_value(SecretId=secret, SecretString=json.dumps({"api_key": FIXTURE_API_KEY}))
    handler({"date": DAY.isoformat()}, None)
    assert staged(lake, DAY) == rates_for(DAY)


@pytest.mark.parametrize("value, fragment", [
    (None, "can't be read"),
    ("not json", "is not JSON"),
    (json.dumps({"key": "x"}), "has no non-empty string 'api_key'"),
])
def test_a_missing_or_misshapen_secret_is_named(lake: Path, monkeypatch: pytest.MonkeyPatch,
                                                value: str | None, fragment: str) -> None:
    name = f"fx-api-key-{uuid.uuid4().hex[:8]}"
    if value is not None:
        boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)
    monkeypatch.setenv("FX_API_SECRET_ID", name)
    with pytest.raises(SecretError, match=fragment) as error:
        handler({"date": DAY.isoformat()}, None)
    assert name in str(error.value)


def test_the_function_runs_on_s3_through_a_lambda_invoke(fx_api: FxFixtureServer, fx_secret: str) -> None:
    """As deployed: invoked through the Lambda API with its environment, writing S3 (moto) buckets."""
    s3 = boto3.client("s3")
    suffix = uuid.uuid4().hex[:8]
    raw, staging = f"lakehouse-test-raw-{suffix}", f"lakehouse-test-staging-{suffix}"
    for bucket in (raw, staging):
        s3.create_bucket(Bucket=bucket)
    function = register_function(handler, connector_env(fx_api, fx_secret, f"s3://{raw}", f"s3://{staging}"))
    fx_api.inject(Fault.MISSING_DAY, dates=[DAY])
    event = {"from": (DAY - timedelta(days=1)).isoformat(), "to": DAY.isoformat()}

    def invoke() -> dict[str, Any]:
        response = boto3.client("lambda").invoke(FunctionName=function, Payload=json.dumps(event).encode())
        assert "FunctionError" not in response
        return json.loads(response["Payload"].read())

    def objects() -> dict[str, tuple[str, Any]]:
        found = {}
        for bucket in (raw, staging):
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                found[f"{bucket}/{item['Key']}"] = (item["ETag"], item["LastModified"])
        return found

    summary = invoke()
    assert [(d["rate_date"], d["complete"]) for d in summary["days"]] == \
        [((DAY - timedelta(days=1)).isoformat(), True), (DAY.isoformat(), False)]
    first = objects()
    good = folder(DAY - timedelta(days=1))
    assert without_index_entries(key.split("/", 1)[1] for key in first if key.startswith(staging)) == {
        f"clean/fx_rates/{good}/rates.parquet", f"manifests/fx_rates/{good}/manifest.json",
        f"quarantine/fx_rates/{folder(DAY)}/rejected.parquet", f"manifests/fx_rates/{folder(DAY)}/manifest.json",
    }  # no directory markers, no temporary objects
    body = s3.get_object(Bucket=staging, Key=f"clean/fx_rates/{good}/rates.parquet")["Body"].read()
    table = pq.read_table(pa.BufferReader(body))
    assert dict(zip(table.column("currency").to_pylist(), table.column("usd_per_unit").to_pylist())) == \
        rates_for(DAY - timedelta(days=1))
    assert invoke() == summary and objects() == first  # a re-run rewrites no object


def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(lake: Path, fx_api: FxFixtureServer) -> None:
    fx_api.inject(Fault.REDIRECT, dates=[DAY], pages=[1])
    with pytest.raises(DaysFailed, match="HTTP 302.*not retried"):
        handler({"date": DAY.isoformat()}, None)
    assert [(r.path, r.status) for r in fx_api.requests] == [("/v1/rates", 302)]
    assert REDIRECT_PATH not in {r.path for r in fx_api.requests}


def test_the_client_waits_at_least_what_retry_after_asks(fx_api: FxFixtureServer) -> None:
    fx_api.retry_after = "0.04"
    fx_api.inject(Fault.RATE_LIMITED, times=2)
    waits: list[float] = []
    client = FxApiClient(fx_api.base_url, lambda refresh: FIXTURE_API_KEY, timeout=5.0, sleep=waits.append,
                         policy=RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.05))
    assert client.get_rates_page(DAY, 1).status == 200
    assert len(waits) == 2 and all(0.04 <= wait <= 0.05 for wait in waits) and client.retries == 2
    fx_api.inject(Fault.RATE_LIMITED)
    with pytest.raises(FetchError, match="HTTP 429.*gave up after 3 attempts"):
        client.get_rates_page(DAY, 1)


def test_a_failed_write_fails_the_day_naming_it(lake: Path, fx_api: FxFixtureServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STAGING_URI", f"s3://lakehouse-test-missing-{uuid.uuid4().hex[:8]}")  # no such bucket
    with pytest.raises(DaysFailed, match=f"{DAY.isoformat()}: write failed: OSError"):
        handler({"date": DAY.isoformat()}, None)
    assert len(raw_bodies(lake, DAY)) == 3  # raw first: what the API said is kept


def test_the_fixture_api_refuses_strangers_and_serves_stable_pages(fx_api: FxFixtureServer) -> None:
    url = f"{fx_api.base_url}/rates?date={DAY.isoformat()}&page=1"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=5)  # noqa: S310 - loopback fixture
    assert refused.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {FIXTURE_API_KEY}"})
    bodies = [urllib.request.urlopen(request, timeout=5).read() for _ in range(2)]  # noqa: S310
    assert bodies[0] == bodies[1]
    page = json.loads(bodies[0])
    assert (page["date"], page["quote_currency"], page["page"], page["next_page"]) == (DAY.isoformat(), "USD", 1, 2)
    assert [e["currency"] for e in page["rates"]] == sorted(contract.CURRENCIES)[:fx_api.page_size]
    assert all(rate > 0 for rate in rates_for(DAY).values()) and set(rates_for(DAY)) == set(contract.CURRENCIES)
