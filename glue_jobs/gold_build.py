"""Glue job gold_build: silver -> gold.daily_kpis, gold.funnel_daily, gold.product_sales_daily, rebuilding
only the dates silver changed.

Each gold table is built from its silver inputs (GOLD_TABLES) by glue_jobs.gold_metrics, and commits,
atomically with its rows, the snapshot of every input it read (glue_jobs.gold_changes). The next build
rebuilds, per gold table, the union of the dates its inputs' later snapshots touched, old dates touched
by late data included, in one overwrite of those dates; other dates' files are left as they are. A
table is rebuilt whole when it has no usable bookmark: the first build, gold changed by another writer,
silver rolled back, or silver's snapshots after the bookmark expired (docs/decisions/0111, 0131).
Every input is read at the snapshot current when the job started, so the three tables agree.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from glue_jobs import gold_changes, gold_metrics
from glue_jobs.common import (GOLD_DAILY_KPIS, GOLD_FUNNEL_DAILY, GOLD_PRODUCT_SALES_DAILY, SILVER_EVENTS,
                              SILVER_FX_RATES, SILVER_ORDER_EVENTS, SILVER_ORDER_LINES, SILVER_PRODUCTS, SUCCEEDED,
                              glue_main, lineage, record_step, require_args, require_utc, utc_now)

JOB = "gold_build"
ARGS = ("run_id",)
# Summary properties of gold's commits besides the bookmarks: the run, the dates rebuilt, the missing rates.
RUN = "lakehouse.run-id"
DATES = "lakehouse.rebuilt-dates"
ALL_DATES = "all"
MISSING_RATES = "lakehouse.missing-fx-rates"

Read = Callable[[str], DataFrame]  # a silver input at the build's snapshot, on the dates rebuilt


@dataclass(frozen=True)
class GoldTable:
    name: str
    inputs: tuple[str, ...]
    build: Callable[[Read, datetime], tuple[DataFrame, DataFrame | None]]  # rows, missing rates


GOLD_TABLES = (
    GoldTable(GOLD_DAILY_KPIS, (SILVER_EVENTS, SILVER_ORDER_EVENTS, SILVER_FX_RATES),
              lambda read, at: gold_metrics.daily_kpis(read(SILVER_EVENTS), read(SILVER_ORDER_EVENTS),
                                                       read(SILVER_FX_RATES), at)),
    GoldTable(GOLD_FUNNEL_DAILY, (SILVER_EVENTS, SILVER_ORDER_EVENTS),
              lambda read, at: (gold_metrics.funnel_daily(read(SILVER_EVENTS), read(SILVER_ORDER_EVENTS), at), None)),
    GoldTable(GOLD_PRODUCT_SALES_DAILY, (SILVER_ORDER_LINES, SILVER_PRODUCTS, SILVER_FX_RATES),
              lambda read, at: gold_metrics.product_sales_daily(read(SILVER_ORDER_LINES), read(SILVER_PRODUCTS),
                                                                read(SILVER_FX_RATES), at)),
)
SILVER_INPUTS = tuple(dict.fromkeys(t for table in GOLD_TABLES for t in table.inputs))


def at_snapshot(spark: SparkSession, table: str, snapshot: int | None) -> DataFrame:
    if snapshot is None:  # no snapshot yet: empty, even should one be committed meanwhile
        return spark.table(table).where(F.lit(False))
    return spark.sql(f"SELECT * FROM {table} VERSION AS OF {snapshot}")


def _on_dates(table: str, dates: list[date]) -> Column:
    """The input's rows of these UTC dates, as filters Iceberg prunes partitions or files with."""
    if table == SILVER_FX_RATES:
        return F.col("rate_date").isin(dates)

    def day(d: date) -> Column:
        start = datetime.combine(d, time(), timezone.utc)
        return (F.col("event_time") >= F.lit(start)) & (F.col("event_time") < F.lit(start + timedelta(days=1)))
    return reduce(lambda a, b: a | b, map(day, dates))


class Changes:
    """The dates each silver input changed since a bookmark: found once per (input, bookmark), as the
    gold tables mostly share their bookmarks."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        self.lineages = {t: lineage(spark, t) for t in SILVER_INPUTS}
        self.current: dict[str, int | None] = {t: c[0].snapshot_id if c else None for t, c in self.lineages.items()}
        self._found: dict[tuple[str, int | None], list[date] | None] = {}

    def dates(self, inputs: tuple[str, ...], bookmarks: gold_changes.Bookmarks | None) -> list[date] | None:
        """The union of the inputs' changed dates; None: every date."""
        if bookmarks is None:
            return None
        found = [self._dates(t, bookmarks[t]) for t in inputs]
        return None if None in found else sorted({d for dates in found for d in dates or ()})

    def _dates(self, table: str, since: int | None) -> list[date] | None:
        if (table, since) not in self._found:
            self._found[table, since] = self._find(table, since)
        return self._found[table, since]

    def _find(self, table: str, since: int | None) -> list[date] | None:
        chain = self.lineages[table]
        changed = gold_changes.changed_snapshots(chain, since)
        if not changed:
            return changed
        if table in gold_changes.FACTS:
            return gold_changes.fact_dates(self.spark, table, changed)
        if since is not None and since not in {s.snapshot_id for s in chain}:
            return None  # the diff needs the bookmarked snapshot itself
        old, new = at_snapshot(self.spark, table, since), at_snapshot(self.spark, table, self.current[table])
        if table == SILVER_FX_RATES:
            return gold_changes.fx_dates(old, new)
        lines = at_snapshot(self.spark, SILVER_ORDER_LINES, self.current[SILVER_ORDER_LINES])
        return gold_changes.catalog_dates(old, new, lines)


