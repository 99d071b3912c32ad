"""silver.products (SCD2) on real PySpark + Iceberg, from catalog files loaded by the real file loader: new
versions, an unchanged re-drop (no new version), a late file with older updated_at slotting into history,
a restated moment, quarantined lines; expected histories from a pure-Python model."""
from __future__ import annotations

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


def line(product_id: str, name: str, price: str, updated: datetime, *, category: str = "shoes",
         active: str = "true") -> str:
    return f"{product_id},{name},{category},{price},EUR,{active},{updated.isoformat()}"


def parse(text: str) -> dict[str, Any]:
    product_id, name, category, price, currency, active, updated = text.split(",")
    return {"product_id": product_id, "name": name, "category": category, "price": Decimal(price),
            "currency": currency, "active": active == "true", "valid_from": datetime.fromisoformat(updated)}


def model(drops: list[tuple[str, list[str]]]) -> list[tuple]:
    """SCD2 rows from every clean line ever merged, in merge order: per product and moment the line merged
    last; then sorted by time, identical neighbours collapsed into the earlier, valid_to the next's start."""
    moments: dict[tuple[str, datetime], tuple[dict[str, Any], str, int]] = {}
    for file_id, lines in drops:
        for number, text in enumerate(lines, start=2):
            row = parse(text)
            moments[(row["product_id"], row["valid_from"])] = (row, file_id, number)
    rows = []
    for product_id in sorted({p for p, _ in moments}):
        history = [moments[k] for k in sorted(k for k in moments if k[0] == product_id)]
        kept = [v for i, v in enumerate(history)
                if i == 0 or [v[0][a] for a in ATTRIBUTES] != [history[i - 1][0][a] for a in ATTRIBUTES]]
        for i, (row, file_id, number) in enumerate(kept):
            valid_to = kept[i + 1][0]["valid_from"] if i + 1 < len(kept) else None
            rows.append((product_id, *(row[a] for a in ATTRIBUTES), row["valid_from"], valid_to, valid_to is None,
                         file_id, number))
    return rows


def silver(lake: SparkLake) -> list[tuple]:
    return sorted((r["product_id"], *(r[a] for a in ATTRIBUTES), r["valid_from"], r["valid_to"], r["is_current"],
                   r["file_id"], r["line_number"]) for r in lake.catalog.load_table("silver.products").scan().to_arrow().to_pylist())


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
    assert silver(lake) == model(drops)
    [bad] = lake.catalog.load_table("ops.quarantine").scan().to_arrow().to_pylist()
    assert (bad["source"], bad["batch_id"], bad["reason"], bad["shard"]) == ("products", a["file_id"], "BAD_PRICE", None)
    assert bad["message"].startswith(f"line 5 of {a['source_uri']}: ") and bad["raw_payload"].startswith(b"P-00004,")

    # run 2: P-00001 gets a new price; P-00002 and P-00003 restated unchanged (no new version); a new product.
    b_lines = [line("P-00001", "Trail shoe", "12.00", T1 + 10 * DAY), line("P-00002", "Rain jacket", "80.00",
                                                                            T1 + 10 * DAY, category="jackets"),
               line("P-00003", "Tote", "25.00", T1 + 10 * DAY, category="bags"), line("P-00005", "Mug", "6.00",
                                                                                     T1 + 10 * DAY, category="kitchen")]
    b = drop_catalog(staging, "b.csv", b_lines, ingested_at=T1 + 11 * DAY)
    silver_merge.run(spark, job_args(staging, "run-2"))
    drops.append((b["file_id"], b_lines))
    assert silver(lake) == model(drops)
    assert [r[0] for r in silver(lake)].count("P-00002") == 1  # unchanged: no new version

    # run 3: a late file with OLDER updated_at values: P-00001's price of day 5 slots between its versions;
    # P-00005 existed earlier under another name.
    c_lines = [line("P-00001", "Trail shoe", "11.00", T1 + 5 * DAY), line("P-00005", "Cup", "6.00", T1 + 2 * DAY,
                                                                           category="kitchen")]
    c = drop_catalog(staging, "c.csv", c_lines, ingested_at=T1 + 12 * DAY)
    # and, in the same run, a file restating P-00002's day-10 moment with a new price
    d_lines = [line("P-00002", "Rain jacket", "85.00", T1 + 10 * DAY, category="jackets")]
    d = drop_catalog(staging, "d.csv", d_lines, ingested_at=T1 + 13 * DAY)
    result = silver_merge.run(spark, job_args(staging, "run-3"))
    drops += [(c["file_id"], c_lines), (d["file_id"], d_lines)]
    assert silver(lake) == model(drops)
    p1 = [r for r in silver(lake) if r[0] == "P-00001"]
    assert [(r[3], r[6], r[7]) for r in p1] == [(Decimal("10.00"), T1, T1 + 5 * DAY),
                                                (Decimal("11.00"), T1 + 5 * DAY, T1 + 10 * DAY),
                                                (Decimal("12.00"), T1 + 10 * DAY, None)]
    assert (result["sources"]["products"]["batches"], result["clean"]) == (2, 3)
    assert ledger(lake) == {a["file_id"]: (4, 3, 1, 0), b["file_id"]: (4, 4, 0, 0),
                            c["file_id"]: (2, 2, 0, 0), d["file_id"]: (1, 1, 0, 0)}

    # the same bytes dropped again are the same batch: nothing pending, nothing changes
    before = silver(lake)
    drop_catalog(staging, "b-again.csv", b_lines, ingested_at=T1 + 20 * DAY)
    again = silver_merge.run(spark, job_args(staging, "run-4"))
    assert again["batches"] == 0 and silver(lake) == before
