"""The dashboards end to end: Iceberg -> serving DuckDB file -> real Superset -> real Chromium.

Every test imports the bundle itself (the import overwrites the bundle's database), so they run
in any order. Chart numbers are compared with DuckDB over the same file, with the Athena
stand-in over the Iceberg table, and with plain Python over the rows written; on the demo's lake,
with the generators' own ground truth and with plain Python over the Iceberg tables' rows.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

import duckdb
import pytest

from dashboards.render import bundle_charts, bundle_dashboards, render, write_bundle
from lakehouse.analytics.athena import query
from lakehouse.analytics.screenshots import WAIT_MS, browser_page, settled_screenshot, sign_in, wait_until_drawn
from lakehouse.analytics.serving import export_serving
from lakehouse.analytics.superset import LocalSuperset, publish_dashboards
from lakehouse.lake.catalog import local_catalog
from tests.fixtures.demo_run import DemoRun
from tests.fixtures.superset import (KpiLake, append_daily_kpis, big_number, daily_kpis_rows, import_and_chart_data,
                                     make_lake, series_by_day_and_country)

pytestmark = pytest.mark.slow



def duckdb_value(db_path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_chart_data_equals_duckdb_athena_and_python(superset: LocalSuperset, kpi_lake: KpiLake, tmp_path: Path) -> None:
    serving_db = export_serving(kpi_lake.catalog, tmp_path / "serving.duckdb")
    charts = import_and_chart_data(superset, serving_db, tmp_path / "bundle.zip")

    python_total = sum(r["events"] for r in kpi_lake.rows)
    assert big_number(charts["Total events"]) == python_total
    assert duckdb_value(serving_db, "SELECT SUM(events) FROM gold.daily_kpis") == [(python_total,)]
    assert query(kpi_lake.catalog, "SELECT SUM(events) FROM gold.daily_kpis")[1] == [(python_total,)]

    python_series = Counter()
    for r in kpi_lake.rows:
        python_series[(r["event_date"], r["country"])] += r["events"]
    assert series_by_day_and_country(charts["Events by day and country"], "total_events") == python_series
    by_duckdb = duckdb_value(serving_db, "SELECT event_date, country, SUM(events) FROM gold.daily_kpis GROUP BY ALL")
    assert {(day, country): total for day, country, total in by_duckdb} == python_series


def test_published_dashboards_show_a_new_export_without_restart(superset: LocalSuperset, tmp_path: Path) -> None:
    catalog = make_lake(tmp_path / "lake")
    first = daily_kpis_rows(seed=11, days=3)
    later = daily_kpis_rows(seed=12, days=2, first_day=dt.date(2026, 12, 1))
    append_daily_kpis(catalog, first)
    serving_db = tmp_path / "serving.duckdb"
    urls = publish_dashboards(superset, catalog, serving_db, tmp_path / "bundle.zip")
    assert sorted(urls) == [f"{superset.url}/superset/dashboard/{slug}/" for slug in
                            ("business", "data-quality", "live", "operations")]
    with superset.client() as client:
        assert client.get("/api/v1/dashboard/business").json()["result"]["dashboard_title"] == "Business"
    assert big_number(superset.chart_data(bundle_charts()["Total events"])) == sum(r["events"] for r in first)

    append_daily_kpis(catalog, later)
    export_serving(catalog, serving_db)  # replaced under the running Superset: no restart, no re-import
    assert big_number(superset.chart_data(bundle_charts()["Total events"])) == sum(r["events"] for r in first + later)


def _chart_uuids(superset: LocalSuperset) -> set[str]:
    with superset.client() as client:
        return {c["uuid"] for c in client.get("/api/v1/chart/", params={"q": "(columns:!(uuid),page_size:100)"}
                                              ).json()["result"]}


def test_a_chart_removed_from_the_bundle_is_removed_on_publish_and_a_users_chart_stays(
        superset: LocalSuperset, kpi_lake: KpiLake, tmp_path: Path) -> None:
    serving_db = export_serving(kpi_lake.catalog, tmp_path / "serving.duckdb")
    docs = render("duckdb", serving_db=serving_db)
    chart = docs["charts/total_events.yaml"]
    # an earlier bundle's chart (managed, since removed from the bundle) and one a user made in Superset
    removed = {**chart, "uuid": "5d1b6e7c-0000-4000-8000-00000000dead", "slice_name": "Removed from the bundle"}
    users = {**chart, "uuid": "5d1b6e7c-0000-4000-8000-0000000051e5", "slice_name": "A user's chart",
             "is_managed_externally": False}
    superset.import_bundle(write_bundle({**docs, "charts/removed.yaml": removed, "charts/users.yaml": users},
                                        tmp_path / "earlier.zip"))
    assert {removed["uuid"], users["uuid"]} <= _chart_uuids(superset)

    publish_dashboards(superset, kpi_lake.catalog, serving_db, tmp_path / "bundle.zip")
    after = _chart_uuids(superset)
    assert removed["uuid"] not in after
    assert users["uuid"] in after
    assert set(bundle_charts().values()) <= after


def test_every_dashboard_draws_every_chart_in_chromium_from_loopback_only(
        superset: LocalSuperset, demo_run: DemoRun, tmp_path: Path) -> None:
    publish_dashboards(superset, local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db),
                       tmp_path / "serving.duckdb", tmp_path / "bundle.zip")
    placed = {title: len(_placed_charts(slug)) for title, slug in bundle_dashboards().items()}
    foreign: list[str] = []
    errors: list[str] = []
    drawn: dict[str, dict[str, str]] = {}
    with browser_page() as page:
        page.on("response", lambda r: foreign.append(r.url) if urlsplit(r.url).netloc != urlsplit(superset.url).netloc else None)
        page.on("requestfailed", lambda r: errors.append(f"request failed: {r.url} {r.failure}"))
        page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
        login = sign_in(page, superset.url)
        for title, slug in bundle_dashboards().items():
            page.goto(f"{superset.url}/superset/dashboard/{slug}/")
            page.get_by_text(title).first.wait_for(timeout=WAIT_MS)
            drawn[title] = wait_until_drawn(page)
            if slug == "business":
                settled_screenshot(page, tmp_path / "business.png")
        total = f"{demo_run.summary['silver_events']:,}"  # Total events, in the chart's ',d' format
        page.goto(f"{superset.url}/superset/dashboard/business/")
        page.get_by_text(total, exact=True).wait_for(timeout=WAIT_MS)
    assert {title: len(charts) for title, charts in drawn.items()} == placed
    assert {title: set(charts.values()) for title, charts in drawn.items()} == {title: {"drawn"} for title in placed}
    assert [e for e in errors if not _expected(e)] == [], "\n".join(errors)
    assert foreign == [], "the page must not reach any host but the local Superset"
    assert login is not None and "img-src 'self' blob: data:" in login.headers["content-security-policy"]
    assert (tmp_path / "business.png").stat().st_size > 10_000


# Superset 6.1's menu always shows a telemetry pixel from this host; the CSP blocks it (hence a console error
# and a failed request on each page), which is how the page stays on loopback.
TELEMETRY_PIXEL = "https://apachesuperset.gateway.scarf.sh/pixel/"


def _expected(error: str) -> bool:
    """The blocked telemetry pixel, or a request the browser cancelled when the test moved to the next page."""
    return TELEMETRY_PIXEL in error or (error.startswith("request failed: http://127.0.0.1:")
                                        and error.endswith("net::ERR_ABORTED"))


def _placed_charts(slug: str) -> list[str]:
    [dashboard] = [d for path, d in render("duckdb", serving_db=Path("x")).items()
                   if path.startswith("dashboards/") and d["slug"] == slug]
    return [item["meta"]["sliceName"] for item in dashboard["position"].values()
            if isinstance(item, dict) and item.get("type") == "CHART"]
