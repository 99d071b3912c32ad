"""The generator: deterministic, realistic, and its ground truth agrees with the cleaner's decisions.

The generator labels records from its own event objects and the cleaner decides from the bytes;
they are written independently, so agreement record by record is a real check of both.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from lakehouse.sources.generator import (KPI_NAMES, LABEL_CLEAN, LABEL_DUPLICATE, ClickEvent, Generated, GeneratedOrders,
                                 NoCheckoutSession, OrderEvent, generate, generate_orders)
from lambdas.cleaner import orders as order_rules
from lambdas.cleaner.clickstream import clean_record
from lambdas.cleaner.pii import LOCAL_KEY, IpMasker
from lambdas.cleaner.rules import Rejected
from lambdas.contracts import clickstream as contract
from lambdas.contracts import orders as orders_contract
from lambdas.contracts.clickstream import Reason
from lambdas.contracts.currencies import MINOR_UNITS

NOW = datetime(2026, 11, 27, 9, 41, 7, tzinfo=timezone.utc)
MASKER = IpMasker("hash", LOCAL_KEY)  # the cleaner's offline default
Clean = dict  # a clean record: column -> value


@pytest.fixture(scope="module")
def gen() -> Generated:
    return generate(10_000, seed=11, now=NOW)


@pytest.fixture(scope="module")
def decisions(gen: Generated) -> list[Clean | str]:
    """The cleaner's decision per record, with its in-batch duplicate rule (the whole stream as one batch)."""
    seen: set[str] = set()
    out: list[Clean | str] = []
    for raw in gen.records:
        result = clean_record(raw, now=NOW, masker=MASKER)
        if isinstance(result, Rejected):
            out.append(result.reason)
        elif result["event_id"] in seen:
            out.append(LABEL_DUPLICATE)
        else:
            seen.add(result["event_id"])
            out.append(result)
    return out


def test_same_arguments_same_bytes() -> None:
    first, second = generate(2_000, seed=5, now=NOW), generate(2_000, seed=5, now=NOW)
    assert first.records == second.records
    assert (first.partition_keys, first.labels) == (second.partition_keys, second.labels)
    assert first.expected_daily_kpis == second.expected_daily_kpis
    assert generate(2_000, seed=6, now=NOW).records != first.records


def test_the_default_window_gives_the_same_bytes_all_day() -> None:
    morning, evening = NOW.replace(hour=0, minute=0, second=1), NOW.replace(hour=23, minute=59, second=59)
    assert generate(1_000, seed=2, now=morning).records == generate(1_000, seed=2, now=evening).records


def test_an_explicit_start_pins_the_bytes_whatever_now_is() -> None:
    start = datetime(2026, 11, 1, tzinfo=timezone.utc)
    one = generate(500, seed=1, start=start, days=2, now=NOW)
    later = generate(500, seed=1, start=start, days=2, now=NOW + timedelta(days=3))
    # Far-future defects are relative to now's date; everything else is the same.
    differs = [i for i, (a, b) in enumerate(zip(one.records, later.records)) if a != b]
    assert all(one.labels[i] == Reason.BAD_TIMESTAMP for i in differs)


def test_sizes_and_counts_add_up(gen: Generated) -> None:
    assert len(gen.records) == len(gen.partition_keys) == len(gen.labels) == len(gen.events) == 10_000
    c = gen.counts
    assert c.received == 10_000 == c.clean + c.quarantined + c.duplicates
    assert c.clean == 9_500 and c.quarantined + c.duplicates == 500  # the default 5 % defect rate
    assert set(c.quarantined_by_reason) == set(contract.REASONS)  # every defect kind is made
    assert c.duplicates > 0
    assert Counter(gen.labels) == Counter({LABEL_CLEAN: c.clean, LABEL_DUPLICATE: c.duplicates,
                                           **c.quarantined_by_reason})


@pytest.mark.parametrize("rate", [0.0, 0.2, 1.0])
def test_defect_rate_is_honoured(rate: float) -> None:
    g = generate(1_000, seed=3, defect_rate=rate, now=NOW)
    assert len(g.records) == 1_000
    assert g.counts.received - g.counts.clean == round(1_000 * rate)


def test_empty() -> None:
    g = generate(0, seed=1, now=NOW)
    assert (g.records, g.counts.received, g.expected_daily_kpis) == ([], 0, {})


