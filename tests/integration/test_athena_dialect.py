"""The stand-in gives Athena's (Trino's) documented answer for the SQL analysts write, or refuses.

Each case runs on the real DuckDB with the offline extensions and compares with the result Trino's
documentation gives (the page is named above each test; Athena engine v3 is Trino). Where plain
sqlglot + DuckDB answers differently, the test pins that too: a sqlglot or DuckDB upgrade that
fixes a difference makes it fail, and the repair can go (decision 0303).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from typing import Any

import duckdb
import pytest
import sqlglot

from lakehouse.analytics.athena import AthenaError, offline_duckdb, query, transpile
from tests.fixtures.superset import KpiLake


def athena(sql: str) -> tuple[Any, ...]:
    """The stand-in's one row for a statement without tables."""
    row = offline_duckdb().execute(transpile(sql)).fetchone()
    assert row is not None
    return row


def plain(sql: str) -> tuple[Any, ...]:
    """What plain sqlglot + a default DuckDB answer: the difference being repaired."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    row = con.execute(sqlglot.transpile(sql, read="athena", write="duckdb")[0]).fetchone()
    assert row is not None
    return row


# --- arithmetic ----------------------------------------------------------------------------------
# https://trino.io/docs/current/functions/math.html: "/ Division (integer division performs truncation)"
def test_integer_division_truncates() -> None:
    sql = "SELECT 5 / 2, -5 / 2, 7 % 3, -7 % 3, 5.0 / 2, CAST(5 AS double) / 2"
    assert plain(sql)[:2] == (2.5, -2.5)
    assert athena(sql) == (2, -2, 1, -1, pytest.approx(2.5), 2.5)


def test_typed_integer_division_holds_on_any_duckdb_connection() -> None:
    # dashboards/render.py runs transpile's SQL on Superset's DuckDB, without the stand-in's settings
    sql = transpile("SELECT 5 / 2, -5 / CAST(2 AS bigint), count(*) / 2 FROM (VALUES 1, 2, 3) AS t(x)")
    assert duckdb.connect(":memory:").execute(sql).fetchone() == (2, -2, 1)


def test_integer_division_of_columns_truncates(kpi_lake: KpiLake) -> None:
    _, [(per_day, share)] = query(kpi_lake.catalog, "SELECT sum(events) / count(*), sum(checkouts) / sum(events) "
                                                    "FROM gold.daily_kpis")
    total = sum(r["events"] for r in kpi_lake.rows)
    assert (per_day, share) == (total // len(kpi_lake.rows), 0)  # both positive: truncation = floor


# Trino fails an integer division by zero (error DIVISION_BY_ZERO); DuckDB would return NULL
def test_integer_division_by_zero_fails_as_in_athena() -> None:
    assert plain("SELECT 1 / 0") == (float("inf"),)
    with pytest.raises(duckdb.InvalidInputException, match="Division by zero"):
        athena("SELECT 1 / 0")
    positive, negative, nan, none = athena("SELECT CAST(1 AS double) / 0, -1e0 / 0, 0e0 / 0, 1 / NULLIF(0, 0)")
    assert (positive, negative, none) == (float("inf"), float("-inf"), None) and nan != nan


# https://trino.io/docs/current/functions/decimal.html: "The precision of a decimal type for a literal
# will be equal to the number of digits in the literal (including trailing and leading zeros). The
# scale will be equal to the number of digits in the fractional part": DECIMAL '0' is DECIMAL(1),
# DECIMAL '0000012345.1234500000' is DECIMAL(20, 10). A bare DECIMAL type is decimal(38, 0)
def test_decimal_literals_are_typed_by_their_digits() -> None:
    assert plain("SELECT DECIMAL '1.10'") == (Decimal("1.100"),)  # DuckDB: DECIMAL(18, 3)
    assert athena("SELECT DECIMAL '1.10', typeof(DECIMAL '0'), typeof(DECIMAL '0000012345.1234500000'), "
                  "typeof(DECIMAL '12345'), CAST(2.5 AS decimal)") == (
        Decimal("1.10"), "DECIMAL(1,0)", "DECIMAL(20,10)", "DECIMAL(5,0)", Decimal("3"))


# --- dates and times -----------------------------------------------------------------------------
# https://trino.io/docs/current/functions/datetime.html: day_of_week "Returns the ISO day of the week
# from x. The value ranges from 1 (Monday) to 7 (Sunday)"; dow and EXTRACT(DOW ...) are aliases
def test_day_of_week_is_iso() -> None:
    sunday, monday = "DATE '2026-12-06'", "TIMESTAMP '2026-12-07 23:59:59'"
    assert plain(f"SELECT extract(DOW FROM {sunday})") == (0,)  # DuckDB's DOW: Sunday is 0
    assert athena(f"SELECT day_of_week({sunday}), dow({sunday}), day_of_week({monday}), "
                  f"extract(DOW FROM {sunday}), extract(DAY_OF_WEEK FROM {monday}), "
                  f"extract(YEAR_OF_WEEK FROM DATE '2027-01-01'), extract(DOY FROM DATE '2027-01-02')"
                  ) == (7, 7, 1, 7, 1, 2026, 2)


# datetime.html, "MySQL date functions": date_format(TIMESTAMP '2022-10-20 05:10:00', '%m-%d-%Y %H')
# is '10-20-2022 05'; %i is minutes, %M the month name, %W the weekday name, %r = %h:%i:%s %p,
# %f six digits of which the last three are 0 (milliseconds), %x for any other x is x
@pytest.mark.parametrize(("pattern", "expected"), [
    ("%m-%d-%Y %H", "10-20-2022 05"),
    ("%Y-%m-%d %H:%i:%s", "2022-10-20 05:10:07"),
    ("%M %W %a %b %c/%e %k %l %p", "October Thursday Thu Oct 10/20 5 5 AM"),
    ("%r|%T|%j|%y", "05:10:07 AM|05:10:07|293|22"),
    ("%f", "123000"),
    ("%v %x", "42 2022"),
    ("100%% %Q", "100% Q"),
])
def test_date_format_takes_mysql_patterns(pattern: str, expected: str) -> None:
    assert athena(f"SELECT date_format(TIMESTAMP '2022-10-20 05:10:07.123456', '{pattern}')") == (expected,)


# datetime.html: "The following specifiers are not currently supported: %D %U %u %V %w %X"
@pytest.mark.parametrize("specifier", ["%D", "%U", "%u", "%V", "%w", "%X"])
def test_date_format_refuses_what_athena_refuses(specifier: str) -> None:
    with pytest.raises(AthenaError, match=f"date_format pattern .*{specifier} not supported"):
        transpile(f"SELECT date_format(DATE '2022-10-20', '%Y {specifier}')")


# datetime.html: date_parse('2022/10/20/05', '%Y/%m/%d/%H') is 2022-10-20 05:00:00.000
def test_date_parse_takes_mysql_patterns() -> None:
    assert athena("SELECT date_parse('2022/10/20/05', '%Y/%m/%d/%H'), date_parse('2022-10-20 05:10', "
                  "'%Y-%m-%d %H:%i')") == (dt.datetime(2022, 10, 20, 5), dt.datetime(2022, 10, 20, 5, 10))


# datetime.html, "Date and time operators": date '2012-08-08' + interval '2' day = 2012-08-10 (a DATE),
# timestamp '2012-10-31 01:00' + interval '1' month = 2012-11-30 01:00, and the other rows of the table
def test_interval_arithmetic() -> None:
    sql = ("SELECT date '2012-08-08' + interval '2' day, date '2012-08-08' - interval '2' day, "
           "timestamp '2012-08-08 01:00' + interval '29' hour, timestamp '2012-10-31 01:00' + interval '1' month, "
           "timestamp '2012-10-31 01:00' - interval '1' month, date '2026-01-31' + interval '1' month")
    assert plain(sql)[0] == dt.datetime(2012, 8, 10)  # DuckDB: a TIMESTAMP
    assert athena(sql) == (dt.date(2012, 8, 10), dt.date(2012, 8, 6), dt.datetime(2012, 8, 9, 6),
                           dt.datetime(2012, 11, 30, 1), dt.datetime(2012, 9, 30, 1), dt.date(2026, 2, 28))


def test_interval_arithmetic_on_date_columns_stays_a_date(kpi_lake: KpiLake) -> None:
    _, rows = query(kpi_lake.catalog, "SELECT DISTINCT event_date + interval '1' month FROM gold.daily_kpis")
    assert all(type(day) is dt.date for (day,) in rows)


# Athena fails `date + interval '1' hour` and date_add('hour', 1, date): a DATE has no time of day
@pytest.mark.parametrize("sql", ["SELECT date '2026-01-31' + interval '1' hour",
                                 "SELECT date_add('hour', 1, date '2026-01-31')"])
def test_sub_day_units_on_a_date_are_refused(sql: str) -> None:
    with pytest.raises(AthenaError, match="cannot add hours, minutes or seconds to a DATE"):
        transpile(sql)


# datetime.html: date_diff "Returns timestamp2 - timestamp1 expressed in terms of unit": 86400 seconds,
# 24 hours, 1 day in the examples; 2 hours across midnight are 0 whole days
def test_date_diff_counts_whole_units() -> None:
    across_midnight = "date_diff('day', TIMESTAMP '2026-01-01 23:00:00', TIMESTAMP '2026-01-02 01:00:00')"
    assert plain(f"SELECT {across_midnight}") == (1,)  # DuckDB's date_diff counts boundaries crossed
    assert athena(f"SELECT {across_midnight}, "
                  "date_diff('second', TIMESTAMP '2020-03-01 00:00:00', TIMESTAMP '2020-03-02 00:00:00'), "
                  "date_diff('hour', TIMESTAMP '2020-03-01 00:00:00 UTC', TIMESTAMP '2020-03-02 00:00:00 UTC'), "
                  "date_diff('day', DATE '2020-03-01', DATE '2020-03-02'), "
                  "date_diff('day', DATE '2026-03-01', DATE '2026-01-01')") == (0, 86400, 24, 1, -59)


# --- NULLs, arrays, maps -------------------------------------------------------------------------
# https://trino.io/docs/current/functions/comparison.html: GREATEST and LEAST "return null if any
# argument is null"; https://trino.io/docs/current/functions/string.html: concat is the || operator,
# NULL when an argument is NULL
def test_concat_greatest_and_least_with_a_null_are_null() -> None:
    assert athena("SELECT concat('a', NULL, 'b'), 'a' || NULL, greatest(1, NULL, 3), least(1, NULL, 3), "
                  "greatest(1, 5, 3), concat('a', 'b')") == (None, None, None, None, 5, "ab")


# https://trino.io/docs/current/functions/array.html: element_at "returns NULL when accessing an
# index larger than array length"; "If index < 0, element_at accesses elements from the last to the
# first"; https://trino.io/docs/current/functions/map.html: element_at(map, key) "Returns value for
# given key, or NULL if the key is not contained in the map"
def test_element_at() -> None:
    assert athena("SELECT element_at(ARRAY[1, 2, 3], 5), element_at(ARRAY[1, 2, 3], -1), "
                  "element_at(ARRAY[1, 2, 3], 2), element_at(MAP(ARRAY['a'], ARRAY[1]), 'b'), "
                  "element_at(MAP(ARRAY['a'], ARRAY[1]), 'a')") == (None, 3, 2, None, 1)


# Trino fails element_at(array, 0) ("SQL array indices start at 1"); DuckDB would return NULL
def test_element_at_zero_is_refused() -> None:
    assert plain("SELECT element_at(ARRAY[1, 2, 3], 0)") == (None,)
    with pytest.raises(AthenaError, match="SQL array indices start at 1"):
        transpile("SELECT element_at(ARRAY[1, 2, 3], 0)")
    assert athena("SELECT element_at(MAP(ARRAY[0], ARRAY['zero']), 0)") == ("zero",)  # a map's key 0 is fine


# array.html: element_at is NULL past the end "whereas the subscript operator would fail in such a
# case"; map.html: the [] operator on a map fails when the key is not in the map
@pytest.mark.parametrize("sql", ["SELECT ARRAY[1, 2, 3][4]", "SELECT ARRAY[1, 2, 3][0]",
                                 "SELECT a[i] FROM (VALUES (ARRAY[1, 2], 1), (ARRAY[1], 2)) AS t(a, i)",
                                 "SELECT MAP(ARRAY['a'], ARRAY[1])['b']"])
def test_subscripts_out_of_range_fail_as_in_athena(sql: str) -> None:
    assert plain(sql)[0] in (None, 1)  # DuckDB: NULL (the VALUES case: its first row)
    with pytest.raises(duckdb.InvalidInputException, match="out of bounds|Key not present in map"):
        offline_duckdb().execute(transpile(sql)).fetchall()


def test_subscripts_in_range() -> None:
    assert athena("SELECT ARRAY[1, 2, 3][1], ARRAY[1, 2, 3][3], ARRAY[1, 2][NULL], "
                  "MAP(ARRAY['a'], ARRAY[1])['a']") == (1, 3, None, 1)


# --- aggregates and JSON -------------------------------------------------------------------------
# https://trino.io/docs/current/functions/aggregate.html: approx_distinct "provides an approximation
# of count(DISTINCT x). Zero is returned if all input values are null", standard error 2.3%
def test_approx_distinct_is_the_exact_count_athena_estimates() -> None:
    values = "FROM range(20000) AS t(x)"
    estimate = plain(f"SELECT approx_distinct(x % 15000) {values}")[0]
    assert estimate != 15000  # DuckDB's HyperLogLog is not Trino's: its estimate differs
    assert athena(f"SELECT approx_distinct(x % 15000), approx_distinct(x, 0.01), "
                  f"approx_distinct(CAST(NULL AS integer)) {values}") == (15000, 20000, 0)


# https://trino.io/docs/current/functions/json.html: json_extract_scalar "returns the result value as
# a string"; "The value referenced by json_path must be a scalar (boolean, number or string)": an
# object or array, or text that is not JSON, gives NULL on Trino
def test_json_extract_scalar() -> None:
    book = '{"store": {"book": [{"author": "Nigel Rees", "price": 8.95, "new": true}]}}'
    assert athena(f"SELECT json_extract_scalar('[1, 2, 3]', '$[2]'), "
                  f"json_extract_scalar('{book}', '$.store.book[0].author'), "
                  f"json_extract_scalar('{book}', '$.store.book[0].new'), "
                  f"json_extract_scalar('{book}', '$.store.book[0].missing')") == ("3", "Nigel Rees", "true", None)
    assert plain(f"SELECT json_extract_scalar('{book}', '$.store.book')")[0].startswith("[")
    assert athena(f"SELECT json_extract_scalar('{book}', '$.store.book'), "
                  f"json_extract_scalar('{book}', '$.store'), json_extract_scalar('not json', '$.a')") == (None,) * 3


# --- Iceberg metadata tables and time travel -----------------------------------------------------
# https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-table-metadata.html and
# https://trino.io/docs/current/connector/iceberg.html#metadata-tables: the columns below.
# kpi_lake wrote gold.daily_kpis in two appends.
def test_snapshots_and_history(kpi_lake: KpiLake) -> None:
    columns, snapshots = query(kpi_lake.catalog, 'SELECT * FROM "gold"."daily_kpis$snapshots" ORDER BY committed_at')
    assert columns == ["committed_at", "snapshot_id", "parent_id", "operation", "manifest_list", "summary"]
    assert [s[3] for s in snapshots] == ["append", "append"]
    assert snapshots[1][2] == snapshots[0][1] and snapshots[0][2] is None
    assert int(snapshots[1][5]["total-records"]) == len(kpi_lake.rows)
    assert snapshots[0][0].tzinfo is not None  # timestamp(3) with time zone
    columns, history = query(kpi_lake.catalog, 'SELECT * FROM "gold"."daily_kpis$history" ORDER BY made_current_at')
    assert columns == ["made_current_at", "snapshot_id", "parent_id", "is_current_ancestor"]
    assert [(h[1], h[3]) for h in history] == [(s[1], True) for s in snapshots]
    columns, refs = query(kpi_lake.catalog, 'SELECT * FROM "gold"."daily_kpis$refs"')
    assert columns == ["name", "type", "snapshot_id", "max_reference_age_in_ms", "min_snapshots_to_keep",
                       "max_snapshot_age_in_ms"]
    assert refs == [("main", "BRANCH", snapshots[1][1], None, None, None)]


def test_files_and_partitions(kpi_lake: KpiLake) -> None:
    columns, files = query(kpi_lake.catalog, 'SELECT * FROM "gold"."daily_kpis$files"')
    assert columns[:4] == ["content", "file_path", "file_format", "spec_id"]
    assert {"partition", "record_count", "file_size_in_bytes", "column_sizes", "null_value_counts"} <= set(columns)
    assert sum(f[columns.index("record_count")] for f in files) == len(kpi_lake.rows)
    columns, partitions = query(kpi_lake.catalog, 'SELECT partition.event_date, record_count, file_count, '
                                                  'total_size FROM "gold"."daily_kpis$partitions"')
    assert columns == ["event_date", "record_count", "file_count", "total_size"]
    assert {day: n for day, n, _, _ in partitions} == Counter(r["event_date"] for r in kpi_lake.rows)
    assert all(n >= 1 and size > 0 for _, _, n, size in partitions)


def test_manifests(kpi_lake: KpiLake) -> None:
    columns, manifests = query(kpi_lake.catalog, 'SELECT * FROM "gold"."daily_kpis$manifests"')
    assert columns == ["path", "length", "partition_spec_id", "added_snapshot_id", "added_data_files_count",
                       "existing_data_files_count", "deleted_data_files_count", "partition_summaries"]
    _, files = query(kpi_lake.catalog, 'SELECT count(*) FROM "gold"."daily_kpis$files"')
    assert len(manifests) == 2 and sum(m[4] + m[5] for m in manifests) == files[0][0]  # one manifest an append


def test_metadata_of_a_table_without_snapshots_is_empty(kpi_lake: KpiLake) -> None:
    assert query(kpi_lake.catalog, 'SELECT count(*) FROM "ops"."pipeline_runs$partitions"')[1] == [(0,)]
    assert query(kpi_lake.catalog, 'SELECT count(*) FROM "silver"."events$snapshots"')[1] == [(0,)]


@pytest.mark.parametrize(("sql", "message"), [
    ('SELECT * FROM "gold"."daily_kpis$properties"', r"gives \$snapshots, \$history, \$files, \$partitions, "
                                                      r"\$manifests, \$refs, not \$properties"),
    ('SELECT added_rows_count FROM "gold"."daily_kpis$manifests"', r"\$manifests.added_rows_count is not available"),
    ('SELECT data FROM "gold"."daily_kpis$partitions"', r"\$partitions.data is not available locally"),
    ('SELECT lower_bounds FROM "gold"."daily_kpis$files"', r"\$files.lower_bounds is not available locally"),
    ('SELECT * FROM "gold"."nothing$snapshots"', "Table gold.nothing does not exist"),
])
def test_metadata_tables_it_cannot_give_are_refused(kpi_lake: KpiLake, sql: str, message: str) -> None:
    with pytest.raises(AthenaError, match=message):
        query(kpi_lake.catalog, sql)


# https://docs.aws.amazon.com/athena/latest/ug/querying-iceberg-time-travel-and-version-travel-queries.html:
# FOR TIMESTAMP AS OF reads the snapshot current at that time, FOR VERSION AS OF the snapshot by id
def test_time_travel(kpi_lake: KpiLake) -> None:
    _, snapshots = query(kpi_lake.catalog, 'SELECT snapshot_id, committed_at FROM "gold"."daily_kpis$snapshots" '
                                           'ORDER BY committed_at')
    (first, first_at), (current, _) = snapshots
    half = len(kpi_lake.rows) // 2
    count = "SELECT count(*), max(date_add('day', 1, event_date)) FROM gold.daily_kpis"
    _, [(rows, next_day)] = query(kpi_lake.catalog, f"{count} FOR VERSION AS OF {first}")
    assert rows == half and type(next_day) is dt.date
    at = first_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    assert query(kpi_lake.catalog, f"{count} FOR TIMESTAMP AS OF TIMESTAMP '{at} UTC'")[1][0][0] == half
    assert query(kpi_lake.catalog, f"{count} FOR VERSION AS OF {current}")[1][0][0] == len(kpi_lake.rows)
    assert query(kpi_lake.catalog, f"{count} FOR VERSION AS OF 'main'")[1][0][0] == len(kpi_lake.rows)
    assert query(kpi_lake.catalog, "SELECT count(*) FROM gold.daily_kpis FOR TIMESTAMP AS OF "
                                   "(current_timestamp - interval '1' second) AS k")[1] == [(len(kpi_lake.rows),)]


def test_time_travel_needs_the_lake() -> None:
    with pytest.raises(AthenaError, match=r"time travel \(FOR VERSION AS OF 1\) needs the lake"):
        transpile("SELECT * FROM gold.daily_kpis FOR VERSION AS OF 1")


@pytest.mark.parametrize(("travel", "message"), [
    ("FOR VERSION AS OF 123", "FOR VERSION AS OF 123: no such snapshot of gold.daily_kpis"),
    ("FOR VERSION AS OF 'audit'", "FOR VERSION AS OF 'audit': no such snapshot of gold.daily_kpis"),
    ("FOR TIMESTAMP AS OF TIMESTAMP '2000-01-01 00:00:00'", "has no snapshot at or before that time"),
])
def test_time_travel_to_nothing_is_refused(kpi_lake: KpiLake, travel: str, message: str) -> None:
    # DuckDB's iceberg_scan would read no rows before the first snapshot: Athena fails the query
    with pytest.raises(AthenaError, match=message):
        query(kpi_lake.catalog, f"SELECT count(*) FROM gold.daily_kpis {travel}")


def test_a_timestamp_literal_compares_with_a_timestamp_with_time_zone_column(kpi_lake) -> None:
    """Trino compares timestamp(0) with timestamp(3) with time zone (trino.io/docs/current/language/types.html);
    DuckDB refused TIMESTAMP_S against TIMESTAMPTZ."""
    import datetime as dt

    from lakehouse.analytics.athena import query

    sql = ("SELECT count(*) FROM gold.daily_kpis WHERE updated_at >= TIMESTAMP '2026-11-27 00:00:00' "
           "AND updated_at < TIMESTAMP '2026-11-28 00:00:00'")
    day = dt.date(2026, 11, 27)
    assert query(kpi_lake.catalog, sql)[1] == [(sum(r["updated_at"].date() == day for r in kpi_lake.rows),)]
