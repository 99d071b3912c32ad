"""Every rule of the clickstream contract and every reason code, one record at a time (the reference path)."""
from __future__ import annotations

import ipaddress
import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.cleaner.clickstream import clean_record
from lambdas.cleaner.pii import LOCAL_KEY, IpMasker
from lambdas.cleaner.rules import Rejected, redact_emails
from lambdas.contracts import clickstream as contract
from lambdas.contracts.clickstream import Reason
from lambdas.contracts.common import TRIM_CHARACTERS
from lambdas.contracts.countries import ISO_3166_ALPHA2

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
TRUNCATE = IpMasker("truncate", b"")
HASH = IpMasker("hash", LOCAL_KEY)
Clean = dict  # a clean record: column -> value


def clean(raw: bytes, *, now: datetime, masker: IpMasker = TRUNCATE) -> Clean | Rejected:
    return clean_record(raw, now=now, masker=masker)


def record(**changes: Any) -> bytes:
    """A valid record with `changes` applied (a value of ... removes the field)."""
    doc: dict[str, Any] = {
        "event_id": "0b8f0c9e-1111-4222-8333-944455556666", "event_type": "product_view",
        "event_time": "2026-11-27T13:30:15.250+02:00", "user_id": "u-000042", "session_id": "s-abc",
        "page_url": "https://shop.example.com/p/P-00007", "product_id": "P-00007",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)", "ip": "203.0.113.77", "country": "DE",
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def rejected(raw: bytes) -> Rejected:
    result = clean(raw, now=NOW)
    assert isinstance(result, Rejected), result
    return result


def accepted(raw: bytes) -> Clean:
    result = clean(raw, now=NOW)
    assert isinstance(result, Clean), result
    return result


def test_a_valid_record_is_normalised_and_masked() -> None:
    got = accepted(record(country="  de ", user_id=" u-000042 ", page_url="https://shop.example.com/?email=jo@example.com",
                          extra_field="ignored"))
    assert got == dict(
        event_id="0b8f0c9e-1111-4222-8333-944455556666", event_type="product_view",
        event_time=datetime(2026, 11, 27, 11, 30, 15, 250000, tzinfo=timezone.utc), user_id="u-000042",
        session_id="s-abc", page_url="https://shop.example.com/?email=REDACTED", product_id="P-00007",
        user_agent="Mozilla/5.0 (X11; Linux x86_64)", ip="203.0.113.0", country="DE", event_time_offset="+02:00",
    )


def test_optional_fields_may_be_absent_null_or_blank() -> None:
    got = accepted(record(page_url=..., product_id=None, user_agent="   ", ip=...))
    assert (got["page_url"], got["product_id"], got["user_agent"], got["ip"]) == (None, None, None, None)


# --- reason codes -----------------------------------------------------------------------------

def test_oversized_is_checked_on_bytes_before_parsing() -> None:
    base = record(user_agent="")
    at_limit = record(user_agent="x" * (contract.MAX_RECORD_BYTES - len(base)))
    assert len(at_limit) == contract.MAX_RECORD_BYTES
    assert accepted(at_limit)["user_agent"] == "x" * (contract.MAX_RECORD_BYTES - len(base))
    over = rejected(at_limit[:-1] + b' }')
    assert over.reason == Reason.OVERSIZED
    assert str(contract.MAX_RECORD_BYTES + 1) in over.message
    assert rejected(b"{" * (contract.MAX_RECORD_BYTES + 1)).reason == Reason.OVERSIZED


