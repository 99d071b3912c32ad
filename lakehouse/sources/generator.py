"""Synthetic shop events, with a controlled share of defects and their ground truth.

`generate`: a clickstream. Users browse in sessions along the funnel page_view -> product_view ->
add_to_cart -> checkout_started, with drop-off at each step. `generate_orders`: orders placed, mostly
paid, some cancelled or refunded, each event carrying the order's items and exact total; given the
clickstream's checkout sessions (`Generated.checkout_sessions`), each order is placed by one of them. Producers are
imperfect the way real ones are: codes in any case and padded, local times with their UTC offset,
e-mail addresses in URLs, personal data in the wrong field, late arrivals. A `defect_rate` share of the records is broken on purpose,
one defect each (one kind per reason code of the contract; `defects=` limits the kinds), or is an exact
re-send of an earlier record.

The ground truth (labels, counts, expected values, KPIs and order states) comes from the generator's
own event objects, never from the cleaner, so comparing the two is a real check. Same arguments (and
the same UTC date of `now`), same bytes.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import random
import uuid
from collections import Counter
from itertools import accumulate
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from lambdas.contracts import clickstream as contract
from lambdas.cleaner.pii import LOCAL_KEY
from lambdas.contracts import orders as orders_contract
from lambdas.contracts.clickstream import Reason
from lambdas.contracts.currencies import MINOR_UNITS
from lambdas.contracts.orders import Reason as OrderReason

LABEL_CLEAN = "clean"
LABEL_DUPLICATE = "duplicate"

KPI_NAMES = ("active_users", "sessions", "events", "page_views", "product_views", "add_to_cart", "checkouts")
# Share of the defective records that are re-sends; the rest carry one contract violation each.
_DUPLICATE_SHARE = 0.3
# A re-send follows its original within this many records (a producer retry).
_MAX_RESEND_DISTANCE = 50
_LATE_SHARE = 0.02  # events delivered hours or days after they happened

_HOST = "https://shop.example.com"
_CATEGORIES = ("shoes", "jackets", "bags", "watches", "outdoor", "kitchen", "toys", "books")
_SEARCH_TERMS = ("running+shoes", "rain+jacket", "backpack", "espresso", "lego", "novel", "gift")
_EMAIL_DOMAINS = ("example.com", "mail.example.org", "example.net")
_FIRST_NAMES = ("anna", "ben", "chloe", "david", "emma", "felix", "grace", "hugo", "ines", "jonas")
_LAST_NAMES = ("schmidt", "smith", "martin", "silva", "tanaka", "kumar", "brown", "jansen")
_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 15; Pixel 9) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
)
# (code, weight, UTC offsets in minutes its users send): fixed offsets, no DST, is enough here.
_COUNTRIES: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("US", 30, (-300, -360, -420, -480)), ("DE", 15, (60, 120)), ("GB", 12, (0,)), ("FR", 10, (60, 120)),
    ("IN", 8, (330,)), ("BR", 7, (-180,)), ("JP", 6, (540,)), ("AU", 5, (600, 660)), ("NL", 4, (60,)),
    ("CA", 3, (-300, -480)), ("NP", 1, (345,)),
)


@dataclass(frozen=True)
class ClickEvent:
    """One event as it happened, with the values the lake should hold for it."""

    event_id: str
    event_type: str
    event_time: datetime  # UTC
    event_time_offset: str  # "+HH:MM", the producer's offset ("Z" is "+00:00")
    user_id: str
    session_id: str
    page_url: str  # as sent, possibly with an e-mail address in it
    page_url_redacted: str  # as the lake should hold it
    product_id: str | None
    user_agent: str | None
    ip: str | None  # as sent
    country: str  # ISO code, upper case

    @property
    def ip_masked(self) -> str | None:
        """The IP as the lake should hold it offline: HMAC-SHA256 with the local key, over the
        canonical address, first 128 bits in hex (computed here, not by the cleaner)."""
        if self.ip is None:
            return None
        canonical = str(ipaddress.ip_address(self.ip)).encode()
        return contract.IP_HASH_PREFIX + hmac.new(LOCAL_KEY, canonical, hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class Counts:
    received: int
    clean: int
    quarantined_by_reason: dict[str, int]
    duplicates: int

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())


@dataclass
class _Output:
    """What was sent (`records`, in send order) and what the pipeline should make of it."""

    records: list[bytes]
    partition_keys: list[str]
    labels: list[str]  # per record: "clean", "duplicate" or a contract reason code
    events: list[Any]  # per record: the event behind a clean or duplicate record, else None
    counts: Counts

    @property
    def clean_events(self) -> list[Any]:
        """The distinct events the lake should end up with, in send order."""
        return [e for e, label in zip(self.events, self.labels) if label == LABEL_CLEAN and e is not None]

    def to_ndjson(self, path: Path | str) -> Path:
        """Write the records, one per line, byte for byte (no record contains a newline byte)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(record + b"\n" for record in self.records))
        return path


