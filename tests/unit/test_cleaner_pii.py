"""IP masking: the fast IPv4 parser agrees with the standard library on any text, and both modes
give what the contract says."""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.cleaner.batch import SOURCES, clean_batch, judged_at
from lambdas.cleaner.events import parse_event
from lambdas.cleaner.pii import LOCAL_KEY, IpMasker, masked_payload
from lambdas.cleaner.rules import show
from tests.fixtures.kinesis_events import ARRIVAL, kinesis_event
from tests.pii_checks import EMAIL, addresses

HASH, TRUNCATE = IpMasker("hash", LOCAL_KEY), IpMasker("truncate", b"")


def reference(text: str, mode: str) -> str | None:
    """The contract's masking, written with ipaddress alone."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if mode == "truncate":
        network = ipaddress.IPv4Network if address.version == 4 else ipaddress.IPv6Network
        return str(network((int(address), 24 if address.version == 4 else 48), strict=False).network_address)
    canonical = str(type(address)(int(address)))
    return "h1:" + hmac.new(LOCAL_KEY, canonical.encode(), hashlib.sha256).hexdigest()[:32]


_texts = st.one_of(
    st.ip_addresses().map(str), st.ip_addresses(v=4).map(lambda a: str(a).replace(".", ".0", 1)),
    st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,4}){0,4}", fullmatch=True), st.text(alphabet="0123456789.:abcdefABCDEF%x ", max_size=20),
    st.text(max_size=12),
)


@settings(max_examples=2_000, deadline=None)
@given(_texts, st.sampled_from(["hash", "truncate"]))
def test_masks_agree_with_ipaddress(text: str, mode: str) -> None:
    masker = HASH if mode == "hash" else TRUNCATE
    assert masker.mask(text) == reference(text, mode)


@pytest.mark.parametrize("text, truncated", [
    ("203.0.113.77", "203.0.113.0"), ("0.0.0.0", "0.0.0.0"), ("2001:db8:abcd:12::1", "2001:db8:abcd::"),
    ("fe80::1%eth0", "fe80::"), ("::ffff:203.0.113.77", "::"), ("01.2.3.4", None), ("1.2.3.4 ", None),
    ("1.2.3.4\x00", None), ("١.٢.٣.٤", None),
])
def test_truncation_examples(text: str, truncated: str | None) -> None:
    assert TRUNCATE.mask(text) == truncated


# --- a rejected record's payload, before staging's quarantine ---------------------------------------

@pytest.mark.parametrize("payload, expected", [
    # an address anywhere: as the "ip" value, in a malformed record, beside bytes that are not UTF-8
    (b'{"ip": "203.0.113.7", "x": 1', b'{"ip": "' + reference("203.0.113.7", "hash").encode() + b'", "x": 1'),
    (b"\xff\xfe 2001:db8::1;", b"\xff\xfe " + reference("2001:db8::1", "hash").encode() + b";"),
    # an "ip" value that is no address may be any personal text: redacted, never echoed
    (b'{"ip": "bob\'s laptop \\"home\\"", "event_type": 1}', b'{"ip": "REDACTED", "event_type": 1}'),
    # e-mails, plain and percent-encoded, as in a clean record's page_url
    (b'{"page_url": "https://s.example/?u=ann.lee%40mail.example.org&x=1"}',
     b'{"page_url": "https://s.example/?u=REDACTED&x=1"}'),
    # look-alikes stay: versions, times, MAC-like and out-of-range quads are not addresses
    (b'{"user_agent": "Chrome/120.0.6099.109", "event_time": "2026-11-24T00:00:17.822+00:00"}', None),
    (b"999.1.1.1 12:34 0.0.0", None),
])
def test_a_quarantined_payload_is_masked_like_a_clean_record(payload: bytes, expected: bytes | None) -> None:
    assert masked_payload(payload, HASH) == (payload if expected is None else expected)


def test_truncation_keeps_the_network_in_a_quarantined_payload_too() -> None:
    assert masked_payload(b"from 198.51.100.23 and 2001:db8:aa:bb::9", TRUNCATE) == b"from 198.51.100.0 and 2001:db8:aa::"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_lose_their_addresses(payload: bytes) -> None:
    masked = masked_payload(payload, HASH)
    assert isinstance(masked, bytes)
    assert not addresses(masked) & addresses(payload)


# what separates addresses in text: no address character (digits, a-f, '.', ':')
_AROUND = st.text(alphabet=' ",;=/[]xyz\n\t\u00e9', min_size=1, max_size=6)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_AROUND, st.ip_addresses()), min_size=1, max_size=4), _AROUND)
def test_an_address_anywhere_is_replaced_by_its_mask(parts: list, tail: str) -> None:
    payload = "".join(f"{before}{address}" for before, address in parts).encode("latin-1") + tail.encode("latin-1")
    masked = masked_payload(payload, HASH)
    for _, address in parts:
        assert str(address).encode() not in masked.replace(b"h1:", b"")  # (a hash's prefix is no address)
        assert reference(str(address), "hash").encode() in masked


@pytest.mark.parametrize("payload, address", [
    # overlapping or embedded candidates: the address inside is found
    (b"999.10.0.0.7", "10.0.0.7"), (b"00.192.168.1.1", "192.168.1.1"), (b"x=2024.10.0.0.1", "10.0.0.1"),
    (b"v256.10.20.30.40", "10.20.30.40"), (b"time 12:00:00.10.0.0.1", "10.0.0.1"),
    # IPv6 runs with their own colons, a port, a leading group, an embedded IPv4
    (b"2001:db8:85a3::", "2001:db8:85a3::"), (b"::ffff:c000:280", "::ffff:c000:280"), (b"::2001:db8:1", "::2001:db8:1"),
    (b"cafebabe:2001:db8::1", "2001:db8::1"), (b"2001:db8::1:54321", "2001:db8::1"), (b"::ffff:10.0.0.1", "::ffff:10.0.0.1"),
])
def test_addresses_hidden_among_address_characters_are_masked(payload: bytes, address: str) -> None:
    masked = masked_payload(payload, HASH)
    assert reference(address, "hash").encode() in masked
    assert not addresses(masked) & addresses(payload)


def test_a_long_ip_value_is_redacted_and_never_cached() -> None:
    masker = IpMasker("hash", LOCAL_KEY)
    assert masked_payload(b'{"ip": "' + b"a" * 100_000 + b'"}', masker) == b'{"ip": "REDACTED"}'
    assert masker._cached.cache_info().currsize == 0


def test_only_an_ascii_digit_before_a_quad_makes_it_part_of_a_longer_number() -> None:
    assert masked_payload(b"\xb21.2.3.4 and 1234.5.6.7", HASH) == \
        b"\xb2" + reference("1.2.3.4", "hash").encode() + b" and 1234.5.6.7"


# --- the messages of quarantined records quote bad values: personal data in the field that is bad -------

def _quarantined(source: str, documents: list[dict[str, object]]) -> list[tuple[str, str]]:
    """(reason, message) of each record of a one-batch delivery, through the cleaner's batch."""
    payloads = [json.dumps(d).encode() for d in documents]
    delivery = parse_event(kinesis_event(payloads))[0]
    batch = clean_batch(delivery, SOURCES[source], now=judged_at(delivery, ARRIVAL), masker=HASH)
    assert batch.clean.num_rows == 0, "every record here breaks its contract"
    return [(rejected.reason, rejected.message) for _, rejected in batch.quarantined]