def test_labels_match_the_cleaner_record_by_record(gen: Generated, decisions: list[Clean | str]) -> None:
    got = [LABEL_CLEAN if isinstance(d, Clean) else d for d in decisions]
    mismatches = [(i, gen.labels[i], got[i], gen.records[i][:120]) for i in range(len(got)) if gen.labels[i] != got[i]]
    assert mismatches == []


def test_clean_values_match_the_generators_events(gen: Generated, decisions: list[Clean | str]) -> None:
    for decision, event in zip(decisions, gen.events):
        if isinstance(decision, Clean):
            assert event is not None
            assert decision == dict(
                event_id=event.event_id, event_type=event.event_type, event_time=event.event_time,
                user_id=event.user_id, session_id=event.session_id, page_url=event.page_url_redacted,
                product_id=event.product_id, user_agent=event.user_agent, ip=event.ip_masked,
                country=event.country, event_time_offset=event.event_time_offset,
            )


def test_expected_kpis_equal_kpis_of_what_the_cleaner_keeps(gen: Generated, decisions: list[Clean | str]) -> None:
    users: dict[tuple[date, str], set[str]] = {}
    sessions: dict[tuple[date, str], set[str]] = {}
    counts: dict[tuple[date, str], Counter[str]] = {}
    for d in decisions:
        if isinstance(d, Clean):
            key = (d["event_time"].date(), d["country"])
            users.setdefault(key, set()).add(d["user_id"])
            sessions.setdefault(key, set()).add(d["session_id"])
            counts.setdefault(key, Counter())[d["event_type"]] += 1
    from_cleaner = {key: {
        "active_users": len(users[key]), "sessions": len(sessions[key]), "events": sum(counts[key].values()),
        "page_views": counts[key]["page_view"], "product_views": counts[key]["product_view"],
        "add_to_cart": counts[key]["add_to_cart"], "checkouts": counts[key]["checkout_started"],
    } for key in counts}
    assert gen.expected_daily_kpis == from_cleaner
    assert all(set(v) == set(KPI_NAMES) for v in gen.expected_daily_kpis.values())


def test_duplicates_are_exact_resends_of_earlier_clean_records(gen: Generated) -> None:
    first_clean: dict[bytes, int] = {}
    for i, (raw, label) in enumerate(zip(gen.records, gen.labels)):
        if label == LABEL_CLEAN:
            first_clean.setdefault(raw, i)
        elif label == LABEL_DUPLICATE:
            assert first_clean.get(raw, i) < i, f"record {i} re-sends nothing sent before"
            assert gen.partition_keys[i] == gen.partition_keys[first_clean[raw]]
    assert len({e.event_id for e in gen.clean_events}) == gen.counts.clean


def test_events_lie_in_the_window_before_now(gen: Generated) -> None:
    start = datetime(2026, 11, 24, tzinfo=timezone.utc)  # the 3 whole UTC days before NOW
    times = [e.event_time for e in gen.clean_events]
    assert start <= min(times) and max(times) < start + timedelta(days=3)
    assert {t.date() for t in times} == {date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 26)}
    assert {key[0] for key in gen.expected_daily_kpis} == {t.date() for t in times}


def test_sessions_follow_the_funnel_with_drop_off(gen: Generated) -> None:
    reached: dict[str, set[str]] = {t: set() for t in contract.EVENT_TYPES}
    by_session: dict[str, list[ClickEvent]] = {}
    for e in gen.clean_events:
        reached[e.event_type].add(e.session_id)
        by_session.setdefault(e.session_id, []).append(e)
    sizes = [len(reached[t]) for t in contract.EVENT_TYPES]
    assert all(a > b > 0 for a, b in zip(sizes, sizes[1:])), f"sessions reaching each step: {sizes}"
    for events in by_session.values():
        assert len({e.user_id for e in events}) == 1 and len({e.country for e in events}) == 1
        steps = [contract.EVENT_TYPES.index(e.event_type) for e in sorted(events, key=lambda e: e.event_time)]
        assert steps == sorted(steps), "a session goes down the funnel, never back up"


