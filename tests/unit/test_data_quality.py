"""The data-quality checks on tiny tables: a real local pyiceberg catalog, the checks' Athena SQL run by
DuckDB through lakehouse/analytics/athena.py, and each expectation computed independently in Python."""
from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from pyiceberg.expressions import EqualTo
from pyiceberg.catalog import Catalog

from iceberg_tables import specs
from iceberg_tables.catalogs import ENV_CATALOG_DB, ENV_WAREHOUSE
from lakehouse.analytics import athena
from lakehouse.analytics.quality_engine import StandInEngine
from lakehouse.lake.catalog import migrated_catalog
from lambdas.contracts.lake_layout import BATCH_SOURCES
from lambdas.data_quality import engines
from lambdas.data_quality.checks import SOURCE_TABLES, all_checks
from lambdas.data_quality.handler import BadQualityEvent, handler, run_checks
from lambdas.data_quality.thresholds import ENV_THRESHOLDS, ThresholdError, Thresholds

RUN = "run-1"
NOW = datetime(2026, 3, 5, 12, 0, tzinfo=timezone.utc)
LIMITS = Thresholds(freshness_max_age_minutes=60, order_freshness_max_age_minutes=120,
                    fx_rate_freshness_max_age_hours=30, volume_trailing_days=3, min_volume_ratio=0.5,
                    max_null_user_agent_rate=0.25, max_unknown_product_rate=0.2,
                    max_quarantine_rate={"clickstream": 0.25, "orders": 0.1, "products": 0.5, "fx_rates": 0.0})
CHECKS = len(all_checks(RUN, LIMITS, NOW))


@pytest.fixture
def lake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    """An empty migrated lake, named in the function's environment as the local cloud names it."""
    warehouse, catalog_db = tmp_path / "warehouse", tmp_path / "catalog.db"
    catalog, _ = migrated_catalog(warehouse, catalog_db)
    for key, value in {ENV_WAREHOUSE: str(warehouse), ENV_CATALOG_DB: str(catalog_db),
                       engines.ENV_ENGINE: engines.DUCKDB, ENV_THRESHOLDS: LIMITS.to_json()}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(engines, "_local_engine", None)
    engines.use_local_engine(StandInEngine)  # as provision hands it in
    return catalog


def append(catalog: Catalog, spec: specs.TableSpec, rows: list[dict[str, Any]]) -> None:
    table = catalog.load_table(spec.full_name)
    table.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


def event(event_id: str, batch: str, minutes_old: float = 10, user_agent: str | None = "Mozilla/5.0") -> dict:
    return {"event_id": event_id, "event_type": "page_view", "event_time": NOW - timedelta(minutes=minutes_old),
            "user_id": "u1", "session_id": "s1", "user_agent": user_agent, "country": "DE", "batch_id": batch,
            "event_time_offset": "+00:00", "ingested_at": NOW}


def order_event(order_id: str, minutes_old: float = 10) -> dict:
    return {"order_id": order_id, "event_type": "order_placed", "event_time": NOW - timedelta(minutes=minutes_old),
            "user_id": "u1", "currency": "EUR", "total": Decimal("19.00"), "item_count": 1, "ingested_at": NOW,
            "batch_id": "o"}


def batch(batch_id: str, received: int, clean: int, quarantined: int, duplicates: int, run_id: str = RUN,
          source: str = "clickstream") -> dict:
    return {"manifest_sha256": f"sha-{batch_id}", "source": source, "batch_id": batch_id,
            "manifest_path": f"/m/{batch_id}.json", "run_id": run_id, "merged_at": NOW, "received": received,
            "clean": clean, "quarantined": quarantined, "duplicates": duplicates, "quarantined_by_reason": "{}"}


def rejected(batch_id: str, source: str = "clickstream") -> dict:
    return {"source": source, "batch_id": batch_id, "reason": "MALFORMED_JSON", "message": "not JSON",
            "ingested_at": NOW, "raw_payload": b"{oops"}


def product(product_id: str, valid_from: datetime, is_current: bool) -> dict:
    return {"product_id": product_id, "name": "Mug", "category": "home", "price": Decimal("9.50"), "currency": "EUR",
            "active": True, "valid_from": valid_from, "is_current": is_current, "file_id": "f", "line_number": 2}


