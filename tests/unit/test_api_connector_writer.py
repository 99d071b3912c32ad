"""The FX connector's writer on the local lake: deterministic paths, atomic and idempotent writes,
a manifest that balances, and a day folder that holds exactly the latest fetch."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lambdas.api_connector.client import Response
from lambdas.api_connector.day import DayResult, fetch_day
from lambdas.api_connector.writer import CLEAN_SCHEMA, QUARANTINE_SCHEMA, write_day
from lambdas.common.storage import Locations
from lambdas.contracts import lake_layout
from lambdas.contracts.fx_rates import Reason

DAY = date(2026, 6, 30)
GOOD = {"date": "2026-06-30", "quote_currency": "USD", "page": 1, "next_page": None,
        "rates": [{"currency": "EUR", "rate": 1.0712}, {"currency": "CHF", "rate": 1.1234},
                  {"currency": "XAU", "rate": 2650.0}]}


def day_from(status: int, body: bytes) -> DayResult:
    return fetch_day(DAY, lambda day, page: Response(status, body, "http://api.invalid/rates", truncated=False))


@pytest.fixture
def where(tmp_path: Path) -> Locations:
    return Locations((tmp_path / "raw").as_uri(), (tmp_path / "staging").as_uri())


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_day_is_written_to_its_deterministic_paths(tmp_path: Path, where: Locations) -> None:
    body = json.dumps(GOOD).encode()
    before = datetime.now(timezone.utc)
    manifest = write_day(day_from(200, body), where)
    hours = {lake_layout.written_hour_folder(at) for at in (before, datetime.now(timezone.utc))}
    written = files(tmp_path)
    (entry,) = [name for name in written if name.startswith("staging/manifest-index/")]
    assert {f"staging/manifest-index/fx_rates/{hour}/rate_date=2026-06-30/manifest.json" for hour in hours} & {entry}
    written.pop(entry)
    raw_name = next(name for name in written if name.startswith("raw/"))
    assert raw_name.startswith("raw/fx_rates/rate_date=2026-06-30/page-0001-") and raw_name.endswith(".json")
    assert written[raw_name] == body  # as received
    assert set(written) == {
        raw_name,
        "staging/clean/fx_rates/rate_date=2026-06-30/rates.parquet",
        "staging/quarantine/fx_rates/rate_date=2026-06-30/rejected.parquet",
        "staging/manifests/fx_rates/rate_date=2026-06-30/manifest.json",
    }

    clean = pq.read_table(tmp_path / "staging/clean/fx_rates/rate_date=2026-06-30/rates.parquet")
    assert clean.schema.equals(CLEAN_SCHEMA)
    assert clean.to_pylist() == [{"rate_date": DAY, "currency": "CHF", "usd_per_unit": 1.1234},
                                 {"rate_date": DAY, "currency": "EUR", "usd_per_unit": 1.0712}]
    quarantine = pq.read_table(tmp_path / "staging/quarantine/fx_rates/rate_date=2026-06-30/rejected.parquet")
    assert quarantine.schema.equals(QUARANTINE_SCHEMA)
    (row,) = quarantine.to_pylist()
    assert (row["reason"], row["source"], row["rate_date"], row["page"]) == \
        (Reason.UNKNOWN_CURRENCY, "fx_rates", DAY, 1)
    assert json.loads(row["raw_payload"]) == {"currency": "XAU", "rate": 2650.0}

    on_disk = json.loads(written["staging/manifests/fx_rates/rate_date=2026-06-30/manifest.json"])
    assert on_disk == manifest
    assert (manifest["received"], manifest["clean"], manifest["quarantined"], manifest["duplicates"]) == (3, 2, 1, 0)
    assert manifest["complete"] is True and manifest["pages"] == 1
    assert manifest["quarantined_by_reason"] == {Reason.UNKNOWN_CURRENCY: 1}
    assert manifest["files"] == {
        "raw": [f"{where.raw_uri}/{raw_name.removeprefix('raw/')}"],
        "clean": f"{where.staging_uri}/clean/fx_rates/rate_date=2026-06-30/rates.parquet",
        "quarantine": f"{where.staging_uri}/quarantine/fx_rates/rate_date=2026-06-30/rejected.parquet",
    }


def test_a_rerun_changes_nothing_not_even_a_modification_time(tmp_path: Path, where: Locations) -> None:
    body = json.dumps(GOOD).encode()
    write_day(day_from(200, body), where)
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    write_day(day_from(200, body), where)
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary file left behind


def test_a_missing_day_then_its_rates_leaves_exactly_the_latest_fetch(tmp_path: Path, where: Locations) -> None:
    missing = write_day(day_from(404, b'{"error": "no_rates"}'), where)
    assert missing["complete"] is False and missing["files"]["clean"] is None
    assert (missing["received"], missing["quarantined"], missing["quarantined_by_reason"]) == \
        (1, 1, {Reason.MISSING_DAY: 1})
    quarantine = tmp_path / "staging/quarantine/fx_rates/rate_date=2026-06-30/rejected.parquet"
    assert pq.read_table(quarantine).column("raw_payload").to_pylist() == [b'{"error": "no_rates"}']

    clean_only = {**GOOD, "rates": GOOD["rates"][:2]}
    staged = write_day(day_from(200, json.dumps(clean_only).encode()), where)
    assert staged["complete"] is True and staged["files"]["quarantine"] is None
    assert not quarantine.exists()  # the stale quarantine would otherwise count twice downstream
    raw = sorted(p.name for p in (tmp_path / "raw/fx_rates/rate_date=2026-06-30").iterdir())
    assert len(raw) == 2  # both answers kept as received: the raw zone is immutable

    # and the other way round: a later missing day removes the day's clean file, its rates stay in raw
    write_day(day_from(404, b'{"error": "no_rates"}'), where)
    assert not (tmp_path / "staging/clean/fx_rates/rate_date=2026-06-30/rates.parquet").exists()
    assert len(list((tmp_path / "raw/fx_rates/rate_date=2026-06-30").iterdir())) == 2