def test_producers_are_realistically_sloppy(gen: Generated) -> None:
    clean_docs = [json.loads(r) for r, label in zip(gen.records, gen.labels) if label == LABEL_CLEAN]
    countries = Counter(d["country"] for d in clean_docs)
    assert any(c != c.strip() for c in countries) and any(c.strip().islower() for c in countries)
    assert len({c.strip().upper() for c in countries}) >= 8
    offsets = Counter(re.search(r"(Z|[+-]\d\d:\d\d)$", d["event_time"]).group(1) for d in clean_docs)
    assert {"Z", "+00:00", "+05:30", "+09:00", "-03:00"} <= set(offsets)
    urls = [d["page_url"] for d in clean_docs]
    assert any("@" in u for u in urls) and any("%40" in u for u in urls)
    ips = [d.get("ip") for d in clean_docs]
    assert any(ip and ":" in ip for ip in ips) and any(ip and "." in ip for ip in ips) and None in ips
    assert len({d["user_agent"] for d in clean_docs if d.get("user_agent")}) > 3
    # Late arrivals: some events are sent after others that happened hours later.
    times = [e.event_time for e in gen.clean_events]
    assert any(times[i] < times[i - 1] - timedelta(hours=1) for i in range(1, len(times)))


def test_to_ndjson_writes_the_exact_records(gen: Generated, tmp_path: Path) -> None:
    path = gen.to_ndjson(tmp_path / "out" / "events.ndjson")
    assert path.read_bytes().split(b"\n")[:-1] == gen.records