@pytest.mark.parametrize("raw, fragment", [
    (b"", "invalid JSON"),
    (b'{"event_id": "a"', "invalid JSON"),
    (b"{'event_id': 'a'}", "invalid JSON"),
    (b'{"a": 1,}', "invalid JSON"),
    (b'{"user_agent": "caf\xe9"}', "not valid UTF-8 at byte 19"),
    (b"\xff\xfe{}", "not valid UTF-8 at byte 0"),
    (b'{"x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}", "nested too deeply"),
    (b'{"n": NaN}', "invalid JSON"),
    (b'{"n": Infinity}', "invalid JSON"),
    (b'{"a": "\\ud800"}', "invalid JSON"),
])
def test_malformed_json(raw: bytes, fragment: str) -> None:
    got = rejected(raw)
    assert got.reason == Reason.MALFORMED_JSON
    assert fragment in got.message


@pytest.mark.parametrize("raw, kind", [
    (b"[]", "an array"), (b'"text"', "a string"), (b"42", "a number"), (b"null", "null"), (b"true", "a boolean"),
    (b" 9" + b"9" * 5000, "a number"), (b"1e999", "a number"), (b"false", "a boolean"),
    (b"[" * 30_000 + b"]" * 30_000, "an array"),
])
def test_not_an_object(raw: bytes, kind: str) -> None:
    got = rejected(raw)
    assert (got.reason, got.message) == (Reason.NOT_AN_OBJECT, f"expected a JSON object, got {kind}")


@pytest.mark.parametrize("name", contract.REQUIRED)
@pytest.mark.parametrize("value", [..., None, "", " \t "])
def test_missing_or_empty_required_field(name: str, value: Any) -> None:
    got = rejected(record(**{name: value}))
    assert got.reason == Reason.MISSING_FIELD
    assert got.message == f"missing or empty required field(s): {name}"


def test_missing_fields_are_all_named_and_win_over_wrong_types() -> None:
    got = rejected(record(event_id=..., country=None, user_id=7))
    assert got == Rejected(Reason.MISSING_FIELD, "missing or empty required field(s): event_id, country")


@pytest.mark.parametrize("name, value, kind", [
    ("user_id", 42, "a number"), ("event_time", 1764244215, "a number"), ("product_id", ["P-1"], "an array"),
    ("session_id", {"id": "s"}, "an object"), ("country", True, "a boolean"), ("page_url", 3.5, "a number"),
])
def test_wrong_type(name: str, value: Any, kind: str) -> None:
    got = rejected(record(**{name: value}))
    assert (got.reason, got.message) == (Reason.WRONG_TYPE, f"{name} is {kind}, expected string")


@pytest.mark.parametrize("ip", ["999.1.2.3", "10.0.0", "not an ip", "01.2.3.4", "1.2.3.4/24"])
def test_an_ip_that_is_not_an_address_is_a_wrong_type_and_not_echoed(ip: str) -> None:
    got = rejected(record(ip=ip))
    assert got == Rejected(Reason.WRONG_TYPE, "ip is not an IPv4 or IPv6 address")


@pytest.mark.parametrize("event_type", ["purchase", "PAGE_VIEW", "page-view", "PageView"])
def test_unknown_event_type(event_type: str) -> None:
    got = rejected(record(event_type=event_type))
    assert got.reason == Reason.UNKNOWN_EVENT_TYPE
    assert repr(event_type) in got.message and "page_view" in got.message


def test_event_type_is_trimmed_but_case_sensitive() -> None:
    assert accepted(record(event_type=" add_to_cart "))["event_type"] == "add_to_cart"


@pytest.mark.parametrize("stamp", [
    "yesterday", "1764244215", "2026-11-27", "2026-11-27T12:00:00", "2026-11-27 12:00:00+00:00",
    "2026-11-27T12:00+00:00", "2026-11-27T12:00:00+0100", "2026-11-27T12:00:00 +01:00", "2026-11-27T12:00:00.+01:00",
    "2026-02-30T12:00:00Z", "2026-11-27T24:00:00Z", "2026-11-27T12:60:00Z", "2026-11-27T12:00:60Z",
    "2026-11-27T12:00:00+19:00", "2026-11-27T12:00:00+01:60", "２０２６-11-27T12:00:00Z", "0001-01-01T00:00:00+01:00",
])
def test_bad_timestamp_format_or_value(stamp: str) -> None:
    assert rejected(record(event_time=stamp)).reason == Reason.BAD_TIMESTAMP


@pytest.mark.parametrize("stamp, utc, offset", [
    ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, 0), "+00:00"),
    ("2026-11-27t10:00:00z", datetime(2026, 11, 27, 10, 0), "+00:00"),
    ("2026-11-27T10:00:00-00:00", datetime(2026, 11, 27, 10, 0), "-00:00"),
    ("2026-11-27T15:45:00+05:45", datetime(2026, 11, 27, 10, 0), "+05:45"),
    ("2026-11-26T21:30:00-12:30", datetime(2026, 11, 27, 10, 0), "-12:30"),
    ("2026-11-27T10:00:00.5+00:00", datetime(2026, 11, 27, 10, 0, 0, 500000), "+00:00"),
    ("2026-11-27T10:00:00.123456789+00:00", datetime(2026, 11, 27, 10, 0, 0, 123456), "+00:00"),
    ("2026-11-27T04:00:00-06:00", datetime(2026, 11, 27, 10, 0), "-06:00"),
])
def test_timestamps_are_stored_in_utc_keeping_the_offset(stamp: str, utc: datetime, offset: str) -> None:
    got = accepted(record(event_time=stamp))
    assert got["event_time"] == utc.replace(tzinfo=timezone.utc)
    assert got["event_time"].utcoffset() == timedelta(0)
    assert got["event_time_offset"] == offset


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def test_time_window_edges() -> None:
    future_limit = NOW + timedelta(seconds=contract.MAX_FUTURE_SECONDS)
    assert accepted(record(event_time=_iso(future_limit)))["event_time"] == future_limit
    too_far = rejected(record(event_time=_iso(future_limit + timedelta(microseconds=1))))
    assert too_far.reason == Reason.BAD_TIMESTAMP and "in the future" in too_far.message
    oldest = NOW - timedelta(days=contract.MAX_AGE_DAYS)
    assert accepted(record(event_time=_iso(oldest)))["event_time"] == oldest
    too_old = rejected(record(event_time=_iso(oldest - timedelta(microseconds=1))))
    assert too_old.reason == Reason.BAD_TIMESTAMP and f"older than {contract.MAX_AGE_DAYS} days" in too_old.message


