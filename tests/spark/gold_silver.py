"""Silver rows for the gold_build tests, written straight into the silver tables with pyiceberg (no
silver job involved), the gold tests.ground_truth expects from them, and gold read back as its dicts."""
from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyspark.sql import SparkSession

from glue_jobs import gold_build
from glue_jobs.common import (CATALOG, GOLD_DAILY_KPIS, GOLD_FUNNEL_DAILY, GOLD_PRODUCT_SALES_DAILY, SILVER_EVENTS,
                              SILVER_FX_RATES, SILVER_ORDER_EVENTS, SILVER_ORDER_LINES, SILVER_PRODUCTS, lineage)
from tests import ground_truth as truth
from tests.fixtures.spark import SparkLake
from tests.ground_truth import Gold, Rates
from tests.spark.staging import T0, make_events

GOLD = (GOLD_DAILY_KPIS, GOLD_FUNNEL_DAILY, GOLD_PRODUCT_SALES_DAILY)
GOLD_KEYS = {GOLD_DAILY_KPIS: ("event_date", "country"), GOLD_FUNNEL_DAILY: ("event_date", "country"),
             GOLD_PRODUCT_SALES_DAILY: ("event_date", "product_id")}
CURRENCIES = ("USD", "EUR", "JPY", "GBP")
COUNTRIES = ("DE", "FR", "US")


def append(catalog: Catalog, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Append rows (columns they leave out are null) in one commit, with pyiceberg: ten times faster
    than through Spark, and Spark reads the same catalog without caching it."""
    iceberg = catalog.load_table(table.removeprefix(f"{CATALOG}."))
    schema = iceberg.schema().as_arrow()
    iceberg.append(pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in rows], schema=schema))


def click_rows(ids: range, seed: int, *, start: datetime = T0, hours: int = 60) -> list[dict[str, Any]]:
    return [{**e, "batch_id": f"clicks-{seed}"} for e in make_events(ids, seed, start=start, hours=hours)]


def order_rows(count: int, seed: int, *, start: datetime = T0, hours: int = 60, first: int = 0,
               products: int = 8) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Orders o<n>: placed, most paid minutes to a day later, some of those refunded up to two days
    later, some cancelled; lines of products P-00001.. (P-00001..P-0000<products>); most placed in a
    session, some sessions placing two orders, every ninth order in none. Silver rows (order events,
    order lines)."""
    rnd = random.Random(seed)
    events, lines = [], []
    for n in range(first, first + count):
        currency = rnd.choice(CURRENCIES)
        digits = 0 if currency == "JPY" else 2
        items = [(f"P-{rnd.randrange(1, products + 1):05d}", rnd.choice((1, 1, 2, 3)),
                  Decimal(rnd.randrange(100, 90_000)).scaleb(-digits)) for _ in range(rnd.choice((1, 1, 2, 3)))]
        total = sum((qty * price for _, qty, price in items), Decimal(0))
        placed = start + timedelta(minutes=rnd.randrange(hours * 60), seconds=rnd.randrange(60))
        steps = [("order_placed", placed)]
        roll = rnd.random()
        if roll < 0.75:
            steps.append(("order_paid", placed + timedelta(minutes=rnd.randrange(1, 24 * 60))))
            if rnd.random() < 0.25:
                steps.append(("order_refunded", steps[-1][1] + timedelta(minutes=rnd.randrange(1, 48 * 60))))
        elif roll < 0.9:
            steps.append(("order_cancelled", placed + timedelta(minutes=rnd.randrange(1, 600))))
        country = rnd.choice(COUNTRIES)
        session = None if n % 9 == 0 else f"s-{n * 7 % (count * 3 // 4 or 1):04d}"  # not from rnd: same orders
        for kind, at in steps:
            events.append({"order_id": f"o{n:04d}", "event_type": kind, "event_time": at, "event_time_offset": "+00:00",
                           "user_id": f"u{rnd.randrange(12)}", "country": country, "currency": currency,
                           "total": total, "item_count": len(items), "ingested_at": at + timedelta(seconds=5),
                           "batch_id": f"orders-{seed}", "session_id": session})
            lines += [{"order_id": f"o{n:04d}", "event_type": kind, "event_time": at, "line_number": i,
                       "product_id": product, "qty": qty, "unit_price": price, "currency": currency,
                       "batch_id": f"orders-{seed}"} for i, (product, qty, price) in enumerate(items, start=1)]
    return events, lines


def fx_rows(days: Iterable[date], seed: int = 0) -> list[dict[str, Any]]:
    """A rate per day for every currency of CURRENCIES but USD."""
    rnd = random.Random(seed)
    centres = {"EUR": 1.08, "JPY": 0.0066, "GBP": 1.27}
    return [{"rate_date": d, "currency": c, "usd_per_unit": round(centre * rnd.uniform(0.98, 1.02), 6),
             "published_date": d, "carried_forward": False, "batch_id": f"fx-{d}"}
            for d in days for c, centre in centres.items()]


def rates_of(rows: Iterable[dict[str, Any]]) -> Rates:
    return {(r["rate_date"], r["currency"]): r["usd_per_unit"] for r in rows}


def product_rows(versions: Iterable[tuple[str, str, str, str, str, datetime]]) -> list[dict[str, Any]]:
    """SCD2 rows of (product_id, name, category, price, currency, valid_from) versions."""
    by_product: dict[str, list[tuple[str, str, str, str, str, datetime]]] = {}
    for v in versions:
        by_product.setdefault(v[0], []).append(v)
    rows = []
    for product_id, vs in by_product.items():
        vs.sort(key=lambda v: v[5])
        for i, (_, name, category, price, currency, start) in enumerate(vs):
            end = vs[i + 1][5] if i + 1 < len(vs) else None
            rows.append({"product_id": product_id, "name": name, "category": category, "price": Decimal(price),
                         "currency": currency, "active": True, "valid_from": start, "valid_to": end,
                         "is_current": end is None, "file_id": "f" * 64, "line_number": i + 2})
    return rows


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def gold(spark: SparkSession, table: str) -> Gold:
    """A gold table as {key: other columns but updated_at}."""
    keys = GOLD_KEYS[table]
    return {tuple(r[k] for k in keys): {c: v for c, v in r.asDict().items() if c not in (*keys, "updated_at")}
            for r in spark.table(table).collect()}


def commit_dates(spark: SparkSession, table: str) -> str:
    """The dates the table's newest commit rebuilt, as its summary says ('all' for every date)."""
    return lineage(spark, table)[0].summary[gold_build.DATES]


DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(4)]  # T0 (21:00 on day 1) + 70 hours
FX_DAYS = [date(2026, 3, 1) + timedelta(days=i) for i in range(7)]  # payments and refunds come up to 3 days later
MISSING_DAY = DAYS[2]  # the FX API had no rates that day
CATALOG_VERSIONS = [  # P-00007 and P-00008 are sold but never in the catalog; P-00002's price changes on day 3
    ("P-00001", "Trail Runner", "shoes", "89.90", "EUR", utc(2025, 1, 1)),
    ("P-00002", "Rain Shell", "jackets", "120.00", "USD", utc(2025, 6, 1)),
    ("P-00002", "Rain Shell, navy", "jackets", "99.00", "USD", utc(2026, 3, 3, 9, 30)),
    ("P-00003", "Tote", "bags", "15000", "JPY", utc(2025, 2, 1)),
    ("P-00004", "Kettle", "kitchen", "25.00", "GBP", utc(2025, 2, 1)),
    ("P-00005", "Kite", "toys", "12.50", "USD", utc(2025, 2, 1)),
    ("P-00006", "Atlas", "books", "30.00", "EUR", utc(2026, 3, 3, 12)),  # first listed mid-window
]


