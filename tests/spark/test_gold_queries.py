"""The example queries of docs/analytics.md (files under docs/queries/) run on the Athena stand-in over a
gold built by gold_build, and return what a pure-Python reading of tests.ground_truth's gold gives."""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from pyspark.sql import SparkSession

from cdk_app.config import PROJECT_ROOT
from glue_jobs import gold_build
from glue_jobs.common import GOLD_DAILY_KPIS, GOLD_FUNNEL_DAILY, GOLD_PRODUCT_SALES_DAILY
from lakehouse.analytics.athena import query
from lakehouse.lake.spark import get_spark
from tests import ground_truth as truth
from tests.fixtures.spark import SparkLake, empty_tables
from tests.spark.gold_silver import seeded

pytestmark = pytest.mark.slow
QUERIES = PROJECT_ROOT / "docs" / "queries"
DOC = (PROJECT_ROOT / "docs" / "analytics.md").read_text()


def revenue_by_country(gold: dict[str, truth.Gold]) -> list[tuple[Any, ...]]:
    by_country: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (_, country), row in gold[GOLD_DAILY_KPIS].items():
        by_country[country].append(row)
    result = []
    for country, rows in sorted(by_country.items()):
        known = [r["revenue_usd"] for r in rows if r["revenue_usd"] is not None]
        result.append((country, sum(r["paid_orders"] for r in rows), sum(r["sessions"] for r in rows),
                       round(sum(known), 2) if known else None, len(rows) - len(known)))
    return result


def funnel_by_day(gold: dict[str, truth.Gold]) -> list[tuple[Any, ...]]:
    columns = ("view_sessions", "product_view_sessions", "add_to_cart_sessions", "checkout_sessions", "paid_orders")
    by_day: dict[Any, list[int]] = defaultdict(lambda: [0] * len(columns))
    for (day, _), row in gold[GOLD_FUNNEL_DAILY].items():
        by_day[day] = [total + row[c] for total, c in zip(by_day[day], columns)]
    return [(day, *sums, round(100.0 * sums[3] / sums[0], 1) if sums[0] else None)
            for day, sums in sorted(by_day.items())]


def top_products(gold: dict[str, truth.Gold]) -> list[tuple[Any, ...]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (_, product), row in gold[GOLD_PRODUCT_SALES_DAILY].items():
        t = totals[product]
        t[0] += row["units_sold"] - row["units_refunded"]
        t[1] += row["orders"]
        t[2] += row["name"] is None
    return sorted(((p, *t) for p, t in totals.items()), key=lambda r: (-r[1], r[0]))[:5]


EXPECTED: dict[str, Callable[[dict[str, truth.Gold]], list[tuple[Any, ...]]]] = {
    "revenue_by_country.sql": revenue_by_country,
    "funnel_by_day.sql": funnel_by_day,
    "top_products.sql": top_products,
}


def test_every_query_file_is_shown_in_the_doc_and_every_sql_example_there_is_a_file() -> None:
    section = DOC.split("## The gold tables", 1)[1].split("\n## ", 1)[0]
    shown = re.findall(r"`docs/queries/([\w.]+)`:\n\n```sql\n(.*?)```", section, flags=re.S)
    assert {name: sql for name, sql in shown} == {p.name: p.read_text() for p in QUERIES.glob("*.sql")}
    assert section.count("```sql") == len(shown) and set(EXPECTED) == {name for name, _ in shown}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_query_equals_a_python_reading_of_the_ground_truth(
        spark: SparkSession, built_gold: tuple[SparkLake, dict[str, truth.Gold]], name: str) -> None:
    lake, expected = built_gold
    _, rows = query(lake.catalog, (QUERIES / name).read_text())

    want = EXPECTED[name](expected)
    assert rows and len(rows) == len(want)
    for got, row in zip(rows, want):  # rounded sums of doubles summed in another order: within a cent
        assert got == pytest.approx(row, abs=0.011), name


@pytest.fixture(scope="module")
def built_gold(spark_session: SparkSession, spark_lake: SparkLake) -> tuple[SparkLake, dict[str, truth.Gold]]:
    """Gold built once from the seeded silver of tests.spark.gold_silver; its expected tables."""
    spark = get_spark(spark_lake.warehouse, spark_lake.catalog_db)
    empty_tables(spark)
    silver = seeded(spark_lake)
    gold_build.run(spark, {"run_id": "run-queries"})
    return spark_lake, silver.expected()