def line(order_id: str, number: int, product_id: str) -> dict:
    return {"order_id": order_id, "event_type": "order_placed", "event_time": NOW, "line_number": number,
            "product_id": product_id, "qty": 1, "unit_price": Decimal("9.50"), "currency": "EUR", "batch_id": "o"}


def order(order_id: str, total: str) -> dict:
    return {"order_id": order_id, "status": "paid", "user_id": "u1", "currency": "EUR", "total": Decimal(total),
            "country": "DE",
            "item_count": 1, "status_time": NOW, "updated_at": NOW}


def fx(day: date, currency: str, rate: float) -> dict:
    return {"rate_date": day, "currency": currency, "usd_per_unit": rate, "published_date": day,
            "carried_forward": False, "batch_id": "fx"}


def healthy(catalog: Catalog) -> list[dict]:
    """A consistent small lake: two balanced batches, fresh events, a catalog that knows every product, the FX
    rates of the days before NOW."""
    batches = [batch("b1", 5, 3, 1, 1), batch("b2", 2, 2, 0, 0)]
    append(catalog, specs.OPS_MERGED_BATCHES, batches)
    append(catalog, specs.SILVER_EVENTS, [event("e1", "b1"), event("e2", "b1"), event("e3", "b1", user_agent=None),
                                          event("e4", "b2"), event("e5", "b2")])
    append(catalog, specs.OPS_QUARANTINE, [rejected("b1")])
    append(catalog, specs.SILVER_PRODUCTS, [product("P-00001", NOW - timedelta(days=2), False),
                                            product("P-00001", NOW - timedelta(days=1), True),
                                            product("P-00002", NOW - timedelta(days=1), True)])
    append(catalog, specs.SILVER_ORDER_LINES, [line("o1", 1, "P-00001"), line("o1", 2, "P-00002")])
    append(catalog, specs.SILVER_ORDERS, [order("o1", "19.00")])
    append(catalog, specs.SILVER_FX_RATES, [fx(date(2026, 3, 3), "EUR", 1.08), fx(date(2026, 3, 4), "EUR", 1.09)])
    return batches


def pipeline_step(run_id: str, step: str, status: str, message: str = "") -> dict:
    return {"run_id": run_id, "step": step, "status": status, "started_at": NOW, "finished_at": NOW,
            "message": message}


def run(catalog: Catalog, limits: Thresholds = LIMITS) -> dict[str, Any]:
    engine = StandInEngine(catalog)
    try:
        return {r.label: r for r in run_checks(engine, RUN, limits, NOW)}
    finally:
        engine.close()


def failed(results: dict[str, Any]) -> set[str]:
    return {label for label, r in results.items() if not r.passed}


def test_a_consistent_lake_passes_every_check(lake: Catalog) -> None:
    healthy(lake)
    results = run(lake)
    assert failed(results) == set()
    assert len(results) == CHECKS  # one label per check
    assert results["freshness(silver.events)"].observed == pytest.approx(10 * 60, abs=1)
    assert results["freshness(silver.fx_rates)"].observed == pytest.approx(12 * 3600)  # 2026-03-04 ended at 0:00
    assert results["null_rate(silver.events)"].observed == pytest.approx(1 / 5)
    assert results["quarantine_rate(silver.events)"].observed == pytest.approx(1 / 7)


def test_every_source_has_a_quarantine_limit_and_a_table() -> None:
    assert [source for source, _ in SOURCE_TABLES] == list(BATCH_SOURCES) == list(LIMITS.max_quarantine_rate)


def test_empty_tables_pass_every_check_but_the_events_freshness(lake: Catalog) -> None:
    """A run that found no batch, on an empty lake: no event ever arriving fails; orders and FX rates, from
    sources that may start later, are not late before their first arrival."""
    results = run(lake)
    assert failed(results) == {"freshness(silver.events)"}
    assert results["freshness(silver.events)"].message == "silver.events is empty: no event has ever arrived"
    assert results["freshness(silver.order_events)"].message == \
        "silver.order_events is empty: no order has arrived yet, so none is late"
    assert results["freshness(silver.fx_rates)"].message == \
        "silver.fx_rates is empty: the connector has not loaded a day yet"