@dataclass(frozen=True)
class CheckoutSession:
    """A clickstream session that reached checkout_started: who shopped, where, and when checkout began."""

    session_id: str
    user_id: str
    country: str
    event_time_offset: str
    checkout_at: datetime  # UTC: its first checkout_started event's time
    whole_seconds: bool  # its client sends no fraction of a second


@dataclass
class Generated(_Output):
    """A clickstream: `events` are ClickEvents."""

    expected_daily_kpis: dict[tuple[date, str], dict[str, int]] = field(repr=False)

    @property
    def checkout_sessions(self) -> tuple[CheckoutSession, ...]:
        """The sessions whose clean events include a checkout_started, by (checkout time, session_id): the
        sessions an order may come from (`generate_orders(..., sessions=)`)."""
        first: dict[str, ClickEvent] = {}
        for event in self.clean_events:
            if event.event_type == "checkout_started":
                known = first.get(event.session_id)
                if known is None or event.event_time < known.event_time:
                    first[event.session_id] = event
        return tuple(sorted((CheckoutSession(e.session_id, e.user_id, e.country, e.event_time_offset, e.event_time,
                                             e.event_time.microsecond == 0) for e in first.values()),
                            key=lambda s: (s.checkout_at, s.session_id)))


@dataclass(frozen=True)
class _User:
    user_id: str
    country: str
    offset_minutes: int
    ip: str | None
    user_agent: str | None
    whole_seconds: bool  # its client sends no fraction of a second


def generate(n: int, seed: int, defect_rate: float = 0.05, start: datetime | None = None, days: int = 3,
             *, now: datetime | None = None, defects: Sequence[str] | None = None) -> Generated:
    """`n` clickstream records over `days` days from `start` (default: the `days` whole UTC days before `now`).

    Every event lies inside the contract's accepted window relative to `now` (default: the wall
    clock). Only `now`'s UTC date shapes the output: the same arguments give the same bytes all day,
    and on every day when `now` is passed. `defects` limits the kinds of defect made (reason codes;
    default: every kind of the contract).
    """
    now, start, end = _window(n, defect_rate, days, start, now, contract.MAX_AGE_DAYS)
    rng = random.Random(seed)
    plan = _Plan.of(rng, n, defect_rate, _pick(_DEFECTS, defects))
    base = _sessions(rng, n - plan.duplicates, start, end)
    sent = _deliver(rng, plan, base, now, _serialize, lambda e: e.session_id)
    labels = [s.label for s in sent]
    events = [s.event for s in sent]
    return Generated(records=[s.record for s in sent], partition_keys=[s.key for s in sent], labels=labels,
                     events=events, counts=_counts(labels, contract.REASONS),
                     expected_daily_kpis=_daily_kpis(e for e, l in zip(events, labels) if l == LABEL_CLEAN))


@dataclass(frozen=True)
class _Plan:
    """How many records of each kind: clean, broken (one defect each, kinds dealt in turn), re-sent."""

    bad: int
    duplicates: int
    kinds: dict[str, Callable[..., tuple[bytes, str]]]

    @classmethod
    def of(cls, rng: random.Random, n: int, defect_rate: float,
           kinds: dict[str, Callable[..., tuple[bytes, str]]]) -> "_Plan":
        defective = round(n * defect_rate)
        duplicates = min(round(defective * _DUPLICATE_SHARE), n - defective)
        return cls(bad=defective - duplicates, duplicates=duplicates, kinds=kinds)


@dataclass(frozen=True)
class _Sent:
    at: float  # send position; re-sends sit between two originals
    record: bytes
    key: str
    label: str
    event: Any


