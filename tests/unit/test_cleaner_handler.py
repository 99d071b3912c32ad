"""The cleaner handler on the local lake (file:// zones): conservation, file contents, retries, failures."""
from __future__ import annotations

import gzip
import io
import json
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lakehouse.sources.generator import LABEL_CLEAN, Generated, generate
from lambdas.cleaner.handler import ConfigurationError, handler, logger
from lambdas.cleaner.pii import LOCAL_KEY
from lambdas.cleaner.writer import CLEAN_SCHEMA, QUARANTINE_SCHEMA
from lambdas.contracts.clickstream import MAX_AGE_DAYS, MAX_FUTURE_SECONDS, Reason
from tests.fixtures.kinesis_events import ARRIVAL, kinesis_event, msk_event, raw_file_records, sequence_number
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)
from tests.pii_checks import assert_masked

OK = {"batchItemFailures": []}


@pytest.fixture(scope="module")
def generated() -> Generated:
    # The handler judges event times against the batch's arrival (kinesis_event's ARRIVAL).
    return generate(10_000, seed=23, now=ARRIVAL)


@pytest.fixture(scope="module")
def big_event(generated: Generated) -> dict[str, Any]:
    return kinesis_event(generated.records, generated.partition_keys)


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def only_manifest(lake: Path) -> dict[str, Any]:
    (path,) = (lake / "staging" / "manifests").rglob("*.json")
    return json.loads(path.read_text())


def local(uri: str) -> Path:
    assert uri.startswith("file://")
    return Path(uri[len("file://"):])


def test_a_10k_batch_is_conserved_and_written_as_the_contract_says(lake: Path, generated: Generated,
                                                                   big_event: dict[str, Any]) -> None:
    assert handler(big_event, None) == OK
    manifest = only_manifest(lake)
    truth = generated.counts
    batch_id = f"shardId-000000000000-{sequence_number(0)}-{sequence_number(9_999)}"
    assert manifest == {
        "source": "clickstream", "contract_version": 2, "batch_id": batch_id, "ingest_hour": "2026-11-27-10",
        "stream": "kinesis", "channel": "shardId-000000000000", "first_position": sequence_number(0),
        "last_position": sequence_number(9_999), "payload_bytes": sum(map(len, generated.records)),
        "received": 10_000, "clean": truth.clean, "quarantined": truth.quarantined,
        "quarantined_by_reason": dict(sorted(truth.quarantined_by_reason.items())),
        "duplicates": truth.duplicates, "files": manifest["files"],
    }
    assert manifest["received"] == manifest["clean"] + manifest["quarantined"] + manifest["duplicates"]
    files = manifest["files"]
    assert files["raw"] == f"{(lake / 'raw').as_uri()}/clickstream/ingest_hour=2026-11-27-10/{batch_id}.ndjson.gz"
    assert files["clean"].endswith(f"/staging/clean/clickstream/ingest_hour=2026-11-27-10/{batch_id}.parquet")
    assert files["quarantine"].endswith(f"/staging/quarantine/clickstream/ingest_hour=2026-11-27-10/{batch_id}.parquet")

    # Raw: every received record, byte for byte, in order, with its Kinesis coordinates.
    raw = raw_file_records(local(files["raw"]).read_bytes())
    assert [r["payload"] for r in raw] == generated.records
    assert [r["sequence_number"] for r in raw] == [sequence_number(i) for i in range(10_000)]
    assert [r["partition_key"] for r in raw] == generated.partition_keys
    assert any("data_base64" in r for r in raw), "the generator's non-UTF-8 records are kept as base64"

    # Clean staging: the generator's distinct clean events, in arrival order, with the contract's schema.
    table = pq.read_table(local(files["clean"]))
    assert table.schema.equals(CLEAN_SCHEMA)
    clean_events = generated.clean_events
    assert table.column("event_id").to_pylist() == [e.event_id for e in clean_events]
    assert table.column("event_time").to_pylist() == [e.event_time for e in clean_events]
    assert table.column("country").to_pylist() == [e.country for e in clean_events]
    assert table.column("ip").to_pylist() == [e.ip_masked for e in clean_events]
    assert table.column("page_url").to_pylist() == [e.page_url_redacted for e in clean_events]
    clean_positions = [i for i, label in enumerate(generated.labels) if label == LABEL_CLEAN]
    arrivals = {r["sequence_number"]: r["approximate_arrival"] for r in raw}
    assert [t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            for t in table.column("ingested_at").to_pylist()] == [arrivals[sequence_number(i)] for i in clean_positions]

    # Quarantine: each bad record's exact bytes, reason, and where it came from.
    quarantine = pq.read_table(local(files["quarantine"]))
    assert quarantine.schema.equals(QUARANTINE_SCHEMA)
    bad = [i for i, label in enumerate(generated.labels) if label in Reason.ALL]
    payloads = quarantine.column("raw_payload").to_pylist()
    assert len(payloads) == len(bad)
    for i, payload in zip(bad, payloads):  # as received, but with no personal data: that is in the raw zone
        assert_masked(generated.records[i], payload, LOCAL_KEY)
    assert quarantine.column("reason").to_pylist() == [generated.labels[i] for i in bad]
    assert quarantine.column("sequence_number").to_pylist() == [sequence_number(i) for i in bad]
    assert set(quarantine.column("source").to_pylist()) == {"clickstream"}
    assert all(quarantine.column("message").to_pylist())


