"""silver.order_events, order_lines and orders on real PySpark + Iceberg: statuses arriving out of order and
late never regress an order, cancellations and refunds, v1 files without country and v2 files without
session_id, the ledger per batch;
expected rows from a pure-Python model of the rules."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from glue_jobs import silver_merge
from lambdas.contracts import orders
from tests.fixtures.spark import SparkLake
from tests.spark.staging import T0, job_args, order_event, quarantine_rows, write_order_batch

pytestmark = pytest.mark.slow
KEY = orders.DEDUPLICATION_KEY
RANK = {t: r for r, t in enumerate(orders.EVENT_TYPES)}


def model_events(staged: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """Per deduplication key, the earliest ingested copy (the tests stage no ties)."""
    best: dict[tuple, dict[str, Any]] = {}
    for row in staged:
        key = tuple(row[k] for k in KEY)
        if key not in best or row["ingested_at"] < best[key]["ingested_at"]:
            best[key] = row
    return best


def model_orders(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each order's state: its latest event by (event_time, status rank); each status's first time."""
    state: dict[str, dict[str, Any]] = {}
    for order_id in {e["order_id"] for e in events}:
        mine = sorted((e for e in events if e["order_id"] == order_id),
                      key=lambda e: (e["event_time"], RANK[e["event_type"]]))
        last = mine[-1]
        with_country = [e for e in mine if e.get("country")]
        with_session = [e for e in mine if e.get("session_id")]
        state[order_id] = {
            "order_id": order_id, "status": last["event_type"].removeprefix("order_"), "user_id": last["user_id"],
            "country": with_country[-1]["country"] if with_country else None, "currency": last["currency"],
            "total": last["total"], "item_count": len(last["items"]), "status_time": last["event_time"],
            "session_id": with_session[-1]["session_id"] if with_session else None,
            **{f"{t.removeprefix('order_')}_at": min((e["event_time"] for e in mine if e["event_type"] == t), default=None)
               for t in orders.EVENT_TYPES}}
    return state


def table(lake: SparkLake, name: str) -> list[dict[str, Any]]:
    return lake.catalog.load_table(name).scan().to_arrow().to_pylist()


def silver_orders(lake: SparkLake) -> dict[str, dict[str, Any]]:
    return {r["order_id"]: {k: v for k, v in r.items() if k != "updated_at"} for r in table(lake, "silver.orders")}


def check_events_and_lines(lake: SparkLake, chosen: dict[tuple, dict[str, Any]], owner: dict[tuple, str]) -> None:
    events = {tuple(r[k] for k in KEY): r for r in table(lake, "silver.order_events")}
    assert set(events) == set(chosen)
    for key, row in chosen.items():
        got = events[key]
        assert (got["user_id"], got["country"], got["currency"], got["total"], got["item_count"], got["ingested_at"],
                got["batch_id"], got["session_id"]) == (row["user_id"], row.get("country"), row["currency"], row["total"],
                                                        len(row["items"]), row["ingested_at"], owner[key],
                                                        row.get("session_id"))
    lines = sorted((r["order_id"], r["event_type"], r["event_time"], r["line_number"], r["product_id"], r["qty"],
                    r["unit_price"], r["currency"]) for r in table(lake, "silver.order_lines"))
    assert lines == sorted((*key, n, item["product_id"], item["qty"], item["unit_price"], row["currency"])
                           for key, row in chosen.items() for n, item in enumerate(row["items"], start=1))


