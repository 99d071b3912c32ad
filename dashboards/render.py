"""Render the Superset bundle in dashboards/bundle/ for one target into a zip Superset imports.

The YAML templates hold what is Superset's choice (charts, metrics, layout, fixed UUIDs). What
belongs to a target or to the table is filled in here:
- the database's SQLAlchemy URI: the local read-only DuckDB serving file, or Athena (PyAthena);
- each dataset's columns, types and descriptions, from the table's Iceberg schema (by default the
  specs in iceberg_tables/specs.py), so a column is named once, in the table definition; metrics
  and charts are checked against those columns;
- a virtual dataset's SQL (written once, in Athena SQL, and shared by its charts): as it is for
  Athena, with the Glue database names, or turned into DuckDB SQL by the Athena stand-in; its
  columns are what that SQL returns over empty tables of the same schemas;
- each chart's query_context (dashboards/query_context.py) and each dashboard's layout and native
  filters (dashboards/layout.py).
"""
from __future__ import annotations

import inspect
import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import duckdb
import sqlglot
import yaml
from pyiceberg.schema import Schema
from pyiceberg.types import (DateType, DecimalType, DoubleType, FloatType, IntegerType, LongType, TimestampType,
                             TimestamptzType)

from dashboards.layout import native_filters, position
from dashboards.query_context import columns_of, metrics_of, query_context
from iceberg_tables.specs import ALL_TABLES, LIVE_TABLES
from lakehouse.analytics.athena import (SNAPSHOTS_SCHEMA, SNAPSHOTS_SUFFIX, create_views, ident, offline_duckdb,
                                        transpile)

BUNDLE_DIR = Path(__file__).resolve().parent / "bundle"
ROOT_FOLDER = "lakehouse_dashboards"  # Superset wants every file of a bundle under one folder
DASHBOARD_NAMESPACE = "gold"  # the Athena connection's default schema
_SQL_TYPES = {"boolean": "BOOLEAN", "int": "INTEGER", "long": "BIGINT", "float": "REAL", "double": "DOUBLE",
              "date": "DATE", "time": "TIME", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP WITH TIME ZONE",
              "string": "VARCHAR", "uuid": "UUID", "binary": "VARBINARY"}
# The objects the bundle manages (Superset's `is_managed_externally`): a publish removes those it no longer holds.
MANAGED_KINDS = ("charts/", "dashboards/", "datasets/")
_MEASURES = (IntegerType, LongType, FloatType, DoubleType, DecimalType)  # summed, not grouped by


class BundleError(ValueError):
    """The bundle cannot be rendered: the message names the file, table, column or parameter."""


def duckdb_uri(serving_db: Path) -> str:
    """Read-only, so Superset never takes a lock that would block the next export."""
    return f"duckdb:///{Path(serving_db).resolve()}?access_mode=read_only"


def athena_uri(region: str, database: str, s3_staging_dir: str, work_group: str,
               result_reuse_minutes: int | None = None) -> str:
    """PyAthena's SQLAlchemy URI; credentials come from the task role, never from the URI. With
    `result_reuse_minutes`, Athena answers a repeated query from its results that are at most that old."""
    if not s3_staging_dir.startswith("s3://"):
        raise BundleError(f"s3_staging_dir must be an s3:// URI, got {s3_staging_dir!r}")
    if not (region and database and work_group):
        raise BundleError("the athena target needs a region, a database and a work_group")
    reuse = f"&result_reuse_enable=true&result_reuse_minutes={result_reuse_minutes}" if result_reuse_minutes else ""
    return (f"awsathena+rest://@athena.{region}.amazonaws.com:443/{database}"
            f"?s3_staging_dir={quote_plus(s3_staging_dir)}&work_group={quote_plus(work_group)}{reuse}")


# (database URI, Iceberg namespace -> the target's schema name, Athena SQL -> the target's SQL)
Target = tuple[str, Callable[[str], str], Callable[[str], str]]


def _duckdb_target(serving_db: Path) -> Target:
    return duckdb_uri(serving_db), lambda namespace: namespace, transpile  # the serving file keeps namespaces


def _athena_target(region: str, s3_staging_dir: str, work_group: str,
                   databases: Mapping[str, str] | None = None, result_reuse_minutes: int | None = None) -> Target:
    """`databases` maps an Iceberg namespace to its Glue database name (default: the same name)."""
    names = dict(databases or {})
    schema = lambda namespace: names.get(namespace, namespace)  # noqa: E731

    def athena_sql(sql: str) -> str:
        statement = sqlglot.parse_one(sql, read="athena")
        for table in statement.find_all(sqlglot.exp.Table):
            if table.db:
                table.set("db", sqlglot.exp.to_identifier(schema(table.db), quoted=True))
        return statement.sql("athena", pretty=True)

    uri = athena_uri(region, schema(DASHBOARD_NAMESPACE), s3_staging_dir, work_group, result_reuse_minutes)
    return uri, schema, athena_sql


TARGETS: dict[str, Callable[..., Target]] = {"duckdb": _duckdb_target, "athena": _athena_target}


