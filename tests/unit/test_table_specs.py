"""The table specs follow the clickstream contract, use only format-v2 features (what Athena reads), and every
copy of a name that runtime code must spell on its own (catalog, tables, event types) agrees."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from pyiceberg.transforms import DayTransform
from pyiceberg.types import (BinaryType, BooleanType, DateType, DecimalType, DoubleType, FloatType, IntegerType,
                             LongType, StringType, TimestampType, TimestamptzType, UUIDType)

from cdk_app import config
from glue_jobs import common, gold_build, gold_changes, gold_metrics
from iceberg_tables import catalogs
from iceberg_tables.glue_conf import glue_job_arguments, glue_spark_conf
from iceberg_tables.specs import (ALL_TABLES, GOLD_DAILY_KPIS, GOLD_KPI_COUNTS, OPS_MERGED_BATCHES, OPS_PIPELINE_RUNS,
                                  OPS_QUARANTINE, SILVER_EVENTS, Column, SpecError, TableSpec, partition_field_name)
from lambdas.cleaner.schemas import QUARANTINE_SCHEMA
from lambdas.contracts import clickstream, orders

# Types of format v2 (Athena reads only v2); v3 adds variant, timestamp_ns, geo.
V2_TYPES = (BinaryType, BooleanType, DateType, DecimalType, DoubleType, FloatType, IntegerType, LongType,
            StringType, TimestampType, TimestamptzType, UUIDType)


def test_silver_events_is_the_contracts_clean_record_and_its_batch() -> None:
    expected = [f.name for f in clickstream.FIELDS] + [name for name, _ in clickstream.EXTRA_CLEAN_COLUMNS] + [
        "batch_id"]
    assert [c.name for c in SILVER_EVENTS.columns] == expected
    for field in clickstream.FIELDS:
        column = SILVER_EVENTS.column(field.name)
        assert column.required == field.required and column.doc == field.doc
        assert column.type == (TimestamptzType() if field.type == "timestamp" else StringType())
    assert SILVER_EVENTS.column("ingested_at").type == TimestamptzType()
    assert SILVER_EVENTS.partition_by == (("event_time", DayTransform()),)
    assert SILVER_EVENTS.identifier == ("event_id",)


def test_gold_and_ops_columns() -> None:
    assert [c.name for c in GOLD_DAILY_KPIS.columns] == [
        "event_date", "country", "active_users", "sessions", "events", "page_views", "product_views",
        "add_to_cart", "checkouts", "updated_at", "orders", "paid_orders", "revenue_usd", "conversion_rate"]
    # columns added after the table existed are optional, so an existing lake migrates in place
    assert not any(GOLD_DAILY_KPIS.column(c).required for c in ("orders", "paid_orders", "revenue_usd",
                                                                 "conversion_rate"))
    assert GOLD_DAILY_KPIS.identifier == ("event_date", "country")
    assert [c for c, _ in GOLD_DAILY_KPIS.partition_by] == ["event_date"]
    assert [c.name for c in OPS_PIPELINE_RUNS.columns] == [
        "run_id", "step", "status", "started_at", "finished_at", "received", "clean", "quarantined",
        "duplicates", "rows_written", "quarantined_by_reason", "message"]
    ledger = ("received", "clean", "quarantined", "duplicates", "rows_written")
    assert all(OPS_PIPELINE_RUNS.column(c).type == LongType() and not OPS_PIPELINE_RUNS.column(c).required
               for c in ledger)
    assert OPS_PIPELINE_RUNS.partition_by == (("started_at", DayTransform()),)


def test_ops_quarantine_holds_the_cleaners_quarantine_columns_and_the_batch() -> None:
    assert {c.name for c in OPS_QUARANTINE.columns} == set(QUARANTINE_SCHEMA.names) | {"batch_id"}
    for field in QUARANTINE_SCHEMA:
        column = OPS_QUARANTINE.column(field.name)
        assert column.type == {"binary": BinaryType(), "string": StringType()}.get(str(field.type), TimestamptzType())
    assert OPS_QUARANTINE.partition_by == (("ingested_at", DayTransform()),)


def test_the_batch_ledger_balances_like_pipeline_runs() -> None:
    assert OPS_MERGED_BATCHES.identifier == ("manifest_sha256",)
    for name in ("received", "clean", "quarantined", "duplicates"):
        assert OPS_MERGED_BATCHES.column(name).type == LongType() and OPS_MERGED_BATCHES.column(name).required


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda s: s.full_name)
def test_specs_use_format_v2_features_only(spec: TableSpec) -> None:
    assert all(isinstance(c.type, V2_TYPES) for c in spec.columns)
    schema = spec.schema()
    assert [f.field_id for f in schema.fields] == list(range(1, len(spec.columns) + 1))
    assert schema.identifier_field_names() == set(spec.identifier)
    assert [f.name for f in spec.partition_spec().fields] == [
        c if str(t) == "identity" else f"{c}_{t}" for c, t in spec.partition_by]
    assert len(spec.sort_order().fields) == len(spec.sort_by)
    assert all(c.doc for c in spec.columns) and spec.doc


def test_names_spelled_in_runtime_code_agree() -> None:
    assert catalogs.CATALOG_NAME == common.CATALOG == config.CATALOG_NAME
    assert (common.SILVER_EVENTS, common.GOLD_DAILY_KPIS, common.PIPELINE_RUNS, common.QUARANTINE,
            common.MERGED_BATCHES) == tuple(f"{config.CATALOG_NAME}.{s.full_name}" for s in (
                SILVER_EVENTS, GOLD_DAILY_KPIS, OPS_PIPELINE_RUNS, OPS_QUARANTINE, OPS_MERGED_BATCHES))
    # the maintenance job keeps every table: a new spec must be added to glue_jobs.common.ALL_TABLES too
    assert common.ALL_TABLES == tuple(f"{config.CATALOG_NAME}.{s.full_name}" for s in ALL_TABLES)
    [(column, transform)] = SILVER_EVENTS.partition_by
    assert gold_changes.SILVER_DAY == partition_field_name(column, transform)
    # every fact input of gold is partitioned like silver.events, so its partitions are gold's dates
    facts = {f"{config.CATALOG_NAME}.{s.full_name}": s for s in ALL_TABLES}
    assert all(facts[t].partition_by == SILVER_EVENTS.partition_by for t in gold_changes.FACTS)
    assert gold_metrics.EVENT_TYPE_COUNTS == {col: kind for col, kind, _ in GOLD_KPI_COUNTS if kind}
    assert set(gold_metrics.EVENT_TYPE_COUNTS.values()) == set(clickstream.EVENT_TYPES)
    assert set(gold_metrics.FUNNEL_STEPS.values()) == set(clickstream.EVENT_TYPES)
    assert {gold_metrics.PLACED, gold_metrics.PAID, gold_metrics.CANCELLED, gold_metrics.REFUNDED} == set(
        orders.EVENT_TYPES)
    # gold_build writes every gold table of the specs, each from silver tables only
    assert sorted(t.name for t in gold_build.GOLD_TABLES) == sorted(
        f"{config.CATALOG_NAME}.{s.full_name}" for s in ALL_TABLES if s.namespace == "gold")
    assert all(t.startswith(f"{config.CATALOG_NAME}.silver.") for t in gold_build.SILVER_INPUTS)


@pytest.mark.parametrize(("columns", "identifier", "partition_by", "error"), [
    ((Column("a", StringType()), Column("a", LongType())), (), (), "duplicate column names"),
    ((Column("a", StringType()),), ("a",), (), "identifier column 'a' must be required"),
    ((Column("a", StringType()),), ("b",), (), "identifier column 'b' is not a column"),
    ((Column("a", StringType()),), (), (("ts", DayTransform()),), "partition column 'ts' is not a column"),
])
def test_contradictory_specs_are_rejected(columns: tuple, identifier: tuple, partition_by: tuple,
                                          error: str) -> None:
    with pytest.raises(SpecError, match=f"demo.bad: {error}"):
        TableSpec("demo", "bad", "doc", columns, partition_by=partition_by, identifier=identifier)


def test_glue_conf_uses_the_glue_catalog_under_the_same_name() -> None:
    conf = glue_spark_conf("s3://lakehouse-dev-warehouse/")
    assert conf["spark.sql.catalog.lake"] == "org.apache.iceberg.spark.SparkCatalog"
    assert conf["spark.sql.catalog.lake.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
    assert conf["spark.sql.catalog.lake.io-impl"] == "org.apache.iceberg.aws.s3.S3FileIO"
    assert conf["spark.sql.catalog.lake.warehouse"] == "s3://lakehouse-dev-warehouse"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    args = glue_job_arguments("s3://lakehouse-dev-warehouse")
    assert args["--datalake-formats"] == "iceberg"
    assert args["--conf"].split(" --conf ") == [f"{k}={v}" for k, v in conf.items()]
    with pytest.raises(ValueError, match="must be an s3:// URI, got '/tmp/wh'"):
        glue_spark_conf("/tmp/wh")


def test_catalog_from_env_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(catalogs.CatalogConfigError, match="set WAREHOUSE_URI .* or LAKEHOUSE_WAREHOUSE and"):
        catalogs.catalog_from_env({})
    with pytest.raises(catalogs.CatalogConfigError, match="set both LAKEHOUSE_WAREHOUSE and LAKEHOUSE_CATALOG_DB"):
        catalogs.catalog_from_env({"LAKEHOUSE_WAREHOUSE": str(tmp_path)})
    catalog = catalogs.catalog_from_env({"LAKEHOUSE_WAREHOUSE": str(tmp_path / "wh"),
                                         "LAKEHOUSE_CATALOG_DB": str(tmp_path / "c.db")})
    assert catalog.name == "lake" and (tmp_path / "c.db").is_file()
    assert sqlite3.connect(tmp_path / "c.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.parametrize("spec", ALL_TABLES, ids=lambda s: s.full_name)
def test_docs_describe_every_column(spec: TableSpec) -> None:
    docs = (Path(config.PROJECT_ROOT) / "docs" / "tables.md").read_text()
    section = docs.split(f"### `{spec.full_name}`", 1)[1].split("###", 1)[0]
    for column in spec.columns:
        required = "yes" if column.required else ""
        assert f"| {column.name} | {column.type} | {required} | {column.doc} |" in section
