"""The Athena stand-in: real DuckDB with the offline iceberg extension over real pyiceberg tables.

Every result is compared with a plain-Python computation over the rows that were written. The
last group pins how Athena SQL and the DuckDB translation differ (docs/analytics.md).
"""
from __future__ import annotations

import datetime as dt
from collections import defaultdict

import pytest
import sqlglot

from iceberg_tables.specs import GOLD_DAILY_KPIS
from lakehouse.analytics.athena import (AthenaError, AthenaSyntaxError, UnknownTableError, connect, extension_path,
                              offline_duckdb, query, transpile)
from tests.fixtures.superset import KpiLake, append_daily_kpis, daily_kpis_rows, make_lake


def test_select_star_returns_every_written_row(kpi_lake: KpiLake) -> None:
    columns, rows = query(kpi_lake.catalog, "SELECT * FROM gold.daily_kpis")
    assert columns == [c.name for c in GOLD_DAILY_KPIS.columns]
    expected = sorted(tuple(r[c] for c in columns) for r in kpi_lake.rows)
    assert sorted(rows) == expected


def test_group_by_country_matches_python(kpi_lake: KpiLake) -> None:
    columns, rows = query(kpi_lake.catalog, """
        SELECT country, SUM(events) AS events, SUM(add_to_cart) AS add_to_cart, COUNT(*) AS days
        FROM gold.daily_kpis GROUP BY country ORDER BY country""")
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for r in kpi_lake.rows:
        expected[r["country"]][0] += r["events"]
        expected[r["country"]][1] += r["add_to_cart"]
        expected[r["country"]][2] += 1
    assert columns == ["country", "events", "add_to_cart", "days"]
    assert rows == [(country, *sums) for country, sums in sorted(expected.items())]


def test_athena_functions_and_date_filters_match_python(kpi_lake: KpiLake) -> None:
    _, rows = query(kpi_lake.catalog, """
        SELECT format_datetime(event_date, 'yyyy-MM-dd') AS day,
               date_add('day', 1, event_date) AS next_day,
               CAST(SUM(checkouts) AS double) / NULLIF(SUM(product_views), 0) AS conversion
        FROM gold.daily_kpis
        WHERE event_date BETWEEN DATE '2026-11-03' AND from_iso8601_date('2026-11-06')
        GROUP BY 1, 2 ORDER BY 1""")
    by_day: dict[dt.date, list[int]] = defaultdict(lambda: [0, 0])
    for r in kpi_lake.rows:
        if dt.date(2026, 11, 3) <= r["event_date"] <= dt.date(2026, 11, 6):
            by_day[r["event_date"]][0] += r["checkouts"]
            by_day[r["event_date"]][1] += r["product_views"]
    assert [(day, nxt) for day, nxt, _ in rows] == [
        (d.strftime("%Y-%m-%d"), d + dt.timedelta(days=1)) for d in sorted(by_day)]
    for (_, _, conversion), day in zip(rows, sorted(by_day)):
        assert conversion == pytest.approx(by_day[day][0] / by_day[day][1])


def test_every_namespace_is_a_schema_and_empty_tables_read_as_empty(kpi_lake: KpiLake) -> None:
    con = connect(kpi_lake.catalog)
    schemas = {s for (s,) in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    assert {"silver", "gold", "ops"} <= schemas
    # silver.events and ops.pipeline_runs exist (migrated) but have no snapshot yet
    assert con.execute("SELECT COUNT(*) FROM silver.events").fetchone() == (0,)
    described = [name for name, *_ in con.execute("DESCRIBE ops.pipeline_runs").fetchall()]
    assert described[:3] == ["run_id", "step", "status"]


def test_extensions_load_offline_from_the_wheels(kpi_lake: KpiLake) -> None:
    con = connect(kpi_lake.catalog)
    loaded = dict(con.execute("SELECT extension_name, install_path FROM duckdb_extensions() WHERE loaded").fetchall())
    assert {"iceberg", "avro"} <= loaded.keys()
    assert loaded["iceberg"] == ""  # loaded from the wheel's file, never installed or downloaded
    assert con.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone() == (False,)
    assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)


def test_a_missing_extension_wheel_says_make_setup() -> None:
    with pytest.raises(RuntimeError, match=r"install duckdb-extension-spatial==1\.5\.5 \(run make setup\)"):
        extension_path("spatial")


def test_a_connection_reads_one_snapshot_and_a_new_one_sees_new_commits(tmp_path) -> None:
    catalog = make_lake(tmp_path)
    first, later = daily_kpis_rows(seed=1, days=2), daily_kpis_rows(seed=2, days=1, first_day=dt.date(2026, 12, 1))
    append_daily_kpis(catalog, first)
    pinned = connect(catalog)
    append_daily_kpis(catalog, later)
    total = "SELECT SUM(events) FROM gold.daily_kpis"
    assert pinned.execute(total).fetchone() == (sum(r["events"] for r in first),)
    assert query(catalog, total)[1] == [(sum(r["events"] for r in first + later),)]