def _templates() -> dict[str, dict[str, Any]]:
    return {str(p.relative_to(BUNDLE_DIR)): yaml.safe_load(p.read_text())
            for p in sorted(BUNDLE_DIR.rglob("*.yaml"))}


def freshness_sql(tables: Mapping[str, Schema]) -> str:
    """Athena SQL: every table's last commit and snapshot count, from its `"<table>$snapshots"` metadata table."""
    return "\nUNION ALL\n".join(
        f"SELECT '{name}' AS table_name, max(committed_at) AS last_commit, count(*) AS snapshots "
        f"FROM {ident(name.split('.')[0])}.{ident(name.split('.')[1] + SNAPSHOTS_SUFFIX)}" for name in sorted(tables))


# SQL the bundle derives from the table definitions instead of spelling it: a dataset's `sql: {generated: NAME}`
GENERATED_SQL: dict[str, Callable[[Mapping[str, Schema]], str]] = {"table_freshness": freshness_sql}


def dataset_sql(path: str, dataset: dict[str, Any], tables: Mapping[str, Schema]) -> str | None:
    """A virtual dataset's Athena SQL (None for a dataset over one table)."""
    sql = dataset.get("sql")
    if isinstance(sql, dict):
        if sql.get("generated") not in GENERATED_SQL:
            raise BundleError(f"{path}: sql.generated must be one of {sorted(GENERATED_SQL)}, got {sql}")
        return GENERATED_SQL[sql["generated"]](tables)
    return sql


def _empty_lake(tables: Mapping[str, Schema]) -> duckdb.DuckDBPyConnection:
    """DuckDB holding an empty table per schema, and its snapshots table, under the same names, and the views
    over them (fresh.*)."""
    con = offline_duckdb()
    for name, schema in tables.items():
        namespace, table = name.split(".")
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {ident(namespace)}")
        for suffix, arrow in (("", schema.as_arrow()), (SNAPSHOTS_SUFFIX, SNAPSHOTS_SCHEMA)):
            con.register("empty_table", arrow.empty_table())
            con.execute(f"CREATE TABLE {ident(namespace)}.{ident(table + suffix)} AS SELECT * FROM empty_table")
            con.unregister("empty_table")
    create_views(con, set(tables))
    return con


def virtual_columns(path: str, sql: str, tables: Mapping[str, Schema], docs: Mapping[str, str]) -> list[dict[str, Any]]:
    """Superset dataset columns of an Athena query: what it returns over empty tables of `tables`' schemas."""
    con = _empty_lake(tables)
    try:
        described = con.execute(f"DESCRIBE {transpile(sql)}").fetchall()
    except (duckdb.Error, ValueError) as error:
        raise BundleError(f"{path}: its SQL does not run over the table definitions: {error}") from None
    finally:
        con.close()
    columns = []
    for name, sql_type, *_ in described:
        temporal = sql_type.startswith(("DATE", "TIMESTAMP"))
        numeric = sql_type.startswith(("BIGINT", "INTEGER", "DOUBLE", "DECIMAL", "HUGEINT", "FLOAT", "SMALLINT"))
        columns.append({"column_name": name, "type": sql_type, "is_dttm": temporal, "groupby": not numeric,
                        "filterable": True, "description": docs.get(name)})
    unknown = set(docs) - {c["column_name"] for c in columns}
    if unknown:
        raise BundleError(f"{path}: descriptions of columns its SQL does not return: {sorted(unknown)}")
    return columns


def bundle_charts() -> dict[str, str]:
    """The bundle's charts: slice name -> fixed UUID."""
    return {d["slice_name"]: d["uuid"] for f, d in _templates().items() if f.startswith("charts/")}


def bundle_uuids() -> set[str]:
    """The UUID of every object the bundle holds: what a publish keeps of the managed objects."""
    return {doc["uuid"] for doc in _templates().values() if "uuid" in doc}


def bundle_dashboards() -> dict[str, str]:
    """The bundle's dashboards: title -> slug (the page is /superset/dashboard/<slug>/)."""
    return {d["dashboard_title"]: d["slug"] for f, d in _templates().items() if f.startswith("dashboards/")}


def spec_schemas() -> dict[str, Schema]:
    """The Iceberg schema of every table defined in iceberg_tables/specs.py, by 'namespace.table'."""
    return {spec.full_name: spec.schema() for spec in (*ALL_TABLES, *LIVE_TABLES)}


def dataset_columns(schema: Schema) -> list[dict[str, Any]]:
    """Superset dataset columns for an Iceberg schema: names and SQL types from the table definition."""
    columns = []
    for field in schema.fields:
        kind = field.field_type
        if isinstance(kind, DecimalType):
            sql_type = f"DECIMAL({kind.precision}, {kind.scale})"
        elif str(kind) in _SQL_TYPES:
            sql_type = _SQL_TYPES[str(kind)]
        else:
            raise BundleError(f"column '{field.name}' has type {kind}, which a dashboard dataset cannot chart")
        temporal = isinstance(kind, (DateType, TimestampType, TimestamptzType))
        columns.append({"column_name": field.name, "type": sql_type, "is_dttm": temporal,
                        "groupby": not isinstance(kind, _MEASURES), "filterable": True,
                        "description": field.doc})
    return columns