def test_a_retried_batch_rewrites_the_same_files_with_the_same_bytes(lake: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                      big_event: dict[str, Any],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    assert handler(big_event, None) == OK
    first = files_of(lake)
    # raw, clean, quarantine, manifest, its index entry, and the shard's mark of its last staged batch
    assert len(first) == 6
    assert handler(big_event, None) == OK  # a redelivery of a staged batch writes nothing
    assert files_of(lake) == first
    # A fresh lake gets the same names and bytes too: nothing depends on the wall clock or the host.
    elsewhere = tmp_path_factory.mktemp("other-lake")
    monkeypatch.setenv("RAW_URI", (elsewhere / "raw").as_uri())
    monkeypatch.setenv("STAGING_URI", (elsewhere / "staging").as_uri())
    assert handler(big_event, None) == OK
    assert {name: data for name, data in files_of(elsewhere).items() if not name.endswith(".json")} == \
        {name: data for name, data in first.items() if not name.endswith(".json")}


def test_a_failed_write_asks_lambda_to_retry_the_batch_and_the_retry_completes(lake: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    records = generate(200, seed=4, now=ARRIVAL).records
    event = kinesis_event(records, first_sequence=7_000)
    blocker = lake / "staging" / "clean"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the clean staging folder should be")
    assert handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "7000"}]}
    assert list((lake / "raw").rglob("*.ndjson.gz")), "raw is written first and kept"
    assert not list((lake / "staging").rglob("*.json")), "no manifest, no mark: the batch is not staged"
    blocker.unlink()
    assert handler(event, None) == OK
    assert only_manifest(lake)["received"] == 200


