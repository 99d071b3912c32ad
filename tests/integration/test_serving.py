"""The serving file: real Iceberg tables exported into a real DuckDB file, read as Superset reads it."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from iceberg_tables.specs import GOLD_DAILY_KPIS, LIVE_EVENTS
from lakehouse.analytics.athena import UnknownTableError
from lakehouse.analytics.serving import SERVED_VIEWS, export_serving
from tests.fixtures.superset import KpiLake, append_daily_kpis, daily_kpis_rows, make_lake

COLUMNS = [c.name for c in GOLD_DAILY_KPIS.columns]


def read_only(db_path: Path) -> duckdb.DuckDBPyConnection:
    """Opened as Superset opens it (?access_mode=read_only)."""
    return duckdb.connect(str(db_path), read_only=True)


def test_export_holds_every_gold_row_with_the_iceberg_types(kpi_lake: KpiLake, tmp_path: Path) -> None:
    db_path = export_serving(kpi_lake.catalog, tmp_path / "serving.duckdb")
    con = read_only(db_path)
    rows = con.execute(f"SELECT {', '.join(COLUMNS)} FROM gold.daily_kpis").fetchall()
    assert sorted(rows) == sorted(tuple(r[c] for c in COLUMNS) for r in kpi_lake.rows)
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_schema = 'gold' AND table_name = 'daily_kpis'").fetchall())
    assert types["event_date"] == "DATE" and types["events"] == "BIGINT"
    assert types["updated_at"] == "TIMESTAMP WITH TIME ZONE"


def test_by_default_gold_and_ops_are_served_with_every_tables_snapshots(kpi_lake: KpiLake, tmp_path: Path) -> None:
    con = read_only(export_serving(kpi_lake.catalog, tmp_path / "serving.duckdb"))
    served = con.execute("SELECT table_schema || '.' || table_name FROM information_schema.tables").fetchall()
    tables = {".".join(t) for ns in kpi_lake.catalog.list_namespaces() for t in kpi_lake.catalog.list_tables(ns)}
    live_metrics = {v.full_name for v in SERVED_VIEWS} if LIVE_EVENTS.full_name in tables else set()
    assert sorted(t for (t,) in served) == sorted(
        {t for t in tables if t.startswith(("gold.", "ops."))} | {f"{t}$snapshots" for t in tables} | live_metrics)
    kpis = kpi_lake.catalog.load_table("gold.daily_kpis")
    snapshots = con.execute('SELECT snapshot_id, parent_id, operation, epoch_ms(committed_at) '
                            'FROM gold."daily_kpis$snapshots" ORDER BY committed_at').fetchall()
    assert snapshots == [(s.snapshot_id, s.parent_snapshot_id, s.summary.operation.value, s.timestamp_ms)
                         for s in kpis.metadata.snapshots]
    assert len(snapshots) == 2  # the fixture's two commits


def test_export_replaces_the_file_while_a_reader_has_it_open(tmp_path: Path) -> None:
    catalog = make_lake(tmp_path / "lake")
    first = daily_kpis_rows(seed=3, days=2)
    later = daily_kpis_rows(seed=4, days=1, first_day=dt.date(2026, 12, 1))
    append_daily_kpis(catalog, first)
    db_path = export_serving(catalog, tmp_path / "serving" / "serving.duckdb")
    reader = read_only(db_path)  # a running Superset's connection
    append_daily_kpis(catalog, later)
    export_serving(catalog, db_path)  # no lock conflict with the reader

    total = "SELECT SUM(events) FROM gold.daily_kpis"
    assert reader.execute(total).fetchone() == (sum(r["events"] for r in first),)  # still the complete old file
    # DuckDB shares one instance per path inside a process: the next connection opens the new
    # file once the old one is closed (Superset opens a connection per query)
    reader.close()
    assert read_only(db_path).execute(total).fetchone() == (sum(r["events"] for r in first + later),)
    assert sorted(p.name for p in db_path.parent.iterdir()) == ["serving.duckdb"]  # no temp file or .wal left


def test_unknown_table_is_refused_and_the_served_file_is_kept(kpi_lake: KpiLake, tmp_path: Path) -> None:
    db_path = export_serving(kpi_lake.catalog, tmp_path / "serving.duckdb")
    before = db_path.read_bytes()
    with pytest.raises(UnknownTableError, match=r"gold\.nope.*gold\.daily_kpis"):
        export_serving(kpi_lake.catalog, db_path, tables=["gold.daily_kpis", "gold.nope"])
    assert db_path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["serving.duckdb"]