def test_out_of_order_and_late_statuses_never_regress_an_order(
        spark: SparkSession, empty_spark_lake: SparkLake, tmp_path: Path) -> None:
    lake, staging = empty_spark_lake, tmp_path / "staging"
    h = timedelta(hours=1)
    two_lines = (("P-00001", 2, "10.50"), ("P-00002", 1, "3.25"))
    # b1, contract v1 (no country): o1 paid before its placed event arrives; o2 through to refunded;
    # o3 placed then cancelled; o4 refunded (its paid event comes late, in b2).
    b1 = [order_event("o1", "paid", T0 + h, country=None, items=two_lines),
          order_event("o2", "placed", T0, country=None), order_event("o2", "paid", T0 + h, country=None),
          order_event("o2", "refunded", T0 + 5 * h, country=None),
          order_event("o3", "placed", T0, country=None), order_event("o3", "cancelled", T0 + 2 * h, country=None),
          order_event("o4", "refunded", T0 + 6 * h, country=None)]
    # b2: o1's placed event (earlier event time, arrives later); o4's late paid; o5 placed and paid in the
    # same second (rank decides); o2's placed re-sent (a duplicate across batches, silver keeps b1's).
    b2 = [order_event("o1", "placed", T0, ingested_after=10 * h, items=two_lines, country="FR"),
          order_event("o4", "paid", T0 + 2 * h, ingested_after=9 * h, country="US"),
          order_event("o5", "paid", T0 + 3 * h, country="DE"), order_event("o5", "placed", T0 + 3 * h, country="DE"),
          order_event("o2", "placed", T0, ingested_after=timedelta(hours=8), country="DE")]
    m1 = write_order_batch(staging, "ob1", b1, v1=True, duplicates_dropped=1, quarantined_by_reason={"TOTAL_MISMATCH": 2})
    m2 = write_order_batch(staging, "ob2", b2, v2=True, quarantined_by_reason={"UNKNOWN_CURRENCY": 1})

    first = silver_merge.run(spark, job_args(staging, "run-1"))

    chosen = model_events(b1 + b2)
    owner = {tuple(r[k] for k in KEY): "ob1" for r in b1} | {
        tuple(r[k] for k in KEY): "ob2" for r in b2 if tuple(r[k] for k in KEY) not in {tuple(x[k] for k in KEY) for x in b1}}
    check_events_and_lines(lake, chosen, owner)
    expected = model_orders(list(chosen.values()))
    assert silver_orders(lake) == expected
    assert {o: s["status"] for o, s in expected.items()} == {
        "o1": "paid", "o2": "refunded", "o3": "cancelled", "o4": "refunded", "o5": "paid"}
    # o2's DE copy was a duplicate of a v1 event: no country; o1's comes from its late placed event
    assert expected["o1"]["country"] == "FR" and expected["o2"]["country"] is None
    ledger = {r["batch_id"]: r for r in table(lake, "ops.merged_batches")}
    assert {b: (r["received"], r["clean"], r["quarantined"], r["duplicates"]) for b, r in ledger.items()} == {
        "ob1": (m1["received"], 7, 2, 1), "ob2": (m2["received"], 4, 1, 1)}
    assert all(r["received"] == r["clean"] + r["quarantined"] + r["duplicates"] for r in ledger.values())
    assert first["sources"]["orders"]["clean"] == 11 and first["clean"] == 11
    assert json.loads(ledger["ob1"]["quarantined_by_reason"]) == {"TOTAL_MISMATCH": 2}
    assert sorted((r["batch_id"], r["reason"], r["sequence_number"]) for r in table(lake, "ops.quarantine")) == sorted(
        (b, r["reason"], r["sequence_number"]) for b, q in (("ob1", {"TOTAL_MISMATCH": 2}), ("ob2", {"UNKNOWN_CURRENCY": 1}))
        for r in quarantine_rows(b, q, orders.SOURCE))

    # run 2 (contract v3, with sessions): o3 refunded after its cancellation; o1's paid re-sent with an earlier
    # copy (silver keeps its first merged copy, without a session); o2 gets a stale placed event from before
    # everything (no regression of its status, but the only event naming its session).
    b3 = [order_event("o3", "refunded", T0 + 7 * h, country="NL", session_id="s-3"),
          order_event("o1", "paid", T0 + h, ingested_after=-timedelta(seconds=1), items=two_lines, country="FR",
                      session_id="s-1"),
          order_event("o2", "placed", T0 - 2 * h, ingested_after=20 * h, country="DE", session_id="s-2")]
    m3 = write_order_batch(staging, "ob3", b3)
    second = silver_merge.run(spark, job_args(staging, "run-2"))

    chosen |= {k: v for k, v in model_events(b3).items() if k not in chosen}
    owner |= {tuple(r[k] for k in KEY): "ob3" for r in (b3[0], b3[2])}
    check_events_and_lines(lake, chosen, owner)
    expected = model_orders(list(chosen.values()))
    assert silver_orders(lake) == expected
    assert expected["o3"]["status"] == "refunded" and expected["o2"]["status"] == "refunded"
    assert expected["o2"]["placed_at"] == T0 - 2 * h
    assert {o: s["session_id"] for o, s in expected.items()} == {"o1": None, "o2": "s-2", "o3": "s-3", "o4": None,
                                                                 "o5": None}
    assert (second["received"], second["clean"], second["duplicates"]) == (m3["received"], 2, 1)

    before = {name: sorted(map(repr, table(lake, name))) for name in
              ("silver.order_events", "silver.order_lines", "silver.orders", "ops.quarantine", "ops.merged_batches")}
    again = silver_merge.run(spark, job_args(staging, "run-3"))
    assert again["batches"] == 0
    assert {name: sorted(map(repr, table(lake, name))) for name in before} == before
