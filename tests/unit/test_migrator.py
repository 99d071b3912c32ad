"""The migrator, every branch, against a real pyiceberg SqlCatalog on sqlite in tmp_path."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.transforms import DayTransform, IdentityTransform
from pyiceberg.types import DecimalType, DoubleType, FloatType, IntegerType, LongType, StringType, TimestamptzType

from iceberg_tables.catalogs import local_catalog
from iceberg_tables.migrator import IncompatibleTableChange, migrate
from iceberg_tables.specs import ALL_TABLES, LIVE_TABLES, MIGRATED_TABLES, Column, TableSpec
from lambdas.table_migrator import handler as table_migrator

BASE = TableSpec(
    namespace="demo", name="things", doc="A table to evolve.",
    columns=(
        Column("id", LongType(), True, "Key."),
        Column("n", IntegerType()),
        Column("x", FloatType()),
        Column("amount", DecimalType(10, 2)),
        Column("name", StringType(), True),
        Column("ts", TimestamptzType()),
    ),
    partition_by=(("ts", DayTransform()),),
    sort_by=("id",),
    identifier=("id",),
    properties={"write.parquet.compression-codec": "zstd"},
)
ROW = {"id": 1, "n": 7, "x": 1.5, "amount": Decimal("12.34"), "name": "one",
       "ts": datetime(2026, 3, 1, 12, tzinfo=timezone.utc)}


def with_column(spec: TableSpec, name: str, **changes: object) -> TableSpec:
    return replace(spec, columns=tuple(replace(c, **changes) if c.name == name else c for c in spec.columns))


@pytest.fixture
def catalog(tmp_path: Path) -> SqlCatalog:
    return local_catalog(tmp_path / "warehouse", tmp_path / "catalog.db")


@pytest.fixture
def things(catalog: SqlCatalog) -> SqlCatalog:
    """demo.things created from BASE, holding one row."""
    migrate(catalog, [BASE])
    table = catalog.load_table("demo.things")
    table.append(pa.Table.from_pylist([ROW], schema=table.schema().as_arrow()))
    return catalog


def metadata_location(catalog: SqlCatalog) -> str:
    return catalog.load_table("demo.things").metadata_location


def test_creates_namespaces_and_tables_then_is_idempotent(catalog: SqlCatalog) -> None:
    done = migrate(catalog)

    assert done[:4] == ["silver: created namespace", "gold: created namespace", "ops: created namespace",
                        "live: created namespace"]  # the batch's tables and the live ones (MIGRATED_TABLES)
    assert done[4].startswith("silver.events: created (13 columns, partitioned by event_time_day)")
    assert [d.split(":")[0] for d in done[-len(LIVE_TABLES):]] == [s.full_name for s in LIVE_TABLES]
    assert done[-len(LIVE_TABLES)].startswith("live.events: created (12 columns")
    for spec in MIGRATED_TABLES:
        table = catalog.load_table(spec.full_name)
        assert [f.name for f in table.schema().fields] == [c.name for c in spec.columns]
        assert table.format_version == 2
        assert {k: table.properties[k] for k in spec.properties} == dict(spec.properties)
    locations = [catalog.load_table(s.full_name).metadata_location for s in MIGRATED_TABLES]

    assert migrate(catalog) == [f"{s.full_name}: up to date" for s in MIGRATED_TABLES]
    assert [catalog.load_table(s.full_name).metadata_location for s in MIGRATED_TABLES] == locations


def test_a_lake_of_the_walking_skeleton_is_upgraded_in_place(catalog: SqlCatalog) -> None:
    """silver.events as the first release made it (no batch_id) gains the column and keeps its rows;
    the new ops tables are created."""
    silver = next(s for s in ALL_TABLES if s.full_name == "silver.events")
    old = replace(silver, columns=tuple(c for c in silver.columns if c.name != "batch_id"))
    migrate(catalog, [old])
    table = catalog.load_table("silver.events")
    row = {c.name: "x" for c in old.columns} | {"event_time": ROW["ts"], "ingested_at": ROW["ts"]}
    table.append(pa.Table.from_pylist([row], schema=table.schema().as_arrow()))

    done = migrate(catalog)

    assert "silver.events: added column batch_id string" in done
    assert {"ops.quarantine", "ops.merged_batches"} <= {line.split(":")[0] for line in done if "created (" in line}
    [upgraded] = catalog.load_table("silver.events").scan().to_arrow().to_pylist()
    assert upgraded == row | {"batch_id": None}


def test_created_table_has_spec_partitioning_sort_order_and_identifier(catalog: SqlCatalog) -> None:
    migrate(catalog, [BASE])
    table = catalog.load_table("demo.things")
    assert [(f.name, str(f.transform)) for f in table.spec().fields] == [("ts_day", "day")]
    assert [table.schema().find_column_name(f.source_id) for f in table.sort_order().fields] == ["id"]
    assert table.schema().identifier_field_names() == {"id"}


def test_compatible_changes_are_applied_in_one_commit_and_keep_the_data(things: SqlCatalog) -> None:
    widened = BASE
    for name, changes in (("id", {"doc": "The key."}), ("n", {"type": LongType()}), ("x", {"type": DoubleType()}),
                          ("amount", {"type": DecimalType(12, 2)}), ("name", {"required": False})):
        widened = with_column(widened, name, **changes)
    evolved = replace(widened, columns=(*widened.columns, Column("comment", StringType(), False, "New.")),
                      sort_by=("ts", "id"),
                      properties={"write.parquet.compression-codec": "zstd", "commit.retry.num-retries": "8"})
    history_before = len(things.load_table("demo.things").metadata.metadata_log)

    done = migrate(things, [evolved])

    assert done == [
        "demo.things: updated doc of id", "demo.things: widened n int -> long",
        "demo.things: widened x float -> double", "demo.things: widened amount decimal(10, 2) -> decimal(12, 2)",
        "demo.things: made name optional", "demo.things: added column comment string",
        "demo.things: sort order ['id'] -> ['ts', 'id']", "demo.things: set properties ['commit.retry.num-retries']",
    ]
    table = things.load_table("demo.things")
    assert len(table.metadata.metadata_log) == history_before + 1  # one commit
    schema = {f.name: f for f in table.schema().fields}
    assert (schema["n"].field_type, schema["x"].field_type, schema["amount"].field_type) == (
        LongType(), DoubleType(), DecimalType(12, 2))
    assert not schema["name"].required and schema["id"].doc == "The key."
    assert table.properties["commit.retry.num-retries"] == "8"
    [row] = table.scan().to_arrow().to_pylist()
    assert row == {**ROW, "comment": None}
    assert migrate(things, [evolved]) == ["demo.things: up to date"]


def test_identifier_fields_and_format_version_evolve(catalog: SqlCatalog) -> None:
    v1 = replace(BASE, identifier=())
    catalog.create_namespace("demo")
    catalog.create_table("demo.things", v1.schema(), partition_spec=v1.partition_spec(), sort_order=v1.sort_order(),
                         properties={"format-version": "1", **v1.properties})

    done = migrate(catalog, [replace(BASE, identifier=("id", "name"))])

    assert "demo.things: format-version 1 -> 2" in done
    assert "demo.things: identifier fields [] -> ['id', 'name']" in done
    table = catalog.load_table("demo.things")
    assert table.format_version == 2 and table.schema().identifier_field_names() == {"id", "name"}


@pytest.mark.parametrize(("spec", "refused"), [
    (replace(BASE, columns=tuple(c for c in BASE.columns if c.name != "x")),
     "demo.things.x: in the table but not in the spec"),
    (replace(BASE, columns=tuple(replace(c, name="label") if c.name == "name" else c for c in BASE.columns)),
     "demo.things.name: in the table but not in the spec (dropping or renaming a column is refused)"),
    (replace(BASE, columns=(*BASE.columns, Column("must", StringType(), True))),
     "demo.things.must: new column must be optional"),
    (with_column(BASE, "id", type=IntegerType()), "demo.things.id: narrowing long -> int refused"),
    (with_column(BASE, "name", type=LongType()), "demo.things.name: type change string -> long refused"),
    (with_column(BASE, "amount", type=DecimalType(10, 3)),
     "demo.things.amount: type change decimal(10, 2) -> decimal(10, 3) refused"),
    (with_column(BASE, "n", required=True), "demo.things.n: optional -> required refused"),
    (replace(BASE, partition_by=(("ts", IdentityTransform()),)), "demo.things: partition change"),
    (replace(BASE, partition_by=()), "demo.things: partition change [('ts', 'day')] -> [] refused"),
])
def test_incompatible_changes_are_refused_and_nothing_is_applied(things: SqlCatalog, spec: TableSpec,
                                                                 refused: str) -> None:
    before = metadata_location(things)

    with pytest.raises(IncompatibleTableChange, match="incompatible table change") as error:
        migrate(things, [spec])

    assert refused in str(error.value)
    assert metadata_location(things) == before


def test_every_refusal_is_listed_and_compatible_changes_wait(things: SqlCatalog) -> None:
    changed = with_column(with_column(BASE, "name", type=LongType()), "n", type=LongType())
    spec = replace(changed, columns=changed.columns[1:], sort_by=("ts",), identifier=())
    before = metadata_location(things)

    with pytest.raises(IncompatibleTableChange) as error:
        migrate(things, [spec])

    assert [str(c) for c in error.value.changes] == [
        "demo.things.id: in the table but not in the spec (dropping or renaming a column is refused)",
        "demo.things.name: type change string -> long refused",
    ]
    assert metadata_location(things) == before  # the compatible int -> long was not applied either


# The custom-resource handler: AWS's Glue catalog is replaced by the local SQL catalog (the only mock).
@pytest.fixture
def glue_as_sqlite(catalog: SqlCatalog, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    warehouses: list[str] = []
    monkeypatch.setattr(table_migrator, "glue_catalog", lambda uri: warehouses.append(uri) or catalog)
    return warehouses


def cfn_event(request: str, **props: str) -> dict:
    return {"RequestType": request, "ResourceProperties": {"CatalogName": "lake", "Warehouse": "s3://wh", **props}}


def test_custom_resource_create_and_update_migrate(catalog: SqlCatalog, glue_as_sqlite: list[str]) -> None:
    created = table_migrator.handler(cfn_event("Create"), None)

    assert created["PhysicalResourceId"] == "iceberg-tables-lake"
    assert "silver.events: created" in created["Data"]["Changes"]
    assert glue_as_sqlite == ["s3://wh"]
    updated = table_migrator.handler({**cfn_event("Update", CodeHash="2"), "PhysicalResourceId": "iceberg-tables-lake"},
                                     None)
    assert updated == {"PhysicalResourceId": "iceberg-tables-lake",
                       "Data": {"Changes": "; ".join(f"{s.full_name}: up to date" for s in MIGRATED_TABLES)}}


def test_custom_resource_delete_keeps_tables(catalog: SqlCatalog, glue_as_sqlite: list[str]) -> None:
    table_migrator.handler(cfn_event("Create"), None)
    deleted = table_migrator.handler({**cfn_event("Delete"), "PhysicalResourceId": "iceberg-tables-lake"}, None)

    assert deleted == {"PhysicalResourceId": "iceberg-tables-lake"}
    assert glue_as_sqlite == ["s3://wh"]  # Delete never opened the catalog
    assert catalog.table_exists("silver.events")


@pytest.mark.parametrize(("event", "error"), [
    ({"RequestType": "Replace"}, "unknown RequestType 'Replace'"),
    (cfn_event("Create", CatalogName="other"), "CatalogName 'other' != 'lake'"),
    (cfn_event("Create", Warehouse=""), r"no warehouse: set ResourceProperties.Warehouse or \$WAREHOUSE_URI"),
])
def test_custom_resource_bad_requests_fail_with_a_reason(glue_as_sqlite: list[str], event: dict, error: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WAREHOUSE_URI", raising=False)
    with pytest.raises(ValueError, match=error):
        table_migrator.handler(event, None)
    assert glue_as_sqlite == []