@pytest.mark.parametrize("kwargs, message", [
    ({"n": -1}, "n must be >= 0"),
    ({"defect_rate": 1.5}, "defect_rate must be between 0 and 1"),
    ({"days": 0}, "days must be >= 1"),
    ({"now": datetime(2026, 11, 27)}, "now must be timezone-aware"),
    ({"start": datetime(2026, 11, 1)}, "start must be timezone-aware"),
    ({"start": datetime(2025, 11, 1, tzinfo=timezone.utc)}, "outside the contract's window"),
    ({"start": datetime(2026, 11, 26, tzinfo=timezone.utc)}, "outside the contract's window"),
])
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    args = {"n": 10, "seed": 1, "now": NOW, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(**args)


def test_defects_can_be_limited_to_some_kinds() -> None:
    g = generate(2_000, seed=4, now=NOW, defects=[Reason.MALFORMED_JSON, Reason.BAD_COUNTRY])
    assert set(g.counts.quarantined_by_reason) == {Reason.MALFORMED_JSON, Reason.BAD_COUNTRY}
    assert g.counts.received - g.counts.clean == 100
    with pytest.raises(ValueError, match="unknown defect kind"):
        generate(10, seed=1, now=NOW, defects=["TYPO"])
    with pytest.raises(ValueError, match="at least one kind"):
        generate(10, seed=1, now=NOW, defects=[])


# --- orders --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def orders_gen() -> GeneratedOrders:
    return generate_orders(6_000, seed=8, now=NOW)


@pytest.fixture(scope="module")
def session_orders(gen: Generated) -> GeneratedOrders:
    return generate_orders(3_000, seed=8, now=NOW, sessions=gen.checkout_sessions)


@pytest.mark.parametrize("which", ["orders_gen", "session_orders"])
def test_order_labels_and_values_match_the_cleaner_record_by_record(which: str, request: pytest.FixtureRequest) -> None:
    orders_gen: GeneratedOrders = request.getfixturevalue(which)
    seen: set[tuple[str, str, datetime]] = set()
    for i, (raw, label, event) in enumerate(zip(orders_gen.records, orders_gen.labels, orders_gen.events)):
        result = order_rules.clean_record(raw, now=NOW)
        if isinstance(result, Rejected):
            assert result.reason == label, (i, result, raw[:200])
            continue
        key = (result["order_id"], result["event_type"], result["event_time"])
        assert (LABEL_DUPLICATE if key in seen else LABEL_CLEAN) == label, i
        seen.add(key)
        assert result == {
            "order_id": event.order_id, "event_type": event.event_type, "event_time": event.event_time,
            "user_id": event.user_id, "country": event.country, "currency": event.currency, "total": event.total,
            "items": [{"product_id": item.product_id, "qty": item.qty, "unit_price": item.unit_price}
                      for item in event.items],
            "session_id": event.session_id, "event_time_offset": event.event_time_offset,
        }


def test_orders_have_every_defect_and_a_realistic_lifecycle(orders_gen: GeneratedOrders) -> None:
    c = orders_gen.counts
    assert set(c.quarantined_by_reason) == set(orders_contract.REASONS)
    assert c.received == 6_000 == c.clean + c.quarantined + c.duplicates and c.duplicates > 0
    by_order: dict[str, list[OrderEvent]] = {}
    for event in orders_gen.clean_events:
        by_order.setdefault(event.order_id, []).append(event)
    statuses = Counter(e.event_type for e in orders_gen.clean_events)
    assert statuses["order_placed"] > statuses["order_paid"] > statuses["order_cancelled"] > 0
    assert statuses["order_refunded"] > 0
    for events in by_order.values():
        assert len({(e.user_id, e.country, e.total, e.currency, e.items) for e in events}) == 1  # one basket per order
        for event in events:
            exact = sum(i.qty * i.unit_price for i in event.items)
            assert event.total == exact.quantize(Decimal(1).scaleb(-MINOR_UNITS[event.currency]))
    assert {e.currency for e in orders_gen.clean_events} >= {"USD", "EUR", "GBP", "JPY"}
    country_of: dict[str, str] = {}  # a shopper's country is the same on every order
    for e in orders_gen.clean_events:
        assert country_of.setdefault(e.user_id, e.country) == e.country
    assert len(set(country_of.values())) >= 5
    current = orders_gen.expected_orders
    assert set(current) == set(by_order)
    assert all(current[o].event_time == max(e.event_time for e in events) for o, events in by_order.items())


def test_order_countries_are_written_as_sloppily_as_the_clickstreams(orders_gen: GeneratedOrders) -> None:
    # (That each one cleans to the event's country is checked record by record above.)
    sent = [json.loads(r)["country"] for r, label in zip(orders_gen.records, orders_gen.labels) if label == LABEL_CLEAN]
    assert any(c != c.strip() for c in sent) and any(c.islower() for c in sent) and any(c.isupper() for c in sent)


def test_checkout_sessions_are_the_clean_sessions_that_reached_checkout(gen: Generated) -> None:
    sessions = gen.checkout_sessions
    checkouts = [e for e in gen.clean_events if e.event_type == "checkout_started"]
    assert [s.session_id for s in sessions] and len({s.session_id for s in sessions}) == len(sessions) \
        == len({e.session_id for e in checkouts})
    assert [(s.checkout_at, s.session_id) for s in sessions] == sorted((s.checkout_at, s.session_id) for s in sessions)
    first = {}
    for e in sorted(checkouts, key=lambda e: e.event_time):
        first.setdefault(e.session_id, e)
    assert all((s.user_id, s.country, s.event_time_offset, s.checkout_at) == (
        first[s.session_id].user_id, first[s.session_id].country, first[s.session_id].event_time_offset,
        first[s.session_id].event_time) for s in sessions)


def test_orders_are_placed_by_checkout_sessions_of_their_user_and_country(gen: Generated,
                                                                         session_orders: GeneratedOrders) -> None:
    sessions = {s.session_id: s for s in gen.checkout_sessions}
    by_order: dict[str, list[OrderEvent]] = {}
    for event in session_orders.clean_events:
        by_order.setdefault(event.order_id, []).append(event)
    placed = []
    for events in by_order.values():
        assert len({e.session_id for e in events}) == 1  # every event of an order names its session
        session = sessions[events[0].session_id]
        assert all((e.user_id, e.country, e.event_time_offset) == (session.user_id, session.country,
                                                                   session.event_time_offset) for e in events)
        for e in events:
            if e.event_type == "order_placed":
                assert session.checkout_at < e.event_time <= session.checkout_at + timedelta(minutes=10)
                placed.append(e.session_id)
    # in turn: no session places a second order before every session that can has placed one
    assert len(set(placed)) == min(len(placed), len(sessions)) or len(placed) > len(sessions)
    assert len(set(placed)) > 0.9 * len(sessions)
    sent = [json.loads(r) for r, label in zip(session_orders.records, session_orders.labels) if label == LABEL_CLEAN]
    assert all(doc["session_id"] in sessions for doc in sent)
    assert not any("session_id" in json.loads(r) for r in generate_orders(50, seed=8, now=NOW, defect_rate=0).records)


def test_orders_from_sessions_are_deterministic_and_need_a_session_in_the_window(gen: Generated) -> None:
    sessions = gen.checkout_sessions
    assert generate_orders(300, seed=2, now=NOW, sessions=sessions).records == \
        generate_orders(300, seed=2, now=NOW, sessions=sessions).records
    with pytest.raises(NoCheckoutSession, match="none of the 0 checkout session"):
        generate_orders(10, seed=2, now=NOW, sessions=[])
    assert generate_orders(0, seed=2, now=NOW, sessions=[]).records == []


def test_orders_are_deterministic() -> None:
    assert generate_orders(500, seed=2, now=NOW).records == generate_orders(500, seed=2, now=NOW).records
    assert generate_orders(500, seed=2, now=NOW).records != generate_orders(500, seed=3, now=NOW).records
