"""The replay function on the local lake (file:// zones): raw files read back as their deliveries, a time
range re-cleaned into the same staging files, resumption when time runs short, and bad requests."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from isal import igzip

from lakehouse.sources.generator import generate, generate_orders
from lambdas.cleaner.events import Delivery, parse_event
from lambdas.cleaner.handler import handler as cleaner
from lambdas.cleaner.raw import RawFileError, read_delivery
from lambdas.cleaner.writer import _gzip, raw_lines
from lambdas.replay.handler import BadReplayRequest, handler, raw_files
from tests.fixtures.kinesis_events import kinesis_event, msk_event
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)

# The cleaner judges timestamps against the wall clock: batches arrive in the last hours, never at a fixed date.
START = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=4)


def hour(n: int) -> datetime:
    return START + timedelta(hours=n)


def folder(n: int) -> str:
    return f"ingest_hour={hour(n):%Y-%m-%d-%H}"


FIELDS = ("stream", "channel", "positions", "keys", "arrivals_ms", "data_base64", "payloads")
payloads = st.lists(st.one_of(st.binary(max_size=300), st.text(max_size=100).map(str.encode),
                              st.sampled_from([b"", b"\xc2\x85\xe2\x80\xa8\n\r", b'{"a": "\\n"}'])),
                    min_size=1, max_size=30)


def as_tuple(delivery: Delivery) -> tuple[Any, ...]:
    return tuple(getattr(delivery, name) for name in FIELDS)


@settings(max_examples=60, deadline=None)
@given(payloads, st.booleans(), st.integers(0, 2**40))
def test_a_raw_file_reads_back_as_the_delivery_it_was_written_from(data: list[bytes], kafka: bool, ms: int) -> None:
    arrival = datetime(2026, 3, 1, tzinfo=timezone.utc) + timedelta(milliseconds=ms % 10**10)
    event = (msk_event({("orders", 3): data}, arrival=arrival) if kafka
             else kinesis_event(data, [f"k{i}\u2028" for i in range(len(data))], arrival=arrival))
    [delivery] = parse_event(event)
    back = read_delivery("raw.ndjson.gz", _gzip(raw_lines(delivery)))
    assert as_tuple(back) == as_tuple(delivery) and back.batch_id == delivery.batch_id


@pytest.mark.parametrize(("data", "error"), [
    (b"not gzip", "x.gz: not gzip"),
    (_gzip(b'{"shard_id": "s", "sequence_number": "1", "data": "x"}\n'), "x.gz: an envelope lacks or garbles 'partition_key'"),
    (_gzip(b"[1]\n"), "x.gz line 1: not a JSON envelope"),
    (_gzip(b"{oops\n"), "x.gz line 1: not a JSON envelope"),
    (_gzip(b""), "x.gz: no records"),
    (_gzip(b'{"shard_id": "a", "sequence_number": "1", "partition_key": "k", "approximate_arrival": '
           b'"2026-03-01T00:00:00.000Z", "data": "x"}\n{"shard_id": "b", "sequence_number": "2", '
           b'"partition_key": "k", "approximate_arrival": "2026-03-01T00:00:00.000Z", "data": "y"}\n'),
     "x.gz: an envelope lacks or garbles records of several channels"),
], ids=["not-gzip", "missing-key", "not-object", "not-json", "empty", "two-shards"])
def test_a_broken_raw_file_is_named_with_its_fault(data: bytes, error: str) -> None:
    with pytest.raises(RawFileError, match=error.replace("(", r"\(").replace(")", r"\)")):
        read_delivery("x.gz", data)


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def clean_hours(lake: Path, monkeypatch: pytest.MonkeyPatch, hours: int) -> None:
    """One clickstream and one orders batch per hour from START, through the cleaner."""
    for n in range(hours):
        arrival = hour(n)
        clicks = generate(300, seed=n, now=arrival)
        orders = generate_orders(100, seed=n, now=arrival)
        for source, records in (("clickstream", clicks.records), ("orders", orders.records)):
            monkeypatch.setenv("SOURCE", source)
            assert cleaner(kinesis_event(records, arrival=arrival, first_sequence=10**20 * (n + 1)),
                           None) == {"batchItemFailures": []}
    monkeypatch.delenv("SOURCE")


def test_a_range_is_re_cleaned_into_the_same_staging_files_and_raw_is_left_alone(
        lake: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clean_hours(lake, monkeypatch, 3)
    raw, staging = files_under(lake / "raw"), files_under(lake / "staging")
    in_range = {name: data for name, data in staging.items() if folder(1) in name}
    assert len(in_range) >= 4  # clickstream and orders: clean, quarantine and manifest files
    for path in (lake / "staging").rglob("*"):
        if path.is_file():
            path.unlink()

    reply = handler({"from": f"{hour(1):%Y-%m-%dT%H:%M:%S}Z", "to": hour(2).isoformat()}, None)

    assert files_under(lake / "staging") == in_range  # byte for byte: an unchanged contract changes nothing
    assert files_under(lake / "raw") == raw
    assert reply["resume_after"] is None and reply["totals"]["batches"] == 2
    assert reply["totals"]["records"] == 400 and reply["totals"]["unreadable"] == 0
    totals = reply["totals"]
    assert totals["records"] == totals["clean"] + totals["quarantined"] + totals["duplicates"]


def test_a_replay_that_runs_short_of_time_resumes_where_it_stopped(lake: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    clean_hours(lake, monkeypatch, 2)
    files = raw_files((lake / "raw").as_uri(), hour(0), hour(2))
    assert len(files) == 4
    calls = iter([600_000, 1_000] * 10)  # time for one batch per invocation
    context = SimpleNamespace(get_remaining_time_in_millis=lambda: next(calls))
    state: dict[str, Any] = {"from": hour(0).isoformat(), "to": hour(2).isoformat()}
    seen = []
    while True:
        state = handler(state, context)
        seen.append(state["resume_after"])
        if state["resume_after"] is None:
            break
    assert seen == [*files[:-1], None]  # the last call takes the last batch and finishes
    assert state["totals"]["batches"] == 4 and state["totals"]["records"] == 800


def test_an_unreadable_raw_file_is_counted_and_named_and_the_rest_replayed(lake: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    clean_hours(lake, monkeypatch, 1)
    broken = lake / "raw" / "clickstream" / folder(0) / "broken.ndjson.gz"
    broken.write_bytes(igzip.compress(b"{not json\n"))
    reply = handler({"from": hour(0).isoformat(), "to": hour(1).isoformat()}, None)
    assert reply["totals"]["batches"] == 2 and reply["totals"]["unreadable"] == 1
    [message] = reply["totals"]["unreadable_files"]
    assert message.startswith(f"file://{broken} line 1: not a JSON envelope")


@pytest.mark.parametrize(("event", "error"), [
    ({"to": "2026-11-27T11:00:00Z"}, "'from' must be an ISO-8601 time, got None"),
    ({"from": "yesterday", "to": "2026-11-27T11:00:00Z"}, "'from' must be an ISO-8601 time, got 'yesterday'"),
    ({"from": "2026-11-27T10:00:00", "to": "2026-11-27T11:00:00Z"}, "'from' needs a UTC offset"),
    ({"from": "2026-11-27T11:00:00Z", "to": "2026-11-27T11:00:00Z"}, "'from' .* must be before 'to'"),
    ([], "expected an object with 'from' and 'to', got list"),
])
def test_a_bad_request_is_refused_naming_the_field(lake: Path, event: Any, error: str) -> None:
    with pytest.raises(BadReplayRequest, match=error):
        handler(event, None)
