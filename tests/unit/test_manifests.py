"""Every writer's manifest goes through lambdas/common/manifests.py: the index entry first, in the hour of the
write (docs/decisions/0114)."""
from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from lambdas.cleaner.handler import handler
from lambdas.common import manifests
from lambdas.contracts import lake_layout
from tests.fixtures.kinesis_events import ARRIVAL, kinesis_event
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)
from tests.index_entries import without_index_entries
from tests.spark.staging import drop_catalog, write_fx_day


def test_the_index_entry_is_written_before_the_manifest_in_the_hour_of_the_write() -> None:
    written: list[tuple[str, bytes]] = []
    at = datetime(2026, 12, 7, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))  # 04 UTC the next day
    uri = manifests.write_manifest("s3://staging", "orders", "ingest_hour=2026-12-06-10/b.json", {"clean": 1},
                                   put=lambda u, data: written.append((u, data)), written_at=at)
    assert uri == "s3://staging/manifests/orders/ingest_hour=2026-12-06-10/b.json"
    assert [u for u, _ in written] == [
        "s3://staging/manifest-index/orders/written_hour=2026-12-08-04/ingest_hour=2026-12-06-10/b.json", uri]
    assert json.loads(written[0][1]) == {"manifest": "ingest_hour=2026-12-06-10/b.json"}
    assert json.loads(written[1][1]) == {"clean": 1}


def test_without_a_time_the_entry_takes_the_wall_clocks_hour(tmp_path: Path) -> None:
    before = datetime.now(timezone.utc)
    manifests.write_manifest(tmp_path.as_uri(), "orders", "b.json", {})
    after = datetime.now(timezone.utc)
    (entry,) = (tmp_path / "manifest-index" / "orders").rglob("b.json")
    assert entry.parent.name in {lake_layout.written_hour_folder(before), lake_layout.written_hour_folder(after)}


def assert_each_manifest_indexed_once(staging: Path) -> None:
    keys = {str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file()}
    assert any(key.startswith("manifests/") for key in keys)
    without_index_entries(keys)


def test_the_cleaner_indexes_its_manifest(lake: Path) -> None:
    event = {"event_id": "e1", "event_type": "page_view", "event_time": ARRIVAL.isoformat(), "user_id": "u1",
             "session_id": "s1", "country": "fr"}
    assert handler(kinesis_event([json.dumps(event).encode(), b"{oops"]), None) == {"batchItemFailures": []}
    assert_each_manifest_indexed_once(lake / "staging")


def test_the_file_loader_indexes_its_manifest(tmp_path: Path) -> None:
    drop_catalog(tmp_path / "staging", "catalog.csv", ["p1,Mug,kitchen,9.50,EUR,true,2026-03-01T00:00:00Z"],
                 ingested_at=datetime(2026, 3, 1, tzinfo=timezone.utc))
    assert_each_manifest_indexed_once(tmp_path / "staging")


def test_the_fx_connector_indexes_its_manifest(tmp_path: Path) -> None:
    write_fx_day(tmp_path / "staging", date(2026, 3, 1), {"EUR": 1.1}, bad={"XXX": "UNKNOWN_CURRENCY"})
    assert_each_manifest_indexed_once(tmp_path / "staging")
