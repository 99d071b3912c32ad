"""The fresh views: one name for "exact history" and "the last minute" (docs/decisions/0501).

`fresh.events` is silver.events plus the rows of live.events whose key silver does not hold yet, one per
key by silver's own rule (the earliest ingested copy; ties broken by the other columns, nulls last:
glue_jobs/first_copies.py). Once the batch has merged an event, its row comes from silver only, so
nothing is counted twice. The SQL is Athena SQL, generated from the table specs: Athena runs it as a
view, and the local Athena stand-in creates it over the local catalog.
"""
from __future__ import annotations

from dataclasses import dataclass

from pyiceberg.types import (BinaryType, BooleanType, DateType, DecimalType, DoubleType, IntegerType, LongType,
                             PrimitiveType, StringType, TimestampType, TimestamptzType)

from iceberg_tables.specs import LIVE_EVENTS, SILVER_EVENTS, Column, TableSpec
from lambdas.contracts import clickstream

ORIGIN = "origin"  # 'silver' or 'live': where a fresh row comes from


@dataclass(frozen=True)
class ViewSpec:
    namespace: str
    name: str
    doc: str
    sql: str
    reads: tuple[str, ...]  # the tables (or views) it reads, 'namespace.table'
    # what its SQL returns: Athena's view definition needs the types (tests/integration/test_fresh_views.py
    # holds them to what the SQL returns)
    columns: tuple[Column, ...]

    @property
    def full_name(self) -> str:
        return f"{self.namespace}.{self.name}"


def fresh_sql(silver: TableSpec, live: TableSpec, key: tuple[str, ...]) -> str:
    """Athena SQL: `silver`'s rows, then `live`'s first copy of each key that `silver` lacks."""
    columns = [c.name for c in silver.columns]
    from_live = [name if any(c.name == name for c in live.columns) else f"CAST(NULL AS VARCHAR) AS {name}"
                 for name in columns]
    others = [c.name for c in live.columns if c.name not in (*key, "ingested_at")]
    order = ", ".join(f"l.{c} ASC NULLS LAST" for c in ("ingested_at", *others))
    on = " AND ".join(f"s.{k} = l.{k}" for k in key)
    return (f"SELECT {', '.join(columns)}, 'silver' AS {ORIGIN} FROM {silver.full_name}\n"
            f"UNION ALL\n"
            f"SELECT {', '.join(from_live)}, 'live' AS {ORIGIN} FROM (\n"
            f"  SELECT l.*, row_number() OVER (PARTITION BY {', '.join(f'l.{k}' for k in key)} ORDER BY {order}) "
            f"AS copy_number\n"
            f"  FROM {live.full_name} l\n"
            f"  WHERE NOT EXISTS (SELECT 1 FROM {silver.full_name} s WHERE {on})\n"
            f") WHERE copy_number = 1")


# Athena's (Presto's) name of each Iceberg type a view's column can have; a decimal is decimal(precision,scale)
PRESTO_TYPES: dict[type[PrimitiveType], str] = {
    StringType: "varchar", TimestamptzType: "timestamp(6) with time zone", TimestampType: "timestamp(6)",
    LongType: "bigint", IntegerType: "integer", DoubleType: "double", BooleanType: "boolean", DateType: "date",
    BinaryType: "varbinary"}


def fresh_columns(silver: TableSpec) -> tuple[Column, ...]:
    """A fresh view's columns, as fresh_sql selects them: the silver table's, then ORIGIN."""
    return (*silver.columns, Column(ORIGIN, StringType(), True, "Where the row comes from: 'silver' or 'live'."))


def presto_type(column: Column) -> str:
    """The column's type as Athena names it in a view's definition."""
    if isinstance(column.type, DecimalType):
        return f"decimal({column.type.precision},{column.type.scale})"
    return PRESTO_TYPES[type(column.type)]


FRESH_EVENTS = ViewSpec(
    namespace="fresh", name="events",
    doc="silver.events plus the live events the batch has not merged yet, each event once.",
    sql=fresh_sql(SILVER_EVENTS, LIVE_EVENTS, clickstream.DEDUPLICATION_KEY),
    reads=(SILVER_EVENTS.full_name, LIVE_EVENTS.full_name), columns=fresh_columns(SILVER_EVENTS))

_MINUTE = Column("minute", TimestamptzType(), False, "Minute of event time (UTC).")

# Live metrics per minute of event time (UTC), over the fresh view: what `lakehouse watch` and the Live dashboard show
MINUTE_EVENTS = ViewSpec(
    namespace="fresh", name="minute_events",
    doc="Events per minute of event time (UTC) and event type.",
    sql="SELECT date_trunc('minute', event_time) AS minute, event_type, count(*) AS events\n"
        "FROM fresh.events GROUP BY date_trunc('minute', event_time), event_type",
    reads=(FRESH_EVENTS.full_name,),
    columns=(_MINUTE, Column("event_type", StringType(), False, "The event type."),
             Column("events", LongType(), False, "Events of the type in the minute, each once.")))

MINUTE_SESSIONS = ViewSpec(
    namespace="fresh", name="minute_sessions",
    doc="Sessions with an event in each minute of event time (UTC).",
    sql="SELECT date_trunc('minute', event_time) AS minute, count(DISTINCT session_id) AS active_sessions\n"
        "FROM fresh.events GROUP BY date_trunc('minute', event_time)",
    reads=(FRESH_EVENTS.full_name,),
    columns=(_MINUTE, Column("active_sessions", LongType(), False, "Sessions with an event in the minute.")))

ALL_VIEWS: tuple[ViewSpec, ...] = (FRESH_EVENTS, MINUTE_EVENTS, MINUTE_SESSIONS)  # a view after what it reads
