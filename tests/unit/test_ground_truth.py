"""tests/ground_truth.py, the pure-Python gold the Spark and e2e tiers compare with, checked against the
generators' own ground truth where they have one, and on hand-made cases where they do not."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from lakehouse.sources.generator import KPI_NAMES, generate, generate_orders
from lakehouse.sources.product_catalog import generate_catalog
from tests import ground_truth as truth

NOW = datetime(2026, 3, 10, 12, tzinfo=timezone.utc)
DAYS = [date(2026, 3, 10) - timedelta(days=n) for n in range(1, 5)]


def test_click_kpis_equal_the_generators_and_order_columns_match_its_orders() -> None:
    clicks, orders = generate(3000, seed=3, now=NOW), generate_orders(600, seed=4, now=NOW)
    catalog = generate_catalog(300, seed=5, arrived=NOW).products
    gold = truth.from_generators(clicks, orders, catalog, truth.fixture_rates(DAYS))

    assert {k: {c: v[c] for c in KPI_NAMES} for k, v in gold.daily_kpis.items() if k in clicks.expected_daily_kpis} \
        == clicks.expected_daily_kpis
    events = orders.clean_events
    assert sum(v["orders"] for v in gold.daily_kpis.values()) == len(
        {(e.order_id, e.event_time.date()) for e in events if e.event_type == "order_placed"})
    assert sum(v["paid_orders"] for v in gold.funnel_daily.values()) == sum(
        v["paid_orders"] for v in gold.daily_kpis.values()) > 0
    assert all(v["revenue_usd"] is not None for v in gold.daily_kpis.values())  # every day has its rates
    paid_units = sum(i.qty for e in events if e.event_type == "order_paid" for i in e.items)
    assert sum(v["units_sold"] for v in gold.product_sales_daily.values()) == paid_units
    known = {p.product_id for p in catalog}
    assert {p for (_, p), v in gold.product_sales_daily.items() if v["name"] is not None} <= known


def test_the_funnel_ends_in_the_sessions_that_placed_paid_orders() -> None:
    clicks = generate(3000, seed=3, now=NOW)
    orders = generate_orders(600, seed=4, now=NOW, sessions=clicks.checkout_sessions)
    funnel = truth.from_generators(clicks, orders, [], truth.fixture_rates(DAYS)).funnel_daily
    paid = {(e.event_time.date(), e.country, e.session_id) for e in orders.clean_events if e.event_type == "order_paid"}
    assert sum(v["paid_sessions"] for v in funnel.values()) == len(paid) > 0
    assert {s for _, _, s in paid} <= {s.session_id for s in clicks.checkout_sessions}
    # without sessions (an older producer's orders), paid orders count and no session does
    alone = truth.from_generators(clicks, generate_orders(600, seed=4, now=NOW), [], {}).funnel_daily
    assert sum(v["paid_sessions"] for v in alone.values()) == 0 < sum(v["paid_orders"] for v in alone.values())


def test_paid_sessions_are_distinct_per_date_and_country_of_the_payment() -> None:
    at = datetime(2026, 3, 1, 23, 50, tzinfo=timezone.utc)
    base = {"event_type": "order_paid", "country": "DE", "currency": "EUR", "total": Decimal("1")}
    events = [{**base, "order_id": "o1", "event_time": at, "session_id": "s1"},
              {**base, "order_id": "o2", "event_time": at, "session_id": "s1"},  # a second order of s1
              {**base, "order_id": "o3", "event_time": at, "session_id": None},
              {**base, "order_id": "o4", "event_time": at + timedelta(minutes=20), "session_id": "s1"},  # next day
              {**base, "order_id": "o5", "event_time": at, "session_id": "s2", "event_type": "order_placed"}]
    funnel = truth.funnel_daily([], events)
    assert {k: (v["paid_orders"], v["paid_sessions"]) for k, v in funnel.items()} == {
        (date(2026, 3, 1), "DE"): (3, 1), (date(2026, 3, 2), "DE"): (1, 1)}


def test_money_is_cash_basis_at_the_days_rate_and_null_without_one() -> None:
    day1, day2 = date(2026, 3, 1), date(2026, 3, 2)
    at = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    order = {"order_id": "o1", "country": None, "currency": "EUR", "total": Decimal("10.00")}
    events = [{**order, "event_type": "order_placed", "event_time": at},
              {**order, "event_type": "order_paid", "event_time": at + timedelta(minutes=5)},
              {**order, "event_type": "order_refunded", "event_time": at + timedelta(days=1)}]
    kpis = truth.daily_kpis([], events, {(day1, "EUR"): 1.1})
    assert kpis[(day1, "ZZ")] == {"active_users": 0, "sessions": 0, "events": 0, "page_views": 0, "product_views": 0,
                                  "add_to_cart": 0, "checkouts": 0, "orders": 1, "paid_orders": 1,
                                  "revenue_usd": 11.0, "conversion_rate": None}
    assert kpis[(day2, "ZZ")]["revenue_usd"] is None  # the refund's day has no EUR rate
    assert truth.daily_kpis([], events[:1], {})[(day1, "ZZ")]["revenue_usd"] == 0.0  # nothing paid: 0, not null


def test_a_sale_shows_the_catalog_version_valid_at_the_days_end() -> None:
    noon = datetime(2026, 3, 2, 12, tzinfo=timezone.utc)
    products = [{"product_id": "P-1", "name": "old", "category": "toys", "price": Decimal("2"), "currency": "USD",
                 "valid_from": noon - timedelta(days=30), "valid_to": noon},
                {"product_id": "P-1", "name": "new", "category": "toys", "price": Decimal("3"), "currency": "USD",
                 "valid_from": noon, "valid_to": None}]
    lines = [{"order_id": f"o{d}", "event_type": "order_paid", "event_time": noon + timedelta(days=d, hours=-6),
              "product_id": "P-1", "qty": 2, "unit_price": Decimal("2.5"), "currency": "USD"} for d in (-1, 0)]
    sales = truth.product_sales_daily(lines, products, {})
    assert {d.day: (v["name"], v["list_price_usd"], v["revenue_usd"]) for (d, _), v in sales.items()} == {
        1: ("old", 2.0, 5.0), 2: ("new", 3.0, 5.0)}  # the morning sale of day 2 shows the version of its end
    assert truth.product_sales_daily(lines, [], {})[(date(2026, 3, 2), "P-1")]["name"] is None
