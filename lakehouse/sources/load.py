"""A bounded load generator: the generator's clickstream put to a Kinesis stream at a fixed rate for a fixed
time, then it stops by itself (benchmarks/freshness.py; meant for the soak, issue 15, too).

`LoadSpec` says how much: `rate` events a second for `seconds`, `defect_rate` of them broken or re-sent by the
generator (lakehouse/sources/generator.py), `resend_rate` of the PutRecords calls sent again whole a little
later (a producer that retried a call whose answer it lost), and a marker every `marker_every` seconds: a clean
event of its own PutRecords call, whose event_id the caller can look for downstream. `prepare` generates every
record before the clock starts (the ground truth comes from the generator's own events, never from the
pipeline); `send` puts them on schedule, through the project's producer (PutRecords, failed entries retried),
and reports what it achieved: a sender that falls behind says so, it never silently sends less.
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from lakehouse.sources.generator import generate
from lakehouse.sources.producer import MAX_RECORDS_PER_CALL, put_records

TICK_SECONDS = 0.1  # the sender wakes this often and sends what the schedule says is due by then
RESEND_DELAY_SECONDS = 2.0  # a re-sent call goes again this long after the first time
MAX_RATE = 100_000  # events a second: far beyond one machine; a typo's guard, not a limit of the pipeline
_MARKER_SEED_OFFSET = 1_000_003  # markers come from a generator run of their own (their own event ids)


class LoadError(ValueError):
    """A load that cannot be run as asked: the message names the parameter."""


@dataclass(frozen=True)
class LoadSpec:
    rate: float = 1000.0  # events a second (markers and re-sends come on top)
    seconds: float = 300.0
    defect_rate: float = 0.05  # the generator's: broken records (one defect each) and its own re-sends
    resend_rate: float = 0.0  # share of the PutRecords calls sent again whole, RESEND_DELAY_SECONDS later
    marker_every: float = 1.0  # seconds between markers; 0: none
    seed: int = 7

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.rate <= MAX_RATE:
            problems.append(f"rate must be more than 0 and at most {MAX_RATE:,} events a second, got {self.rate:g}")
        if not 0 < self.seconds <= 7 * 86400:
            problems.append(f"seconds must be more than 0 and at most a week, got {self.seconds:g}")
        if not 0 <= self.defect_rate <= 0.9:
            problems.append(f"defect_rate must be between 0 and 0.9, got {self.defect_rate:g}")
        if not 0 <= self.resend_rate <= 1:
            problems.append(f"resend_rate must be between 0 and 1, got {self.resend_rate:g}")
        if self.marker_every < 0 or 0 < self.marker_every < TICK_SECONDS:
            problems.append(f"marker_every must be 0 (no markers) or at least {TICK_SECONDS} s, got {self.marker_every:g}")
        if problems:
            raise LoadError("; ".join(problems))

    @property
    def events(self) -> int:
        """How many generated events the load sends (markers and re-sends not counted)."""
        return round(self.rate * self.seconds)

    @property
    def markers(self) -> int:
        return int(self.seconds / self.marker_every) if self.marker_every else 0


@dataclass(frozen=True)
class Prepared:
    """Every record of a load, generated before it starts, and what the pipeline should make of them."""
    spec: LoadSpec
    records: list[bytes]
    keys: list[str]
    marker_records: list[bytes]
    marker_keys: list[str]
    marker_ids: list[str]
    clean_ids: frozenset[str]  # the distinct clean events of the load and the markers: what silver should hold


def prepare(spec: LoadSpec, now: datetime | None = None) -> Prepared:
    """Generate the load's records and its markers (clean events of a generator run with another seed)."""
    now = now or datetime.now(timezone.utc)
    load = generate(spec.events, seed=spec.seed, defect_rate=spec.defect_rate, now=now)
    markers = generate(spec.markers, seed=spec.seed + _MARKER_SEED_OFFSET, defect_rate=0.0, now=now)
    marker_ids = [e.event_id for e in markers.events]
    clean = {e.event_id for e in load.clean_events} | set(marker_ids)
    if len(clean) != len(load.clean_events) + len(marker_ids):
        raise LoadError("a marker's event id is also a load event's: choose another seed")
    return Prepared(spec, load.records, load.partition_keys, markers.records, markers.partition_keys, marker_ids,
                    frozenset(clean))


