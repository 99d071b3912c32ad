"""Tiny staging inputs for the Spark jobs (Parquet + manifests, as the cleaner writes them), and an
independent pure-Python model of what silver and gold must then hold."""
from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lambdas.cleaner.schemas import QUARANTINE_SCHEMA
from lambdas.contracts import clickstream

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


def quarantine_rows(batch_id: str, by_reason: dict[str, int]) -> list[dict[str, Any]]:
    """The rejected records of a batch, `n` per reason code, as the cleaner stages them."""
    rows = []
    for reason, count in sorted(by_reason.items()):
        for _ in range(count):
            n = len(rows)
            rows.append({"raw_payload": f'{{"batch": "{batch_id}", "n": {n}}}'.encode(), "source": clickstream.SOURCE,
                         "reason": reason, "message": f"{reason.lower()} in record {n}",
                         "shard": "shardId-000000000000", "sequence_number": f"{batch_id}-{n:04d}",
                         "ingested_at": T0 + timedelta(seconds=n)})
    return rows


def write_batch(staging: Path, batch_id: str, rows: list[dict[str, Any]], *, duplicates_dropped: int = 0,
                quarantined_by_reason: dict[str, int] | None = None, schema: pa.Schema = CLEAN_SCHEMA,
                hour: str = "2026-03-01-21") -> dict[str, Any]:
    """One cleaned batch as the cleaner stages it: clean/ and quarantine/ Parquet, then its manifest."""
    by_reason = dict(sorted((quarantined_by_reason or {}).items()))
    partition = f"ingest_hour={hour}"
    files: dict[str, str | None] = {"clean": None, "quarantine": None}
    for kind, table in (("clean", pa.Table.from_pylist(rows, schema=schema)),
                        ("quarantine", pa.Table.from_pylist(quarantine_rows(batch_id, by_reason),
                                                            schema=QUARANTINE_SCHEMA))):
        if table.num_rows:
            relative = f"{kind}/clickstream/{partition}/{batch_id}.parquet"
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, staging / relative)
            files[kind] = f"{staging.as_uri()}/{relative}"  # as lake_layout.join spells it: '=' unquoted
    manifest = {"source": clickstream.SOURCE, "contract_version": clickstream.VERSION, "batch_id": batch_id,
                "ingest_hour": hour, "received": len(rows) + sum(by_reason.values()) + duplicates_dropped,
                "clean": len(rows), "quarantined": sum(by_reason.values()), "quarantined_by_reason": by_reason,
                "duplicates": duplicates_dropped, "files": files}
    path = manifest_file(staging, batch_id, hour)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def manifest_file(staging: Path, batch_id: str, hour: str = "2026-03-01-21") -> Path:
    return staging / "manifests" / "clickstream" / f"ingest_hour={hour}" / f"{batch_id}.json"


def job_args(staging: Path, run_id: str) -> dict[str, str]:
    return {"manifest_path": (staging / "manifests" / "clickstream").as_uri(), "run_id": run_id}


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