@pytest.mark.parametrize(("spec", "rows", "key"), [
    (specs.SILVER_ORDERS, [order("o8", "1.00"), order("o9", "2.00"), order("o9", "3.00")], ("order_id",)),
    (specs.SILVER_EVENTS, [event("e8", "b9"), event("e9", "b9"), event("e9", "b9")], ("event_id",)),
    (specs.SILVER_FX_RATES, [fx(date(2026, 3, 5), "EUR", 1.1), fx(date(2026, 3, 5), "EUR", 1.2),
                             fx(date(2026, 3, 5), "GBP", 1.3)], ("rate_date", "currency")),
    (specs.SILVER_PRODUCTS, [product("P-00003", NOW, False), product("P-00003", NOW, True)],
     ("product_id", "valid_from")),
    (specs.OPS_PIPELINE_RUNS, [pipeline_step("run-0", "gold_build", "SUCCEEDED"),
                               pipeline_step("run-0", "gold_build", "SUCCEEDED")], ("run_id", "step")),
])
def test_a_duplicated_key_fails_uniqueness_on_its_table_only(lake: Catalog, spec: specs.TableSpec,
                                                             rows: list[dict], key: tuple[str, ...]) -> None:
    healthy(lake)
    append(lake, spec, rows)
    table_rows = lake.load_table(spec.full_name).scan().to_arrow().to_pylist()
    counts = Counter(tuple(r[k] for k in key) for r in table_rows)
    expected = sum(1 for n in counts.values() if n > 1)
    results = run(lake)
    label = f"unique_keys({spec.full_name})"
    assert expected == 1 and results[label].observed == expected and not results[label].passed
    assert failed(results) == {label}


def test_two_current_versions_of_a_product_fail(lake: Catalog) -> None:
    healthy(lake)
    append(lake, specs.SILVER_PRODUCTS, [product("P-00002", NOW, True)])
    results = run(lake)
    assert failed(results) == {"single_current_version(silver.products)"}
    assert results["single_current_version(silver.products)"].observed == 1


def test_silver_or_quarantine_rows_that_differ_from_the_ledger_fail(lake: Catalog) -> None:
    healthy(lake)
    assert run(lake)["ledger_held(ops.merged_batches)"].passed
    lake.load_table("silver.events").delete(EqualTo("event_id", "e4"))  # a row of b2 lost from silver
    result = run(lake)["ledger_held(ops.merged_batches)"]
    assert not result.passed and result.observed == 1
    assert result.message == (f"run {RUN}: of 2 batches, 1 hold another number of rows in silver than their "
                              "ledger's clean count, 0 another number in ops.quarantine than their quarantined count")
    append(lake, specs.OPS_QUARANTINE, [rejected("b1")])  # a rejected record of b1 loaded twice
    assert run(lake)["ledger_held(ops.merged_batches)"].observed == 2


def test_a_source_whose_records_this_run_quarantined_over_its_limit_fails_its_rate_only(lake: Catalog) -> None:
    healthy(lake)
    # another run's batch, all quarantined: judged when it was merged, not again
    append(lake, specs.OPS_MERGED_BATCHES, [batch("o0", 4, 0, 4, 0, run_id="run-0", source="orders")])
    append(lake, specs.OPS_QUARANTINE, [rejected("o0", "orders")] * 4)
    # this run: 1 of 10 order records quarantined, at the limit (0.1)
    append(lake, specs.OPS_MERGED_BATCHES, [batch("o1", 10, 0, 1, 9, source="orders")])
    append(lake, specs.OPS_QUARANTINE, [rejected("o1", "orders")])
    results = run(lake)
    assert not failed(results) and results["quarantine_rate(silver.order_events)"].observed == pytest.approx(0.1)
    append(lake, specs.OPS_MERGED_BATCHES, [batch("o2", 2, 0, 1, 1, source="orders")])
    append(lake, specs.OPS_QUARANTINE, [rejected("o2", "orders")])
    results = run(lake)
    result = results["quarantine_rate(silver.order_events)"]
    assert failed(results) == {"quarantine_rate(silver.order_events)"}
    assert (result.observed, result.threshold) == (pytest.approx(2 / 12), 0.1)
    assert result.message == "2 of 12 orders records this run merged were quarantined: rate 0.1667 (limit 0.1000)"