def _deliver(rng: random.Random, plan: _Plan, base: list[Any], now: datetime,
             serialize: Callable[[random.Random, Any], bytes], key: Callable[[Any], str]) -> list[_Sent]:
    """The base events in send order, `plan.bad` of them broken and `plan.duplicates` re-sends added."""
    kinds = list(plan.kinds)
    dealt = [kinds[i % len(kinds)] for i in range(plan.bad)]  # every kind in turn, so a small sample has each
    rng.shuffle(dealt)
    bad_at = dict(zip(sorted(rng.sample(range(len(base)), plan.bad)), dealt))
    # Send order: by event time plus a delivery delay, mostly seconds, sometimes hours or days.
    delays = [rng.uniform(3600, 2 * 86400) if rng.random() < _LATE_SHARE else rng.uniform(0, 5) for _ in base]
    order = sorted(range(len(base)), key=lambda i: (base[i].event_time + timedelta(seconds=delays[i]), i))
    sent: list[_Sent] = []
    for position, i in enumerate(order):
        event = base[i]
        if i in bad_at:
            record, reason = plan.kinds[bad_at[i]](rng, event, now)
            sent.append(_Sent(position, record, key(event), reason, None))
        else:
            sent.append(_Sent(position, serialize(rng, event), key(event), LABEL_CLEAN, event))
    originals = [s for s in sent if s.label == LABEL_CLEAN]
    for k in range(plan.duplicates):
        original = rng.choice(originals)
        # Placed between two originals (x.5), after its own; k keeps their order among themselves.
        at = original.at + rng.randint(1, _MAX_RESEND_DISTANCE) - 0.5 + k / (plan.duplicates + 1) / 2
        sent.append(_Sent(at, original.record, original.key, LABEL_DUPLICATE, original.event))
    sent.sort(key=lambda s: s.at)
    assert all(b"\n" not in s.record for s in sent), "a generated record contains a newline byte"
    return sent


def _counts(labels: list[str], reasons: tuple[str, ...]) -> Counts:
    tally = Counter(labels)
    return Counts(received=len(labels), clean=tally[LABEL_CLEAN], duplicates=tally[LABEL_DUPLICATE],
                  quarantined_by_reason={r: tally[r] for r in reasons if tally[r]})


def _pick(all_kinds: dict[str, Callable[..., tuple[bytes, str]]],
          wanted: Sequence[str] | None) -> dict[str, Callable[..., tuple[bytes, str]]]:
    if wanted is None:
        return all_kinds
    if not wanted:
        raise ValueError("defects must name at least one kind of defect")
    unknown = sorted(set(wanted) - set(all_kinds))
    if unknown:
        raise ValueError(f"unknown defect kind(s) {', '.join(unknown)}; known: {', '.join(all_kinds)}")
    return {kind: fn for kind, fn in all_kinds.items() if kind in wanted}


def _window(n: int, defect_rate: float, days: int, start: datetime | None, now: datetime | None,
            max_age_days: int) -> tuple[datetime, datetime, datetime]:
    """(now, start, end) checked: the window must lie inside the contract's accepted one."""
    now = _check_args(n, defect_rate, days, start, now)
    if start is None:
        start = datetime.combine((now - timedelta(days=days)).date(), time(), tzinfo=timezone.utc)
    end = start + timedelta(days=days)
    if start < now - timedelta(days=max_age_days - 1) or end > now:
        raise ValueError(f"events from {start.isoformat()} to {end.isoformat()} would fall outside the contract's "
                         f"window relative to now={now.isoformat()} (at most {max_age_days - 1} days "
                         "back, none in the future)")
    return now, start, end


def _check_args(n: int, defect_rate: float, days: int, start: datetime | None, now: datetime | None) -> datetime:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= defect_rate <= 1.0:
        raise ValueError(f"defect_rate must be between 0 and 1, got {defect_rate}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    for name, value in (("start", start), ("now", now)):
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc)


