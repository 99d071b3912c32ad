"""The Athena stand-in: Athena (Trino) SQL over the local Iceberg catalog, run by DuckDB.

`connect` gives a DuckDB connection with one schema per Iceberg namespace and one view per
table, so `SELECT ... FROM gold.daily_kpis` means the same thing here as in Athena. `transpile`
turns Athena SQL into DuckDB SQL with sqlglot, and repairs the differences listed in
docs/analytics.md ("Athena SQL on DuckDB") where it can; `query` runs one statement.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from pyiceberg.catalog import Catalog
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, SqlglotError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema
from sqlglot.time import format_time

# avro first: the iceberg extension reads manifests through it and must not autoload it.
EXTENSIONS = ("avro", "iceberg")
# Athena's Java date patterns (format_datetime) are Hive's: reuse sqlglot's Hive mapping.
_JAVA = Dialect.get_or_raise("hive")
# Trino keeps a DATE a DATE through these; DuckDB turns it into a TIMESTAMP.
_DATE_ARITHMETIC = (exp.DateAdd, exp.DateTrunc, exp.TimestampTrunc)
_MARK = "athena_stand_in_mark"
_STRFTIME_TOKEN = re.compile(r"%-?[A-Za-z](strict)?")  # sqlglot's internal format, e.g. %mstrict, %-d


class AthenaError(ValueError):
    """A query the stand-in cannot run; the message names the problem."""


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
    for name in EXTENSIONS:
        # LOAD by path: no INSTALL copy into ~/.duckdb, so nothing outside the venv is touched
        con.execute(f"LOAD {literal(str(extension_path(name)))}")
    return con


def connect(catalog: Catalog) -> duckdb.DuckDBPyConnection:
    """DuckDB with a schema per namespace and a view per Iceberg table of `catalog`.

    Each view reads the table's snapshot that was current when `connect` ran: one connection
    sees one consistent state of the lake, as one Athena query does. Reconnect to see newer commits.
    """
    con = offline_duckdb()
    for namespace in catalog.list_namespaces():
        schema = ident(".".join(namespace))
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for identifier in catalog.list_tables(namespace):
            location = catalog.load_table(identifier).metadata_location
            con.execute(f"CREATE VIEW {schema}.{ident(identifier[-1])} AS "
                        f"SELECT * FROM iceberg_scan({literal(location)})")
    return con


def _format_datetime(node: exp.Anonymous) -> exp.Expression:
    """Trino's format_datetime(ts, java_pattern), which sqlglot leaves untranslated, as STRFTIME."""
    if len(node.expressions) != 2 or not node.expressions[1].is_string:
        raise AthenaError(f"format_datetime needs a timestamp and a literal pattern: {node.sql('athena')}")
    pattern = node.expressions[1].name
    strftime = format_time(pattern, _JAVA.TIME_MAPPING, _JAVA.TIME_TRIE) or ""
    leftover = set(re.findall(r"[A-Za-z]", _STRFTIME_TOKEN.sub("", strftime)))
    if leftover:
        raise AthenaError(f"format_datetime pattern '{pattern}': the stand-in cannot translate "
                          f"{''.join(sorted(leftover))}; use y M d H h m s a E and separators")
    return exp.TimeToStr(this=node.expressions[0], format=exp.Literal.string(strftime))


def _regexp_extract(node: exp.RegexpExtract) -> exp.Expression:
    """Trino's regexp_extract is NULL without a match, DuckDB's is '': return NULL as Athena does."""
    matches = exp.RegexpLike(this=node.this.copy(), expression=node.expression.copy())
    return exp.Case().when(matches, node.copy())


def _on_dates(statement: exp.Expression, schema: Mapping[str, Any] | None) -> set[int]:
    """Marks of the date_add/date_trunc calls whose argument is a DATE.

    Athena returns a DATE for them, DuckDB a TIMESTAMP. Types come from sqlglot's annotator on a
    qualified copy (qualifying renames result columns, so only the copy is qualified); a query
    it cannot qualify keeps DuckDB's types, except for literals.
    """
    for mark, node in enumerate(statement.find_all(*_DATE_ARITHMETIC)):
        node.meta[_MARK] = mark
    typed = statement.copy()
    try:
        typed = qualify(typed, schema=schema, dialect="athena", validate_qualify_columns=False)
    except SqlglotError:
        pass
    annotate_types(typed, schema=schema, dialect="athena")
    return {n.meta[_MARK] for n in typed.find_all(*_DATE_ARITHMETIC)
            if _MARK in n.meta and n.this.is_type(exp.DataType.Type.DATE)}


def _athena_column_names(statement: exp.Expression) -> None:
    """Result columns named as Athena names them: unquoted names in lower case, `_colN` for an
    unnamed expression (DuckDB would call it e.g. `sum(events)`)."""
    normalize_identifiers(statement, dialect="athena")
    if isinstance(statement, exp.Select):
        for position, column in enumerate(statement.expressions):
            if not isinstance(column, (exp.Alias, exp.Column, exp.Star)):
                column.replace(exp.alias_(column.copy(), f"_col{position}"))


def _with_athena_semantics(statement: exp.Expression, schema: Mapping[str, Any] | None) -> exp.Expression:
    _athena_column_names(statement)
    on_dates = _on_dates(statement, schema)
    # innermost first, so an outer rewrite copies arguments that are already rewritten
    for node in reversed(list(statement.find_all(exp.Anonymous, exp.RegexpExtract, *_DATE_ARITHMETIC))):
        if isinstance(node, exp.RegexpExtract):
            node.replace(_regexp_extract(node))
        elif isinstance(node, _DATE_ARITHMETIC):
            if node.meta.get(_MARK) in on_dates:
                node.replace(exp.cast(node.copy(), exp.DataType.Type.DATE))
        elif node.name.lower() == "format_datetime":
            node.replace(_format_datetime(node))
    return statement


def _syntax_error(sql: str, error: ParseError) -> AthenaSyntaxError:
    where = error.errors[0] if error.errors else {}
    detail = where.get("description") or str(error)
    if where.get("line"):
        detail += f" at line {where['line']}, column {where['col']} near '{where.get('highlight', '')}'"
    return AthenaSyntaxError(f"SQL syntax error: {detail}\n  in: {sql.strip()}")


def transpile(athena_sql: str, schema: Mapping[str, Any] | None = None) -> str:
    """One Athena statement as DuckDB SQL, with Athena's result semantics where they differ.

    `schema` ({schema: {table: {column: type}}}, DuckDB type names) lets type-dependent
    differences be repaired for columns too; `query` passes the catalog's.
    """
    try:
        statements = [s for s in sqlglot.parse(athena_sql, read="athena") if s is not None]
    except ParseError as error:
        raise _syntax_error(athena_sql, error) from None
    if len(statements) != 1:
        raise AthenaSyntaxError(f"expected one SQL statement, got {len(statements)}: {athena_sql.strip()!r}")
    return _with_athena_semantics(statements[0], schema).sql("duckdb")


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


def query(catalog: Catalog, athena_sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one Athena statement over `catalog`; returns (column names, rows)."""
    con = connect(catalog)
    try:
        sql = transpile(athena_sql, MappingSchema(column_types(con), dialect="duckdb"))
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
