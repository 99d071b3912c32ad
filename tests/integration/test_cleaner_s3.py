"""The cleaner handler writing its zones to S3 through the same code path as on the local lake, and
reading its PII key from Secrets Manager or SSM.

moto stands in for AWS here: a real moto server on 127.0.0.1 (the session's local cloud), reached
over HTTP through AWS_ENDPOINT_URL with obviously fake credentials. What lands in the buckets is
read back with boto3, independently of the writer's pyarrow filesystem.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from lakehouse.sources.generator import Generated, generate
from lambdas.cleaner.handler import handler
from lambdas.cleaner.pii import LOCAL_KEY
from lambdas.contracts import clickstream as contract
from tests.fixtures.kinesis_events import ARRIVAL, kinesis_event, raw_file_records, sequence_number
from tests.index_entries import without_index_entries
from tests.pii_checks import assert_masked

pytestmark = pytest.mark.usefixtures("local_cloud")


@pytest.fixture(scope="module")
def generated() -> Generated:
    return generate(3_000, seed=31, now=ARRIVAL)


@pytest.fixture
def buckets(monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    s3 = boto3.client("s3")
    suffix = uuid.uuid4().hex[:8]
    raw, staging = f"lakehouse-test-raw-{suffix}", f"lakehouse-test-staging-{suffix}"
    for bucket in (raw, staging):
        s3.create_bucket(Bucket=bucket)
    monkeypatch.setenv("RAW_URI", f"s3://{raw}")
    monkeypatch.setenv("STAGING_URI", f"s3://{staging}")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LakehouseTest")
    for name in ("SOURCE", "PII_IP_MODE", "PII_KEY_SECRET_NAME", "PII_KEY_PARAMETER_NAME", "LAKEHOUSE_ENV"):
        monkeypatch.delenv(name, raising=False)
    return raw, staging


def objects(bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def test_the_handler_writes_every_zone_to_s3(buckets: tuple[str, str], generated: Generated) -> None:
    raw_bucket, staging_bucket = buckets
    assert handler(kinesis_event(generated.records, generated.partition_keys), None) == {"batchItemFailures": []}

    batch_id = f"shardId-000000000000-{sequence_number(0)}-{sequence_number(2_999)}"
    hour = "ingest_hour=2026-11-27-10"
    raw_objects, staging_objects = objects(raw_bucket), objects(staging_bucket)
    assert set(raw_objects) == {f"clickstream/{hour}/{batch_id}.ndjson.gz"}
    assert without_index_entries(staging_objects) == {
        f"clean/clickstream/{hour}/{batch_id}.parquet",
        f"quarantine/clickstream/{hour}/{batch_id}.parquet",
        f"manifests/clickstream/{hour}/{batch_id}.json",
        "positions/clickstream/shardId-000000000000.json",  # the shard's last staged batch (redeliveries)
    }  # no directory-marker objects
    assert json.loads(staging_objects["positions/clickstream/shardId-000000000000.json"]) == {
        "first_position": sequence_number(0), "last_position": sequence_number(2_999)}
    # a redelivery of the batch (its first half, after a timeout) is found on S3 too and writes nothing
    assert handler(kinesis_event(generated.records[:1_500]), None) == {"batchItemFailures": []}
    assert objects(staging_bucket) == staging_objects
    # and without its mark (the function died before writing it), by the manifest's name, which repairs the mark
    boto3.client("s3").delete_object(Bucket=staging_bucket, Key="positions/clickstream/shardId-000000000000.json")
    assert handler(kinesis_event(generated.records[:1_500]), None) == {"batchItemFailures": []}
    assert objects(staging_bucket) == staging_objects

    manifest = json.loads(staging_objects[f"manifests/clickstream/{hour}/{batch_id}.json"])
    truth = generated.counts
    assert (manifest["received"], manifest["clean"], manifest["quarantined"], manifest["duplicates"]) == \
        (3_000, truth.clean, truth.quarantined, truth.duplicates)
    assert manifest["quarantined_by_reason"] == dict(sorted(truth.quarantined_by_reason.items()))
    assert manifest["files"] == {
        "raw": f"s3://{raw_bucket}/clickstream/{hour}/{batch_id}.ndjson.gz",
        "clean": f"s3://{staging_bucket}/clean/clickstream/{hour}/{batch_id}.parquet",
        "quarantine": f"s3://{staging_bucket}/quarantine/clickstream/{hour}/{batch_id}.parquet",
    }

    raw = raw_file_records(raw_objects[split_uri(manifest["files"]["raw"])[1]])
    assert [r["payload"] for r in raw] == generated.records

    clean = pq.read_table(io.BytesIO(staging_objects[split_uri(manifest["files"]["clean"])[1]]))
    assert clean.num_rows == truth.clean
    assert clean.column("event_id").to_pylist() == [e.event_id for e in generated.clean_events]
    assert clean.column("user_id").to_pylist() == [e.user_id for e in generated.clean_events]
    assert clean.column("event_time_offset").to_pylist() == [e.event_time_offset for e in generated.clean_events]
    assert clean.column("ip").to_pylist() == [e.ip_masked for e in generated.clean_events]

    quarantine = pq.read_table(io.BytesIO(staging_objects[split_uri(manifest["files"]["quarantine"])[1]]))
    assert quarantine.num_rows == truth.quarantined
    assert Counter(quarantine.column("reason").to_pylist()) == Counter(truth.quarantined_by_reason)
    bad = [r for r, label in zip(generated.records, generated.labels) if label in contract.REASONS]
    payloads = quarantine.column("raw_payload").to_pylist()
    assert len(payloads) == len(bad)
    for original, payload in zip(bad, payloads):
        assert_masked(original, payload, LOCAL_KEY)


def test_a_retried_batch_overwrites_its_objects_with_the_same_bytes(buckets: tuple[str, str],
                                                                    generated: Generated) -> None:
    event = kinesis_event(generated.records[:500], first_sequence=123_456)
    assert handler(event, None) == {"batchItemFailures": []}
    first = {bucket: objects(bucket) for bucket in buckets}
    assert handler(event, None) == {"batchItemFailures": []}
    assert {bucket: objects(bucket) for bucket in buckets} == first


def test_a_missing_bucket_fails_the_batch_for_a_retry_that_then_succeeds(buckets: tuple[str, str],
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    raw_bucket, _ = buckets
    missing = f"lakehouse-test-not-yet-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("STAGING_URI", f"s3://{missing}")
    event: dict[str, Any] = kinesis_event([b'{"not": "valid"}', b"\xff"], first_sequence=42)
    assert handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "42"}]}
    assert len(objects(raw_bucket)) == 1, "raw is written first and kept"
    boto3.client("s3").create_bucket(Bucket=missing)
    assert handler(event, None) == {"batchItemFailures": []}
    manifest_key = next(k for k in objects(missing) if k.startswith("manifests/"))
    manifest = json.loads(objects(missing)[manifest_key])
    assert (manifest["received"], manifest["quarantined_by_reason"]) == (2, {"MALFORMED_JSON": 1, "MISSING_FIELD": 1})


def _clean_ips(staging_bucket: str) -> list[str | None]:
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=staging_bucket, Prefix="clean/")["Contents"]]
    return [ip for key in sorted(keys)
            for ip in pq.read_table(io.BytesIO(s3.get_object(Bucket=staging_bucket, Key=key)["Body"].read()))
            .column("ip").to_pylist()]


def _one_visit(sequence: int) -> dict[str, Any]:
    doc = {"event_id": f"e-{sequence}", "event_type": "page_view", "event_time": ARRIVAL.isoformat(),
           "user_id": "u-1", "session_id": "s-1", "country": "DE", "ip": "203.0.113.77"}
    return kinesis_event([json.dumps(doc).encode()], first_sequence=sequence)


@pytest.mark.parametrize("store", ["secretsmanager", "ssm"])
def test_the_pii_key_comes_from_its_store_and_is_read_once_per_container(
        buckets: tuple[str, str], monkeypatch: pytest.MonkeyPatch, store: str) -> None:
    name, key = f"/lakehouse-test/pii-key-{uuid.uuid4().hex[:8]}", f"test-only-{uuid.uuid4().hex}"
    if store == "secretsmanager":
        boto3.client("secretsmanager").create_secret(Name=name, SecretString=key)
        monkeypatch.setenv("PII_KEY_SECRET_NAME", name)
    else:
        boto3.client("ssm").put_parameter(Name=name, Value=key, Type="SecureString")
        monkeypatch.setenv("PII_KEY_PARAMETER_NAME", name)
    monkeypatch.setenv("LAKEHOUSE_ENV", "dev")  # not local: the fixed local key would be refused
    assert handler(_one_visit(1), None) == {"batchItemFailures": []}
    expected = "h1:" + hmac.new(key.encode(), b"203.0.113.77", hashlib.sha256).hexdigest()[:32]
    # A changed value is not seen by this container: the key was read once.
    if store == "secretsmanager":
        boto3.client("secretsmanager").put_secret_value(SecretId=name, SecretString="changed")
    else:
        boto3.client("ssm").put_parameter(Name=name, Value="changed", Type="SecureString", Overwrite=True)
    assert handler(_one_visit(2), None) == {"batchItemFailures": []}
    assert _clean_ips(buckets[1]) == [expected, expected]
