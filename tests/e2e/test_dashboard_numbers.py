"""Every chart of every dashboard, as Superset's chart-data API computes it over the demo's lake, against an
independent computation: the generators' ground truth (tests/ground_truth.py, tests/fixtures/demo_run.py) for
the business numbers and the ledgers, and plain Python over the Iceberg tables' rows (read by pyiceberg, not
DuckDB) for what only the pipeline knows (run times, check results, snapshots)."""
from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from dashboards.render import bundle_charts
from lakehouse.analytics.superset import LocalSuperset, publish_dashboards
from lakehouse.lake.catalog import local_catalog
from tests.fixtures.demo_run import DemoRun, expected_gold, expected_ledgers
from tests.fixtures.superset import chart_rows

pytestmark = pytest.mark.slow
Charts = dict[str, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def charts(demo_run: DemoRun, superset: LocalSuperset, tmp_path_factory: pytest.TempPathFactory) -> Charts:
    """Each chart's rows, by chart name, once the bundle is published over the demo's lake."""
    scratch = tmp_path_factory.mktemp("demo_dashboards")
    publish_dashboards(superset, local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db),
                       scratch / "serving.duckdb", scratch / "bundle.zip")
    return {name: chart_rows(superset.chart_data(uuid)) for name, uuid in bundle_charts().items()}


def table_rows(demo_run: DemoRun, table: str) -> list[dict[str, Any]]:
    return local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db).load_table(table).scan().to_arrow().to_pylist()


def day(epoch_ms: float) -> dt.date:
    return dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.timezone.utc).date()


