"""Gold computed in pure Python, one row at a time: from silver-shaped rows (the Spark tests' inputs) or
from the generators' own objects (the demo's ground truth, for the e2e tier).

An independent model of docs/tables.md and docs/decisions/0130: it shares no code with glue_jobs.
Rows are mappings with silver's column names; money is Decimal, rates are US dollars per unit by
(UTC date, currency), USD is 1 and never listed. Values of a gold row are compared with `differences`.
"""
from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from lakehouse.sources.fx_fixture import rates_for
from lakehouse.sources.generator import ClickEvent, Generated, GeneratedOrders, OrderEvent
from lakehouse.sources.product_catalog import ExpectedProduct

Row = Mapping[str, Any]
Rates = Mapping[tuple[date, str], float]
Gold = dict[tuple[date, str], dict[str, Any]]  # (event_date, country or product_id) -> the other columns

FUNNEL = {"view_sessions": "page_view", "product_view_sessions": "product_view",
          "add_to_cart_sessions": "add_to_cart", "checkout_sessions": "checkout_started"}
COUNTS = {"page_views": "page_view", "product_views": "product_view", "add_to_cart": "add_to_cart",
          "checkouts": "checkout_started"}
SIGN = {"order_paid": 1, "order_refunded": -1}  # cash basis: money moves on these events only
NO_COUNTRY = "ZZ"


def utc_date(instant: datetime) -> date:
    return instant.astimezone(timezone.utc).date()


def rate(rates: Rates, day: date, currency: str) -> float | None:
    return 1.0 if currency == "USD" else rates.get((day, currency))


def _money(items: Iterable[tuple[date, str, int, Decimal]], rates: Rates) -> float | None:
    """Sum of sign x amount x the day's rate; 0.0 for nothing; None when any rate is missing."""
    total = 0.0
    for day, currency, sign, amount in items:
        usd = rate(rates, day, currency)
        if usd is None:
            return None
        total += sign * float(amount) * usd
    return total


def _order_country(order: Row) -> str:
    return order.get("country") or NO_COUNTRY


def daily_kpis(events: Iterable[Row], order_events: Iterable[Row], rates: Rates) -> Gold:
    clicks: dict[tuple[date, str], list[Row]] = defaultdict(list)
    orders: dict[tuple[date, str], list[Row]] = defaultdict(list)
    for e in events:
        clicks[(utc_date(e["event_time"]), e["country"])].append(e)
    for o in order_events:
        orders[(utc_date(o["event_time"]), _order_country(o))].append(o)
    gold = {}
    for key in clicks.keys() | orders.keys():
        es, os_ = clicks.get(key, []), orders.get(key, [])
        sessions = len({e["session_id"] for e in es})
        paid = len({o["order_id"] for o in os_ if o["event_type"] == "order_paid"})
        gold[key] = {
            "active_users": len({e["user_id"] for e in es}), "sessions": sessions, "events": len(es),
            **{column: sum(e["event_type"] == kind for e in es) for column, kind in COUNTS.items()},
            "orders": len({o["order_id"] for o in os_ if o["event_type"] == "order_placed"}),
            "paid_orders": paid,
            "revenue_usd": _money(((key[0], o["currency"], SIGN[o["event_type"]], o["total"])
                                   for o in os_ if o["event_type"] in SIGN), rates),
            "conversion_rate": paid / sessions if sessions else None,
        }
    return gold


