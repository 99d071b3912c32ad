"""Tiny staging inputs for the Spark jobs, as their writers stage them (Parquet + manifests: the cleaner's
for clickstream and orders, the real file loader for product catalogs, the real FX connector writer for
rates), and an independent pure-Python model of what silver and gold must then hold."""
from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lambdas.api_connector.day import DayResult
from lambdas.api_connector.validate import Rate, Rejected
from lambdas.api_connector.writer import write_day
from lambdas.cleaner.schemas import CLEAN_SCHEMAS, QUARANTINE_SCHEMA
from lambdas.common import manifests, storage
from lambdas.contracts import clickstream, lake_layout, orders
from lambdas.file_loader import loader, outputs

_ARROW = {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC")}
CLEAN_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW[f.type], nullable=not f.required) for f in clickstream.FIELDS]
    + [pa.field(name, _ARROW[kind]) for name, kind in clickstream.EXTRA_CLEAN_COLUMNS])
COLUMNS = CLEAN_SCHEMA.names
T0 = datetime(2026, 3, 1, 21, 0, tzinfo=timezone.utc)  # evenings: +offsets cross midnight in local time


def make_events(ids: range, seed: int, *, start: datetime = T0, hours: int = 60) -> list[dict[str, Any]]:
    """Events e<id> over `hours` from `start`, a few users and sessions per country."""
    rnd = random.Random(seed)
    rows = []
    for i in ids:
        event_time = start + timedelta(minutes=rnd.randrange(hours * 60), seconds=rnd.randrange(60))
        user = rnd.randrange(12)
        kind = rnd.choice(clickstream.EVENT_TYPES)
        rows.append({
            "event_id": f"e{i:04d}", "event_type": kind, "event_time": event_time,
            "user_id": f"u{user}", "session_id": f"s{user}-{rnd.randrange(3)}",
            "page_url": f"https://shop.example/p/{rnd.randrange(50)}",
            "product_id": f"p{rnd.randrange(50)}" if kind != "page_view" else None,
            "user_agent": "Mozilla/5.0", "ip": "203.0.113.0", "country": rnd.choice(("DE", "FR", "US")),
            "event_time_offset": rnd.choice(("+00:00", "+02:00", "-05:00")),
            "ingested_at": event_time + timedelta(seconds=rnd.randrange(1, 30)),
        })
    return rows


def resend(row: dict[str, Any], *, delay: timedelta, **changes: Any) -> dict[str, Any]:
    """The same event_id received again `delay` later (a negative delay: an earlier copy)."""
    return {**row, **changes, "ingested_at": row["ingested_at"] + delay}


def quarantine_rows(batch_id: str, by_reason: dict[str, int], source: str = clickstream.SOURCE) -> list[dict[str, Any]]:
    """The rejected records of a batch, `n` per reason code, as the cleaner stages them."""
    rows = []
    for reason, count in sorted(by_reason.items()):
        for _ in range(count):
            n = len(rows)
            rows.append({"raw_payload": f'{{"batch": "{batch_id}", "n": {n}}}'.encode(), "source": source,
                         "reason": reason, "message": f"{reason.lower()} in record {n}",
                         "shard": "shardId-000000000000", "sequence_number": f"{batch_id}-{n:04d}",
                         "ingested_at": T0 + timedelta(seconds=n)})
    return rows


def write_batch(staging: Path, batch_id: str, rows: list[dict[str, Any]], *, duplicates_dropped: int = 0,
                quarantined_by_reason: dict[str, int] | None = None, schema: pa.Schema = CLEAN_SCHEMA,
                hour: str = "2026-03-01-21", source: str = clickstream.SOURCE,
                written_at: datetime | None = None) -> dict[str, Any]:
    """One cleaned batch as the cleaner stages it: clean/ and quarantine/ Parquet, then its manifest (indexed
    by `written_at`, the wall clock by default)."""
    by_reason = dict(sorted((quarantined_by_reason or {}).items()))
    partition = f"ingest_hour={hour}"
    files: dict[str, str | None] = {"clean": None, "quarantine": None}
    for kind, table in (("clean", pa.Table.from_pylist(rows, schema=schema)),
                        ("quarantine", pa.Table.from_pylist(quarantine_rows(batch_id, by_reason, source),
                                                            schema=QUARANTINE_SCHEMA))):
        if table.num_rows:
            relative = f"{kind}/{source}/{partition}/{batch_id}.parquet"
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, staging / relative)
            files[kind] = f"{staging.as_uri()}/{relative}"  # as lake_layout.join spells it: '=' unquoted
    manifest = {"source": source, "contract_version": 1, "batch_id": batch_id,
                "ingest_hour": hour, "received": len(rows) + sum(by_reason.values()) + duplicates_dropped,
                "clean": len(rows), "quarantined": sum(by_reason.values()), "quarantined_by_reason": by_reason,
                "duplicates": duplicates_dropped, "files": files}
    manifests.write_manifest(staging.as_uri(), source, f"{partition}/{batch_id}.json", manifest, written_at=written_at)
    return manifest


def manifest_file(staging: Path, batch_id: str, hour: str = "2026-03-01-21", source: str = clickstream.SOURCE) -> Path:
    return staging / "manifests" / source / f"ingest_hour={hour}" / f"{batch_id}.json"


def job_args(staging: Path, run_id: str) -> dict[str, str]:
    """silver_merge's arguments, every source's manifest and manifest index prefix under `staging`, as CDK
    passes them."""
    return {**lake_layout.silver_merge_inputs(staging.as_uri()), "run_id": run_id}


# --- orders: the cleaner's staged order events ------------------------------------------------------------