def total(values: Iterable[float | None]) -> float | None:
    """SQL's SUM: nulls ignored, null when every value is."""
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def ratio(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or not bottom else top / bottom


def series(rows: list[dict[str, Any]], metric: str) -> dict[dt.date, float]:
    return {day(r["event_date"]): r[metric] for r in rows}


def by_group(rows: list[dict[str, Any]], axis: str, metric: str) -> dict[tuple[Any, str], float]:
    """A pivoted series ('<metric>, <group>' columns) as {(x, group): value}, the gaps (NaN) left out."""
    return {(r[axis], column.removeprefix(f"{metric}, ")): value for r in rows for column, value in r.items()
            if column.startswith(f"{metric}, ") and value is not None and not math.isnan(value)}


def test_business_numbers_equal_the_ground_truth(demo_run: DemoRun, charts: Charts) -> None:
    kpis = expected_gold(demo_run).daily_kpis
    days = sorted({d for d, _ in kpis})
    per_day = {d: [row for (on, _), row in kpis.items() if on == d] for d in days}

    def daily(column: str) -> dict[dt.date, float | None]:
        return {d: total(r[column] for r in rows) for d, rows in per_day.items()}

    revenue, paid, sessions, orders = daily("revenue_usd"), daily("paid_orders"), daily("sessions"), daily("orders")
    assert series(charts["Revenue (USD)"], "revenue") == pytest.approx(revenue)
    assert series(charts["Paid orders"], "total_paid_orders") == paid
    assert series(charts["Average order value (USD)"], "average_order_value") == pytest.approx(
        {d: ratio(revenue[d], paid[d]) for d in days})
    assert series(charts["Conversion"], "conversion") == pytest.approx({d: ratio(paid[d], sessions[d]) for d in days})
    assert {day(r["event_date"]): (r["total_orders"], r["total_paid_orders"]) for r in charts["Orders by day"]} == {
        d: (orders[d], paid[d]) for d in days}
    by_country = {(d, country): row["revenue_usd"] for (d, country), row in kpis.items()
                  if row["revenue_usd"] is not None}
    assert {(day(ms), c): v for (ms, c), v in by_group(charts["Revenue by country"], "event_date", "revenue").items()
            } == pytest.approx(by_country)
    assert charts["Total events"] == [{"total_events": sum(r["events"] for r in kpis.values())}]
    assert {(day(ms), c): v for (ms, c), v in by_group(charts["Events by day and country"], "event_date",
                                                       "total_events").items()} == {
        key: row["events"] for key, row in kpis.items()}


def test_the_funnel_and_the_products_equal_the_ground_truth(demo_run: DemoRun, charts: Charts) -> None:
    truth = expected_gold(demo_run)
    steps = {"1. Viewed a page": "view_sessions", "2. Viewed a product": "product_view_sessions",
             "3. Added to cart": "add_to_cart_sessions", "4. Started checkout": "checkout_sessions",
             "5. Paid": "paid_sessions"}
    assert {r["step"]: r["step_sessions"] for r in charts["Funnel"]} == {
        step: sum(row[column] for row in truth.funnel_daily.values()) for step, column in steps.items()}

    products: dict[tuple[str, str | None, str | None], list[float]] = defaultdict(lambda: [0.0, 0])
    for (_, product_id), row in truth.product_sales_daily.items():
        sums = products[(product_id, row["name"], row["category"])]
        sums[0] += row["revenue_usd"] or 0.0
        sums[1] += row["units_sold"]
    top = charts["Top products"]
    assert [r["product_revenue"] for r in top] == pytest.approx(sorted((s[0] for s in products.values()),
                                                                       reverse=True)[:10])
    for r in top:
        assert [r["product_revenue"], r["units"]] == pytest.approx(products[(r["product_id"], r["name"], r["category"])])
    categories: Counter[str | None] = Counter()
    for row in truth.product_sales_daily.values():
        categories[row["category"]] += row["revenue_usd"] or 0.0
    assert {r["category"]: r["product_revenue"] for r in charts["Revenue by category"]} == pytest.approx(
        dict(categories))


def test_the_operations_numbers_equal_the_sources_ledgers_and_the_ops_tables(
        demo_run: DemoRun, charts: Charts, tmp_path: Path) -> None:
    ledgers = expected_ledgers(demo_run, tmp_path)
    [run] = charts["Batch runs"]
    [run_row] = [r for r in table_rows(demo_run, "ops.pipeline_runs") if r["step"] == "run"]
    assert (run["run_id"], run["status"]) == (demo_run.summary["run_id"], "SUCCEEDED")
    assert (run["received"], run["clean"], run["quarantined"], run["duplicates"], run["unaccounted"]) == (
        sum(x.received for x in ledgers.values()), sum(x.clean for x in ledgers.values()),
        sum(x.quarantined for x in ledgers.values()), sum(x.duplicates for x in ledgers.values()), 0)
    assert run["duration_seconds"] == pytest.approx(
        (run_row["finished_at"] - run_row["started_at"]).total_seconds(), abs=0.001)
    assert charts["Unaccounted records"] == [{"total_unaccounted": 0}]
    assert {r["source"]: (r["run_id"], r["batch_received"], r["batch_clean"], r["batch_quarantined"],
                          r["batch_duplicates"]) for r in charts["Records per source and run"]} == {
        source: (run["run_id"], x.received, x.clean, x.quarantined, x.duplicates) for source, x in ledgers.items()}

    reasons = by_group(charts["Quarantine reasons over time"], "ingested_at", "quarantined_records")
    per_reason: Counter[str] = Counter()
    for (_, reason), records in reasons.items():
        per_reason[reason] += int(records)
    expected_reasons: Counter[str] = Counter()
    for ledger in ledgers.values():
        expected_reasons.update(ledger.quarantined_by_reason)
    assert per_reason == expected_reasons
    hourly = Counter((r["ingested_at"].replace(minute=0, second=0, microsecond=0), r["reason"])
                     for r in table_rows(demo_run, "ops.quarantine"))
    assert {(dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc), reason): int(n)
            for (ms, reason), n in reasons.items()} == hourly

    durations: dict[str, list[float]] = defaultdict(list)
    for row in table_rows(demo_run, "ops.pipeline_runs"):
        if row["step"] != "run":
            durations[row["step"]].append((row["finished_at"] - row["started_at"]).total_seconds())
    assert {r["step"]: (r["average_duration"], r["longest_duration"]) for r in charts["Step durations"]} == {
        step: pytest.approx((sum(d) / len(d), max(d)), abs=0.001) for step, d in durations.items()}


