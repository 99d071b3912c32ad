"""Iceberg table definitions as code: schema, partitioning, sort order, identifier fields, properties.

The migrator (iceberg_tables.migrator) applies them to any catalog. Only features of Iceberg
format version 2 are used (Athena reads v2 only): no v3 types, no default values.
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
from pyiceberg.types import (BinaryType, BooleanType, DateType, DecimalType, DoubleType, IcebergType, IntegerType,
                             ListType, LongType, NestedField, PrimitiveType, StructType, StringType, TimestamptzType)

from lambdas.contracts import clickstream, live, orders, products

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
    type: PrimitiveType | IcebergType  # nested only where a live table registers a staged nested column
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

# Exact money as staged by the cleaner (orders) and the file loader (products).
ORDER_AMOUNT = DecimalType(orders.AMOUNT_PRECISION, orders.AMOUNT_SCALE)
PRODUCT_PRICE = DecimalType(12, products.PRICE_SCALE)

SILVER_ORDER_EVENTS = TableSpec(
    namespace="silver",
    name="order_events",
    doc=f"Order status changes (contract orders v{orders.VERSION}), cleaned and deduplicated on "
        "(order_id, event_type, event_time); their item lines are in silver.order_lines.",
    columns=(
        Column("order_id", StringType(), True, "Id of the order."),
        Column("event_type", StringType(), True, f"One of {', '.join(orders.EVENT_TYPES)}."),
        Column("event_time", TimestamptzType(), True, "When the status changed (UTC)."),
        Column("event_time_offset", StringType(), False, "The producer's UTC offset, e.g. +02:00."),
        Column("user_id", StringType(), True, "Pseudonymous shop user id."),
        Column("country", StringType(), False, "ISO 3166-1 alpha-2 country code of the shopper."),
        Column("currency", StringType(), True, "ISO 4217 code of total and the lines' prices."),
        Column("total", ORDER_AMOUNT, True, "Order total in currency at this status change."),
        Column("item_count", IntegerType(), True, "Item lines of the order at this status change."),
        Column("ingested_at", TimestamptzType(), True, "When the stream received the event (UTC)."),
        Column("batch_id", StringType(), True, "Staging batch the row was merged from (see ops.merged_batches)."),
        # Added with contract v3: optional, so older lakes migrate in place.
        Column("session_id", StringType(), False, "The clickstream session that placed the order, when sent."),
    ),
    partition_by=(("event_time", DayTransform()),),
    sort_by=("event_time",),
    identifier=("order_id", "event_type", "event_time"),
)

SILVER_ORDER_LINES = TableSpec(
    namespace="silver",
    name="order_lines",
    doc="The item lines of each row of silver.order_events, one row per line.",
    columns=(
        Column("order_id", StringType(), True, "Id of the order."),
        Column("event_type", StringType(), True, "The status change the line belongs to."),
        Column("event_time", TimestamptzType(), True, "When the status changed (UTC)."),
        Column("line_number", IntegerType(), True, "Position of the line in the event's items, from 1."),
        Column("product_id", StringType(), True, "Product ordered, e.g. P-00042."),
        Column("qty", LongType(), True, "Units ordered."),
        Column("unit_price", ORDER_AMOUNT, True, "Price of one unit in currency."),
        Column("currency", StringType(), True, "ISO 4217 code of unit_price."),
        Column("batch_id", StringType(), True, "Staging batch the row was merged from (see ops.merged_batches)."),
    ),
    partition_by=(("event_time", DayTransform()),),
    sort_by=("event_time", "order_id"),
    identifier=("order_id", "event_type", "event_time", "line_number"),
)

SILVER_ORDERS = TableSpec(
    namespace="silver",
    name="orders",
    doc="The current state of every order: its latest status change in event time (status order "
        "breaks ties), so a late or out-of-order event never regresses a newer state.",
    columns=(
        Column("order_id", StringType(), True, "Id of the order."),
        Column("status", StringType(), True, "placed, paid, cancelled or refunded: the latest event's."),
        Column("user_id", StringType(), True, "Pseudonymous shop user id."),
        Column("country", StringType(), False, "ISO 3166-1 alpha-2 country code of the shopper."),
        Column("currency", StringType(), True, "ISO 4217 code of total."),
        Column("total", ORDER_AMOUNT, True, "Order total in currency, as of the latest event."),
        Column("item_count", IntegerType(), True, "Item lines of the order, as of the latest event."),
        Column("placed_at", TimestamptzType(), False, "Time of the order_placed event, if received."),
        Column("paid_at", TimestamptzType(), False, "Time of the order_paid event, if received."),
        Column("cancelled_at", TimestamptzType(), False, "Time of the order_cancelled event, if received."),
        Column("refunded_at", TimestamptzType(), False, "Time of the order_refunded event, if received."),
        Column("status_time", TimestamptzType(), True, "event_time of the event the status comes from."),
        Column("updated_at", TimestamptzType(), True, "When the silver_merge job wrote the row."),
        # Added with contract v3: optional, so older lakes migrate in place.
        Column("session_id", StringType(), False, "The clickstream session that placed the order: the latest "
                                                  "event's that names one."),
    ),
    sort_by=("order_id",),
    identifier=("order_id",),
)

SILVER_PRODUCTS = TableSpec(
    namespace="silver",
    name="products",
    doc=f"The product catalog (contract products v{products.VERSION}) with its history (SCD type 2): one "
        "row per product and version, valid from the catalog's updated_at until the next version's.",
    columns=(
        Column("product_id", StringType(), True, "P- and 5 to 9 digits, upper-case."),
        Column("name", StringType(), True, "Display name."),
        Column("category", StringType(), True, f"One of {', '.join(products.CATEGORIES)}."),
        Column("price", PRODUCT_PRICE, True, "Unit list price in currency."),
        Column("currency", StringType(), True, "ISO 4217 code of price."),
        Column("active", BooleanType(), True, "Whether the product is on sale."),
        Column("valid_from", TimestamptzType(), True, "The catalog's updated_at of this version (UTC)."),
        Column("valid_to", TimestamptzType(), False, "valid_from of the next version; null for the current one."),
        Column("is_current", BooleanType(), True, "True for the product's latest version."),
        Column("file_id", StringType(), True, "SHA-256 of the catalog file the version came from."),
        Column("line_number", LongType(), True, "Line of the version in that file; the header is line 1."),
    ),
    sort_by=("product_id", "valid_from"),
    identifier=("product_id", "valid_from"),
)

SILVER_FX_RATES = TableSpec(
    namespace="silver",
    name="fx_rates",
    doc="US dollars per unit of each currency the shop takes, for every UTC day from a currency's first "
        "rate to the newest rate of any currency; a day the API had no rate for carries the latest "
        "earlier rate forward, and says so.",
    columns=(
        Column("rate_date", DateType(), True, "UTC day the rate applies to."),
        Column("currency", StringType(), True, "ISO 4217 code (never USD, which is 1)."),
        Column("usd_per_unit", DoubleType(), True, "US dollars for one unit of the currency."),
        Column("published_date", DateType(), True, "Day whose published rate this is: rate_date, or an earlier "
                                                   "day for a carried-forward rate."),
        Column("carried_forward", BooleanType(), True, "True when the API had no rate for rate_date."),
        Column("batch_id", StringType(), True, "Staging batch of the published rate (see ops.merged_batches)."),
    ),
    sort_by=("rate_date", "currency"),
    identifier=("rate_date", "currency"),
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
    doc="Shop activity per UTC date and country with any event or order event, rebuilt from silver.events, "
        "silver.order_events and silver.fx_rates by the gold_build job.",
    columns=(
        Column("event_date", DateType(), True, "UTC date of event_time."),
        Column("country", StringType(), True, "ISO 3166-1 alpha-2 country code; ZZ for orders without one."),
        *(Column(name, LongType(), True, doc) for name, _, doc in GOLD_KPI_COUNTS),
        Column("updated_at", TimestamptzType(), True, "When the gold_build job wrote the row."),
        # Added with the orders source: optional, so older lakes migrate in place.
        Column("orders", LongType(), False, "Distinct orders with an order_placed event."),
        Column("paid_orders", LongType(), False, "Distinct orders with an order_paid event."),
        Column("revenue_usd", DoubleType(), False, "Totals of the day's order_paid events minus those of its "
                                                   "order_refunded events, in US dollars at the day's rate from "
                                                   "silver.fx_rates; 0 without either; null when a rate is missing."),
        Column("conversion_rate", DoubleType(), False, "paid_orders / sessions; null without sessions."),
    ),
    partition_by=(("event_date", IdentityTransform()),),
    sort_by=("event_date", "country"),
    identifier=("event_date", "country"),
)

GOLD_FUNNEL_DAILY = TableSpec(
    namespace="gold",
    name="funnel_daily",
    doc="The shop's funnel per UTC date and country (the rows of gold.daily_kpis): sessions reaching each "
        "step, then sessions that paid (and paid orders).",
    columns=(
        Column("event_date", DateType(), True, "UTC date of event_time."),
        Column("country", StringType(), True, "ISO 3166-1 alpha-2 country code; ZZ for orders without one."),
        Column("view_sessions", LongType(), True, "Sessions with a page_view."),
        Column("product_view_sessions", LongType(), True, "Sessions with a product_view."),
        Column("add_to_cart_sessions", LongType(), True, "Sessions with an add_to_cart."),
        Column("checkout_sessions", LongType(), True, "Sessions with a checkout_started."),
        Column("paid_orders", LongType(), True, "Distinct orders with an order_paid event."),
        Column("updated_at", TimestamptzType(), True, "When the gold_build job wrote the row."),
        # Added with orders contract v3: optional, so older lakes migrate in place.
        Column("paid_sessions", LongType(), False, "Distinct session_id of order_paid events (the funnel's last "
                                                   "step); orders without a session count in none."),
    ),
    partition_by=(("event_date", IdentityTransform()),),
    sort_by=("event_date", "country"),
    identifier=("event_date", "country"),
)

GOLD_PRODUCT_SALES_DAILY = TableSpec(
    namespace="gold",
    name="product_sales_daily",
    doc="Sales per UTC date and product from paid and refunded orders' lines (silver.order_lines), with "
        "the product's catalog version valid at the day's end (silver.products).",
    columns=(
        Column("event_date", DateType(), True, "UTC date of the order_paid or order_refunded event."),
        Column("product_id", StringType(), True, "Product sold."),
        Column("name", StringType(), False, "Catalog name at the day's end; null when the catalog had no "
                                            "version of the product then."),
        Column("category", StringType(), False, "Catalog category at the day's end; null when unknown."),
        Column("orders", LongType(), True, "Distinct paid orders with the product."),
        Column("units_sold", LongType(), True, "Units in paid orders."),
        Column("units_refunded", LongType(), True, "Units in refunded orders."),
        Column("revenue_usd", DoubleType(), False, "Paid lines' qty x unit_price minus refunded lines', in US "
                                                   "dollars at the day's rate; null when a rate is missing."),
        Column("list_price_usd", DoubleType(), False, "Catalog price at the day's end in US dollars; null when "
                                                      "unknown or its currency has no rate that day."),
        Column("updated_at", TimestamptzType(), True, "When the gold_build job wrote the row."),
    ),
    partition_by=(("event_date", IdentityTransform()),),
    sort_by=("event_date", "product_id"),
    identifier=("event_date", "product_id"),
)

OPS_PIPELINE_RUNS = TableSpec(
    namespace="ops",
    name="pipeline_runs",
    doc="One row per job step (silver_merge, gold_build, maintenance) and one per batch run (step 'run'), "
        "with the conservation ledger: received = clean + quarantined + duplicates.",
    columns=(
        Column("run_id", StringType(), True, "Step Functions execution name."),
        Column("step", StringType(), True, "silver_merge, gold_build, maintenance, or run for the whole run."),
        Column("status", StringType(), True,
               "SUCCEEDED, FAILED, or SKIPPED (a batch run refused by the run lock: nothing ran)."),
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
    doc="Records the cleaner rejected, as received (personal data masked), with the reason; loaded from the quarantine staging "
        "by the silver_merge job, one set of rows per staging batch.",
    columns=(
        Column("source", StringType(), True, "Source contract, e.g. clickstream."),
        Column("batch_id", StringType(), True, "Staging batch the record came in (see ops.merged_batches)."),
        Column("reason", StringType(), True, "Reason code of the contract, e.g. BAD_TIMESTAMP."),
        Column("message", StringType(), True, "What exactly was wrong."),
        Column("shard", StringType(), False, "Stream shard of the record (stream sources)."),
        Column("sequence_number", StringType(), False, "Sequence number of the record in its shard."),
        Column("ingested_at", TimestamptzType(), True, "When the stream received the record (UTC)."),
        Column("raw_payload", BinaryType(), True, "The record as received; the stream cleaners mask its "
               "IP addresses and e-mails (the exact bytes are in the raw zone)."),
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

OPS_QUALITY_RESULTS = TableSpec(
    namespace="ops",
    name="quality_results",
    doc="One row per data-quality check of a run: what was measured, against which threshold, and "
        "whether it passed. Written by the data_quality function.",
    columns=(
        Column("run_id", StringType(), True, "Step Functions execution name."),
        Column("check_name", StringType(), True, "The check, e.g. unique_keys."),
        Column("table_name", StringType(), True, "The table checked, e.g. silver.orders."),
        Column("status", StringType(), True, "PASSED or FAILED."),
        Column("observed", DoubleType(), False, "The measured value (a count, rate or age in seconds)."),
        Column("threshold", DoubleType(), False, "The limit the value is held to (from the environment's config)."),
        Column("message", StringType(), True, "What was checked and found, readable."),
        Column("checked_at", TimestamptzType(), True, "When the check ran (UTC)."),
    ),
    partition_by=(("checked_at", DayTransform()),),
    sort_by=("checked_at",),
)

ALL_TABLES: tuple[TableSpec, ...] = (
    SILVER_EVENTS, SILVER_ORDER_EVENTS, SILVER_ORDER_LINES, SILVER_ORDERS, SILVER_PRODUCTS, SILVER_FX_RATES,
    GOLD_DAILY_KPIS, GOLD_FUNNEL_DAILY, GOLD_PRODUCT_SALES_DAILY,
    OPS_PIPELINE_RUNS, OPS_QUARANTINE, OPS_MERGED_BATCHES, OPS_QUALITY_RESULTS,
)

# --- the real-time half (docs/decisions/0500) --------------------------------------------------------------------
# The cleaners' clean staging files, registered as they land by one committer per table (lambdas/live_committer/),
# not rewritten: the columns are what the cleaner stages, silver's without the batch id that the merge adds. No
# partitions and no identifier: a file's rows span any hour, and a key may appear in several batches until the
# fresh views deduplicate it by silver's rule.
LIVE_EVENTS = TableSpec(
    namespace=live.NAMESPACE,
    name=live.TABLE_OF_SOURCE[clickstream.SOURCE],
    doc="Clean clickstream events as the cleaner staged them, registered within seconds of being written; "
        "not deduplicated (read fresh.events). Trimmed once the batch has merged them.",
    columns=tuple(c for c in SILVER_EVENTS.columns if c.name != "batch_id"),
)



def _staged_items(first_id: int) -> ListType:
    """The orders cleaner's staged `items` (lambdas/cleaner/schemas.py) as an Iceberg list, its ids numbered from
    `first_id` (the table's column count + 1) as a catalog numbers a new table's nested fields, so the migrator
    finds the created table's type equal to the spec's."""
    return ListType(element_id=first_id, element_required=False, element=StructType(
        NestedField(first_id + 1, "product_id", StringType(), required=True, doc="Product ordered, e.g. P-00042."),
        NestedField(first_id + 2, "qty", LongType(), required=True, doc="Units ordered."),
        NestedField(first_id + 3, "unit_price", ORDER_AMOUNT, required=True, doc="Price of one unit in currency.")))


# silver.order_events' columns as the cleaner stages them: no batch id, and the item lines (`items`) where the
# merge derives item_count (fresh.order_events derives it the same way: the number of lines).
_LIVE_ORDER_COLUMNS = tuple(c for c in SILVER_ORDER_EVENTS.columns if c.name != "batch_id")
LIVE_ORDER_EVENTS = TableSpec(
    namespace=live.NAMESPACE,
    name=live.TABLE_OF_SOURCE[orders.SOURCE],
    doc="Clean order events as the cleaner staged them, with their item lines, registered within seconds of being "
        "written; not deduplicated (read fresh.order_events). Trimmed once the batch has merged them.",
    columns=tuple(Column("items", _staged_items(len(_LIVE_ORDER_COLUMNS) + 1), True,
                         "The item lines as staged (silver.order_lines once merged).") if c.name == "item_count" else c
                  for c in _LIVE_ORDER_COLUMNS),
)


def _batches_of(table: TableSpec) -> TableSpec:
    """live.<table>_batches: one row per staged batch its committer was notified of (docs/decisions/0502)."""
    source = live.source_of(table.full_name)
    return TableSpec(
        namespace=live.NAMESPACE,
        name=live.batches_table(table.full_name).split(".", 1)[1],
        doc=f"One row per staged {source} batch, with its manifest's ledger, recorded by the committer of "
            f"{table.full_name} as it registers the batch (also a batch without clean rows): the live quarantine rate "
            "(fresh.minute_quarantine).",
        columns=(
            Column("source", StringType(), True, "The source contract, e.g. orders."),
            Column("batch_id", StringType(), True, "The cleaner's batch id."),
            Column("staged_at", TimestamptzType(), True, "When the cleaner had written the batch's manifest (UTC)."),
            Column("received", LongType(), True, "Records the cleaner received in the batch."),
            Column("clean", LongType(), True, "Clean rows staged (the batch's rows in the live table)."),
            Column("quarantined", LongType(), True, "Records the cleaner rejected."),
            Column("duplicates", LongType(), True, "Re-sent records dropped within the batch."),
            Column("clean_file", StringType(), False, f"The clean staging file registered in {table.full_name}; "
                                                      "null when no record was clean."),
        ),
    )


LIVE_EVENTS_BATCHES = _batches_of(LIVE_EVENTS)
LIVE_ORDER_EVENTS_BATCHES = _batches_of(LIVE_ORDER_EVENTS)
# A live table, then its batches table: the committer of a table's message group is the one writer of both.
LIVE_TABLES: tuple[TableSpec, ...] = (LIVE_EVENTS, LIVE_EVENTS_BATCHES, LIVE_ORDER_EVENTS, LIVE_ORDER_EVENTS_BATCHES)

# Every table the migrator applies (locally and in AWS, lambdas/table_migrator) and the Glue databases CDK makes
# (cdk_app/lake.py): the batch's tables and the live ones. ALL_TABLES stays the batch's (the maintenance job's).
MIGRATED_TABLES: tuple[TableSpec, ...] = (*ALL_TABLES, *LIVE_TABLES)