def test_a_source_whose_staging_silver_merge_refused_fails_naming_it(lake: Catalog) -> None:
    healthy(lake)

    def step(run_id: str, name: str, status: str) -> dict:
        return pipeline_step(run_id, name, status,
                             "orders staging refused, its batches left pending: manifest /m/o9.json: not JSON")
    append(lake, specs.OPS_PIPELINE_RUNS, [step(RUN, "silver_merge", "SUCCEEDED"),
                                           step("run-0", "silver_merge:fx_rates", "FAILED")])  # another run's
    assert run(lake)["staging_merged(ops.pipeline_runs)"].passed
    append(lake, specs.OPS_PIPELINE_RUNS, [step(RUN, "silver_merge:orders", "FAILED")])
    results = run(lake)
    result = results["staging_merged(ops.pipeline_runs)"]
    assert failed(results) == {"staging_merged(ops.pipeline_runs)"} and result.observed == 1
    assert result.message == (
        f"run {RUN}: silver_merge refused the staging of orders (its batches wait, the other sources merged); the "
        f"batch is named in ops.pipeline_runs WHERE run_id = '{RUN}' AND step IN ('silver_merge:orders')")


def test_a_source_with_no_batch_in_the_run_passes_its_rate(lake: Catalog) -> None:
    healthy(lake)
    results = run(lake)
    assert results["quarantine_rate(silver.fx_rates)"].passed  # limit 0, and nothing merged
    assert results["quarantine_rate(silver.fx_rates)"].message.startswith("0 of 0 fx_rates records")


def test_stale_events_fail_freshness(lake: Catalog) -> None:
    healthy(lake)
    newest = max(r["event_time"] for r in lake.load_table("silver.events").scan().to_arrow().to_pylist())
    age = (NOW - newest).total_seconds()
    limits = Thresholds(**{**json.loads(LIMITS.to_json()), "freshness_max_age_minutes": 5})
    result = run(lake, limits)["freshness(silver.events)"]
    assert not result.passed and result.observed == pytest.approx(age) and result.threshold == 300


def test_null_rate_counts_only_the_events_this_run_merged(lake: Catalog) -> None:
    healthy(lake)
    # an older run's batch, full of nulls: judged when it was merged, not again
    append(lake, specs.SILVER_EVENTS, [event(f"old{i}", "b0", user_agent=None) for i in range(10)])
    append(lake, specs.OPS_MERGED_BATCHES, [batch("b0", 10, 10, 0, 0, run_id="run-0")])
    assert not failed(run(lake))
    append(lake, specs.SILVER_EVENTS, [event("e6", "b2", user_agent=None), event("e7", "b2", user_agent=None)])
    this_run = [r for r in lake.load_table("silver.events").scan().to_arrow().to_pylist() if r["batch_id"] in ("b1", "b2")]
    rate = sum(r["user_agent"] is None for r in this_run) / len(this_run)
    result = run(lake)["null_rate(silver.events)"]
    assert rate > LIMITS.max_null_user_agent_rate
    assert not result.passed and result.observed == pytest.approx(rate)


def test_orders_and_fx_rates_that_stopped_fail_their_freshness(lake: Catalog) -> None:
    healthy(lake)
    append(lake, specs.SILVER_ORDER_EVENTS, [order_event("o1", minutes_old=150), order_event("o2", minutes_old=121)])
    results = run(lake)
    assert failed(results) == {"freshness(silver.order_events)"}
    assert results["freshness(silver.order_events)"].observed == pytest.approx(121 * 60)
    assert results["freshness(silver.order_events)"].message == \
        "newest event_time is 121.0 minutes old (limit 120 minutes)"
    append(lake, specs.SILVER_ORDER_EVENTS, [order_event("o3", minutes_old=30)])
    lake.load_table("silver.fx_rates").delete(EqualTo("rate_date", date(2026, 3, 4)))  # a day's pull missed
    results = run(lake)
    assert failed(results) == {"freshness(silver.fx_rates)"}
    fx_rates = results["freshness(silver.fx_rates)"]
    assert (fx_rates.observed, fx_rates.threshold) == (pytest.approx(36 * 3600), 30 * 3600)  # 2026-03-03 ended
    assert fx_rates.message == "the end of the newest rate_date is 36.0 hours old (limit 30 hours)"


