"""MSK-shaped events end to end through the handler (no Kafka broker can run here: the events are
built in Lambda's MSK shape by tests.fixtures.kinesis_events.msk_event), and malformed events."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lakehouse.sources.generator import Generated, generate
from lambdas.cleaner.events import EventError, parse_event
from lambdas.cleaner.handler import handler
from tests.fixtures.kinesis_events import ARRIVAL, kinesis_event, msk_event, raw_file_records
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def generated() -> Generated:
    return generate(2_000, seed=29, now=ARRIVAL)


def manifests(lake: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((lake / "staging" / "manifests").rglob("*.json"))]


def test_each_topic_partition_is_its_own_batch_named_by_its_offsets(lake: Path, generated: Generated) -> None:
    first, second = generated.records[:1_200], generated.records[1_200:]
    event = msk_event({("clickstream", 2): second, ("clickstream", 0): first}, first_offset=500)
    assert handler(event, None) == {"batchItemFailures": []}
    got = manifests(lake)
    assert [m["batch_id"] for m in got] == ["clickstream-0-500-1699", "clickstream-2-500-1299"]
    for manifest, sent, labels in zip(got, (first, second), (generated.labels[:1_200], generated.labels[1_200:])):
        assert manifest["stream"] == "msk" and manifest["received"] == len(sent)
        assert manifest["received"] == manifest["clean"] + manifest["quarantined"] + manifest["duplicates"]
        assert manifest["quarantined"] == sum(label not in ("clean", "duplicate") for label in labels)
        raw = raw_file_records(Path(manifest["files"]["raw"].removeprefix("file://")).read_bytes())
        assert [r["payload"] for r in raw] == sent
        partition = int(manifest["channel"].rsplit("-", 1)[1])
        assert raw[0] | {"payload": None, "data": None} == {
            "topic": "clickstream", "partition": partition, "offset": 500, "timestamp": "2026-11-27T10:15:00.000Z",
            "key_base64": base64.b64encode(b"k-0").decode(), "data": None, "payload": None}
        clean = pq.read_table(Path(manifest["files"]["clean"].removeprefix("file://")))
        assert clean.num_rows == manifest["clean"]
        assert clean.column("ingested_at").to_pylist()[0] >= ARRIVAL


def test_a_redelivered_msk_event_rewrites_the_same_bytes(lake: Path, generated: Generated) -> None:
    event = msk_event({("clickstream", 1): generated.records[:300]})
    assert handler(event, None) == {"batchItemFailures": []}
    first = {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()}
    assert handler(event, None) == {"batchItemFailures": []}
    assert {p: p.read_bytes() for p in lake.rglob("*") if p.is_file()} == first


def test_a_failed_write_fails_the_msk_invocation_so_lambda_retries_it(lake: Path, generated: Generated,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = lake / "blocked"
    blocker.write_text("a file where the staging zone's folder should be")
    monkeypatch.setenv("STAGING_URI", blocker.as_uri())
    event = msk_event({("clickstream", 0): generated.records[:50]})
    with pytest.raises(RuntimeError, match="writing batch clickstream-0-1000-1049 failed"):
        handler(event, None)
    blocker.unlink()
    assert handler(event, None) == {"batchItemFailures": []}


def test_tombstones_and_keyless_records_are_kept_and_quarantined(lake: Path) -> None:
    event = msk_event({("clickstream", 0): [b"{}", b"x"]}, keys=False)
    del event["records"]["clickstream-0"][0]["value"]  # a tombstone: no value at all
    assert handler(event, None) == {"batchItemFailures": []}
    (manifest,) = manifests(lake)
    assert (manifest["received"], manifest["quarantined_by_reason"]) == (2, {"MALFORMED_JSON": 2})
    raw = raw_file_records(Path(manifest["files"]["raw"].removeprefix("file://")).read_bytes())
    assert [r["payload"] for r in raw] == [b"", b"x"] and all("key_base64" not in r for r in raw)


@pytest.mark.parametrize("event, message", [
    ({"eventSource": "aws:kafka", "records": []}, "'records' object"),
    ({"eventSource": "aws:kafka", "records": {"t-0": [{"topic": "t", "partition": 0, "value": ""}]}}, "lacks"),
    ({"eventSource": "aws:kafka", "records": {"t-0": [{"topic": "t", "partition": 1, "offset": 1, "timestamp": 1}]}},
     "name other partitions"),
    ({"eventSource": "aws:kafka", "records": {"t-0": [{"topic": "t", "partition": 0, "offset": 7, "timestamp": 1,
                                                       "value": "%%%"}]}}, "record 7 is not base64"),
    ({"Records": "nope"}, "'Records' list"),
    ([], "expected a Lambda event object"),
])
def test_malformed_events_are_named(event: Any, message: str) -> None:
    with pytest.raises(EventError, match=message):
        parse_event(event)


def test_a_garbled_kinesis_record_is_named() -> None:
    event = kinesis_event([b"{}"])
    event["Records"][0]["kinesis"]["approximateArrivalTimestamp"] = "soon"
    with pytest.raises(EventError, match="a Kinesis record lacks or garbles"):
        parse_event(event)