# --- clear errors -------------------------------------------------------------------------------
def test_syntax_error_names_the_position(kpi_lake: KpiLake) -> None:
    with pytest.raises(AthenaSyntaxError, match=r"SQL syntax error.*line 1, column \d+"):
        query(kpi_lake.catalog, "SELECT country FROM gold.daily_kpis WHERE")


def test_unknown_table_names_it_and_lists_the_catalog(kpi_lake: KpiLake) -> None:
    with pytest.raises(UnknownTableError) as error:
        query(kpi_lake.catalog, "SELECT * FROM gold.daily_kpi")
    assert "daily_kpi" in str(error.value) and "gold.daily_kpis" in str(error.value)


def test_unknown_column_is_named(kpi_lake: KpiLake) -> None:
    with pytest.raises(AthenaError, match="revenue"):
        query(kpi_lake.catalog, "SELECT SUM(revenue) FROM gold.daily_kpis")


@pytest.mark.parametrize("sql", ["", "SELECT 1; SELECT 2"])
def test_exactly_one_statement(sql: str) -> None:
    with pytest.raises(AthenaSyntaxError, match="one SQL statement"):
        transpile(sql)


# --- where Athena SQL and its DuckDB translation differ -----------------------------------------
def test_format_datetime_is_translated_from_java_patterns() -> None:
    sql = "SELECT format_datetime(TIMESTAMP '2026-03-05 07:08:09', 'd.M.yyyy HH:mm:ss EEE')"
    # sqlglot alone leaves Trino's format_datetime as it is, and DuckDB has no such function
    assert "FORMAT_DATETIME" in sqlglot.transpile(sql, read="athena", write="duckdb")[0]
    assert offline_duckdb().execute(transpile(sql)).fetchone() == ("5.3.2026 07:08:09 Thu",)


def test_format_datetime_refuses_patterns_it_cannot_translate() -> None:
    with pytest.raises(AthenaError, match="cannot translate S"):
        transpile("SELECT format_datetime(now(), 'HH:mm:ss.SSS')")


def test_from_iso8601_timestamp_keeps_the_instant_but_not_the_offset() -> None:
    con = offline_duckdb()
    instant, hour = con.execute(transpile(
        "SELECT from_iso8601_timestamp('2026-01-02T03:04:05+02:00'), "
        "hour(from_iso8601_timestamp('2026-01-02T03:04:05+02:00'))")).fetchone()
    assert instant == dt.datetime(2026, 1, 2, 1, 4, 5, tzinfo=dt.timezone.utc)
    assert hour == 1  # Athena says 3: its value keeps the +02:00 zone; here it is UTC (documented)


def test_date_add_and_date_trunc_on_a_date_stay_dates(kpi_lake: KpiLake) -> None:
    athena = ("SELECT date_add('day', 1, event_date), date_trunc('month', event_date), "
              "date_add('hour', 1, updated_at) FROM gold.daily_kpis LIMIT 1")
    raw = sqlglot.transpile(athena, read="athena", write="duckdb")[0]
    con = connect(kpi_lake.catalog)
    # plain sqlglot + DuckDB: TIMESTAMP where Athena keeps a DATE
    assert [t for _, t, *_ in con.execute(raw).description][:2] == ["TIMESTAMP", "TIMESTAMP"]
    _, [(next_day, month, later)] = query(kpi_lake.catalog, athena)
    assert type(next_day) is dt.date and type(month) is dt.date
    assert isinstance(later, dt.datetime) and later.tzinfo is not None


def test_result_columns_are_named_as_athena_names_them(kpi_lake: KpiLake) -> None:
    columns, _ = query(kpi_lake.catalog, 'SELECT Country, SUM(events), COUNT(*) AS "Days" FROM gold.daily_kpis GROUP BY 1')
    assert columns == ["country", "_col1", "days"]


def test_regexp_extract_without_a_match_is_null_as_in_athena() -> None:
    con = offline_duckdb()
    raw = sqlglot.transpile("SELECT regexp_extract('ab', 'x(\\d+)', 1)", read="athena", write="duckdb")[0]
    assert con.execute(raw).fetchone() == ("",)  # plain sqlglot + DuckDB: '' where Athena gives NULL
    assert con.execute(transpile(
        "SELECT regexp_extract('ab', 'x(\\d+)', 1), regexp_extract('ax42', 'x(\\d+)', 1)")).fetchone() == (None, "42")


def test_a_failing_query_is_an_athena_error_with_the_translated_sql(kpi_lake: KpiLake) -> None:
    with pytest.raises(AthenaError, match=r"(?s)Could not convert string 'x'.*in: SELECT CAST\('x' AS INT\)"):
        query(kpi_lake.catalog, "SELECT CAST('x' AS integer)")
