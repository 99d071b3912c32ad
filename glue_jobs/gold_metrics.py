"""The gold tables' rows as DataFrame transforms of silver's: daily_kpis, funnel_daily, product_sales_daily.

Plain PySpark (ships to Glue). A row's date is the UTC date of its event_time (the session must be in
UTC). Money is summed exactly (decimals) per currency and date, then converted once at that date's
rate of silver.fx_rates (USD is 1 and never stored there): cash basis, so a paid total counts on its
order_paid event's date and a refund subtracts on its order_refunded event's date, and every silver
row affects its own date only. A missing rate makes the money of its rows null, never 0, and is
returned beside the rows so the job can report it (docs/decisions/0130-gold-money-and-catalog-days.md).
"""
from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

PLACED, PAID, CANCELLED, REFUNDED = "order_placed", "order_paid", "order_cancelled", "order_refunded"
USD = "USD"
# Orders staged before the contract carried a country (silver's column is optional): ISO 3166's
# user-assigned code for an unknown country, so their orders and money still count somewhere.
UNKNOWN_COUNTRY = "ZZ"
KEYS = ("event_date", "country")
# Gold column -> silver event_type it counts (the clickstream contract's EVENT_TYPES; a unit test checks).
EVENT_TYPE_COUNTS = {
    "page_views": "page_view",
    "product_views": "product_view",
    "add_to_cart": "add_to_cart",
    "checkouts": "checkout_started",
}
# funnel_daily column -> the event_type a session must have to count (in funnel order).
FUNNEL_STEPS = {
    "view_sessions": "page_view",
    "product_view_sessions": "product_view",
    "add_to_cart_sessions": "add_to_cart",
    "checkout_sessions": "checkout_started",
}
# What a missing rate left without a value: (event_date, currency, records) rows.
MISSING_RATE_COLUMNS = ("event_date", "currency", "records")


def _dated(frame: DataFrame) -> DataFrame:
    return frame.withColumn("event_date", F.to_date("event_time"))


def _orders(order_events: DataFrame) -> DataFrame:
    return _dated(order_events).withColumn("country", F.coalesce("country", F.lit(UNKNOWN_COUNTRY)))


def _distinct_when(event_type: str, column: str) -> Column:
    return F.countDistinct(F.when(F.col("event_type") == event_type, F.col(column)))


def _signed(amount: Column) -> Column:
    """Paid amounts count, refunded ones subtract; other statuses carry no money (null, filtered out)."""
    return F.when(F.col("event_type") == PAID, amount).when(F.col("event_type") == REFUNDED, -amount)


def with_rate(frame: DataFrame, fx: DataFrame, currency: str = "currency") -> DataFrame:
    """`frame` (event_date, `currency`, ...) with `rate`: US dollars per unit on that date; null when
    silver.fx_rates has none."""
    rates = fx.select(F.col("rate_date").alias("event_date"), F.col("currency").alias(currency),
                      F.col("usd_per_unit"))
    return (frame.join(F.broadcast(rates), ["event_date", currency], "left")
            .withColumn("rate", F.when(F.col(currency) == USD, F.lit(1.0)).otherwise(F.col("usd_per_unit")))
            .drop("usd_per_unit"))


def revenue_usd(amounts: DataFrame, keys: tuple[str, ...], fx: DataFrame) -> tuple[DataFrame, DataFrame]:
    """(keys, revenue_usd, has_money) from rows (keys, event_date, currency, amount): exact sums per
    currency, one conversion each; null for a key with any amount lacking a rate. Second: the missing rates."""
    per_currency = with_rate(amounts.groupBy(*dict.fromkeys((*keys, "event_date", "currency")))
                             .agg(F.sum("amount").alias("amount"), F.count(F.lit(1)).alias("records")), fx)
    revenue = per_currency.groupBy(*keys).agg(
        F.when(F.count(F.when(F.col("rate").isNull(), 1)) == 0,
               F.sum(F.col("amount").cast("double") * F.col("rate"))).alias("revenue_usd"),
        F.lit(True).alias("has_money"))
    missing = (per_currency.where(F.col("rate").isNull()).groupBy("event_date", "currency")
               .agg(F.sum("records").alias("records")))
    return revenue, missing


def _full(*frames: DataFrame) -> DataFrame:
    """Outer join on (event_date, country); counts a side lacks are 0."""
    joined = frames[0]
    for frame in frames[1:]:
        joined = joined.join(frame, list(KEYS), "full")
    return joined


