"""silver.products (SCD2) on real PySpark + Iceberg, from catalog files loaded by the real file loader: new
versions, an unchanged re-drop (no new version), a moment touched with the same values (a version of its own),
a late file with older updated_at slotting into history, a restated moment, quarantined lines, and daily full
catalogs merged in any order and any grouping into runs; expected histories from a pure-Python model."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

from glue_jobs import silver_merge
from tests.fixtures.spark import SparkLake
from tests.spark.staging import drop_catalog, job_args

pytestmark = pytest.mark.slow
T1 = datetime(2026, 2, 1, 9, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)
ATTRIBUTES = ("name", "category", "price", "currency", "active")
Key = tuple[str, datetime]  # (product_id, valid_from)
Lineage = tuple[str, int]  # (file_id, line_number)


def line(product_id: str, name: str, price: str, updated: datetime, *, category: str = "shoes",
         active: str = "true") -> str:
    return f"{product_id},{name},{category},{price},EUR,{active},{updated.isoformat()}"


def parse(text: str) -> dict[str, Any]:
    product_id, name, category, price, currency, active, updated = text.split(",")
    return {"product_id": product_id, "name": name, "category": category, "price": Decimal(price),
            "currency": currency, "active": active == "true", "valid_from": datetime.fromisoformat(updated)}


def model(drops: list[tuple[str, list[str]]]) -> tuple[list[tuple], dict[Key, set[Lineage]]]:
    """SCD2 rows from every clean line ever merged, in merge order, and the lines stating each version. Every
    distinct (product, updated_at) is a version, holding the values of the line merged last (a restatement is a
    correction), identical neighbours included; valid_to is the next moment. Lineage is any line with those values."""
    values: dict[Key, tuple] = {}
    stated: dict[Key, list[tuple[tuple, Lineage]]] = defaultdict(list)
    for file_id, lines in drops:
        for number, text in enumerate(lines, start=2):
            row = parse(text)
            key = (row["product_id"], row["valid_from"])
            values[key] = tuple(row[a] for a in ATTRIBUTES)
            stated[key].append((values[key], (file_id, number)))
    rows = []
    for product_id, start in sorted(values):
        end = min((s for p, s in values if p == product_id and s > start), default=None)
        rows.append((product_id, *values[(product_id, start)], start, end, end is None))
    return rows, {key: {where for v, where in stated[key] if v == values[key]} for key in values}


def silver_rows(lake: SparkLake) -> list[dict[str, Any]]:
    return lake.catalog.load_table("silver.products").scan().to_arrow().to_pylist()


def silver(lake: SparkLake) -> list[tuple]:
    """silver.products' history, lineage aside: (product_id, *ATTRIBUTES, valid_from, valid_to, is_current)."""
    return [(r["product_id"], *(r[a] for a in ATTRIBUTES), r["valid_from"], r["valid_to"], r["is_current"])
            for r in sorted(silver_rows(lake), key=lambda r: (r["product_id"], r["valid_from"]))]


def assert_as_modelled(lake: SparkLake, drops: list[tuple[str, list[str]]]) -> None:
    rows, stated = model(drops)
    assert silver(lake) == rows
    lineage = {(r["product_id"], r["valid_from"]): (r["file_id"], r["line_number"]) for r in silver_rows(lake)}
    assert all(where in stated[key] for key, where in lineage.items()), lineage


def ledger(lake: SparkLake) -> dict[str, tuple]:
    return {r["batch_id"]: (r["received"], r["clean"], r["quarantined"], r["duplicates"])
            for r in lake.catalog.load_table("ops.merged_batches").scan().to_arrow().to_pylist()}


