"""Render the Superset bundle in dashboards/bundle/ for one target into a zip Superset imports.

The YAML templates hold what is Superset's choice (charts, metrics, layout, fixed UUIDs). What
belongs to a target or to the table is filled in here:
- the database's SQLAlchemy URI: the local read-only DuckDB serving file, or Athena (PyAthena);
- each dataset's columns, types and descriptions, from the table's Iceberg schema (by default the
  specs in iceberg_tables/specs.py), so a column is named once, in the table definition; metrics
  and charts are checked against those columns.
"""
from __future__ import annotations

import inspect
import json
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import sqlglot
import yaml
from pyiceberg.schema import Schema
from pyiceberg.types import (DateType, DecimalType, DoubleType, FloatType, IntegerType, LongType, TimestampType,
                             TimestamptzType)

from iceberg_tables.specs import ALL_TABLES

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


def athena_uri(region: str, database: str, s3_staging_dir: str, work_group: str) -> str:
    """PyAthena's SQLAlchemy URI; credentials come from the task role, never from the URI."""
    if not s3_staging_dir.startswith("s3://"):
        raise BundleError(f"s3_staging_dir must be an s3:// URI, got {s3_staging_dir!r}")
    if not (region and database and work_group):
        raise BundleError("the athena target needs a region, a database and a work_group")
    return (f"awsathena+rest://@athena.{region}.amazonaws.com:443/{database}"
            f"?s3_staging_dir={quote_plus(s3_staging_dir)}&work_group={quote_plus(work_group)}")


def _duckdb_target(serving_db: Path) -> tuple[str, Callable[[str], str]]:
    return duckdb_uri(serving_db), lambda namespace: namespace  # the serving file keeps namespaces


def _athena_target(region: str, s3_staging_dir: str, work_group: str,
                   databases: Mapping[str, str] | None = None) -> tuple[str, Callable[[str], str]]:
    """`databases` maps an Iceberg namespace to its Glue database name (default: the same name)."""
    names = dict(databases or {})
    schema = lambda namespace: names.get(namespace, namespace)  # noqa: E731
    return athena_uri(region, schema(DASHBOARD_NAMESPACE), s3_staging_dir, work_group), schema


TARGETS: dict[str, Callable[..., tuple[str, Callable[[str], str]]]] = {
    "duckdb": _duckdb_target, "athena": _athena_target}


def _templates() -> dict[str, dict[str, Any]]:
    return {str(p.relative_to(BUNDLE_DIR)): yaml.safe_load(p.read_text())
            for p in sorted(BUNDLE_DIR.rglob("*.yaml"))}


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
    return {spec.full_name: spec.schema() for spec in ALL_TABLES}


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
    metrics = set(params.get("metrics", [])) | ({params["metric"]} if "metric" in params else set())
    columns = set(params.get("groupby", [])) | ({params["x_axis"]} if "x_axis" in params else set())
    unknown = (metrics - {m["metric_name"] for m in dataset["metrics"]}) | (
        columns - {c["column_name"] for c in dataset["columns"]})
    if unknown:
        raise BundleError(f"{path}: {sorted(unknown)} are neither metrics nor columns of dataset {dataset['table_name']}")


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
    uri, schema_name = TARGETS[target](**params)
    docs = _templates()
    datasets = {}
    for path, doc in docs.items():
        if path.startswith("databases/"):
            doc["sqlalchemy_uri"] = uri
        elif path.startswith("datasets/"):
            table = f"{doc['schema']}.{doc['table_name']}"
            if table not in tables:
                raise BundleError(f"{path} charts {table}, which has no Iceberg schema here (tables: {sorted(tables)})")
            doc["columns"] = dataset_columns(tables[table])
            _check_dataset(path, doc)
            doc["schema"] = schema_name(doc["schema"])
            datasets[doc["uuid"]] = doc
    for path, doc in docs.items():
        if path.startswith("charts/"):
            _check_chart(path, doc, datasets[doc["dataset_uuid"]])
            doc["query_context"] = json.dumps(doc["query_context"])  # Superset stores it as a JSON string
        if path.startswith(MANAGED_KINDS):
            doc["is_managed_externally"] = True  # the bundle owns it: removed from Superset once gone from here
    return docs


def render_bundle(target: str, out_zip: Path, *, tables: Mapping[str, Schema] | None = None, **params: Any) -> Path:
    """Write the bundle for `target` ('duckdb': serving_db=PATH; 'athena': region=, s3_staging_dir=,
    work_group=, databases={namespace: glue_database}) as a zip under one root folder."""
    return write_bundle(render(target, tables, **params), out_zip)


def write_bundle(docs: Mapping[str, dict[str, Any]], out_zip: Path) -> Path:
    """Rendered documents (by path inside the bundle) as the zip Superset imports."""
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out_zip, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path, doc in docs.items():
            bundle.writestr(f"{ROOT_FOLDER}/{path}", yaml.safe_dump(doc, sort_keys=False))
    return out_zip
