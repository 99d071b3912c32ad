"""The Athena stand-in: Athena (Trino) SQL over the local Iceberg catalog, run by DuckDB.

`connect` gives a DuckDB connection with one schema per Iceberg namespace and one view per
table, so `SELECT ... FROM gold.daily_kpis` means the same thing here as in Athena. `transpile`
turns Athena SQL into DuckDB SQL with sqlglot, and repairs the differences listed in
docs/analytics.md ("Athena SQL on DuckDB") where it can; `query` runs one statement.
"""
from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from pyiceberg.catalog import Catalog
from pyiceberg.table import Table
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.schema import MappingSchema

from iceberg_tables.views import ALL_VIEWS
from lakehouse.analytics.athena_dialect import AthenaError, LakeTables, repair

# avro first: the iceberg extension reads manifests through it and must not autoload it.
EXTENSIONS = ("avro", "iceberg")


class AthenaSyntaxError(AthenaError):
    """The SQL does not parse."""


class UnknownTableError(AthenaError):
    """The SQL names a table (or schema) that the Iceberg catalog does not have."""


def extension_path(name: str) -> Path:
    """The extension file shipped by the PyPI wheel `duckdb-extension-<name>` for this DuckDB."""
    version = duckdb.__version__
    try:
        package = Path(str(resources.files(f"duckdb_extension_{name}")))
    except ModuleNotFoundError:
        package = Path(f"<no package duckdb_extension_{name}>")
    path = package / "extensions" / f"v{version}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise RuntimeError(f"DuckDB extension '{name}' for DuckDB {version} not found at {path}: "
                           f"install duckdb-extension-{name}=={version} (run make setup)")
    return path


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def offline_duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that never downloads anything, in Athena's session time zone (UTC)."""
    con = duckdb.connect(":memory:", config={
        "autoinstall_known_extensions": False,
        "autoload_known_extensions": False,
    })
    con.execute("SET TimeZone = 'UTC'")  # a setting of the built-in icu extension, not a connect option
    # Trino divides integers as integers (5 / 2 = 2, -5 / 2 = -2); DuckDB decides by the runtime types
    con.execute("SET integer_division = true")
    for name in EXTENSIONS:
        # LOAD by path: no INSTALL copy into ~/.duckdb, so nothing outside the venv is touched
        con.execute(f"LOAD {literal(str(extension_path(name)))}")
    return con


def connect(catalog: Catalog) -> duckdb.DuckDBPyConnection:
    """DuckDB with a schema per namespace and a view per Iceberg table of `catalog`, and the views of
    iceberg_tables.views whose tables the catalog has (fresh.events).

    Each view reads the table's snapshot that was current when `connect` ran: one connection
    sees one consistent state of the lake, as one Athena query does. Reconnect to see newer commits.
    """
    return _open(catalog)[0]


def _open(catalog: Catalog) -> tuple[duckdb.DuckDBPyConnection, dict[str, Table]]:
    """`connect`'s connection, and the tables its views read, by 'namespace.table'."""
    con, tables = offline_duckdb(), {}
    for namespace in catalog.list_namespaces():
        schema = ident(".".join(namespace))
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for identifier in catalog.list_tables(namespace):
            table = tables[".".join(identifier)] = catalog.load_table(identifier)
            con.execute(f"CREATE VIEW {schema}.{ident(identifier[-1])} AS "
                        f"SELECT * FROM iceberg_scan({literal(table.metadata_location)})")
    create_views(con, set(tables))
    return con, tables


def create_views(con: duckdb.DuckDBPyConnection, tables: set[str]) -> None:
    """The views of iceberg_tables.views whose tables (or views) are there; a lake from before the live
    tables has no fresh views."""
    readable = set(tables)
    for view in ALL_VIEWS:
        if set(view.reads) <= readable:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(view.namespace)}")
            con.execute(f"CREATE VIEW {ident(view.namespace)}.{ident(view.name)} AS {transpile(view.sql)}")
            readable.add(view.full_name)


def _athena_column_names(statement: exp.Expression) -> None:
    """Result columns named as Athena names them: unquoted names in lower case, `_colN` for an
    unnamed expression (DuckDB would call it e.g. `sum(events)`)."""
    normalize_identifiers(statement, dialect="athena")
    if isinstance(statement, exp.Select):
        for position, column in enumerate(statement.expressions):
            if not isinstance(column, (exp.Alias, exp.Column, exp.Star)):
                column.replace(exp.alias_(column.copy(), f"_col{position}"))


def _syntax_error(sql: str, error: ParseError) -> AthenaSyntaxError:
    where = error.errors[0] if error.errors else {}
    detail = where.get("description") or str(error)
    if where.get("line"):
        detail += f" at line {where['line']}, column {where['col']} near '{where.get('highlight', '')}'"
    return AthenaSyntaxError(f"SQL syntax error: {detail}\n  in: {sql.strip()}")