def _check_dataset(path: str, dataset: dict[str, Any]) -> None:
    names = {c["column_name"] for c in dataset["columns"]}
    used = {dataset["main_dttm_col"]} if dataset.get("main_dttm_col") else set()
    for metric in dataset.get("metrics", []):
        used |= {c.name for c in sqlglot.parse_one(metric["expression"]).find_all(sqlglot.exp.Column)}
    if used - names:
        raise BundleError(f"{path}: columns {sorted(used - names)} are not in table "
                          f"{dataset['schema']}.{dataset['table_name']} (it has {sorted(names)})")


def _check_chart(path: str, chart: dict[str, Any], dataset: dict[str, Any]) -> None:
    params = chart["params"]
    unknown = (set(metrics_of(params)) - {m["metric_name"] for m in dataset.get("metrics", [])}) | (
        set(columns_of(params)) - {c["column_name"] for c in dataset["columns"]})
    if unknown:
        raise BundleError(f"{path}: {sorted(unknown)} are neither metrics nor columns of dataset {dataset['table_name']}")


def _lay_out(dashboard: dict[str, Any], charts: Mapping[str, dict[str, Any]],
             datasets: Mapping[str, dict[str, Any]]) -> None:
    """Replace the dashboard's `rows` and `filters` by Superset's position and native filters."""
    title = dashboard["dashboard_title"]
    dashboard["position"], ids = position(title, dashboard.pop("rows"), {n: c["uuid"] for n, c in charts.items()})
    chart_columns = {name: (charts[name]["dataset_uuid"],
                            {c["column_name"] for c in datasets[charts[name]["dataset_uuid"]]["columns"]})
                     for name in ids}
    metadata = dashboard.setdefault("metadata", {})
    metadata["native_filter_configuration"] = native_filters(title, dashboard.pop("filters", []), ids, chart_columns)


def render(target: str, tables: Mapping[str, Schema] | None = None, **params: Any) -> dict[str, dict[str, Any]]:
    """The bundle's documents for `target`, by path inside the bundle.

    `tables` maps 'namespace.table' to its Iceberg schema; by default the table specs' schemas.
    """
    tables = spec_schemas() if tables is None else tables
    if target not in TARGETS:
        raise BundleError(f"unknown target '{target}': choose one of {', '.join(TARGETS)}")
    signature = inspect.signature(TARGETS[target])
    try:
        signature.bind(**params)
    except TypeError as error:
        raise BundleError(f"target '{target}' takes {', '.join(signature.parameters)}: {error}") from None
    uri, schema_name, target_sql = TARGETS[target](**params)
    docs = _templates()
    datasets = {}
    for path, doc in docs.items():
        if path.startswith("databases/"):
            doc["sqlalchemy_uri"] = uri
        elif path.startswith("datasets/"):
            sql = dataset_sql(path, doc, tables)
            if sql is not None:
                doc["columns"] = virtual_columns(path, sql, tables, doc.pop("descriptions", {}))
                doc["sql"] = target_sql(sql)
            else:
                table = f"{doc['schema']}.{doc['table_name']}"
                if table not in tables:
                    raise BundleError(f"{path} charts {table}, which has no Iceberg schema here "
                                      f"(tables: {sorted(tables)})")
                doc["columns"] = dataset_columns(tables[table])
            _check_dataset(path, doc)
            doc["schema"] = schema_name(doc["schema"])
            datasets[doc["uuid"]] = doc
    charts = {doc["slice_name"]: doc for path, doc in docs.items() if path.startswith("charts/")}
    for path, doc in docs.items():
        if path.startswith("charts/"):
            if doc["dataset_uuid"] not in datasets:
                raise BundleError(f"{path}: dataset {doc['dataset_uuid']} is not in the bundle")
            _check_chart(path, doc, datasets[doc["dataset_uuid"]])
            doc["params"]["viz_type"] = doc["viz_type"]
            # Superset stores it as a JSON string
            doc["query_context"] = json.dumps(query_context(doc["slice_name"], doc["params"]))
        elif path.startswith("dashboards/"):
            _lay_out(doc, charts, datasets)
        if path.startswith(MANAGED_KINDS):
            doc["is_managed_externally"] = True  # the bundle owns it: removed from Superset once gone from here
    return docs


def render_bundle(target: str, out_zip: Path, *, tables: Mapping[str, Schema] | None = None, **params: Any) -> Path:
    """Write the bundle for `target` ('duckdb': serving_db=PATH; 'athena': region=, s3_staging_dir=,
    work_group=, databases={namespace: glue_database}, result_reuse_minutes=) as a zip under one root folder."""
    return write_bundle(render(target, tables, **params), out_zip)


def write_bundle(docs: Mapping[str, dict[str, Any]], out_zip: Path) -> Path:
    """Rendered documents (by path inside the bundle) as the zip Superset imports."""
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path, doc in docs.items():
            bundle.writestr(f"{ROOT_FOLDER}/{path}", yaml.safe_dump(doc, sort_keys=False))
    return out_zip
