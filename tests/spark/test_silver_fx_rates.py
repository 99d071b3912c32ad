"""silver.fx_rates on real PySpark + Iceberg, from days written by the real FX connector writer: gaps carried
forward and said so, a late published rate replacing its carried row and re-deriving the days after it, a
re-fetched day (a new version of its batch), the quarantine; expected rows from a pure-Python model."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from glue_jobs import silver_merge
from tests.fixtures.spark import SparkLake
from tests.spark.staging import job_args, write_fx_day

pytestmark = pytest.mark.slow
D1 = date(2026, 3, 1)
Published = dict[tuple[date, str], float]


def day(n: int) -> date:
    return D1 + timedelta(days=n - 1)


def model(published: Published) -> list[tuple]:
    """Per currency, every day from its first rate to the newest day of any: the rate, else the last earlier."""
    last = max(d for d, _ in published)
    rows = []
    for currency in sorted({c for _, c in published}):
        current, d = None, min(d for d, c in published if c == currency)
        while d <= last:
            if (d, currency) in published:
                current = d
            rows.append((d, currency, published[(current, currency)], current, current != d, f"rate_date={current}"))
            d += timedelta(days=1)
    return sorted(rows)


def silver(lake: SparkLake) -> list[tuple]:
    return sorted((r["rate_date"], r["currency"], r["usd_per_unit"], r["published_date"], r["carried_forward"],
                   r["batch_id"]) for r in lake.catalog.load_table("silver.fx_rates").scan().to_arrow().to_pylist())


def quarantine(lake: SparkLake) -> list[tuple]:
    return sorted((r["batch_id"], r["reason"], r["message"]) for r in
                  lake.catalog.load_table("ops.quarantine").scan().to_arrow().to_pylist())


def test_gaps_are_carried_forward_and_repaired_by_late_rates(
        spark: SparkSession, empty_spark_lake: SparkLake, tmp_path: Path) -> None:
    lake, staging = empty_spark_lake, tmp_path / "staging"
    published: Published = {}

    def fetched(n: int, rates: dict[str, float], **kwargs) -> dict:
        for d, c in [k for k in published if k[0] == day(n)]:
            if c in rates:
                del published[(d, c)]
        published.update({(day(n), c): v for c, v in rates.items()})
        return write_fx_day(staging, day(n), rates, **kwargs)

    # run 1: day 2 is missing at the API; on day 3 the GBP entry is bad
    fetched(1, {"EUR": 1.08, "GBP": 1.27})
    missing = fetched(2, {})
    third = fetched(3, {"EUR": 1.09}, bad={"GBP": "BAD_RATE"})
    first = silver_merge.run(spark, job_args(staging, "run-1"))
    assert silver(lake) == model(published)
    assert ("rate_date=2026-03-02", "MISSING_DAY", "page 1: 2026-03-02: no rates (HTTP 404)") in quarantine(lake)
    assert ("rate_date=2026-03-03", "BAD_RATE", "page 1: GBP: bad_rate") in quarantine(lake)
    gbp3 = next(r for r in silver(lake) if r[:2] == (day(3), "GBP"))
    assert gbp3[2:5] == (1.27, day(1), True)
    assert (first["sources"]["fx_rates"]["received"], first["clean"], first["quarantined"]) == (
        2 + missing["received"] + third["received"], 3, 2)

    # run 2: day 2 re-fetched (a new version of its batch) with both rates; day 4 brings JPY only
    fetched(2, {"EUR": 1.085, "GBP": 1.26})
    fetched(4, {"JPY": 0.0067})
    silver_merge.run(spark, job_args(staging, "run-2"))
    assert silver(lake) == model(published)
    # GBP's day 3 now carries day 2's rate, and day 4 too; the MISSING_DAY row left with its version
    assert [r[2:4] for r in silver(lake) if r[1] == "GBP" and r[0] >= day(3)] == [(1.26, day(2))] * 2
    assert not [q for q in quarantine(lake) if q[0] == "rate_date=2026-03-02"]

    # run 3: day 3 re-fetched, GBP published now: it replaces the carried row, day 4 carries it on
    fetched(3, {"EUR": 1.09, "GBP": 1.25})
    silver_merge.run(spark, job_args(staging, "run-3"))
    assert silver(lake) == model(published)
    assert [r[2:5] for r in silver(lake) if r[1] == "GBP" and r[0] >= day(3)] == [(1.25, day(3), False),
                                                                                (1.25, day(3), True)]
    ledger = lake.catalog.load_table("ops.merged_batches").scan().to_arrow().to_pylist()
    assert len(ledger) == 6 and all(r["received"] == r["clean"] + r["quarantined"] + r["duplicates"] for r in ledger)

    snapshots = spark.table("lake.silver.fx_rates.snapshots").count()
    assert silver_merge.run(spark, job_args(staging, "run-4"))["batches"] == 0
    assert silver(lake) == model(published) and spark.table("lake.silver.fx_rates.snapshots").count() == snapshots