def _parse(athena_sql: str) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(athena_sql, read="athena") if s is not None]
    except ParseError as error:
        raise _syntax_error(athena_sql, error) from None
    if len(statements) != 1:
        raise AthenaSyntaxError(f"expected one SQL statement, got {len(statements)}: {athena_sql.strip()!r}")
    return statements[0]


def _to_duckdb(statement: exp.Expression, schema: Mapping[str, Any] | None, lake: LakeTables | None) -> str:
    _athena_column_names(statement)
    return repair(statement, schema, lake).sql("duckdb")


def transpile(athena_sql: str, schema: Mapping[str, Any] | None = None, lake: LakeTables | None = None) -> str:
    """One Athena statement as DuckDB SQL, with Athena's result semantics where they differ.

    `schema` ({schema: {table: {column: type}}}, DuckDB type names) lets type-dependent
    differences be repaired for columns too; `lake` resolves time travel. `query` passes both.
    """
    return _to_duckdb(_parse(athena_sql), schema, lake)


def table_names(catalog: Catalog) -> list[str]:
    """Every table of the catalog as 'namespace.table', sorted."""
    return sorted(".".join(t) for ns in catalog.list_namespaces() for t in catalog.list_tables(ns))


def column_types(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, dict[str, str]]]:
    """{schema: {table or view: {column: DuckDB type}}} of a connection's main database."""
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for namespace, table, column, data_type in con.execute(
            "SELECT table_schema, table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_catalog = current_database() ORDER BY ordinal_position").fetchall():
        schema.setdefault(namespace, {}).setdefault(table, {})[column] = data_type
    return schema


SNAPSHOTS_SUFFIX = "$snapshots"
# Athena's "<table>$snapshots" columns (docs.aws.amazon.com/athena/latest/ug/querying-iceberg-table-metadata.html);
# the serving file holds them too, for the dashboards' freshness
SNAPSHOTS_SCHEMA = pa.schema([("committed_at", pa.timestamp("us", tz="UTC")), ("snapshot_id", pa.int64()),
                              ("parent_id", pa.int64()), ("operation", pa.string()), ("manifest_list", pa.string()),
                              ("summary", pa.map_(pa.string(), pa.string()))])


def snapshots(table: Table) -> pa.Table:
    """A table's snapshots as Athena's `"<table>$snapshots"` shows them."""
    return table.inspect.snapshots().select(SNAPSHOTS_SCHEMA.names).cast(SNAPSHOTS_SCHEMA)


# Athena's Iceberg metadata tables ("table$kind"), with the columns Athena documents, as SELECTs over
# pyiceberg's `table.inspect.<kind>()` (registered as `_inspected`; for snapshots, `snapshots` above).
# Not given: listed in _NOT_GIVEN.
_METADATA = {
    "snapshots": "SELECT * FROM _inspected",
    "history": "SELECT CAST(made_current_at AS TIMESTAMPTZ) AS made_current_at, snapshot_id, parent_id, "
               "is_current_ancestor FROM _inspected",
    "files": "SELECT content, file_path, CAST(file_format AS VARCHAR) AS file_format, spec_id, {partition}"
             "record_count, file_size_in_bytes, column_sizes, value_counts, null_value_counts, nan_value_counts, "
             "key_metadata, split_offsets, equality_ids, sort_order_id FROM _inspected",
    # from the data files, as Trino computes it (pyiceberg's partitions table fails on a table without a snapshot)
    "partitions": "SELECT {partition}CAST(sum(record_count) AS BIGINT) AS record_count, count(*) AS file_count, "
                  "CAST(sum(file_size_in_bytes) AS BIGINT) AS total_size FROM _inspected WHERE content = 0 "
                  "GROUP BY ALL",
    "manifests": "SELECT path, length, partition_spec_id, added_snapshot_id, added_data_files_count, "
                 "existing_data_files_count, deleted_data_files_count, partition_summaries FROM _inspected",
    "refs": "SELECT name, CAST(type AS VARCHAR) AS type, snapshot_id, max_reference_age_in_ms, "
            "min_snapshots_to_keep, max_snapshot_age_in_ms FROM _inspected",
}
_BOUNDS = "pyiceberg gives the bounds in Iceberg's binary encoding, Athena as text"
_ROW_COUNTS = "the row counts are not in pyiceberg's manifests table"
_NOT_GIVEN = {
    "files": {"lower_bounds": _BOUNDS, "upper_bounds": _BOUNDS, "readable_metrics": "not in Athena's columns"},
    "partitions": {"data": "the per-column min/max/null counts are not in pyiceberg's partitions table"},
    "manifests": {"added_rows_count": _ROW_COUNTS, "existing_rows_count": _ROW_COUNTS,
                  "deleted_rows_count": _ROW_COUNTS},
}


