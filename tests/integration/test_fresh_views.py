"""fresh.events on real files: the real cleaner stages batches, the live committer registers them, silver
receives some of them as a merge would, and the Athena stand-in's fresh.events holds each clean event of the
generator exactly once: from silver once merged, from live until then. (Across a real Spark batch run:
tests/spark.)"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog import Catalog

from iceberg_tables.catalogs import local_catalog
from iceberg_tables.migrator import migrate
from iceberg_tables.specs import (ALL_TABLES, LIVE_EVENTS, LIVE_ORDER_EVENTS, LIVE_TABLES, SILVER_EVENTS,
                                  SILVER_ORDER_EVENTS)
from iceberg_tables.views import ALL_VIEWS, FRESH_EVENTS, FRESH_ORDER_EVENTS, ORIGIN
from lakehouse.analytics.athena import connect, query
from lambdas.live_committer.committer import commit
from tests.fixtures.kinesis_events import cleaner_lake as lake  # noqa: F401 (a fixture)
from tests.fixtures.staged_batches import stage, staged


@pytest.fixture
def catalog(lake: Path) -> Catalog:  # noqa: F811 (the fixture above)
    both = local_catalog(lake / "warehouse", lake / "catalog.db")
    migrate(both, (*ALL_TABLES, *LIVE_TABLES))
    return both


def merge_into_silver(catalog: Catalog, manifest: dict) -> None:
    """What silver_merge does to one batch, for this test: its clean rows not in silver yet, with its batch id."""
    held = {r[0] for r in query(catalog, "SELECT event_id FROM silver.events")[1]}
    rows = [r for r in pq.read_table(manifest["files"]["clean"].removeprefix("file://")).to_pylist()
            if r["event_id"] not in held]
    first = {}
    for row in sorted(rows, key=lambda r: r["ingested_at"]):
        first.setdefault(row["event_id"], {**row, "batch_id": manifest["batch_id"]})
    table = catalog.load_table(SILVER_EVENTS.full_name)
    table.append(pa.Table.from_pylist(list(first.values()), schema=table.schema().as_arrow()))


def fresh(catalog: Catalog) -> Counter:
    return Counter(query(catalog, f"SELECT event_id, {ORIGIN} FROM {FRESH_EVENTS.full_name}")[1])


def test_each_clean_event_once_from_live_then_from_silver_once_merged(catalog: Catalog) -> None:
    manifests, clean_ids = stage(3)
    commit(catalog.load_table(LIVE_EVENTS.full_name), staged(manifests))
    before = fresh(catalog)
    assert {event_id for event_id, _ in before} == clean_ids and set(before.values()) == {1}
    assert {origin for _, origin in before} == {"live"}

    merge_into_silver(catalog, manifests[0])
    middle = fresh(catalog)
    assert {event_id for event_id, _ in middle} == clean_ids and set(middle.values()) == {1}
    from_silver = {event_id for event_id, origin in middle if origin == "silver"}
    assert from_silver == {r["event_id"] for r in pq.read_table(
        manifests[0]["files"]["clean"].removeprefix("file://")).to_pylist()}

    for manifest in manifests[1:]:
        merge_into_silver(catalog, manifest)
    after = fresh(catalog)
    assert {event_id for event_id, _ in after} == clean_ids and set(after.values()) == {1}
    assert {origin for _, origin in after} == {"silver"}  # the live rows are still there: silver wins


def test_a_key_staged_twice_is_the_earliest_ingested_copy(catalog: Catalog) -> None:
    manifests, _ = stage(3)
    commit(catalog.load_table(LIVE_EVENTS.full_name), staged(manifests))
    rows_staged = [r for m in manifests for r in pq.read_table(m["files"]["clean"].removeprefix("file://")).to_pylist()]
    copies = Counter(r["event_id"] for r in rows_staged)
    twice = [event_id for event_id, n in copies.items() if n > 1]
    assert twice, "the generator re-sends some events in a later batch"
    earliest = {event_id: min(r["ingested_at"] for r in rows_staged if r["event_id"] == event_id) for event_id in twice}
    _, rows = query(catalog, f"SELECT event_id, ingested_at FROM {FRESH_EVENTS.full_name} "
                             f"WHERE event_id IN ({', '.join(repr(e) for e in twice)})")
    assert dict(rows) == earliest


def test_a_lake_without_live_tables_has_no_fresh_view(tmp_path: Path) -> None:
    older = local_catalog(tmp_path / "warehouse", tmp_path / "catalog.db")
    migrate(older, ALL_TABLES)
    with pytest.raises(Exception, match="fresh"):
        query(older, f"SELECT count(*) FROM {FRESH_EVENTS.full_name}")


def test_the_view_sql_is_athena_sql_over_the_two_tables() -> None:
    assert FRESH_EVENTS.reads == (SILVER_EVENTS.full_name, LIVE_EVENTS.full_name)
    assert FRESH_ORDER_EVENTS.reads == (SILVER_ORDER_EVENTS.full_name, LIVE_ORDER_EVENTS.full_name)


@pytest.mark.parametrize("view", ALL_VIEWS, ids=lambda v: v.full_name)
def test_a_view_reads_what_it_says_after_what_it_reads(view) -> None:
    import sqlglot

    statement = sqlglot.parse_one(view.sql, read="athena")
    assert {f"{t.db}.{t.name}" for t in statement.find_all(sqlglot.exp.Table)} == set(view.reads)
    before = {v.full_name for v in ALL_VIEWS[:ALL_VIEWS.index(view)]}
    assert {name for name in view.reads if name.startswith("fresh.")} <= before  # ALL_VIEWS' order creates them


_DUCKDB_NAMES = {"string": "VARCHAR", "long": "BIGINT", "int": "INTEGER", "double": "DOUBLE", "boolean": "BOOLEAN",
                 "timestamptz": "TIMESTAMP WITH TIME ZONE", "decimal(18, 4)": "DECIMAL(18,4)"}


@pytest.mark.parametrize("view", ALL_VIEWS, ids=lambda v: v.full_name)
def test_a_views_declared_columns_are_what_its_sql_returns(catalog: Catalog, view) -> None:
    """Athena's view definition (deployed by CDK, cdk_app/analytics.py) states the columns: they must be the SQL's."""
    con = connect(catalog)
    try:
        described = con.execute(f"DESCRIBE {view.full_name}").fetchall()
    finally:
        con.close()
    assert [(name, kind) for name, kind, *_ in described] == [
        (c.name, _DUCKDB_NAMES[str(c.type)]) for c in view.columns]