def test_catalog_history_with_a_late_older_file_and_an_unchanged_re_drop(
        spark: SparkSession, empty_spark_lake: SparkLake, tmp_path: Path) -> None:
    lake, staging = empty_spark_lake, tmp_path / "staging"
    a_lines = [line("P-00001", "Trail shoe", "10.00", T1), line("P-00002", "Rain jacket", "80.00", T1, category="jackets"),
               line("P-00003", "Tote", "25.00", T1, category="bags")]
    a = drop_catalog(staging, "a.csv", [*a_lines, "P-00004,Broken,shoes,not-a-price,EUR,true,2026-02-01T09:00:00+00:00"],
                     ingested_at=T1 + DAY)
    silver_merge.run(spark, job_args(staging, "run-1"))
    drops = [(a["file_id"], a_lines)]
    assert_as_modelled(lake, drops)
    [bad] = lake.catalog.load_table("ops.quarantine").scan().to_arrow().to_pylist()
    assert (bad["source"], bad["batch_id"], bad["reason"], bad["shard"]) == ("products", a["file_id"], "BAD_PRICE", None)
    assert bad["message"].startswith(f"line 5 of {a['source_uri']}: ") and bad["raw_payload"].startswith(b"P-00004,")

    # run 2: P-00001 gets a new price; P-00002 restated unchanged, its updated_at too (no new version); P-00003
    # touched in the catalog (a new updated_at) with the same values: a version of its own; a new product.
    b_lines = [line("P-00001", "Trail shoe", "12.00", T1 + 10 * DAY), line("P-00002", "Rain jacket", "80.00",
                                                                            T1, category="jackets"),
               line("P-00003", "Tote", "25.00", T1 + 10 * DAY, category="bags"), line("P-00005", "Mug", "6.00",
                                                                                     T1 + 10 * DAY, category="kitchen")]
    b = drop_catalog(staging, "b.csv", b_lines, ingested_at=T1 + 11 * DAY)
    silver_merge.run(spark, job_args(staging, "run-2"))
    drops.append((b["file_id"], b_lines))
    assert_as_modelled(lake, drops)
    assert [r[0] for r in silver(lake)].count("P-00002") == 1  # unchanged: no new version
    assert [(r[6], r[7]) for r in silver(lake) if r[0] == "P-00003"] == [(T1, T1 + 10 * DAY), (T1 + 10 * DAY, None)]

    # run 3: a late file with OLDER updated_at values: P-00001's price of day 5 slots between its versions;
    # P-00005 existed earlier under another name.
    c_lines = [line("P-00001", "Trail shoe", "11.00", T1 + 5 * DAY), line("P-00005", "Cup", "6.00", T1 + 2 * DAY,
                                                                           category="kitchen")]
    c = drop_catalog(staging, "c.csv", c_lines, ingested_at=T1 + 12 * DAY)
    # and, in the same run, a file restating P-00002's moment with a new price (a correction)
    d_lines = [line("P-00002", "Rain jacket", "85.00", T1, category="jackets")]
    d = drop_catalog(staging, "d.csv", d_lines, ingested_at=T1 + 13 * DAY)
    result = silver_merge.run(spark, job_args(staging, "run-3"))
    drops += [(c["file_id"], c_lines), (d["file_id"], d_lines)]
    assert_as_modelled(lake, drops)
    p1 = [r for r in silver(lake) if r[0] == "P-00001"]
    assert [(r[3], r[6], r[7]) for r in p1] == [(Decimal("10.00"), T1, T1 + 5 * DAY),
                                                (Decimal("11.00"), T1 + 5 * DAY, T1 + 10 * DAY),
                                                (Decimal("12.00"), T1 + 10 * DAY, None)]
    assert (result["sources"]["products"]["batches"], result["clean"]) == (2, 3)
    assert ledger(lake) == {a["file_id"]: (4, 3, 1, 0), b["file_id"]: (4, 4, 0, 0),
                            c["file_id"]: (2, 2, 0, 0), d["file_id"]: (1, 1, 0, 0)}

    # the same bytes dropped again are the same batch: nothing pending, nothing changes
    before = sorted(silver_rows(lake), key=lambda r: (r["product_id"], r["valid_from"]))
    drop_catalog(staging, "b-again.csv", b_lines, ingested_at=T1 + 20 * DAY)
    again = silver_merge.run(spark, job_args(staging, "run-4"))
    assert again["batches"] == 0
    assert sorted(silver_rows(lake), key=lambda r: (r["product_id"], r["valid_from"])) == before