class _Lake:
    """The tables `_open` pinned, for the metadata tables and time travel of one statement."""

    def __init__(self, con: duckdb.DuckDBPyConnection, tables: dict[str, Table]) -> None:
        self.con, self.tables = con, tables

    def table(self, name: str) -> Table:
        if name not in self.tables:
            raise UnknownTableError(f"Table {name} does not exist\n  tables in the catalog: "
                                    f"{', '.join(sorted(self.tables)) or 'none'}")
        return self.tables[name]

    def add_metadata_tables(self, statement: exp.Expression) -> None:
        """Materialize each `"namespace"."table$kind"` the statement reads, from the pinned metadata."""
        for node in statement.find_all(exp.Table):
            base, dollar, kind = node.name.partition("$")
            if not dollar or not node.db:
                continue
            if kind not in _METADATA:
                raise AthenaError(f'metadata table "{node.name}": the stand-in gives '
                                  f"{', '.join('$' + k for k in _METADATA)}, not ${kind}")
            for column in statement.find_all(exp.Column):
                if column.name in _NOT_GIVEN.get(kind, {}):
                    raise AthenaError(f"${kind}.{column.name} is not available locally: "
                                      f"{_NOT_GIVEN[kind][column.name]}")
            table = self.table(f"{node.db}.{base}")
            partition = "partition, " if table.spec().fields else ""
            self.con.register("_inspected", snapshots(table) if kind == "snapshots" else
                              getattr(table.inspect, "files" if kind == "partitions" else kind)())
            try:
                self.con.execute(f"CREATE OR REPLACE TABLE {ident(node.db)}.{ident(node.name)} AS "
                                 + _METADATA[kind].format(partition=partition))
            finally:
                self.con.unregister("_inspected")

    def as_of(self, name: str, version: exp.Version) -> exp.Expression:
        """iceberg_scan of the snapshot Athena's `FOR VERSION AS OF` / `FOR TIMESTAMP AS OF` picks."""
        table = self.table(name)
        value = version.expression
        if version.name.upper() == "VERSION":
            if value.is_int:
                snapshot = table.metadata.snapshot_by_id(int(value.name))
            elif value.is_string:  # a branch or tag
                ref = table.metadata.refs.get(value.name)
                snapshot = table.metadata.snapshot_by_id(ref.snapshot_id) if ref else None
            else:
                raise AthenaError(f"FOR VERSION AS OF takes a snapshot id or a branch or tag name: {value.sql()}")
            if snapshot is None:
                namespace, base = name.rsplit(".", 1)
                raise AthenaError(f"FOR VERSION AS OF {value.sql('athena')}: no such snapshot of {name} "
                                  f'(its snapshots: SELECT * FROM "{namespace}"."{base}$snapshots")')
        else:
            # evaluated by DuckDB in the session zone (UTC), as Athena evaluates it
            (when,) = self.con.execute(f"SELECT CAST({value.sql('duckdb')} AS TIMESTAMPTZ)").fetchone()
            snapshot = table.snapshot_as_of_timestamp(round(when.timestamp() * 1000))
            if snapshot is None:  # DuckDB's iceberg_scan would read no rows
                raise AthenaError(f"FOR TIMESTAMP AS OF {when.isoformat()}: {name} has no snapshot at or "
                                  f"before that time")
        snapshot_id = exp.EQ(this=exp.column("snapshot_from_id"), expression=exp.Literal.number(snapshot.snapshot_id))
        return exp.func("iceberg_scan", exp.Literal.string(table.metadata_location), snapshot_id)


def query(catalog: Catalog, athena_sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one Athena statement over `catalog`; returns (column names, rows)."""
    con, tables = _open(catalog)
    sql = athena_sql
    try:
        statement = _parse(athena_sql)
        lake = _Lake(con, tables)
        lake.add_metadata_tables(statement)
        sql = _to_duckdb(statement, MappingSchema(column_types(con), dialect="duckdb"), lake)
        cursor = con.execute(sql)
        return [d[0] for d in cursor.description or []], cursor.fetchall()
    except duckdb.CatalogException as error:
        raise UnknownTableError(f"{error}\n  tables in catalog '{catalog.name}': "
                                f"{', '.join(table_names(catalog)) or 'none'}") from None
    except duckdb.ParserException as error:
        raise AthenaSyntaxError(f"SQL syntax error: {error}\n  in: {sql}") from None
    except duckdb.Error as error:
        raise AthenaError(f"{error}\n  in: {sql}") from None
    finally:
        con.close()
