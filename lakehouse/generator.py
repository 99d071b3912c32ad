"""Synthetic clickstream of an online shop, with a controlled share of defects and its ground truth.

Users browse in sessions along the funnel page_view -> product_view -> add_to_cart ->
checkout_started, with drop-off at each step. Producers are imperfect the way real ones are:
country codes in any case and padded, local times with their UTC offset, e-mail addresses in
URLs, late arrivals. A `defect_rate` share of the records is broken on purpose, one defect each
(malformed JSON, a missing field, a bad timestamp, an unknown event type, ...; see
`_DEFECTS`), or is an exact re-send of an earlier record.

The ground truth (labels, counts, expected KPIs) comes from the generator's own event objects,
never from the cleaner, so comparing the two is a real check. Same arguments (and the same UTC
date of `now`), same bytes.
"""
from __future__ import annotations

import ipaddress
import json
import random
import uuid
from collections import Counter
from itertools import accumulate
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

from lambdas.contracts import clickstream as contract
from lambdas.contracts.clickstream import Reason

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
        """The IP as the lake should hold it: its /24 (IPv4) or /48 (IPv6) network address."""
        if self.ip is None:
            return None
        address = ipaddress.ip_address(self.ip)
        bits = contract.IPV4_PREFIX_BITS if address.version == 4 else contract.IPV6_PREFIX_BITS
        return str(ipaddress.ip_network(f"{address}/{bits}", strict=False).network_address)


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
class Generated:
    """What was sent (`records`, in send order) and what the pipeline should make of it."""

    records: list[bytes]
    partition_keys: list[str]
    labels: list[str]  # per record: "clean", "duplicate" or a contract reason code
    events: list[ClickEvent | None]  # per record: the event behind a clean or duplicate record
    counts: Counts
    expected_daily_kpis: dict[tuple[date, str], dict[str, int]] = field(repr=False)

    @property
    def clean_events(self) -> list[ClickEvent]:
        """The distinct events the lake should end up with, in send order."""
        return [e for e, label in zip(self.events, self.labels) if label == LABEL_CLEAN and e is not None]

    def to_ndjson(self, path: Path | str) -> Path:
        """Write the records, one per line, byte for byte (no record contains a newline byte)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(record + b"\n" for record in self.records))
        return path


@dataclass(frozen=True)
class _User:
    user_id: str
    country: str
    offset_minutes: int
    ip: str | None
    user_agent: str | None
    whole_seconds: bool  # its client sends no fraction of a second


def generate(n: int, seed: int, defect_rate: float = 0.05, start: datetime | None = None, days: int = 3,
             *, now: datetime | None = None) -> Generated:
    """`n` records over `days` days from `start` (default: the `days` whole UTC days before `now`).

    Every event lies inside the contract's accepted window relative to `now` (default: the wall
    clock). Only `now`'s UTC date shapes the output: the same arguments give the same bytes all day,
    and on every day when `now` is passed.
    """
    now = _check_args(n, defect_rate, days, start, now)
    if start is None:
        start = datetime.combine((now - timedelta(days=days)).date(), time(), tzinfo=timezone.utc)
    end = start + timedelta(days=days)
    if start < now - timedelta(days=contract.MAX_AGE_DAYS - 1) or end > now:
        raise ValueError(f"events from {start.isoformat()} to {end.isoformat()} would fall outside the contract's "
                         f"window relative to now={now.isoformat()} (at most {contract.MAX_AGE_DAYS - 1} days "
                         "back, none in the future)")
    rng = random.Random(seed)
    n_defective = round(n * defect_rate)
    n_duplicates = min(round(n_defective * _DUPLICATE_SHARE), n - n_defective)
    n_bad = n_defective - n_duplicates
    base = _sessions(rng, n - n_duplicates, start, end)

    bad_at = dict(zip(sorted(rng.sample(range(len(base)), n_bad)), _defect_kinds(rng, n_bad)))
    # Send order: by event time plus a delivery delay, mostly seconds, sometimes hours or days.
    delays = [rng.uniform(3600, 2 * 86400) if rng.random() < _LATE_SHARE else rng.uniform(0, 5) for _ in base]
    order = sorted(range(len(base)), key=lambda i: (base[i].event_time + timedelta(seconds=delays[i]), i))

    sent: list[tuple[float, bytes, str, str, ClickEvent | None]] = []
    for position, i in enumerate(order):
        event = base[i]
        if i in bad_at:
            record, reason = _DEFECTS[bad_at[i]](rng, event, now)
            sent.append((position, record, event.session_id, reason, None))
        else:
            sent.append((position, _serialize(rng, event), event.session_id, LABEL_CLEAN, event))
    originals = [s for s in sent if s[3] == LABEL_CLEAN]
    for k in range(n_duplicates):
        position, record, key, _, event = rng.choice(originals)
        # Placed between two originals (x.5), after its own; k keeps their order among themselves.
        resend_at = position + rng.randint(1, _MAX_RESEND_DISTANCE) - 0.5 + k / (n_duplicates + 1) / 2
        sent.append((resend_at, record, key, LABEL_DUPLICATE, event))
    sent.sort(key=lambda s: s[0])

    records = [s[1] for s in sent]
    assert all(b"\n" not in r for r in records), "a generated record contains a newline byte"
    labels = [s[3] for s in sent]
    tally = Counter(labels)
    counts = Counts(
        received=len(records), clean=tally[LABEL_CLEAN], duplicates=tally[LABEL_DUPLICATE],
        quarantined_by_reason={r: tally[r] for r in contract.Reason.ALL if tally[r]},
    )
    events = [s[4] for s in sent]
    return Generated(records=records, partition_keys=[s[2] for s in sent], labels=labels, events=events,
                     counts=counts, expected_daily_kpis=_daily_kpis(e for e, l in zip(events, labels)
                                                                    if l == LABEL_CLEAN))


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
        event_time_offset=f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
        user_id=user.user_id, session_id=session_id, page_url=url, page_url_redacted=redacted,
        product_id=product_id, user_agent=user.user_agent, ip=user.ip, country=user.country,
    )


def _wire(rng: random.Random, event: ClickEvent) -> dict[str, Any]:
    """The event as its producer writes it: local time with offset, sloppy country, stray spaces."""
    minutes = int(event.event_time_offset[1:3]) * 60 + int(event.event_time_offset[4:6])
    minutes = -minutes if event.event_time_offset[0] == "-" else minutes
    local = event.event_time + timedelta(minutes=minutes)
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S")
    micros = event.event_time.microsecond
    if micros:
        stamp += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    zulu = minutes == 0 and rng.random() < 0.5
    stamp += "Z" if zulu else event.event_time_offset
    country = rng.choice((event.country, event.country, event.country, event.country.lower(),
                          f" {event.country}", f"{event.country.lower()} ", event.country.capitalize()))
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


def _serialize(rng: random.Random, event: ClickEvent) -> bytes:
    return _dump(_wire(rng, event))


def _dump(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


# --- defects: each takes a valid event and breaks exactly one rule of the contract ---------------

def _malformed_json(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    good = _serialize(rng, event)
    kind = rng.randrange(4)
    if kind == 0:
        return good[: rng.randrange(1, len(good) - 1)], Reason.MALFORMED_JSON  # truncated in flight
    if kind == 1:
        return good.replace(b'"', b"'"), Reason.MALFORMED_JSON  # a Python repr, not JSON
    if kind == 2:
        return good[:-1] + b",}", Reason.MALFORMED_JSON  # trailing comma
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
    wire["event_type"] = rng.choice(("purchase", "PageView", "page-view", "click", "PAGE_VIEW"))
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


def _bad_country(rng: random.Random, event: ClickEvent, now: datetime) -> tuple[bytes, str]:
    wire = _wire(rng, event)
    wire["country"] = rng.choice(("Germany", "USA", "D1", "U.S.", "X", "ÖS"))
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


def _defect_kinds(rng: random.Random, count: int) -> list[str]:
    """Every kind in turn (so even a small sample has each), in random order."""
    kinds = [list(_DEFECTS)[i % len(_DEFECTS)] for i in range(count)]
    rng.shuffle(kinds)
    return kinds


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