_LONG_EMAIL = "someone.with.a.rather.long.name@mail.example.org"  # crosses a quoted value's 40-character cut
_PERSONAL = ["203.0.113.77", "2001:db8::7", "jane.doe@example.com", "jane.doe%40example.com", _LONG_EMAIL,
             "x" * 30 + " 198.51.100.200"]


@pytest.mark.parametrize("value", _PERSONAL)
def test_a_clickstream_message_never_quotes_personal_data(value: str) -> None:
    click = {"event_id": "e1", "event_type": "page_view", "event_time": ARRIVAL.isoformat(), "user_id": "u1",
             "session_id": "s1", "country": "DE"}
    got = _quarantined("clickstream", [{**click, "country": value}, {**click, "event_type": value},
                                       {**click, "event_time": value}])
    assert [reason for reason, _ in got] == ["BAD_COUNTRY", "UNKNOWN_EVENT_TYPE", "BAD_TIMESTAMP"]
    for _, message in got:
        assert not addresses(message.encode()) and not EMAIL.search(message.encode()), message


@pytest.mark.parametrize("value", _PERSONAL)
def test_an_orders_message_never_quotes_personal_data(value: str) -> None:
    order = {"order_id": "o1", "event_type": "order_placed", "event_time": ARRIVAL.isoformat(), "user_id": "u1",
             "country": "DE", "currency": "EUR", "total": 10, "items": [{"product_id": "p1", "qty": 1, "unit_price": 10}]}
    got = _quarantined("orders", [{**order, "currency": value}, {**order, "country": value},
                                  {**order, "event_type": value}])
    assert [reason for reason, _ in got] == ["UNKNOWN_CURRENCY", "BAD_COUNTRY", "UNKNOWN_EVENT_TYPE"]
    for _, message in got:
        assert not addresses(message.encode()) and not EMAIL.search(message.encode()), message


def test_a_masked_message_still_names_the_value_it_can() -> None:
    (_, hashed), (_, plain) = _quarantined("clickstream", [
        {"event_id": "e1", "event_type": "page_view", "event_time": ARRIVAL.isoformat(), "user_id": "u1",
         "session_id": "s1", "country": country} for country in ("203.0.113.77", "Germany")])
    assert hashed == f"country '{HASH.mask('203.0.113.77')}' is not an ISO 3166-1 alpha-2 code"
    assert plain == "country 'Germany' is not an ISO 3166-1 alpha-2 code"


def test_a_quoted_value_is_never_cut_inside_an_address() -> None:
    assert show("x" * 30 + " " + _LONG_EMAIL) == repr("x" * 30 + " ...")
    assert show("y" * 38 + " 203.0.113.77") == repr("y" * 38 + " ...")
    assert show("z" * 45) == repr("...")  # one long word: nothing of it is shown
    assert show("a b " * 20) == repr(("a b " * 20)[:40] + "...")