def test_the_window_follows_the_offset_not_the_local_clock_reading() -> None:
    # 14:00 local at +14:00 is 00:00 UTC: in the past although the local reading is after NOW's 12:00.
    assert accepted(record(event_time="2026-11-27T14:00:00+14:00"))["event_time"] == NOW - timedelta(hours=12)
    assert rejected(record(event_time="2026-11-27T10:00:00-04:00")).reason == Reason.BAD_TIMESTAMP


@pytest.mark.parametrize("country", ["Germany", "D", "DEU", "D1", "ÖS", "ß", "d e", "--", "XX", "UK", "EU", "ıs"])
def test_bad_country(country: str) -> None:
    got = rejected(record(country=country))
    assert got.reason == Reason.BAD_COUNTRY
    assert repr(country) in got.message


@pytest.mark.parametrize("country", ["de", " De", "dE ", "\tus\n"])
def test_country_is_trimmed_and_upper_cased(country: str) -> None:
    assert accepted(record(country=country))["country"] == country.strip().upper()


# --- PII ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ip, masked", [
    ("203.0.113.77", "203.0.113.0"), ("10.1.2.255", "10.1.2.0"), ("0.0.0.0", "0.0.0.0"),
    ("2001:db8:abcd:12::1", "2001:db8:abcd::"), ("2001:DB8:ABCD:FFFF:1:2:3:4", "2001:db8:abcd::"),
    ("fe80::1%eth0", "fe80::"), ("::ffff:203.0.113.77", "::"),
])
def test_ip_keeps_only_its_network(ip: str, masked: str) -> None:
    assert TRUNCATE.mask(ip) == masked
    assert accepted(record(ip=f" {ip} "))["ip"] == masked


@pytest.mark.parametrize("url, expected", [
    ("https://s.example.com/?email=jane.doe@example.com", "https://s.example.com/?email=REDACTED"),
    ("https://s.example.com/?u=jane%40example.org&x=1", "https://s.example.com/?u=REDACTED&x=1"),
    ("https://s.example.com/?u=jane%40EXAMPLE.ORG", "https://s.example.com/?u=REDACTED"),
    ("https://s.example.com/users/a+b@mail.example.net/orders?c=d@e.io", "https://s.example.com/users/REDACTED/orders?c=REDACTED"),
    ("https://s.example.com/p/P-00007?ref=home", "https://s.example.com/p/P-00007?ref=home"),
    ("https://s.example.com/@handle", "https://s.example.com/@handle"),
    ("https://s.example.com/?to=a@b.cc@d.ee", "https://s.example.com/?to=REDACTED"),
])
def test_email_addresses_in_urls_are_redacted(url: str, expected: str) -> None:
    assert redact_emails(url, "REDACTED") == expected
    assert accepted(record(page_url=url))["page_url"] == expected


# --- properties -----------------------------------------------------------------------------------

_EMAIL_LEFT = re.compile(r"[A-Za-z0-9._+\-]+(@|%40)[A-Za-z0-9\-]+\.[A-Za-z]{2,}", re.IGNORECASE | re.ASCII)


