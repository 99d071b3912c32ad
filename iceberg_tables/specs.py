"""Iceberg table definitions as code: schema, partitioning, sort order, identifier fields, properties.

The migrator (iceberg_tables.migrator) applies them to any catalog. Only features of Iceberg
format version 2 that Iceberg 1.7 (Glue 5.0) knows are used: no v3 types, no default values.
docs/tables.md describes every table.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table.sorting import NullOrder, SortDirection, SortField, SortOrder
from pyiceberg.transforms import DayTransform, IdentityTransform, Transform
from pyiceberg.types import (BinaryType, DateType, LongType, NestedField, PrimitiveType, StringType,
                             TimestamptzType)

from lambdas.contracts import clickstream

FORMAT_VERSION = 2
# Iceberg numbers partition fields from 1000 (the spec's PARTITION_DATA_ID_START).
_FIRST_PARTITION_FIELD_ID = 1000

COMMON_PROPERTIES: Mapping[str, str] = MappingProxyType({
    "write.parquet.compression-codec": "zstd",
    # Old metadata.json files are removed on commit, so a busy table does not pile them up.
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "50",
})


class SpecError(ValueError):
    """A table spec contradicts itself (unknown column, optional identifier, ...)."""


@dataclass(frozen=True)
class Column:
    name: str
    type: PrimitiveType
    required: bool = False
    doc: str = ""


@dataclass(frozen=True)
class TableSpec:
    namespace: str
    name: str
    doc: str
    columns: tuple[Column, ...]
    partition_by: tuple[tuple[str, Transform], ...] = ()  # (source column, transform)
    sort_by: tuple[str, ...] = ()                         # ascending, nulls first
    identifier: tuple[str, ...] = ()
    properties: Mapping[str, str] = field(default_factory=lambda: COMMON_PROPERTIES)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise SpecError(f"{self.full_name}: duplicate column names in {names}")
        by_name = {c.name: c for c in self.columns}
        for role, cols in (("partition", [c for c, _ in self.partition_by]), ("sort", self.sort_by),
                           ("identifier", self.identifier)):
            for col in cols:
                if col not in by_name:
                    raise SpecError(f"{self.full_name}: {role} column '{col}' is not a column of the table")
        for col in self.identifier:
            if not by_name[col].required:
                raise SpecError(f"{self.full_name}: identifier column '{col}' must be required")

    @property
    def full_name(self) -> str:
        """`namespace.table`, as pyiceberg names it (Spark adds the catalog: `lake.namespace.table`)."""
        return f"{self.namespace}.{self.name}"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def schema(self) -> Schema:
        """The schema with field ids 1..n in column order (a catalog may renumber them)."""
        fields = [NestedField(i, c.name, c.type, required=c.required, doc=c.doc or None)
                  for i, c in enumerate(self.columns, start=1)]
        ids = [i for i, c in enumerate(self.columns, start=1) if c.name in self.identifier]
        return Schema(*fields, identifier_field_ids=ids)

    def partition_spec(self, schema: Schema | None = None) -> PartitionSpec:
        schema = schema or self.schema()
        return PartitionSpec(*(
            PartitionField(schema.find_field(col).field_id, _FIRST_PARTITION_FIELD_ID + i, transform,
                           partition_field_name(col, transform))
            for i, (col, transform) in enumerate(self.partition_by)))

    def sort_order(self, schema: Schema | None = None) -> SortOrder:
        schema = schema or self.schema()
        return SortOrder(*(SortField(schema.find_field(col).field_id, IdentityTransform(), SortDirection.ASC,
                                     NullOrder.NULLS_FIRST) for col in self.sort_by))


def partition_field_name(column: str, transform: Transform) -> str:
    """Spark's and pyiceberg's default name: `event_time_day` for day(event_time)."""
    return column if isinstance(transform, IdentityTransform) else f"{column}_{transform}"


_CONTRACT_TYPES: Mapping[str, PrimitiveType] = {"string": StringType(), "timestamp": TimestamptzType()}

SILVER_EVENTS = TableSpec(
    namespace="silver",
    name="events",
    doc="Clickstream events, cleaned and deduplicated on event_id (contract clickstream "
        f"v{clickstream.VERSION}). Timestamps in UTC.",
    columns=(
        *(Column(f.name, _CONTRACT_TYPES[f.type], f.required, f.doc) for f in clickstream.FIELDS),
        Column("event_time_offset", StringType(), False, "The producer's UTC offset, e.g. +02:00."),
        Column("ingested_at", TimestamptzType(), True, "When the stream received the event (UTC)."),
        Column("batch_id", StringType(), False, "Staging batch the row was merged from (see ops.merged_batches)."),
    ),
    partition_by=(("event_time", DayTransform()),),
    sort_by=("event_time",),
    identifier=("event_id",),
)

# Counts per UTC date and country; (column, silver event_type counted or None, doc).
GOLD_KPI_COUNTS: tuple[tuple[str, str | None, str], ...] = (
    ("active_users", None, "Distinct user_id."),
    ("sessions", None, "Distinct session_id."),
    ("events", None, "All events."),
    ("page_views", "page_view", "Events of type page_view."),
    ("product_views", "product_view", "Events of type product_view."),
    ("add_to_cart", "add_to_cart", "Events of type add_to_cart."),
    ("checkouts", "checkout_started", "Events of type checkout_started."),
)

GOLD_DAILY_KPIS = TableSpec(
    namespace="gold",
    name="daily_kpis",
    doc="Shop activity per UTC date and country, rebuilt from silver.events by the gold_build job.",
    columns=(
        Column("event_date", DateType(), True, "UTC date of event_time."),
        Column("country", StringType(), True, "ISO 3166-1 alpha-2 country code."),
        *(Column(name, LongType(), True, doc) for name, _, doc in GOLD_KPI_COUNTS),
        Column("updated_at", TimestamptzType(), True, "When the gold_build job wrote the row."),
    ),
    partition_by=(("event_date", IdentityTransform()),),
    sort_by=("event_date", "country"),
    identifier=("event_date", "country"),
)

OPS_PIPELINE_RUNS = TableSpec(
    namespace="ops",
    name="pipeline_runs",
    doc="One row per job step (silver_merge, gold_build, maintenance) and one per batch run (step 'run'), "
        "with the conservation ledger: received = clean + quarantined + duplicates.",
    columns=(
        Column("run_id", StringType(), True, "Step Functions execution name."),
        Column("step", StringType(), True, "silver_merge, gold_build, maintenance, or run for the whole run."),
        Column("status", StringType(), True, "SUCCEEDED or FAILED."),
        Column("started_at", TimestamptzType(), True, "Start of the step (UTC)."),
        Column("finished_at", TimestamptzType(), False, "End of the step (UTC)."),
        Column("received", LongType(), False, "Records the cleaner received."),
        Column("clean", LongType(), False, "Records newly written to silver."),
        Column("quarantined", LongType(), False, "Records rejected by the cleaner."),
        Column("duplicates", LongType(), False, "Re-sent records dropped (within and across batches)."),
        Column("rows_written", LongType(), False, "Rows the step wrote to its table."),
        Column("quarantined_by_reason", StringType(), False, "JSON object: reason code -> records."),
        Column("message", StringType(), False, "Human-readable summary or error."),
    ),
    partition_by=(("started_at", DayTransform()),),
    sort_by=("started_at",),
)

OPS_QUARANTINE = TableSpec(
    namespace="ops",
    name="quarantine",
    doc="Records the cleaner rejected, as received, with the reason; loaded from the quarantine staging "
        "by the silver_merge job, one set of rows per staging batch.",
    columns=(
        Column("source", StringType(), True, "Source contract, e.g. clickstream."),
        Column("batch_id", StringType(), True, "Staging batch the record came in (see ops.merged_batches)."),
        Column("reason", StringType(), True, "Reason code of the contract, e.g. BAD_TIMESTAMP."),
        Column("message", StringType(), True, "What exactly was wrong."),
        Column("shard", StringType(), False, "Stream shard of the record (stream sources)."),
        Column("sequence_number", StringType(), False, "Sequence number of the record in its shard."),
        Column("ingested_at", TimestamptzType(), True, "When the stream received the record (UTC)."),
        Column("raw_payload", BinaryType(), True, "The record exactly as received."),
    ),
    partition_by=(("ingested_at", DayTransform()),),
    sort_by=("ingested_at",),
)

OPS_MERGED_BATCHES = TableSpec(
    namespace="ops",
    name="merged_batches",
    doc="The ledger of staging batches merged by silver_merge: one row per batch manifest version, "
        "with the batch's conservation ledger. A manifest listed here is never merged again.",
    columns=(
        Column("manifest_sha256", StringType(), True, "SHA-256 of the manifest file: identifies the batch version."),
        Column("source", StringType(), True, "Source contract, e.g. clickstream."),
        Column("batch_id", StringType(), True, "The cleaner's batch id."),
        Column("manifest_path", StringType(), True, "Where the manifest was read."),
        Column("run_id", StringType(), True, "The run that merged the batch."),
        Column("merged_at", TimestamptzType(), True, "When the batch was recorded as merged (UTC)."),
        Column("received", LongType(), True, "Records the cleaner received in the batch."),
        Column("clean", LongType(), True, "Rows of the batch that silver holds from this batch."),
        Column("quarantined", LongType(), True, "Records of the batch in ops.quarantine."),
        Column("duplicates", LongType(), True, "Re-sent records dropped (within the batch, or already in silver)."),
        Column("quarantined_by_reason", StringType(), True, "JSON object: reason code -> records."),
    ),
    sort_by=("merged_at",),
    identifier=("manifest_sha256",),
)

ALL_TABLES: tuple[TableSpec, ...] = (SILVER_EVENTS, GOLD_DAILY_KPIS, OPS_PIPELINE_RUNS, OPS_QUARANTINE,
                                     OPS_MERGED_BATCHES)