def events_days_ago(*per_day: int, first: int = 0) -> list[dict]:
    """`per_day[k]` events of the k-th day back from NOW (k = 0: the last 24 hours), an hour into it, merged by
    earlier runs."""
    return [event(f"v{k}-{i}", "earlier", minutes_old=(k * 24 + 1) * 60) for k, n in enumerate(per_day, first)
            for i in range(n)]


def test_a_thin_last_day_fails_volume_once_the_lake_reaches_back_past_the_trailing_days(lake: Catalog) -> None:
    """LIMITS: the last 24 hours' events at least half the daily mean of the 3 days before."""
    healthy(lake)  # five events in the last 24 hours
    append(lake, specs.SILVER_EVENTS, events_days_ago(0, 12, 12, 12))
    young = run(lake)["volume(silver.events)"]
    assert young.passed and young.observed is None
    assert young.message == ("not judged yet: silver.events holds 36 events of the 3 days before the last 24 hours "
                             "and reaches 2.0 days back from them; judged once it reaches 3 (5 events in the last "
                             "24 hours)")
    append(lake, specs.SILVER_EVENTS, events_days_ago(30, first=4))  # older than the trailing days: not in the mean
    results = run(lake)
    assert failed(results) == {"volume(silver.events)"}
    result = results["volume(silver.events)"]
    assert (result.observed, result.threshold) == (pytest.approx(5 / 12), 0.5)
    assert result.message == ("5 events in the last 24 hours against a daily mean of 12.0 in the 3 days before: "
                              "ratio 0.4167 (limit 0.5000)")
    append(lake, specs.SILVER_EVENTS, [event("late-today", "earlier", minutes_old=23 * 60)])
    assert run(lake)["volume(silver.events)"].observed == pytest.approx(6 / 12) and not failed(run(lake))


def test_order_events_volume_is_judged_alike(lake: Catalog) -> None:
    healthy(lake)
    orders = [order_event(f"o{k}-{i}", minutes_old=(k * 24 + 1) * 60) for k, n in enumerate((1, 4, 4, 4, 1))
              for i in range(n)]
    append(lake, specs.SILVER_ORDER_EVENTS, orders)
    results = run(lake)
    assert failed(results) == {"volume(silver.order_events)"}
    assert results["volume(silver.order_events)"].observed == pytest.approx(1 / 4)


def test_unknown_products_fail_above_their_rate_only(lake: Catalog) -> None:
    healthy(lake)
    append(lake, specs.SILVER_ORDER_LINES, [line("o2", 1, "P-00001")] * 2 + [line("o2", 3, "P-99999")])
    assert run(lake)["referential_integrity(silver.order_lines)"].observed == pytest.approx(1 / 5)
    assert not failed(run(lake))  # 0.2 is allowed: a catalog may lag the orders
    append(lake, specs.SILVER_ORDER_LINES, [line("o3", 1, "P-88888")])
    result = run(lake)["referential_integrity(silver.order_lines)"]
    assert not result.passed and result.observed == pytest.approx(2 / 6)