class Silver:
    """What the test wrote to silver, kept to compute the expected gold."""

    def __init__(self, lake: SparkLake) -> None:
        self.lake = lake
        self.events: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.lines: list[dict[str, Any]] = []
        self.products: list[dict[str, Any]] = []
        self.fx: list[dict[str, Any]] = []

    def add(self, *, events: list | None = None, orders: tuple[list, list] | None = None,
            products: list | None = None, fx: list | None = None) -> None:
        for table, rows, kept in ((SILVER_EVENTS, events, self.events), (SILVER_ORDER_EVENTS, orders and orders[0], self.orders),
                                  (SILVER_ORDER_LINES, orders and orders[1], self.lines),
                                  (SILVER_PRODUCTS, products, self.products), (SILVER_FX_RATES, fx, self.fx)):
            if rows:
                append(self.lake.catalog, table, rows)
                kept += rows

    def expected(self) -> dict[str, truth.Gold]:
        rates = rates_of(self.fx)
        return {GOLD_DAILY_KPIS: truth.daily_kpis(self.events, self.orders, rates),
                GOLD_FUNNEL_DAILY: truth.funnel_daily(self.events, self.orders),
                GOLD_PRODUCT_SALES_DAILY: truth.product_sales_daily(self.lines, self.products, rates)}


def assert_gold_is_expected(spark: SparkSession, silver: Silver) -> dict[str, truth.Gold]:
    expected = silver.expected()
    for table in GOLD:
        assert truth.differences(gold(spark, table), expected[table]) == [], table
    return expected


def seeded(lake: SparkLake) -> Silver:
    """Four days of clicks and orders (refunds, cancellations, an order without a country), the catalog,
    and FX rates for every day but MISSING_DAY."""
    silver = Silver(lake)
    orders, lines = order_rows(120, seed=5, hours=70)
    orders[0] = {**orders[0], "country": None}  # staged before the contract carried a country
    silver.add(events=click_rows(range(0, 300), seed=11, hours=70), orders=(orders, lines),
               products=product_rows(CATALOG_VERSIONS), fx=fx_rows(d for d in FX_DAYS if d != MISSING_DAY))
    return silver