def _sessions(rng: random.Random, count: int, start: datetime, end: datetime) -> list[ClickEvent]:
    """`count` events from funnel sessions of returning users, cut at the window's end."""
    users = [_user(rng, i) for i in range(max(1, count // 25))]
    # Some users come back far more often than others.
    activity = list(accumulate(rng.paretovariate(1.5) for _ in users))
    span = (end - start).total_seconds()
    events: list[ClickEvent] = []
    while len(events) < count:
        user = rng.choices(users, cum_weights=activity)[0]
        session_id = f"s-{uuid.UUID(int=rng.getrandbits(128), version=4).hex[:20]}"
        t = start + timedelta(milliseconds=rng.randrange(int(span * 1000)))
        for event_type, product_id in _funnel(rng):
            if t >= end or len(events) == count:
                break
            events.append(_event(rng, user, session_id, event_type, product_id, t))
            t += timedelta(milliseconds=rng.randrange(3_000, 180_000))
    return events


def _user(rng: random.Random, index: int) -> _User:
    code, _, offsets = rng.choices(_COUNTRIES, weights=[c[1] for c in _COUNTRIES])[0]
    if rng.random() < 0.85:
        ip = str(ipaddress.IPv4Address(rng.choice((31, 46, 62, 77, 81, 89, 93, 151, 176, 185, 203)) << 24
                                       | rng.getrandbits(24)))
    elif rng.random() < 0.9:
        ip = str(ipaddress.IPv6Address(0x2A02 << 112 | rng.getrandbits(112)))
    else:
        ip = None  # server-side events carry no client address
    return _User(
        user_id=f"u-{index:06d}{rng.getrandbits(24):06x}", country=code, offset_minutes=rng.choice(offsets), ip=ip,
        user_agent=rng.choice(_USER_AGENTS) if rng.random() < 0.97 else None,
        whole_seconds=rng.random() < 0.3,
    )


def _funnel(rng: random.Random) -> list[tuple[str, str | None]]:
    """One session's steps: browse, then maybe look at products, add one, start checking out."""
    steps: list[tuple[str, str | None]] = [("page_view", None)] * rng.randint(1, 6)
    if rng.random() < 0.6:
        products = [f"P-{rng.randrange(1, 2000):05d}" for _ in range(rng.randint(1, 4))]
        steps += [("product_view", p) for p in products]
        if rng.random() < 0.35:
            steps += [("add_to_cart", p) for p in products[: rng.randint(1, 2)]]
            if rng.random() < 0.45:
                steps.append(("checkout_started", None))
    return steps


def _event(rng: random.Random, user: _User, session_id: str, event_type: str, product_id: str | None,
           t: datetime) -> ClickEvent:
    if user.whole_seconds:
        t = t.replace(microsecond=0)
    path = {
        "page_view": rng.choice(("/", f"/c/{rng.choice(_CATEGORIES)}", f"/search?q={rng.choice(_SEARCH_TERMS)}")),
        "product_view": f"/p/{product_id}",
        "add_to_cart": f"/cart?add={product_id}",
        "checkout_started": "/checkout",
    }[event_type]
    url = redacted = _HOST + path
    if rng.random() < 0.03:  # an e-mail address leaks into the query string, plain or percent-encoded
        local = f"{rng.choice(_FIRST_NAMES)}.{rng.choice(_LAST_NAMES)}{rng.randrange(100)}"
        at = rng.choice(("@", "%40"))
        query = rng.choice(("email={}", "ref=newsletter&u={}"))
        glue = "&" if "?" in path else "?"
        url = f"{url}{glue}{query.format(f'{local}{at}{rng.choice(_EMAIL_DOMAINS)}')}"
        redacted = f"{redacted}{glue}{query.format(contract.EMAIL_REDACTION)}"
    minutes = user.offset_minutes
    return ClickEvent(
        event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)), event_type=event_type, event_time=t,
        event_time_offset=_offset(minutes),
        user_id=user.user_id, session_id=session_id, page_url=url, page_url_redacted=redacted,
        product_id=product_id, user_agent=user.user_agent, ip=user.ip, country=user.country,
    )


def _wire(rng: random.Random, event: ClickEvent) -> dict[str, Any]:
    """The event as its producer writes it: local time with offset, sloppy country, stray spaces."""
    stamp = _local_stamp(rng, event.event_time, event.event_time_offset)
    country = _sloppy_country(rng, event.country)
    wire: dict[str, Any] = {
        "event_id": event.event_id, "event_type": event.event_type, "event_time": stamp,
        "user_id": f" {event.user_id} " if rng.random() < 0.01 else event.user_id,
        "session_id": event.session_id, "page_url": event.page_url, "product_id": event.product_id,
        "user_agent": event.user_agent, "ip": event.ip, "country": country,
    }
    # Absent optional fields: some producers send null, others leave the key out.
    if rng.random() < 0.5:
        wire = {k: v for k, v in wire.items() if v is not None}
    return wire


def _sloppy_country(rng: random.Random, code: str) -> str:
    """A country code as producers write it: mostly upper case, sometimes lower, padded or capitalised."""
    return rng.choice((code, code, code, code.lower(), f" {code}", f"{code.lower()} ", code.capitalize()))


def _local_stamp(rng: random.Random, utc: datetime, offset: str) -> str:
    """An RFC 3339 stamp of `utc` in local time at `offset`, milliseconds or micros when there are any."""
    minutes = int(offset[1:3]) * 60 + int(offset[4:6])
    minutes = -minutes if offset[0] == "-" else minutes
    stamp = (utc + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S")
    micros = utc.microsecond
    if micros:
        stamp += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    zulu = minutes == 0 and rng.random() < 0.5
    return stamp + ("Z" if zulu else offset)


def _offset(minutes: int) -> str:
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _serialize(rng: random.Random, event: ClickEvent) -> bytes:
    return _dump(_wire(rng, event))


def _dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# --- defects: each takes a valid event and breaks exactly one rule of the contract ---------------

def _broken_json(rng: random.Random, good: bytes) -> bytes:
    """Valid JSON broken the ways producers break it."""
    kind = rng.randrange(3)
    if kind == 0:
        return good[: rng.randrange(1, len(good) - 1)]  # truncated in flight
    if kind == 1:
        return good.replace(b'"', b"'")  # a Python repr, not JSON
    return good[:-1] + b",}"  # trailing comma


def _malformed_json(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    good = _serialize(rng, event)
    if rng.random() < 0.75:
        return _broken_json(rng, good), Reason.MALFORMED_JSON
    cut = good.index(b'"session_id"')  # a Latin-1 byte: not UTF-8
    return good[:cut] + b'"note":"caf\xe9",' + good[cut:], Reason.MALFORMED_JSON


def _not_an_object(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    wire = _wire(rng, event)
    return _dump(rng.choice(([wire], list(wire.values()), event.event_id))), Reason.NOT_AN_OBJECT


def _oversized(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    wire = _wire(rng, event)
    wire["user_agent"] = "Mozilla/5.0 " + "x" * (contract.MAX_RECORD_BYTES + rng.randrange(1, 2048))
    return _dump(wire), Reason.OVERSIZED


def _missing_field(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    wire = _wire(rng, event)
    name = rng.choice(contract.REQUIRED)
    if rng.random() < 0.7:
        del wire[name]
    else:
        wire[name] = rng.choice((None, "", "   "))
    return _dump(wire), Reason.MISSING_FIELD


def _wrong_type(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    wire = _wire(rng, event)
    kind = rng.randrange(4)
    if kind == 0:
        wire["user_id"] = int(event.user_id[2:8])  # a numeric id where the contract wants a string
    elif kind == 1:
        wire["event_time"] = int(event.event_time.timestamp())  # epoch seconds
    elif kind == 2:
        wire["product_id"] = [event.product_id or "P-00001"]
    else:
        wire["ip"] = f"{rng.randrange(256, 999)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
    return _dump(wire), Reason.WRONG_TYPE


def _unknown_event_type(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    wire = _wire(rng, event)
    wire["event_type"] = _or_personal(rng, ("purchase", "PageView", "page-view", "click", "PAGE_VIEW"))
    return _dump(wire), Reason.UNKNOWN_EVENT_TYPE


def _bad_timestamp(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    wire = _wire(rng, event)
    stamp = wire["event_time"]
    # Days away from now's UTC date, not from now itself: the default output then stays the same all day.
    today = datetime.combine(now.date(), time(), tzinfo=timezone.utc)
    kind = rng.randrange(5)
    if kind == 0:
        wire["event_time"] = rng.choice(("yesterday", "27/11/2026 10:00", "1732700000", "not a time"))
    elif kind == 1:
        wire["event_time"] = stamp[:19]  # no UTC offset: the instant is unknown
    elif kind == 2:
        wire["event_time"] = "2026-02-30" + stamp[10:]  # no such day
    elif kind == 3:  # a device clock days ahead
        wire["event_time"] = (today + timedelta(days=rng.randint(2, 30))).isoformat()
    else:  # a device clock reset to long ago
        wire["event_time"] = (today - timedelta(days=contract.MAX_AGE_DAYS + rng.randint(30, 900))).isoformat()
    return _dump(wire), Reason.BAD_TIMESTAMP


# Names, 3-letter codes, user-assigned and reserved codes (UK is not GB: decision 0415).
_BAD_COUNTRIES = ("Germany", "USA", "D1", "U.S.", "X", "ÖS", "XX", "UK")
_PERSONAL_SHARE = 0.25  # of the bad values of a field that a message quotes: personal data in the wrong field


def _or_personal(rng: random.Random, bad_values: Sequence[str]) -> str:
    """One of `bad_values`, or at times personal data that a form or a mapping put in the wrong field (an IP
    or an e-mail address): the message naming the bad value must not carry it into the lake."""
    if rng.random() >= _PERSONAL_SHARE:
        return rng.choice(bad_values)
    if rng.random() < 0.5:
        return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    return f"{rng.choice(_FIRST_NAMES)}.{rng.choice(_LAST_NAMES)}@{rng.choice(_EMAIL_DOMAINS)}"


def _bad_country(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    wire = _wire(rng, event)
    wire["country"] = _or_personal(rng, _BAD_COUNTRIES)
    return _dump(wire), Reason.BAD_COUNTRY


_DEFECTS: dict[str, Callable[[random.Random, ClickEvent, datetime], tuple[bytes, str]]] = {
    Reason.MALFORMED_JSON: _malformed_json,
    Reason.NOT_AN_OBJECT: _not_an_object,
    Reason.OVERSIZED: _oversized,
    Reason.MISSING_FIELD: _missing_field,
    Reason.WRONG_TYPE: _wrong_type,
    Reason.UNKNOWN_EVENT_TYPE: _unknown_event_type,
    Reason.BAD_TIMESTAMP: _bad_timestamp,
    Reason.BAD_COUNTRY: _bad_country,
}


def _daily_kpis(events: Iterable[ClickEvent]) -> dict[tuple[date, str], dict[str, int]]:
    """KPIs per (UTC date, country), straight from the event objects."""
    users: dict[tuple[date, str], set[str]] = {}
    sessions: dict[tuple[date, str], set[str]] = {}
    tallies: dict[tuple[date, str], Counter[str]] = {}
    metric = {"page_view": "page_views", "product_view": "product_views", "add_to_cart": "add_to_cart",
              "checkout_started": "checkouts"}
    for event in events:
        key = (event.event_time.date(), event.country)
        users.setdefault(key, set()).add(event.user_id)
        sessions.setdefault(key, set()).add(event.session_id)
        tallies.setdefault(key, Counter())[metric[event.event_type]] += 1
    return {
        key: {"active_users": len(users[key]), "sessions": len(sessions[key]),
              "events": sum(tallies[key].values()),
              **{name: tallies[key][name] for name in KPI_NAMES[3:]}}
        for key in sorted(tallies)
    }


# --- orders ------------------------------------------------------------------------------------

# Rough rates for pricing a product in each currency; the contract checks consistency, not rates.
_PRICE_RATES = {"USD": Decimal("1"), "EUR": Decimal("0.92"), "GBP": Decimal("0.79"), "JPY": Decimal("150"),
                "INR": Decimal("83"), "BRL": Decimal("5.1"), "AUD": Decimal("1.5"), "CAD": Decimal("1.36")}
_CURRENCY_OF_COUNTRY = {"US": "USD", "DE": "EUR", "FR": "EUR", "NL": "EUR", "GB": "GBP", "JP": "JPY",
                        "IN": "INR", "BR": "BRL", "AU": "AUD", "CA": "CAD"}


@dataclass(frozen=True)
class OrderItem:
    product_id: str
    qty: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderEvent:
    """One status change of an order as it happened, with the values the lake should hold for it."""

    order_id: str
    event_type: str
    event_time: datetime  # UTC
    event_time_offset: str
    user_id: str
    country: str  # the shopper's billing country: ISO code, upper case
    currency: str  # upper case
    total: Decimal
    items: tuple[OrderItem, ...]
    session_id: str | None = None  # the clickstream session that placed the order, when known


@dataclass
class GeneratedOrders(_Output):
    """An order stream: `events` are OrderEvents."""

    @property
    def expected_orders(self) -> dict[str, OrderEvent]:
        """Each order's current state: its clean event latest in event time (status order breaks ties)."""
        rank = {t: i for i, t in enumerate(orders_contract.EVENT_TYPES)}
        latest: dict[str, OrderEvent] = {}
        for event in self.clean_events:
            known = latest.get(event.order_id)
            if known is None or (event.event_time, rank[event.event_type]) > (known.event_time, rank[known.event_type]):
                latest[event.order_id] = event
        return latest


def generate_orders(n: int, seed: int, defect_rate: float = 0.05, start: datetime | None = None, days: int = 3,
                    *, now: datetime | None = None, defects: Sequence[str] | None = None,
                    sessions: Sequence[CheckoutSession] | None = None) -> GeneratedOrders:
    """`n` order events over `days` days, like `generate` (same window, determinism and defect rules):
    orders are placed, mostly paid, some cancelled or refunded; each event carries the order's items.

    `sessions` (a clickstream's `checkout_sessions`): each order is placed by one of them, in turn in a
    seeded shuffle (a session places a second order only once all have placed one), shortly after its
    checkout began, by its user in its country, and every event of the order carries its session_id.
    Sessions whose checkout began in the last `_CHECKOUT_TO_ORDER` before the window's end are left out;
    NoCheckoutSession (a ValueError) when that leaves none. None (the default): shoppers of the orders'
    own, no session_id."""
    now, start, end = _window(n, defect_rate, days, start, now, orders_contract.MAX_AGE_DAYS)
    rng = random.Random(seed)
    plan = _Plan.of(rng, n, defect_rate, _pick(_ORDER_DEFECTS, defects))
    base = _orders(rng, n - plan.duplicates, start, end, sessions)
    sent = _deliver(rng, plan, base, now, _serialize_order, lambda e: e.order_id)
    return GeneratedOrders(records=[s.record for s in sent], partition_keys=[s.key for s in sent],
                           labels=[s.label for s in sent], events=[s.event for s in sent],
                           counts=_counts([s.label for s in sent], orders_contract.REASONS))


def _orders(rng: random.Random, count: int, start: datetime, end: datetime,
            sessions: Sequence[CheckoutSession] | None = None) -> list[OrderEvent]:
    shoppers = _checkout_shoppers(rng, count, start, end, sessions) if sessions is not None else None
    users = [_user(rng, i) for i in range(max(1, count // 6))] if shoppers is None else []
    span = (end - start).total_seconds()
    events: list[OrderEvent] = []
    while len(events) < count:
        session = next(shoppers) if shoppers is not None else None
        user = rng.choice(users) if session is None else _User(session.user_id, session.country, 0, None, None,
                                                               session.whole_seconds)
        offset = _offset(user.offset_minutes) if session is None else session.event_time_offset
        currency = _CURRENCY_OF_COUNTRY.get(user.country, "USD")
        items = tuple(_item(rng, currency) for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))))
        exact = sum((i.qty * i.unit_price for i in items), Decimal(0))
        total = exact.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]), rounding=ROUND_HALF_EVEN)
        order_id = f"o-{uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]}"
        if session is None:
            t = start + timedelta(milliseconds=rng.randrange(int(span * 1000)))
        else:
            t = session.checkout_at + timedelta(milliseconds=rng.randrange(
                5_000, int(_CHECKOUT_TO_ORDER.total_seconds() * 1000)))
        steps = [("order_placed", t)]
        if rng.random() < 0.85:
            steps.append(("order_paid", t + timedelta(seconds=rng.randrange(20, 1800))))
            if rng.random() < 0.06:
                steps.append(("order_refunded", steps[-1][1] + timedelta(hours=rng.uniform(1, 36))))
        elif rng.random() < 0.5:
            steps.append(("order_cancelled", t + timedelta(minutes=rng.randrange(10, 360))))
        for event_type, at in steps:
            if at >= end or len(events) == count:
                break
            at = at.replace(microsecond=0) if user.whole_seconds else at.replace(microsecond=at.microsecond // 1000 * 1000)
            events.append(OrderEvent(order_id, event_type, at, offset, user.user_id, user.country, currency, total,
                                     items, None if session is None else session.session_id))
    return events


# An order is placed within this long after its session's checkout began.
_CHECKOUT_TO_ORDER = timedelta(minutes=10)


class NoCheckoutSession(ValueError):
    """generate_orders was given sessions, but none that can place an order inside its window."""


def _checkout_shoppers(rng: random.Random, count: int, start: datetime, end: datetime,
                       sessions: Sequence[CheckoutSession]) -> Iterator[CheckoutSession]:
    """The sessions to place orders, each in turn of a seeded shuffle, over and over: those whose checkout
    began in the window early enough for the order to be placed in it too."""
    fit = [s for s in sessions if start <= s.checkout_at and s.checkout_at + _CHECKOUT_TO_ORDER <= end]
    if count and not fit:
        raise NoCheckoutSession(f"none of the {len(sessions)} checkout session(s) began checking out between "
                         f"{start.isoformat()} and {(end - _CHECKOUT_TO_ORDER).isoformat()}, so no order can be "
                         "placed by one inside the window")
    while True:
        turn = list(fit)
        rng.shuffle(turn)
        yield from turn


def _item(rng: random.Random, currency: str) -> OrderItem:
    number = rng.randrange(1, 2000)
    usd = Decimal(499 + number * 7919 % 49_500) / 100  # a fixed price per product: 4.99 to 499.98
    price = (usd * _PRICE_RATES.get(currency, Decimal(1))).quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]))
    return OrderItem(f"P-{number:05d}", rng.choice((1, 1, 1, 1, 2, 2, 3, 5)), price)


def _order_wire(rng: random.Random, event: OrderEvent) -> dict[str, Any]:
    """The order event as its producer writes it: amounts as JSON numbers, country and currency in any case."""
    currency = rng.choice((event.currency,) * 6 + (event.currency.lower(), f" {event.currency} "))
    return {
        "order_id": event.order_id, "event_type": event.event_type,
        "event_time": _local_stamp(rng, event.event_time, event.event_time_offset),
        "user_id": event.user_id, "country": _sloppy_country(rng, event.country), "currency": currency, "total": _number(event.total),
        "items": [{"product_id": i.product_id, "qty": i.qty, "unit_price": _number(i.unit_price)} for i in event.items],
        # optional (contract v3): a producer that does not know the session leaves it out
        **({} if event.session_id is None else {"session_id": event.session_id}),
    }


def _number(amount: Decimal) -> int | float:
    # float's repr is the shortest that round-trips: 19.99 is written "19.99", read back exactly.
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _serialize_order(rng: random.Random, event: OrderEvent) -> bytes:
    return _dump(_order_wire(rng, event))


def _order_malformed(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    return _broken_json(rng, _serialize_order(rng, event)), OrderReason.MALFORMED_JSON


def _order_not_an_object(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    return _dump([_order_wire(rng, event)]), OrderReason.NOT_AN_OBJECT


def _order_oversized(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    wire["note"] = "x" * (orders_contract.MAX_RECORD_BYTES + rng.randrange(1, 2048))
    return _dump(wire), OrderReason.OVERSIZED


def _order_missing(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    name = rng.choice(orders_contract.REQUIRED)
    if rng.random() < 0.6:
        del wire[name]
    elif name == "items":
        wire[name] = rng.choice((None, []))
    else:
        wire[name] = None if name == "total" else rng.choice((None, "", "  "))
    return _dump(wire), OrderReason.MISSING_FIELD


def _order_wrong_type(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    kind = rng.randrange(4)
    if kind == 0:
        wire["total"] = str(event.total)  # a string where the contract wants a number
    elif kind == 1:
        wire["items"][0]["qty"] = event.items[0].qty + 0.5
    elif kind == 2:
        wire["items"] = wire["items"][0]  # one object, not an array
    else:
        wire["user_id"] = int(event.user_id[2:8])
    return _dump(wire), OrderReason.WRONG_TYPE


def _order_unknown_type(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    wire["event_type"] = _or_personal(rng, ("order_shipped", "OrderPlaced", "placed", "ORDER_PAID"))
    return _dump(wire), OrderReason.UNKNOWN_EVENT_TYPE


def _order_bad_timestamp(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    today = datetime.combine(now.date(), time(), tzinfo=timezone.utc)
    wire["event_time"] = rng.choice((
        wire["event_time"][:19], "not a time",
        (today + timedelta(days=rng.randint(2, 30))).isoformat(),
        (today - timedelta(days=orders_contract.MAX_AGE_DAYS + rng.randint(30, 900))).isoformat(),
    ))
    return _dump(wire), OrderReason.BAD_TIMESTAMP


def _order_bad_country(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    wire["country"] = _or_personal(rng, _BAD_COUNTRIES)
    return _dump(wire), OrderReason.BAD_COUNTRY


def _order_unknown_currency(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    wire["currency"] = _or_personal(rng, ("EURO", "US$", "XAU", "BTC", "EU", "usdd"))
    return _dump(wire), OrderReason.UNKNOWN_CURRENCY


def _order_negative_amount(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    if rng.random() < 0.5:
        wire["total"] = -wire["total"] if wire["total"] else -1  # a refund sent as a negative total
    else:  # a negative price, with a total that matches it
        item = wire["items"][0]
        item["unit_price"] = -item["unit_price"] if item["unit_price"] else -1
        exact = sum((Decimal(str(i["unit_price"])) * i["qty"] for i in wire["items"]), Decimal(0))
        wire["total"] = _number(exact.quantize(Decimal(1).scaleb(-MINOR_UNITS[event.currency]), rounding=ROUND_HALF_EVEN))
    return _dump(wire), OrderReason.NEGATIVE_AMOUNT


def _order_bad_quantity(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    wire["items"][0]["qty"] = rng.choice((0, -1, orders_contract.MAX_QUANTITY + 1))
    return _dump(wire), OrderReason.BAD_QUANTITY


def _order_total_mismatch(rng: random.Random, event: OrderEvent, now: datetime) -> tuple[bytes, str]:
    wire = _order_wire(rng, event)
    unit = Decimal(1).scaleb(-MINOR_UNITS[event.currency])
    wire["total"] = _number(event.total + unit * rng.choice((1, 100, -1)) if event.total >= unit else event.total + 1)
    return _dump(wire), OrderReason.TOTAL_MISMATCH


_ORDER_DEFECTS: dict[str, Callable[[random.Random, OrderEvent, datetime], tuple[bytes, str]]] = {
    OrderReason.MALFORMED_JSON: _order_malformed,
    OrderReason.NOT_AN_OBJECT: _order_not_an_object,
    OrderReason.OVERSIZED: _order_oversized,
    OrderReason.MISSING_FIELD: _order_missing,
    OrderReason.WRONG_TYPE: _order_wrong_type,
    OrderReason.UNKNOWN_EVENT_TYPE: _order_unknown_type,
    OrderReason.BAD_TIMESTAMP: _order_bad_timestamp,
    OrderReason.BAD_COUNTRY: _order_bad_country,
    OrderReason.UNKNOWN_CURRENCY: _order_unknown_currency,
    OrderReason.NEGATIVE_AMOUNT: _order_negative_amount,
    OrderReason.BAD_QUANTITY: _order_bad_quantity,
    OrderReason.TOTAL_MISMATCH: _order_total_mismatch,
}