def test_freshness_shows_every_tables_last_commit(demo_run: DemoRun, charts: Charts) -> None:
    catalog = local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db)
    expected = {}
    for namespace in catalog.list_namespaces():
        for identifier in catalog.list_tables(namespace):
            snapshots = catalog.load_table(identifier).metadata.snapshots
            expected[".".join(identifier)] = (max(s.timestamp_ms for s in snapshots) if snapshots else None,
                                              len(snapshots))
    assert {r["table_name"]: (r["last_commit"], r["snapshots"]) for r in charts["Table freshness"]} == expected


def test_data_quality_shows_every_check_of_the_run(demo_run: DemoRun, charts: Charts) -> None:
    checks = demo_run.summary["quality"]
    failed = [c for c in checks if c["status"] == "FAILED"]
    assert charts["Failed checks"] == [{"failed_checks": len(failed)}]
    assert sorted((r["check_name"], r["table_name"], r["status"]) for r in charts["Check results"]) == sorted(
        (c["check_name"], c["table_name"], c["status"]) for c in checks)
    assert [(r["check_name"], r["table_name"]) for r in charts["Failing checks"]] == [
        (c["check_name"], c["table_name"]) for c in failed]
    over_time = by_group(charts["Check failures over time"], "checked_at", "failed_checks")
    assert {name for _, name in over_time} == {c["check_name"] for c in checks}
    assert sum(over_time.values()) == len(failed)


def test_the_live_dashboard_shows_the_last_hour_of_the_generators_clean_events(demo_run: DemoRun,
                                                                               charts: Charts) -> None:
    def minute(at: dt.datetime) -> dt.datetime:
        return at.astimezone(dt.timezone.utc).replace(second=0, microsecond=0)

    clean = demo_run.truth.clean_events
    newest = max(minute(e.event_time) for e in clean)
    hour = [e for e in clean if minute(e.event_time) > newest - dt.timedelta(minutes=60)]
    assert charts["Events in the last hour"] == [{"minute_events": len(hour)}]
    per_minute = Counter((minute(e.event_time), e.event_type) for e in hour)
    assert {(dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc), kind): int(n) for (ms, kind), n in
            by_group(charts["Events per minute"], "minute", "minute_events").items()} == per_minute
    sessions: dict[dt.datetime, set[str]] = defaultdict(set)
    for e in hour:
        sessions[minute(e.event_time)].add(e.session_id)
    assert {dt.datetime.fromtimestamp(r["minute"] / 1000, tz=dt.timezone.utc): r["sessions_in_minute"]
            for r in charts["Active sessions per minute"]} == {m: len(s) for m, s in sessions.items()}
    assert sum(r["added_records"] for r in charts["Live commits"]) == demo_run.summary["live"]["events"]


def _utc_minute(at: dt.datetime) -> dt.datetime:
    return at.astimezone(dt.timezone.utc).replace(second=0, microsecond=0)


def _last_hour(minutes: Iterable[dt.datetime]) -> set[dt.datetime]:
    """The minutes the Live datasets show: the hour up to the newest."""
    newest = max(minutes)
    return {m for m in minutes if m > newest - dt.timedelta(minutes=60)}


def _at_minute(ms: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)