def daily_kpis(events: DataFrame, order_events: DataFrame, fx: DataFrame,
               updated_at: datetime) -> tuple[DataFrame, DataFrame]:
    """One row per date and country with any event or order event; and the rates it lacked."""
    clicks = _dated(events).groupBy(*KEYS).agg(
        F.countDistinct("user_id").alias("active_users"),
        F.countDistinct("session_id").alias("sessions"),
        F.count(F.lit(1)).alias("events"),
        *(F.count(F.when(F.col("event_type") == kind, 1)).alias(column) for column, kind in EVENT_TYPE_COUNTS.items()))
    orders = _orders(order_events)
    counts = orders.groupBy(*KEYS).agg(_distinct_when(PLACED, "order_id").alias("orders"),
                                       _distinct_when(PAID, "order_id").alias("paid_orders"))
    revenue, missing = revenue_usd(
        orders.select(*KEYS, "currency", _signed(F.col("total")).alias("amount")).where(F.col("amount").isNotNull()),
        KEYS, fx)
    zero = F.lit(0).cast("long")
    rows = (_full(clicks, counts).join(revenue, list(KEYS), "left")
            .select(*KEYS,
                    *(F.coalesce(c, zero).alias(c) for c in ("active_users", "sessions", "events",
                                                             *EVENT_TYPE_COUNTS, "orders", "paid_orders")),
                    # no paid or refunded order: 0; money without a rate: null
                    F.when(F.col("has_money").isNull(), F.lit(0.0)).otherwise(F.col("revenue_usd")).alias("revenue_usd"))
            .withColumn("conversion_rate", F.when(F.col("sessions") > 0, F.col("paid_orders") / F.col("sessions")))
            .withColumn("updated_at", F.lit(updated_at).cast("timestamp")))
    return rows, missing


def funnel_daily(events: DataFrame, order_events: DataFrame, updated_at: datetime) -> DataFrame:
    """One row per date and country with any event or order event (the keys of daily_kpis). The last step,
    paid_sessions, counts sessions as the others do, on the date and in the country of the step's event:
    the distinct session_id of order_paid events (an order without a session counts in paid_orders only)."""
    steps = _dated(events).groupBy(*KEYS).agg(
        *(_distinct_when(kind, "session_id").alias(column) for column, kind in FUNNEL_STEPS.items()))
    paid = _orders(order_events).groupBy(*KEYS).agg(_distinct_when(PAID, "order_id").alias("paid_orders"),
                                                    _distinct_when(PAID, "session_id").alias("paid_sessions"))
    zero = F.lit(0).cast("long")
    return (_full(steps, paid)
            .select(*KEYS, *(F.coalesce(c, zero).alias(c) for c in (*FUNNEL_STEPS, "paid_orders", "paid_sessions")))
            .withColumn("updated_at", F.lit(updated_at).cast("timestamp")))


def product_of_day(keys: DataFrame, products: DataFrame) -> DataFrame:
    """(event_date, product_id) with the catalog version valid at the date's end (the last version
    whose validity covers the instant before midnight UTC): name, category, price, price_currency;
    null when the catalog had no version of the product then."""
    versions = products.select(*(F.col(c).alias(f"v_{c}") for c in (
        "product_id", "name", "category", "price", "currency", "valid_from", "valid_to")))
    day_end = F.to_timestamp(F.date_add(F.col("event_date"), 1))
    valid = ((F.col("product_id") == F.col("v_product_id")) & (F.col("v_valid_from") < day_end)
             & (F.col("v_valid_to").isNull() | (F.col("v_valid_to") >= day_end)))
    # max(struct) keeps one version per key should silver's validity ranges ever overlap: the latest.
    chosen = (keys.join(versions, valid, "left").groupBy("event_date", "product_id")
              .agg(F.max(F.struct("v_valid_from", "v_name", "v_category", "v_price", "v_currency")).alias("v")))
    return chosen.select("event_date", "product_id", F.col("v.v_name").alias("name"),
                         F.col("v.v_category").alias("category"), F.col("v.v_price").alias("price"),
                         F.col("v.v_currency").alias("price_currency"))


def product_sales_daily(order_lines: DataFrame, products: DataFrame, fx: DataFrame,
                        updated_at: datetime) -> tuple[DataFrame, DataFrame]:
    """One row per date and product with a paid or refunded line; and the rates it lacked."""
    keys = ("event_date", "product_id")
    sales = _dated(order_lines).where(F.col("event_type").isin(PAID, REFUNDED))
    paid = F.col("event_type") == PAID
    counts = sales.groupBy(*keys).agg(
        _distinct_when(PAID, "order_id").alias("orders"),
        F.sum(F.when(paid, F.col("qty")).otherwise(0)).cast("long").alias("units_sold"),
        F.sum(F.when(paid, 0).otherwise(F.col("qty"))).cast("long").alias("units_refunded"))
    revenue, missing_sales = revenue_usd(
        sales.select(*keys, "currency", _signed(F.col("qty") * F.col("unit_price")).alias("amount")), keys, fx)
    catalog = with_rate(product_of_day(counts.select(*keys), products), fx, currency="price_currency")
    # A known product's list price without a rate is a missing rate too; an unknown product is not.
    missing_prices = (catalog.where(F.col("price").isNotNull() & F.col("rate").isNull())
                      .groupBy("event_date", F.col("price_currency").alias("currency"))
                      .agg(F.count(F.lit(1)).alias("records")))
    rows = (counts.join(revenue, list(keys)).join(catalog, list(keys))
            .withColumn("list_price_usd", F.col("price").cast("double") * F.col("rate"))
            .withColumn("updated_at", F.lit(updated_at).cast("timestamp")))
    missing = missing_sales.unionByName(missing_prices).groupBy("event_date", "currency").agg(
        F.sum("records").alias("records"))
    return rows, missing
