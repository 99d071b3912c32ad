"""The columnar path and the per-record rules agree: every record the columnar path accepts, the
reference accepts with the same values; every record it leaves out, the reference rejects.

The columnar path (Arrow, RE2, numpy date arithmetic) and the reference (Python regex, datetime)
are separate implementations of the same contract, so agreement on tricky generated records is a
real check of both.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from lakehouse.sources.generator import generate
from lambdas.cleaner.batch import SOURCES, clean_batch
from lambdas.cleaner.clickstream import clean_columns, clean_record
from lambdas.cleaner.events import parse_event
from lambdas.cleaner.pii import LOCAL_KEY, IpMasker, masked_text
from lambdas.cleaner.rules import Rejected
from lambdas.contracts import clickstream as contract
from tests.fixtures.kinesis_events import kinesis_event

NOW = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=timezone.utc)
HASH = IpMasker("hash", LOCAL_KEY)
TRUNCATE = IpMasker("truncate", b"")


def _rows(columns: dict[str, pa.Array]) -> list[dict[str, Any]]:
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*(columns[n].to_pylist() for n in names))]


def check_agreement(records: list[bytes], masker: IpMasker = HASH) -> list[int]:
    """Assert agreement on `records`; return the indices the columnar path accepted."""
    # What the batch hands the columnar path: records within the size limit that are UTF-8.
    candidates = [r if len(r) <= contract.MAX_RECORD_BYTES and _utf8(r) else None for r in records]
    accepted, columns = clean_columns(candidates, now=NOW, masker=masker)
    rows = dict(zip(accepted.tolist(), _rows(columns))) if len(accepted) else {}
    for i, raw in enumerate(records):
        reference = clean_record(raw, now=NOW, masker=masker)
        if i in rows:
            assert not isinstance(reference, Rejected), (raw, reference)
            assert rows[i] == reference, raw
        else:
            assert isinstance(reference, Rejected), ("the columnar path left out a clean record", raw, reference)
    return list(rows)


def _utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_SPACES = st.sampled_from(["", " ", "\t", " \n ", "\x0b\x0c", "\xa0", "\u3000", "\r"])


def _padded(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(_SPACES, values, _SPACES).map("".join)


_moments = st.datetimes(min_value=datetime(2025, 11, 20), max_value=datetime(2026, 11, 28))
_offsets = st.one_of(
    st.sampled_from(["Z", "z", "+00:00", "-00:00", "+05:30", "+05:45", "-12:30", "+14:00", "+18:00", "-18:00",
                     "+18:01", "+01:60", "+24:00", "+0100", "+01", " +01:00", ""]),
    st.tuples(st.sampled_from("+-"), st.integers(0, 19), st.integers(0, 61)).map(lambda t: f"{t[0]}{t[1]:02d}:{t[2]:02d}"),
)
_fractions = st.one_of(st.just(""), st.integers(0, 9).flatmap(
    lambda n: st.text("0123456789", min_size=n, max_size=n).map(lambda d: "." + d)))
_stamps = st.one_of(
    st.tuples(_moments, st.sampled_from("Tt "), _fractions, _offsets).map(
        lambda t: t[0].strftime(f"%Y-%m-%d{t[1]}%H:%M:%S") + t[2] + t[3]),
    st.tuples(st.integers(0, 2100), st.integers(0, 13), st.integers(0, 32), st.integers(0, 25), st.integers(0, 61),
              st.integers(0, 61), _offsets).map(lambda t: "%04d-%02d-%02dT%02d:%02d:%02d%s" % t),
    st.sampled_from(["2024-02-29T12:00:00Z", "2025-02-29T12:00:00Z", "2026-11-27T12:15:00.123456Z",
                     "2026-11-27T12:15:00.123457Z", "2025-11-27T12:00:00.123456Z", "2025-11-27T12:00:00.123455Z",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "２０２６-11-27T12:00:00Z"]),
    st.text(max_size=30),
)
_ips = st.one_of(
    st.ip_addresses().map(str), st.ip_addresses(v=6).map(lambda a: str(a).upper()),
    st.sampled_from(["01.2.3.4", "1.2.3", "256.1.1.1", "fe80::1%eth0", "::ffff:1.2.3.4", "1.2.3.4/24", "", " "]),
    st.text(max_size=15),
)
_urls = st.one_of(
    st.builds(lambda p, e: f"https://s.example.com/{p}?u={e}", st.text(max_size=10),
              st.sampled_from(["a@b.co", "jo.doe%40example.org", "x@y", "@handle", "a@b.cc@d.ee", "%40"])),
    st.text(max_size=40),
)
_values: dict[str, st.SearchStrategy[Any]] = {
    "event_id": _padded(st.text(max_size=12)),
    "event_type": _padded(st.sampled_from([*contract.EVENT_TYPES, "PAGE_VIEW", "purchase", ""])),
    "event_time": _padded(_stamps),
    "user_id": _padded(st.text(max_size=8)),
    "session_id": _padded(st.text(min_size=1, max_size=8)),
    "page_url": _urls,
    "product_id": st.text(max_size=8),
    "user_agent": st.text(max_size=20),
    "ip": _padded(_ips),
    "country": _padded(st.sampled_from(["DE", "de", "Us", "XX", "UK", "ıs", "ß", "DEU", "D", "gb", "Nl"])),
}
_other = st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.booleans(), st.lists(st.integers(), max_size=2))


@st.composite
def records(draw: st.DrawFn) -> bytes:
    doc: dict[str, Any] = {}
    for name, values in _values.items():
        choice = draw(st.integers(0, 19))
        if choice == 0:
            continue  # absent
        doc[name] = draw(_other) if choice == 1 else draw(values)
    return json.dumps(doc, ensure_ascii=draw(st.booleans())).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(records(), min_size=1, max_size=30), st.booleans())
@example([json.dumps({"event_id": "e", "event_type": "page_view", "event_time": "2026-11-27T12:15:00.123456Z",
                      "user_id": "u", "session_id": "s", "country": "de"}).encode()], False)
def test_columnar_and_per_record_rules_agree(batch: list[bytes], truncate: bool) -> None:
    check_agreement(batch, TRUNCATE if truncate else HASH)


def test_they_agree_on_every_generated_record_and_the_columnar_path_does_the_work() -> None:
    generated = generate(5_000, seed=19, now=NOW)
    accepted = check_agreement(generated.records)
    # Every record the reference accepts was accepted by the columnar path itself, not the fallback.
    assert len(accepted) == generated.counts.clean + generated.counts.duplicates


def test_the_batch_decides_each_record_as_the_reference_does() -> None:
    generated = generate(3_000, seed=21, now=NOW)
    (delivery,) = parse_event(kinesis_event(generated.records))
    batch = clean_batch(delivery, SOURCES["clickstream"], now=NOW, masker=HASH)
    expected = [clean_record(raw, now=NOW, masker=HASH) for raw in generated.records]
    # the batch masks what a message quotes (personal data in a bad field); the reference rules do not
    assert [(i, r) for i, r in batch.quarantined] == [(i, Rejected(r.reason, masked_text(r.message, HASH)))
                                                      for i, r in enumerate(expected) if isinstance(r, Rejected)]
    clean = [r for r in expected if not isinstance(r, Rejected)]
    seen: set[str] = set()
    firsts = []  # the first of each event_id, in delivery order
    for record in clean:
        if record["event_id"] not in seen:
            seen.add(record["event_id"])
            firsts.append(record)
    assert batch.clean.drop_columns(["ingested_at"]).to_pylist() == firsts
    assert batch.duplicates == len(clean) - len(firsts)


def test_the_batch_matches_the_generators_ground_truth() -> None:
    """Independent of both implementations: the generator labels each record it made (clean, a duplicate, or
    the contract reason it breaks) and keeps the event behind each clean one."""
    generated = generate(3_000, seed=23, now=NOW)
    (delivery,) = parse_event(kinesis_event(generated.records))
    batch = clean_batch(delivery, SOURCES["clickstream"], now=NOW, masker=HASH)

    assert [(i, r.reason) for i, r in batch.quarantined] == [
        (i, label) for i, label in enumerate(generated.labels) if label not in ("clean", "duplicate")]
    assert batch.duplicates == generated.labels.count("duplicate")
    expected = [(e.event_id, e.event_type, e.event_time, e.event_time_offset, e.user_id, e.session_id,
                 e.page_url_redacted, e.product_id, e.user_agent, e.country)
                for e, label in zip(generated.events, generated.labels) if label == "clean"]
    assert [(r["event_id"], r["event_type"], r["event_time"], r["event_time_offset"], r["user_id"], r["session_id"],
             r["page_url"], r["product_id"], r["user_agent"], r["country"]) for r in batch.clean.to_pylist()] == expected


def test_the_time_window_edges_agree_to_the_microsecond() -> None:
    edges = [NOW + timedelta(seconds=contract.MAX_FUTURE_SECONDS), NOW - timedelta(days=contract.MAX_AGE_DAYS)]
    stamps = [(edge + timedelta(microseconds=d)).isoformat() for edge in edges for d in (-1, 0, 1)]
    docs = [{"event_id": f"e{i}", "event_type": "page_view", "event_time": s, "user_id": "u", "session_id": "s",
             "country": "DE"} for i, s in enumerate(stamps)]
    accepted = check_agreement([json.dumps(d).encode() for d in docs])
    assert accepted == [0, 1, 4, 5]