def funnel_daily(events: Iterable[Row], order_events: Iterable[Row]) -> Gold:
    sessions: dict[tuple[date, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    paid: dict[tuple[date, str], set[str]] = defaultdict(set)
    paid_sessions: dict[tuple[date, str], set[str]] = defaultdict(set)
    for e in events:
        sessions[(utc_date(e["event_time"]), e["country"])][e["event_type"]].add(e["session_id"])
    for o in order_events:
        key = (utc_date(o["event_time"]), _order_country(o))
        paid[key]  # a row for every date and country with an order event, as daily_kpis has
        if o["event_type"] == "order_paid":
            paid[key].add(o["order_id"])
            if o.get("session_id"):  # an order without a session pays in no session
                paid_sessions[key].add(o["session_id"])
    return {key: {**{column: len(sessions[key][kind]) for column, kind in FUNNEL.items()},
                  "paid_orders": len(paid[key]), "paid_sessions": len(paid_sessions[key])}
            for key in sessions.keys() | paid.keys()}


def version_at(versions: Sequence[Row], instant: datetime) -> Row | None:
    """The product version valid just before `instant` (valid_from <= t < valid_to)."""
    valid = [v for v in versions if v["valid_from"] < instant and (v["valid_to"] is None or v["valid_to"] >= instant)]
    return max(valid, key=lambda v: v["valid_from"], default=None)


def product_sales_daily(order_lines: Iterable[Row], products: Iterable[Row], rates: Rates) -> Gold:
    by_product: dict[str, list[Row]] = defaultdict(list)
    for version in products:
        by_product[version["product_id"]].append(version)
    sales: dict[tuple[date, str], list[Row]] = defaultdict(list)
    for line in order_lines:
        if line["event_type"] in SIGN:
            sales[(utc_date(line["event_time"]), line["product_id"])].append(line)
    gold = {}
    for (day, product_id), lines in sales.items():
        day_end = datetime.combine(day + timedelta(days=1), time(), timezone.utc)
        version = version_at(by_product.get(product_id, []), day_end)
        price_rate = rate(rates, day, version["currency"]) if version else None
        paid = [line for line in lines if line["event_type"] == "order_paid"]
        gold[(day, product_id)] = {
            "name": version["name"] if version else None,
            "category": version["category"] if version else None,
            "orders": len({line["order_id"] for line in paid}),
            "units_sold": sum(line["qty"] for line in paid),
            "units_refunded": sum(line["qty"] for line in lines if line["event_type"] == "order_refunded"),
            "revenue_usd": _money(((day, line["currency"], SIGN[line["event_type"]], line["qty"] * line["unit_price"])
                                   for line in lines), rates),
            "list_price_usd": float(version["price"]) * price_rate if version and price_rate is not None else None,
        }
    return gold


def differences(actual: Gold, expected: Gold, *, rel: float = 1e-9, abs_: float = 1e-6) -> list[str]:
    """What differs between two gold tables (keys, then values; floats within a tolerance: Spark sums
    exact decimals per currency before converting, this model converts each row)."""
    diffs = [f"{k}: only in gold" for k in sorted(actual.keys() - expected.keys(), key=repr)]
    diffs += [f"{k}: missing from gold" for k in sorted(expected.keys() - actual.keys(), key=repr)]
    for key in sorted(actual.keys() & expected.keys(), key=repr):
        for column, want in expected[key].items():
            got = actual[key].get(column)
            close = (isinstance(want, float) and isinstance(got, float) and math.isclose(got, want, rel_tol=rel,
                                                                                         abs_tol=abs_))
            if not close and (got != want or type(got) is not type(want)):
                diffs.append(f"{key} {column}: gold {got!r}, expected {want!r}")
    return diffs


# --- from the generators' objects (the demo's inputs) --------------------------------------------

def click_rows(clicks: Generated) -> list[dict[str, Any]]:
    events: list[ClickEvent] = clicks.clean_events
    return [{"event_type": e.event_type, "event_time": e.event_time, "user_id": e.user_id,
             "session_id": e.session_id, "country": e.country} for e in events]


def order_rows(orders: GeneratedOrders) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(order events, their lines) of the orders stream's clean events."""
    events: list[OrderEvent] = orders.clean_events
    rows = [{"order_id": e.order_id, "event_type": e.event_type, "event_time": e.event_time, "country": e.country,
             "currency": e.currency, "total": e.total, "session_id": e.session_id} for e in events]
    lines = [{"order_id": e.order_id, "event_type": e.event_type, "event_time": e.event_time,
              "product_id": item.product_id, "qty": item.qty, "unit_price": item.unit_price, "currency": e.currency}
             for e in events for item in e.items]
    return rows, lines


def catalog_versions(products: Iterable[ExpectedProduct]) -> list[dict[str, Any]]:
    """SCD type 2 of catalog rows: a version per (product_id, updated_at), valid until the next one's."""
    versions: dict[str, dict[datetime, ExpectedProduct]] = defaultdict(dict)
    for p in products:
        versions[p.product_id].setdefault(p.updated_at, p)
    rows = []
    for product_id, by_time in versions.items():
        starts = sorted(by_time)
        for start, end in zip(starts, [*starts[1:], None]):
            p = by_time[start]
            rows.append({"product_id": product_id, "name": p.name, "category": p.category, "price": p.price,
                         "currency": p.currency, "valid_from": start, "valid_to": end})
    return rows


def fixture_rates(days: Iterable[date]) -> dict[tuple[date, str], float]:
    """The FX fixture's rates of these days, as silver.fx_rates holds them once the connector fetched them."""
    return {(day, currency): usd for day in days for currency, usd in rates_for(day).items()}


@dataclass(frozen=True)
class GroundTruth:
    daily_kpis: Gold
    funnel_daily: Gold
    product_sales_daily: Gold


def from_generators(clicks: Generated, orders: GeneratedOrders, products: Iterable[ExpectedProduct],
                    rates: Rates) -> GroundTruth:
    """Every gold table the demo's sources should give: clean clicks and orders, the clean catalog rows,
    the FX rates fetched (fixture_rates of the days the connector backfilled)."""
    events = click_rows(clicks)
    order_events, lines = order_rows(orders)
    return GroundTruth(daily_kpis=daily_kpis(events, order_events, rates),
                       funnel_daily=funnel_daily(events, order_events),
                       product_sales_daily=product_sales_daily(lines, catalog_versions(products), rates))