@dataclass(frozen=True)
class Marker:
    event_id: str
    due_s: float  # on the schedule, seconds after the start
    sent_s: float  # when its PutRecords call returned, seconds after the start
    sent_at: float  # the same moment on time.monotonic() (system-wide on Linux: comparable across processes)


@dataclass
class LoadResult:
    spec: LoadSpec
    started_at: float = 0.0  # time.monotonic()
    elapsed_s: float = 0.0  # from the start to the call of the load's last record returning
    sent_events: int = 0  # the load's generated records put (markers and re-sends not counted)
    resent_records: int = 0
    calls: int = 0
    retried_entries: int = 0
    max_behind_s: float = 0.0  # the furthest the sender fell behind its schedule
    markers: list[Marker] = field(default_factory=list)

    @property
    def achieved_rate(self) -> float:
        """The load's events a second, as sent: its generated records over the time it took."""
        return self.sent_events / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def records_sent(self) -> int:
        """Every record put on the stream: the load's, the markers and the re-sends."""
        return self.sent_events + len(self.markers) + self.resent_records

    @property
    def sustained(self) -> bool:
        """Kept to the schedule: never more than a second behind it."""
        return self.max_behind_s <= 1.0


Put = Callable[[Sequence[bytes], Sequence[str]], Any]  # put these records with these keys; returns a PutResult


def kinesis_put(stream_name: str, client: Any = None) -> Put:
    """PutRecords to `stream_name` through the project's producer (AWS, or the local cloud by AWS_ENDPOINT_URL)."""
    import boto3

    kinesis = client or boto3.client("kinesis")
    kinesis.describe_stream_summary(StreamName=stream_name)  # the connection made before the clock starts
    return lambda records, keys: put_records(stream_name, records, keys, client=kinesis)


def send(prepared: Prepared, put: Put, on_marker: Callable[[Marker], None] = lambda _: None,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> LoadResult:
    """Put the prepared records on schedule (`rate` a second, sent every TICK_SECONDS), each marker in its own
    call when due, and the re-sends; stops once everything is sent. `on_marker` hears of each marker as its
    call returns."""
    spec = prepared.spec
    rng = random.Random(spec.seed)
    result = LoadResult(spec)
    start = result.started_at = clock()
    sent = marker = 0
    resends: list[tuple[float, list[bytes], list[str]]] = []  # (due, records, keys)
    tick = 0
    while sent < len(prepared.records) or marker < spec.markers or resends:
        tick += 1
        now = clock() - start
        result.max_behind_s = max(result.max_behind_s, now - sent / spec.rate if sent < len(prepared.records) else 0.0)
        while marker < spec.markers and marker * spec.marker_every <= now:
            _put(put, result, [prepared.marker_records[marker]], [prepared.marker_keys[marker]])
            returned = clock()
            result.markers.append(Marker(prepared.marker_ids[marker], marker * spec.marker_every, returned - start,
                                         returned))
            on_marker(result.markers[-1])
            marker += 1
        due = min(len(prepared.records), int(spec.rate * now))
        while sent < due:
            upto = min(due, sent + MAX_RECORDS_PER_CALL)
            records, keys = prepared.records[sent:upto], prepared.keys[sent:upto]
            _put(put, result, records, keys)
            if rng.random() < spec.resend_rate:
                resends.append((clock() - start + RESEND_DELAY_SECONDS, records, keys))
            sent = result.sent_events = upto
            result.elapsed_s = clock() - start
        for item in [r for r in resends if r[0] <= clock() - start]:
            _put(put, result, item[1], item[2])
            result.resent_records += len(item[1])
            resends.remove(item)
        if sent < len(prepared.records) or marker < spec.markers or resends:
            sleep(max(0.0, start + tick * TICK_SECONDS - clock()))
    return result


def _put(put: Put, result: LoadResult, records: Sequence[bytes], keys: Sequence[str]) -> None:
    done = put(records, keys)
    result.calls += getattr(done, "calls", 1)
    result.retried_entries += getattr(done, "retried_entries", 0)