def _missing_text(rows: list[Row]) -> str:
    """'2026-03-05 EUR 12, ...': (date, currency, records) without a rate, in order."""
    return ", ".join(f"{r.event_date} {r.currency} {r.records}" for r in sorted(rows, key=lambda r: (
        r.event_date, r.currency)))


def _rebuild(spark: SparkSession, table: GoldTable, run_id: str, snapshots: dict[str, int | None],
             dates: list[date] | None, updated_at: datetime) -> Row:
    """Overwrite the dates (None: all) of one gold table from its inputs at `snapshots`; returns its new snapshot."""
    def read(name: str) -> DataFrame:
        frame = at_snapshot(spark, name, snapshots[name])
        return frame if dates is None or name == SILVER_PRODUCTS else frame.where(_on_dates(name, dates))

    rows, missing = table.build(read, updated_at)
    properties = {RUN: run_id, DATES: ALL_DATES if dates is None else ",".join(map(str, dates)),
                  MISSING_RATES: "" if missing is None else _missing_text(missing.collect()),
                  **gold_changes.bookmark_properties({t: snapshots[t] for t in table.inputs})}
    writer = rows.select(*spark.table(table.name).columns).writeTo(table.name)
    for key, value in properties.items():
        writer = writer.option(f"snapshot-property.{key}", value)
    # One commit: the dates' old rows go (whole partitions), their new rows come, readers see either.
    writer.overwrite(F.lit(True) if dates is None else F.col("event_date").isin(dates))
    return lineage(spark, table.name)[0]


def _build(spark: SparkSession, table: GoldTable, changes: Changes, run_id: str, started_at: datetime) -> Row | None:
    """The table's commit of this run (None: it was up to date)."""
    gold = lineage(spark, table.name)
    dates = changes.dates(table.inputs, gold_changes.built_from(gold, table.inputs))
    if dates == [] and gold and gold[0].summary.get(RUN) == run_id:
        return gold[0]  # an earlier attempt of this run rebuilt it, then failed: report that
    if dates == [] or (not gold and all(changes.current[t] is None for t in table.inputs)):
        return None
    return _rebuild(spark, table, run_id, changes.current, dates, started_at)


def _report(name: str, commit: Row | None) -> dict[str, Any]:
    if commit is None:
        return {"rows_written": 0, "dates": [], "missing_fx_rates": "", "message": f"{name} is up to date"}
    rows, rebuilt = int(commit.summary.get("added-records", 0)), commit.summary[DATES]
    missing = commit.summary.get(MISSING_RATES, "")
    message = f"{name}: {'every date' if rebuilt == ALL_DATES else 'dates ' + rebuilt}, {rows} rows"
    if missing:
        message += f"; money null where no FX rate (date currency records): {missing}"
    return {"rows_written": rows, "dates": None if rebuilt == ALL_DATES else rebuilt.split(","),
            "missing_fx_rates": missing, "message": message}


def run(spark: SparkSession, args: dict[str, str]) -> dict[str, Any]:
    """Rebuild the gold dates silver changed since each gold table's last build and record the step.

    Returns rows_written (all tables), dates (the union rebuilt, ISO strings; None when a table rebuilt
    every date), message, and per table its rows_written, dates and missing_fx_rates."""
    a = require_args(JOB, args, ARGS)
    require_utc(spark, JOB)
    started_at = utc_now()
    changes = Changes(spark)
    tables = {t.name: _report(t.name, _build(spark, t, changes, a["run_id"], started_at)) for t in GOLD_TABLES}
    rows = sum(t["rows_written"] for t in tables.values())
    dates = None if any(t["dates"] is None for t in tables.values()) else sorted(
        {d for t in tables.values() for d in t["dates"]})
    read = ", ".join(f"{t.rsplit('.', 1)[-1]}={s}" for t, s in changes.current.items())
    message = f"{'; '.join(t['message'] for t in tables.values())} (silver snapshots {read})"
    record_step(spark, {
        "run_id": a["run_id"], "step": JOB, "status": SUCCEEDED, "started_at": started_at,
        "finished_at": utc_now(), "rows_written": rows, "message": message,
    })
    return {"run_id": a["run_id"], "step": JOB, "rows_written": rows, "message": message, "dates": dates,
            "tables": {name: {k: v for k, v in t.items() if k != "message"} for name, t in tables.items()}}


if __name__ == "__main__":
    glue_main(JOB, run, ARGS)