def _check_clean(got: Clean) -> None:
    """What every clean record must satisfy, whatever came in."""
    assert got["event_type"] in contract.EVENT_TYPES
    assert got["country"] in ISO_3166_ALPHA2
    assert got["event_time"].utcoffset() == timedelta(0)
    assert NOW - timedelta(days=contract.MAX_AGE_DAYS) <= got["event_time"]
    assert got["event_time"] <= NOW + timedelta(seconds=contract.MAX_FUTURE_SECONDS)
    assert re.fullmatch(r"[+-]\d{2}:\d{2}", got["event_time_offset"])
    for name in ("event_id", "user_id", "session_id"):
        value = got[name]
        assert value and value == value.strip(TRIM_CHARACTERS)
    if got["ip"] is not None:
        address = ipaddress.ip_address(got["ip"])
        bits = contract.IPV4_PREFIX_BITS if address.version == 4 else contract.IPV6_PREFIX_BITS
        assert ipaddress.ip_network(f"{got['ip']}/{bits}").network_address == address
    if got["page_url"] is not None:
        assert not _EMAIL_LEFT.search(got["page_url"])


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash(raw: bytes) -> None:
    result = clean(raw, now=NOW)
    assert isinstance(result, (Clean, Rejected))
    if isinstance(result, Rejected):
        assert result.reason in contract.REASONS and result.message
    else:
        _check_clean(result)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=5,
)
_field_values = st.one_of(
    _json_values,
    st.sampled_from(contract.EVENT_TYPES),
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 1, 1),
                 timezones=st.just(timezone(timedelta(hours=3)))).map(lambda d: d.isoformat()),
    st.sampled_from(["de", " US ", "Xx", "1.2.3.4", "::1", "https://x.example/?e=a@b.co"]),
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.sampled_from([f.name for f in contract.FIELDS]), _field_values))
def test_arbitrary_records_of_contract_fields_give_a_valid_outcome(doc: dict[str, Any]) -> None:
    result = clean(json.dumps(doc).encode(), now=NOW)
    if isinstance(result, Rejected):
        assert result.reason in contract.REASONS and result.message
    else:
        _check_clean(result)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(contract.REQUIRED), _json_values.filter(lambda v: not isinstance(v, str)))
def test_a_required_field_replaced_by_any_non_string_is_rejected(name: str, value: Any) -> None:
    assert isinstance(clean(record(**{name: value}), now=NOW), Rejected)


def test_ips_are_keyed_hashes_of_the_canonical_address_by_default() -> None:
    import hashlib
    import hmac
    expected = "h1:" + hmac.new(LOCAL_KEY, b"2001:db8::1", hashlib.sha256).hexdigest()[:32]
    for spelling in ("2001:db8::1", "2001:DB8:0:0:0:0:0:1", " 2001:0db8::0001 ", "2001:db8::1%eth0"):
        assert clean(record(ip=spelling), now=NOW, masker=HASH)["ip"] == expected
    other_key = IpMasker("hash", b"another key")
    assert clean(record(ip="2001:db8::1"), now=NOW, masker=other_key)["ip"] not in (expected, None)
    assert clean(record(ip="10.0.0.1"), now=NOW, masker=HASH)["ip"] != clean(record(ip="10.0.0.2"), now=NOW, masker=HASH)["ip"]


def test_duplicate_keys_take_the_last_value_like_every_json_parser_here() -> None:
    raw = record()[:-1] + b', "country": 7, "country": "fr"}'
    assert accepted(raw)["country"] == "FR"


def test_huge_numbers_and_deep_nesting_in_other_keys() -> None:
    assert accepted(record()[:-1] + b', "n": ' + b"9" * 5000 + b', "f": 1e999}')["country"] == "DE"
    deep = record()[:-1] + b', "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert rejected(deep) == Rejected(Reason.OVERSIZED, f"record is {len(deep)} bytes, limit {contract.MAX_RECORD_BYTES}")
    nested = record()[:-1] + b', "x": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    assert rejected(nested) == Rejected(Reason.MALFORMED_JSON, "JSON nested too deeply")


# The pattern without the cleaner's bound on the local part (64 characters, which keeps the search
# linear): on local parts within the bound, both must find exactly the same addresses.
_PLAIN_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}", re.IGNORECASE | re.ASCII)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["a", "Z", "0", ".", "-", "_", "%", "40", "%40", "@", "+", "/", "?", "=", " ",
                                 "ab.cd", "@ex.com", "%40ex.org"]), max_size=30).map("".join).filter(lambda t: len(t) <= 64))
def test_email_redaction_finds_what_the_plain_pattern_finds(text: str) -> None:
    expected = text
    while "@" in expected or "%40" in expected:
        expected, replaced = _PLAIN_EMAIL.subn("REDACTED", expected)
        if not replaced:
            break
    assert redact_emails(text, "REDACTED") == expected