def test_the_live_orders_and_revenue_per_minute_are_the_generators_at_gold_rates(demo_run: DemoRun,
                                                                                 charts: Charts) -> None:
    """Orders, paid orders and revenue per minute of the order generator's clean events, revenue as gold computes
    it (paid minus refunded totals per currency at the day's FX fixture rate), at the newest earlier rate for a
    day the connector fetched no rate for (fresh.minute_orders' provisional minutes)."""
    from lakehouse.demo import FX_DAYS, ORDERS, ORDERS_SEED
    from lakehouse.sources.generator import generate_orders
    from tests.ground_truth import SIGN, fixture_rates

    events = generate_orders(ORDERS, seed=ORDERS_SEED, sessions=demo_run.truth.checkout_sessions).clean_events
    loaded = dt.datetime.fromisoformat(demo_run.summary["sources_loaded_at"]).date()
    fx_days = [loaded - dt.timedelta(days=n) for n in range(1, FX_DAYS + 1)]
    rates = fixture_rates(fx_days)

    def rate(day: dt.date, currency: str) -> float | None:
        known = [d for d in fx_days if d <= day]
        return 1.0 if currency == "USD" else rates.get((max(known), currency)) if known else None

    hour = _last_hour({_utc_minute(e.event_time) for e in events})
    by_minute: dict[dt.datetime, list[Any]] = defaultdict(list)
    for e in events:
        if _utc_minute(e.event_time) in hour:
            by_minute[_utc_minute(e.event_time)].append(e)
    revenue: dict[dt.datetime, float | None] = {}
    for minute, minute_events in by_minute.items():
        money: Counter[str] = Counter()
        for e in minute_events:
            if e.event_type in SIGN:  # the minute's money; a placed order moves none
                money[e.currency] += SIGN[e.event_type] * e.total
        usd = [None if rate(minute.date(), c) is None else float(amount) * rate(minute.date(), c)
               for c, amount in money.items()]
        revenue[minute] = None if None in usd else sum(u for u in usd if u is not None)
    assert {_at_minute(r["minute"]): (r["minute_orders"], r["minute_paid_orders"]) for r in charts["Orders per minute"]} \
        == {m: (len({e.order_id for e in es if e.event_type == "order_placed"}),
                len({e.order_id for e in es if e.event_type == "order_paid"})) for m, es in by_minute.items()}
    shown = {_at_minute(r["minute"]): r["minute_revenue"] for r in charts["Revenue per minute (USD)"]}
    assert {m: None if v is None or math.isnan(v) else v for m, v in shown.items()} == pytest.approx(revenue)


def test_the_live_quarantine_rate_per_source_is_the_committers_ledgers_and_the_generators(
        demo_run: DemoRun, charts: Charts, tmp_path: Path) -> None:
    """Each source's quarantine rate per minute of staging against the rows of its live batches table (read by
    pyiceberg), whose totals are the source's generator's: every staged batch recorded once."""
    from iceberg_tables.specs import LIVE_EVENTS_BATCHES, LIVE_ORDER_EVENTS_BATCHES

    ledgers = expected_ledgers(demo_run, tmp_path)
    rows = [r for table in (LIVE_EVENTS_BATCHES, LIVE_ORDER_EVENTS_BATCHES) for r in table_rows(demo_run, table.full_name)]
    for source in ("clickstream", "orders"):
        of_source = [r for r in rows if r["source"] == source]
        assert len({r["batch_id"] for r in of_source}) == len(of_source)  # each batch once
        assert (sum(r["received"] for r in of_source), sum(r["quarantined"] for r in of_source)) == (
            ledgers[source].received, ledgers[source].quarantined)
    hour = _last_hour({_utc_minute(r["staged_at"]) for r in rows})
    sums: dict[tuple[dt.datetime, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if _utc_minute(r["staged_at"]) in hour:
            sums[(_utc_minute(r["staged_at"]), r["source"])][0] += r["quarantined"]
            sums[(_utc_minute(r["staged_at"]), r["source"])][1] += r["received"]
    assert {(_at_minute(ms), source): rate for (ms, source), rate in
            by_group(charts["Quarantine rate per source"], "minute", "quarantine_rate").items()} == pytest.approx(
        {key: quarantined / received for key, (quarantined, received) in sums.items()})
