"""Writes one fetched day to the lake: raw bodies, clean staging, quarantine, then the manifest.

Every name derives from the day (and a raw body's name from its content), so a re-run of a day
writes the same paths, and writes nothing where the content is unchanged. The day's folder always
holds exactly the latest fetch: a clean or quarantine file the new fetch does not produce is removed
after the manifest, which is written last and lists the day's files.

  raw/fx_rates/rate_date=D/page-0001-<sha256 prefix>.json    every body as received, immutable
  staging/clean/fx_rates/rate_date=D/rates.parquet           complete days only
  staging/quarantine/fx_rates/rate_date=D/rejected.parquet   when anything was rejected
  staging/manifests/fx_rates/rate_date=D/manifest.json       received = clean + quarantined + duplicates
"""
from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from lambdas.api_connector import storage
from lambdas.api_connector.day import DayResult
from lambdas.common import manifests
from lambdas.common.storage import Locations
from lambdas.contracts import fx_rates as contract
from lambdas.contracts import lake_layout

_ARROW_TYPES = {"date": pa.date32(), "string": pa.string(), "double": pa.float64()}

# Derived from the contract, so staging follows it when it evolves.
CLEAN_SCHEMA = pa.schema([pa.field(f.name, _ARROW_TYPES[f.type], nullable=False) for f in contract.FIELDS])
QUARANTINE_SCHEMA = pa.schema([
    pa.field("raw_payload", pa.binary(), nullable=False),  # the body as received, or the entry as JSON
    pa.field("source", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),       # a contract Reason code
    pa.field("message", pa.string(), nullable=False),
    pa.field("rate_date", pa.date32(), nullable=False),
    pa.field("page", pa.int32(), nullable=False),
])


def day_folder(day_iso: str) -> str:
    return f"rate_date={day_iso}"


def write_day(result: DayResult, where: Locations) -> dict[str, Any]:
    """Write the day's files, the manifest last, remove stale ones; return the manifest."""
    source, folder = contract.SOURCE, day_folder(result.day.isoformat())
    raw = [lake_layout.join(where.raw_uri, lake_layout.raw_prefix(source), folder,
                            f"page-{page:04d}-{hashlib.sha256(body).hexdigest()[:16]}.json")
           for page, body in result.bodies]
    # Raw first: whatever fails later, what the API said is kept.
    for uri, (_, body) in zip(raw, result.bodies):
        storage.put_once(uri, body)
    clean = lake_layout.join(where.staging_uri, lake_layout.clean_prefix(source), folder, "rates.parquet")
    quarantine = lake_layout.join(where.staging_uri, lake_layout.quarantine_prefix(source), folder,
                                  "rejected.parquet")
    written = {
        clean: _parquet(_clean_table(result)) if result.complete and result.rates else None,
        quarantine: _parquet(_quarantine_table(result)) if result.quarantined else None,
    }
    for uri, data in written.items():
        if data is not None:
            storage.put(uri, data)
    manifest = {
        "source": source,
        "contract_version": contract.VERSION,
        "batch_id": folder,
        "rate_date": result.day.isoformat(),
        "complete": result.complete,
        "pages": len(result.bodies),
        "received": result.received,
        "clean": len(result.rates),
        "quarantined": len(result.quarantined),
        "quarantined_by_reason": result.quarantined_by_reason,
        "duplicates": result.duplicates,
        "missing_currencies": result.missing_currencies,
        "files": {"raw": raw, "clean": clean if written[clean] else None,
                  "quarantine": quarantine if written[quarantine] else None},
    }
    relative = f"{folder}/manifest.json"
    if storage.read(manifests.manifest_uri(where.staging_uri, source, relative)) != manifests.encode(manifest):
        # (an unchanged day writes nothing, not even an index entry: its first one still names it)
        manifests.write_manifest(where.staging_uri, source, relative, manifest, put=storage.put)
    for uri, data in written.items():
        if data is None:
            storage.remove(uri)
    return manifest


def _parquet(table: pa.Table) -> bytes:
    """The file's bytes: the same rows give the same bytes, so an unchanged day is not rewritten."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def _clean_table(result: DayResult) -> pa.Table:
    return pa.Table.from_pydict({
        "rate_date": [result.day] * len(result.rates),
        "currency": [rate.currency for rate in result.rates],
        "usd_per_unit": [rate.usd_per_unit for rate in result.rates],
    }, schema=CLEAN_SCHEMA)


def _quarantine_table(result: DayResult) -> pa.Table:
    rows = result.quarantined
    return pa.Table.from_pydict({
        "raw_payload": [row.payload for row in rows],
        "source": [contract.SOURCE] * len(rows),
        "reason": [row.reason for row in rows],
        "message": [row.message for row in rows],
        "rate_date": [result.day] * len(rows),
        "page": [row.page for row in rows],
    }, schema=QUARANTINE_SCHEMA)