ORDER_SCHEMA = CLEAN_SCHEMAS[orders.SOURCE]
ORDER_SCHEMA_V2 = pa.schema([f for f in ORDER_SCHEMA if f.name != "session_id"])  # before the session column
ORDER_SCHEMA_V1 = pa.schema([f for f in ORDER_SCHEMA_V2 if f.name != "country"])  # before the country column


def order_event(order_id: str, event_type: str, event_time: datetime, *, ingested_after: timedelta = timedelta(seconds=5),
                items: list[tuple[str, int, str]] = (("P-00001", 1, "10.00"),), currency: str = "EUR",
                country: str | None = "DE", user_id: str = "u1", session_id: str | None = None) -> dict[str, Any]:
    """One staged order event; items as (product_id, qty, unit_price); total = their sum."""
    lines = [{"product_id": p, "qty": q, "unit_price": Decimal(price)} for p, q, price in items]
    return {"order_id": order_id, "event_type": f"order_{event_type}", "event_time": event_time, "user_id": user_id,
            "country": country, "currency": currency, "total": sum((line["qty"] * line["unit_price"] for line in lines),
                                                                  Decimal(0)),
            "items": lines, "session_id": session_id, "event_time_offset": "+00:00",
            "ingested_at": event_time + ingested_after}


def write_order_batch(staging: Path, batch_id: str, rows: list[dict[str, Any]], *, v1: bool = False,
                      v2: bool = False, **kwargs: Any) -> dict[str, Any]:
    """An orders batch as the cleaner stages it; `v1`: a file of contract v1, without country (nor session_id);
    `v2`: of contract v2, without session_id."""
    schema = ORDER_SCHEMA_V1 if v1 else ORDER_SCHEMA_V2 if v2 else ORDER_SCHEMA
    return write_batch(staging, batch_id, [{k: v for k, v in r.items() if k in schema.names} for r in rows],
                       schema=schema, source=orders.SOURCE, **kwargs)


# --- products: catalog files through the real file loader ------------------------------------------------

CATALOG_HEADER = "product_id,name,category,price,currency,active,updated_at"


def drop_catalog(staging: Path, name: str, lines: list[str], ingested_at: datetime) -> dict[str, Any]:
    """A catalog CSV (CATALOG_HEADER, then `lines`) dropped in a landing folder beside `staging` and loaded by
    the real file loader, which (as its handler) skips bytes it loaded already; the file's manifest."""
    landing = staging.parent / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / name).write_text("\n".join([CATALOG_HEADER, *lines]) + "\n")
    where = outputs.Locations(landing_uri=landing.as_uri(), raw_uri=(staging.parent / "raw").as_uri(),
                              staging_uri=staging.as_uri())
    uri = (landing / name).as_uri()
    file_id = loader.content_id(uri)
    return loader.loaded_manifest(where, file_id) or loader.load_file(uri, file_id, ingested_at=ingested_at, where=where)


# --- fx_rates: days through the real connector writer ------------------------------------------------------

def write_fx_day(staging: Path, day: date, rates: dict[str, float], *, bad: dict[str, str] | None = None) -> dict[str, Any]:
    """One fetched day as the FX connector writes it: `rates` published, and `bad` (currency -> reason code)
    entries quarantined on page 1; no rates and nothing bad: the API's 404 (MISSING_DAY). Its manifest."""
    body = json.dumps({"date": day.isoformat()}).encode()
    result = DayResult(day, bodies=[(1, body)])
    result.rates = [Rate(c, v, 1, json.dumps({"currency": c, "rate": v}).encode()) for c, v in sorted(rates.items())]
    result.quarantined = [Rejected(reason, f"{c}: {reason.lower()}", json.dumps({"currency": c}).encode(), 1)
                          for c, reason in sorted((bad or {}).items())]
    if not rates and not bad:
        result.failure = Rejected("MISSING_DAY", f"{day.isoformat()}: no rates (HTTP 404)", body, 1)
        result.quarantined = [result.failure]
    result.received = len(result.rates) + len(result.quarantined)
    return write_day(result, storage.Locations(raw_uri=(staging.parent / "raw").as_uri(), staging_uri=staging.as_uri()))


def expected_silver(staged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per event_id: the earliest ingested copy (ties: the smaller row), sorted by event_id."""
    best: dict[str, dict[str, Any]] = {}
    for row in staged:
        key = (row["ingested_at"], *(str(row[c]) for c in COLUMNS))
        current = best.get(row["event_id"])
        if current is None or key < (current["ingested_at"], *(str(current[c]) for c in COLUMNS)):
            best[row["event_id"]] = row
    return sorted(best.values(), key=lambda r: r["event_id"])


def expected_gold(silver: list[dict[str, Any]]) -> dict[tuple[date, str], dict[str, int]]:
    """KPIs per (UTC date, country), counted one event at a time."""
    groups: dict[tuple[date, str], list[dict[str, Any]]] = defaultdict(list)
    for row in silver:
        groups[(row["event_time"].astimezone(timezone.utc).date(), row["country"])].append(row)
    return {key: {
        "active_users": len({r["user_id"] for r in rows}),
        "sessions": len({r["session_id"] for r in rows}),
        "events": len(rows),
        "page_views": sum(r["event_type"] == "page_view" for r in rows),
        "product_views": sum(r["event_type"] == "product_view" for r in rows),
        "add_to_cart": sum(r["event_type"] == "add_to_cart" for r in rows),
        "checkouts": sum(r["event_type"] == "checkout_started" for r in rows),
    } for key, rows in groups.items()}


def rows_by_event_id(table: pa.Table) -> list[dict[str, Any]]:
    return sorted(table.select(COLUMNS).to_pylist(), key=lambda r: r["event_id"])