def test_the_handler_records_each_check_once_per_run_and_its_step(lake: Catalog,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    healthy(lake)
    # the handler judges freshness against the wall clock: allow the fixed NOW's age (the volume finds no
    # events in the days before the wall clock: not judged)
    age_hours = int((datetime.now(timezone.utc) - NOW).total_seconds() // 3600) + 48
    monkeypatch.setenv(ENV_THRESHOLDS, Thresholds(**{**json.loads(LIMITS.to_json()),
                                                     "freshness_max_age_minutes": age_hours * 60,
                                                     "fx_rate_freshness_max_age_hours": age_hours}).to_json())
    append(lake, specs.SILVER_ORDERS, [order("o1", "19.00")])  # o1 twice: one failure
    first = handler({"run_id": RUN}, None)
    again = handler({"run_id": RUN}, None)  # a retried invocation replaces the first one's rows
    assert first["passed"] is False and first["failed"] == ["unique_keys(silver.orders)"]
    assert again == first and first["checks"] == CHECKS
    assert first["summary"].startswith(f"1 of {CHECKS} checks failed: unique_keys(silver.orders): 1 duplicated")
    _, rows = athena.query(lake, "SELECT status, count(*) FROM ops.quality_results "
                                 f"WHERE run_id = '{RUN}' GROUP BY status ORDER BY status")
    assert rows == [("FAILED", 1), ("PASSED", CHECKS - 1)]
    _, steps = athena.query(lake, f"SELECT status, rows_written, message, received FROM ops.pipeline_runs "
                                  f"WHERE run_id = '{RUN}' AND step = 'quality'")
    assert steps == [("FAILED", CHECKS, first["summary"], None)]


@pytest.mark.parametrize(("event", "error", "match"), [
    ({}, BadQualityEvent, "non-empty 'run_id'"),
    ({"run_id": ""}, BadQualityEvent, "non-empty 'run_id'"),
])
def test_a_bad_event_is_named(lake: Catalog, event: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        handler(event, None)


def test_a_bad_environment_is_named(lake: Catalog, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(engines.ENV_ENGINE, "presto")
    with pytest.raises(engines.EngineConfigError, match="QUALITY_ENGINE must be 'athena' or 'duckdb', got 'presto'"):
        handler({"run_id": RUN}, None)
    monkeypatch.setenv(engines.ENV_ENGINE, "athena")
    with pytest.raises(engines.EngineConfigError, match="needs ATHENA_WORKGROUP"):
        handler({"run_id": RUN}, None)
    monkeypatch.setenv(engines.ENV_ENGINE, "duckdb")
    monkeypatch.setattr(engines, "_local_engine", None)  # the function as AWS runs it: no local runtime
    with pytest.raises(engines.EngineConfigError, match="QUALITY_ENGINE=duckdb is the local runtime's engine"):
        handler({"run_id": RUN}, None)
    monkeypatch.delenv(ENV_THRESHOLDS)
    with pytest.raises(ThresholdError, match="QUALITY_THRESHOLDS is not set"):
        handler({"run_id": RUN}, None)


@pytest.mark.parametrize(("change", "match"), [
    ({"freshness_max_age_minutes": 0}, "invalid value 0 for 'freshness_max_age_minutes'"),
    ({"max_unknown_product_rate": 1.5}, r"invalid value 1.5 for 'max_unknown_product_rate' \(expected a rate"),
    ({"max_null_user_agent_rate": True}, "invalid value True"),
    ({"extra": 1}, r"unknown keys \['extra'\]"),
    ({"fx_rate_freshness_max_age_hours": 1.5}, r"invalid value 1.5 for 'fx_rate_freshness_max_age_hours' \(expected "
                                               "a whole number of hours"),
    ({"volume_trailing_days": 0}, r"invalid value 0 for 'volume_trailing_days' \(expected a whole number of days"),
    ({"min_volume_ratio": -0.1}, "invalid value -0.1 for 'min_volume_ratio'"),
    ({"max_quarantine_rate": 0.2}, r"invalid value 0.2 for 'max_quarantine_rate' \(expected an object with a rate "
                                   r"in \[0, 1\] for each source: clickstream, orders, products, fx_rates\)"),
    ({"max_quarantine_rate": {"clickstream": 0.2, "orders": 0.2, "products": 0.2}},
     r"quality: max_quarantine_rate: missing keys \['fx_rates'\], unknown keys \[\]"),
    ({"max_quarantine_rate": {"clickstream": 0.2, "orders": 0.2, "products": 0.2, "fx_rates": 0.2, "crm": 0.1}},
     r"unknown keys \['crm'\]"),
    ({"max_quarantine_rate": {"clickstream": 0.2, "orders": "5%", "products": 0.2, "fx_rates": 0.2}},
     r"invalid value '5%' for 'max_quarantine_rate.orders' \(expected a rate in \[0, 1\]\)"),
])
def test_bad_thresholds_are_named(change: dict, match: str) -> None:
    with pytest.raises(ThresholdError, match=match):
        Thresholds.from_mapping({**json.loads(LIMITS.to_json()), **change})


def test_thresholds_round_trip_through_their_json() -> None:
    assert Thresholds.from_json(LIMITS.to_json()) == LIMITS