def test_an_unreadable_staging_zone_asks_lambda_to_retry_without_writing(lake: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether records are staged already is read first (the channel's mark): unreadable, nothing is written."""
    blocker = lake / "blocked-staging"
    blocker.write_text("a file where the staging zone's folder should be")
    monkeypatch.setenv("STAGING_URI", blocker.as_uri())
    event = kinesis_event(generate(20, seed=4, now=ARRIVAL).records, first_sequence=7_000)
    assert handler(event, None) == {"batchItemFailures": [{"itemIdentifier": "7000"}]}
    assert not (lake / "raw").exists()


def test_in_batch_duplicates_keep_the_first_and_are_counted(lake: Path) -> None:
    now = ARRIVAL
    base = {"event_type": "page_view", "event_time": now.isoformat(), "user_id": "u1", "session_id": "s1",
            "country": "fr"}
    first = json.dumps({**base, "event_id": "e1", "page_url": "https://x.example/a"}).encode()
    other = json.dumps({**base, "event_id": "e2"}).encode()
    same_id = json.dumps({**base, "event_id": "e1", "page_url": "https://x.example/b"}).encode()
    assert handler(kinesis_event([first, other, first, same_id, b"{oops"]), None) == OK
    manifest = only_manifest(lake)
    assert (manifest["received"], manifest["clean"], manifest["duplicates"], manifest["quarantined"]) == (5, 2, 2, 1)
    table = pq.read_table(local(manifest["files"]["clean"]))
    assert table.column("page_url").to_pylist() == ["https://x.example/a", None]


def test_a_batch_without_bad_records_writes_no_quarantine_file(lake: Path) -> None:
    doc = {"event_id": "e1", "event_type": "checkout_started", "event_time": ARRIVAL.isoformat(),
           "user_id": "u1", "session_id": "s1", "country": "NL"}
    assert handler(kinesis_event([json.dumps(doc).encode()]), None) == OK
    manifest = only_manifest(lake)
    assert manifest["files"]["quarantine"] is None and manifest["quarantined_by_reason"] == {}
    assert not (lake / "staging" / "quarantine").exists()


def test_metrics_are_emitted_as_emf(lake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = ARRIVAL.isoformat()
    good = json.dumps({"event_id": "e1", "event_type": "page_view", "event_time": now, "user_id": "u",
                       "session_id": "s", "country": "US"}).encode()
    assert handler(kinesis_event([good, good, b"[]", b"{", b"{}"]), None) == OK
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    totals = [b for b in blobs if "records_in" in b]
    assert len(totals) == 1
    assert {k: totals[0][k] for k in ("records_in", "clean", "quarantined", "duplicates")} == {
        "records_in": [5.0], "clean": [1.0], "quarantined": [3.0], "duplicates": [1.0]}
    assert totals[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LakehouseTest"
    assert totals[0]["payload_bytes"] == [float(2 * len(good) + 5)]
    assert totals[0]["batch_latency"][0] >= 0 and totals[0]["source"] == "clickstream"
    arrived = ARRIVAL.timestamp() * 1000
    assert totals[0]["ingest_lag"][0] >= datetime.now(timezone.utc).timestamp() * 1000 - arrived - 60_000
    per_reason = {b["reason"]: b["quarantined"] for b in blobs if "reason" in b}
    assert per_reason == {"MALFORMED_JSON": [1.0], "MISSING_FIELD": [1.0], "NOT_AN_OBJECT": [1.0]}
    assert all(b["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "source", "reason"]]
               for b in blobs if "reason" in b)


def test_an_empty_event_writes_nothing(lake: Path) -> None:
    assert handler({"Records": []}, None) == OK
    assert files_of(lake) == {}


def test_a_batch_from_two_shards_is_refused(lake: Path) -> None:
    event = kinesis_event([b"{}", b"{}"])
    event["Records"][1]["eventID"] = "shardId-000000000001:" + event["Records"][1]["kinesis"]["sequenceNumber"]
    with pytest.raises(ValueError, match="must come from one shard"):
        handler(event, None)


@pytest.mark.parametrize("unset", ["RAW_URI", "STAGING_URI", "POWERTOOLS_METRICS_NAMESPACE"])
def test_missing_configuration_is_named(lake: Path, monkeypatch: pytest.MonkeyPatch, unset: str) -> None:
    monkeypatch.delenv(unset)
    with pytest.raises(ConfigurationError, match=unset):
        handler(kinesis_event([b"{}"]), None)


def test_an_unknown_source_is_refused(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE", "payments")
    with pytest.raises(ConfigurationError, match="SOURCE='payments' is not a contract; one of clickstream, orders"):
        handler(kinesis_event([b"{}"]), None)


def test_an_unknown_ip_mode_is_refused(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PII_IP_MODE", "drop")
    with pytest.raises(ConfigurationError, match="PII_IP_MODE='drop'"):
        handler(kinesis_event([b"{}"]), None)


def test_the_local_pii_key_is_refused_outside_the_local_environment(lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_ENV", "prod")
    with pytest.raises(ConfigurationError, match="LAKEHOUSE_ENV='prod' needs PII_KEY_SECRET_NAME"):
        handler(kinesis_event([b"{}"]), None)
    monkeypatch.setenv("PII_IP_MODE", "truncate")  # truncation needs no key
    assert handler(kinesis_event([b"{}"]), None) == OK


def test_arrival_times_decide_the_ingest_hour(lake: Path) -> None:
    assert ARRIVAL.hour == 10
    later = datetime(2026, 11, 27, 23, 59, 59, 999000, tzinfo=timezone.utc)
    assert handler(kinesis_event([b"not json"], arrival=later), None) == OK
    assert only_manifest(lake)["ingest_hour"] == "2026-11-27-23"
    # raw, quarantine, manifest and the manifest's index entry (under the hour it was written, then its path)
    assert Counter(p.parent.name for p in lake.rglob("*") if p.is_file() and "positions" not in p.parts) == \
        {"ingest_hour=2026-11-27-23": 4}


def test_the_batch_log_line_carries_the_correlation_and_request_ids(lake: Path) -> None:
    class Context:
        aws_request_id = "req-123"

    # Powertools' Logger keeps the stream it saw at import: read its lines from the handler itself.
    stream = io.StringIO()
    previous = logger.registered_handler.setStream(stream)
    try:
        assert handler(kinesis_event([b"{}"], first_sequence=77), Context()) == OK
    finally:
        logger.registered_handler.setStream(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if '"batch cleaned"' in line]
    assert len(lines) == 1
    assert {k: lines[0][k] for k in ("correlation_id", "request_id", "source", "received", "quarantined")} == {
        "correlation_id": "shardId-000000000000-77-77", "request_id": "req-123", "source": "clickstream",
        "received": 1, "quarantined": 1}


def test_tracing_is_off_locally_and_the_handler_runs_under_its_decorators(lake: Path) -> None:
    from lambdas.cleaner import handler as module
    assert module.tracer.disabled  # no X-Ray outside Lambda: the decorators pass through
    assert handler(kinesis_event([b"{}"]), None) == OK


def test_raw_lines_escape_line_breakers_and_keep_every_byte(lake: Path) -> None:
    payloads = ['{"note": "a\u2028b\u2029c\u0085d"}'.encode(), b"\xff not utf-8", b'{"plain": 1}']
    assert handler(kinesis_event(payloads, ["key\u2028", "k2", "k3"]), None) == OK
    (raw_path,) = (lake / "raw").rglob("*.ndjson.gz")
    text = gzip.decompress(raw_path.read_bytes())
    assert text.isascii() and len(text.decode("ascii").splitlines()) == 3  # str.splitlines splits on U+2028 too
    records = raw_file_records(raw_path.read_bytes())
    assert [r["payload"] for r in records] == payloads
    assert [("data" in r, "data_base64" in r) for r in records] == [(True, False), (False, True), (True, False)]
    assert records[0]["partition_key"] == "key\u2028"


def _click(event_id: str, event_time: datetime) -> bytes:
    return json.dumps({"event_id": event_id, "event_type": "page_view", "event_time": event_time.isoformat(),
                       "user_id": "u1", "session_id": "s1", "country": "DE"}).encode()


def test_timestamps_are_judged_against_the_batch_arrival_not_the_clock(lake: Path) -> None:
    """The clock has moved on since ARRIVAL (a backlog, a retry, a replay): the verdicts stay those at arrival."""
    limit = timedelta(seconds=MAX_FUTURE_SECONDS)
    inside = _click("inside", ARRIVAL + limit - timedelta(seconds=30))
    beyond = _click("beyond", ARRIVAL + limit + timedelta(minutes=1))
    too_old = _click("too-old", ARRIVAL - timedelta(days=MAX_AGE_DAYS, minutes=1))
    assert handler(kinesis_event([inside, beyond, too_old]), None) == OK
    manifest = only_manifest(lake)
    assert (manifest["clean"], manifest["quarantined_by_reason"]) == (1, {"BAD_TIMESTAMP": 2})
    assert pq.read_table(local(manifest["files"]["clean"])).column("event_id").to_pylist() == ["inside"]


def test_producer_timestamps_in_the_future_do_not_widen_the_window(lake: Path) -> None:
    """A Kafka record's timestamp may be the producer's (CreateTime): a batch stamped an hour ahead is judged
    against the clock, so its events from 'the future' are still refused."""
    ahead = datetime.now(timezone.utc) + timedelta(hours=1)
    record = _click("from-the-future", ahead)
    assert handler(msk_event({("clickstream", 0): [record]}, arrival=ahead), None) == OK
    assert only_manifest(lake)["quarantined_by_reason"] == {"BAD_TIMESTAMP": 1}


# --- redeliveries: a batch Lambda delivers again after it was staged never overlaps it (issue 11) ---------

def staged_positions(lake: Path) -> list[tuple[int, int, int]]:
    """(first, last, received) of every manifest, by first position."""
    manifests = [json.loads(p.read_text()) for p in (lake / "staging" / "manifests").rglob("*.json")]
    return sorted((int(m["first_position"]), int(m["last_position"]), m["received"]) for m in manifests)


def quarantined_positions(lake: Path) -> list[str]:
    return [s for p in (lake / "staging" / "quarantine").rglob("*.parquet")
            for s in pq.read_table(p).column("sequence_number").to_pylist()]


def assert_each_record_staged_once(lake: Path, records: int, first: int = 0) -> None:
    ranges = staged_positions(lake)
    covered = [int(sequence_number(i)) for i in range(first, first + records)]
    assert sum(received for _, _, received in ranges) == records, ranges
    assert all(a_last < b_first for (_, a_last, _), (b_first, _, _) in zip(ranges, ranges[1:])), ranges
    assert ranges[0][0] == covered[0] and ranges[-1][1] == covered[-1]
    quarantined = quarantined_positions(lake)
    assert len(quarantined) == len(set(quarantined))


@pytest.fixture(scope="module")
def hundred() -> list[bytes]:
    return generate(100, seed=41, defect_rate=0.2, now=ARRIVAL).records


def test_a_bisected_redelivery_of_a_staged_batch_writes_nothing(lake: Path, hundred: list[bytes]) -> None:
    """The invocation failed after the manifest (a timeout): BisectBatchOnFunctionError sends the halves."""
    assert handler(kinesis_event(hundred), None) == OK
    assert handler(kinesis_event(hundred[:50]), None) == OK
    assert handler(kinesis_event(hundred[50:], first_sequence=int(sequence_number(50))), None) == OK
    assert staged_positions(lake) == [(int(sequence_number(0)), int(sequence_number(99)), 100)]
    assert_each_record_staged_once(lake, 100)


def test_a_grown_redelivery_stages_only_the_records_after_the_staged_batch(lake: Path, hundred: list[bytes]) -> None:
    assert handler(kinesis_event(hundred[:60]), None) == OK
    assert handler(kinesis_event(hundred), None) == OK
    assert [(first, received) for first, _, received in staged_positions(lake)] == \
        [(int(sequence_number(0)), 60), (int(sequence_number(60)), 40)]
    assert_each_record_staged_once(lake, 100)


def test_a_crash_between_the_manifest_and_the_mark_is_found_by_the_manifest(
        lake: Path, hundred: list[bytes], monkeypatch: pytest.MonkeyPatch) -> None:
    """The mark is one batch behind: the staged batch starting at the redelivery's first record is found by its
    manifest's name, its records dropped and the mark repaired, so the second half is dropped too."""
    import lambdas.cleaner.handler as cleaner_handler

    with monkeypatch.context() as patch:
        def crash(*args: object) -> None:
            raise OSError("the function died before the mark was written")
        patch.setattr(cleaner_handler, "write_mark", crash)
        assert handler(kinesis_event(hundred), None) == {"batchItemFailures": [{"itemIdentifier": sequence_number(0)}]}
    assert len(staged_positions(lake)) == 1, "the manifest was written before the crash"
    assert handler(kinesis_event(hundred[:50]), None) == OK
    assert handler(kinesis_event(hundred[50:], first_sequence=int(sequence_number(50))), None) == OK
    assert_each_record_staged_once(lake, 100)


def test_records_before_the_last_staged_batch_are_cleaned_as_usual(lake: Path, hundred: list[bytes]) -> None:
    """A batch the mapping gave up on, replayed from its dead-letter queue after later batches were staged (or a
    topic whose offsets restarted) is no redelivery of the last batch: it is staged."""
    assert handler(kinesis_event(hundred[50:], first_sequence=int(sequence_number(50))), None) == OK
    assert handler(kinesis_event(hundred[:50]), None) == OK
    assert_each_record_staged_once(lake, 100)


def test_an_msk_redelivery_of_a_staged_partition_batch_writes_nothing(lake: Path, hundred: list[bytes]) -> None:
    assert handler(msk_event({("clickstream", 0): hundred}), None) == OK
    assert handler(msk_event({("clickstream", 0): hundred[:30]}), None) == OK
    manifests = [json.loads(p.read_text()) for p in (lake / "staging" / "manifests").rglob("*.json")]
    assert [(m["first_position"], m["last_position"], m["received"]) for m in manifests] == [("1000", "1099", 100)]