# A daily full catalog: every file lists every product, and a row's updated_at moves only when the catalog
# changed it. P-00001's price goes 10 -> 12 -> 10 (the issue's case); P-00003 goes off sale and back; P-00004 is
# new on day 2 and renamed on day 4; P-00005 is touched on day 3 with the same values; P-00002 never changes.
D = [T1 + n * DAY for n in range(5)]  # D[0]: before the first file; D[n]: day n's changes
DAILY = {
    1: [line("P-00001", "Trail shoe", "10.00", D[1]), line("P-00002", "Rain jacket", "80.00", D[0], category="jackets"),
        line("P-00003", "Tote", "25.00", D[0], category="bags"),
        line("P-00005", "Kettle", "30.00", D[0], category="kitchen")],
    2: [line("P-00001", "Trail shoe", "12.00", D[2]), line("P-00002", "Rain jacket", "80.00", D[0], category="jackets"),
        line("P-00003", "Tote", "25.00", D[2], category="bags", active="false"),
        line("P-00004", "Mug", "6.00", D[2], category="kitchen"),
        line("P-00005", "Kettle", "30.00", D[0], category="kitchen")],
    3: [line("P-00001", "Trail shoe", "10.00", D[3]), line("P-00002", "Rain jacket", "80.00", D[0], category="jackets"),
        line("P-00003", "Tote", "25.00", D[2], category="bags", active="false"),
        line("P-00004", "Mug", "6.00", D[2], category="kitchen"),
        line("P-00005", "Kettle", "30.00", D[3], category="kitchen")],
    4: [line("P-00001", "Trail shoe", "10.00", D[3]), line("P-00002", "Rain jacket", "80.00", D[0], category="jackets"),
        line("P-00003", "Tote", "25.00", D[4], category="bags"),
        line("P-00004", "Cup", "6.00", D[4], category="kitchen"),
        line("P-00005", "Kettle", "30.00", D[3], category="kitchen")],
}


@pytest.mark.parametrize("runs", [
    pytest.param([[1], [2], [3], [4]], id="in-order-a-run-each"),
    pytest.param([[4], [1], [3], [2]], id="shuffled-a-run-each"),  # days 1, 3 and 4 all merged before day 2
    pytest.param([[1, 4], [2, 3]], id="first-and-last-day-then-the-middle"),
    pytest.param([[3, 1, 4, 2]], id="shuffled-in-one-run"),
])
def test_daily_catalogs_in_any_order_give_the_same_history(
        spark: SparkSession, empty_spark_lake: SparkLake, tmp_path: Path, runs: list[list[int]]) -> None:
    """Files arrive in the order `runs` lists them (an hour apart, after the last day), each list merged by one
    run: silver.products ends as the model says, which does not depend on the order."""
    lake, staging = empty_spark_lake, tmp_path / "staging"
    arrivals = [day for run in runs for day in run]
    file_ids = {}
    for n, run in enumerate(runs):
        for day in run:
            arrived = D[4] + (arrivals.index(day) + 1) * timedelta(hours=1)
            file_ids[day] = drop_catalog(staging, f"catalog-day-{day}.csv", DAILY[day], ingested_at=arrived)["file_id"]
        silver_merge.run(spark, job_args(staging, f"run-{n}"))

    assert_as_modelled(lake, [(file_ids[day], DAILY[day]) for day in arrivals])
    assert model([(file_ids[day], DAILY[day]) for day in sorted(DAILY)])[0] == silver(lake)  # the order is moot
    p1 = [(r[3], r[6], r[7]) for r in silver(lake) if r[0] == "P-00001"]
    assert p1 == [(Decimal("10.00"), D[1], D[2]), (Decimal("12.00"), D[2], D[3]), (Decimal("10.00"), D[3], None)]
    assert ledger(lake) == {file_ids[day]: (len(lines),) * 2 + (0, 0) for day, lines in DAILY.items()}
