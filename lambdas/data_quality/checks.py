"""The data-quality checks: each is one Athena SQL statement returning one row of numbers, and a rule
that judges that row. The same SQL runs on Athena in AWS and on DuckDB locally (engines.py).

Rates and counts are judged here, not in SQL, so a result row can say what was measured, against
which limit, in words an operator can act on (docs/runbooks/quality-failure.md has each check's SQL
to list the offending rows).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from lambdas.data_quality.thresholds import Thresholds

Row = Sequence[float | None]
LEDGER = ("received", "clean", "quarantined", "duplicates")
# Silver tables and their keys (iceberg_tables/specs.py identifier fields).
KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("silver.events", ("event_id",)),
    ("silver.order_events", ("order_id", "event_type", "event_time")),
    ("silver.orders", ("order_id",)),
    ("silver.products", ("product_id", "valid_from")),
    ("silver.fx_rates", ("rate_date", "currency")),
)
CLICKSTREAM = "clickstream"


@dataclass(frozen=True)
class Result:
    check_name: str
    table_name: str
    passed: bool
    observed: float | None
    threshold: float | None
    message: str

    @property
    def label(self) -> str:
        return f"{self.check_name}({self.table_name})"


@dataclass(frozen=True)
class Check:
    name: str
    table: str
    sql: str
    judge: Callable[[Row], tuple[bool, float | None, float | None, str]]

    def result(self, row: Row) -> Result:
        passed, observed, threshold, message = self.judge(row)
        return Result(self.name, self.table, passed, observed, threshold, message)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _n(value: float | None) -> int:
    return int(value or 0)


def _at_most(limit: int, what: str, of: str) -> Callable[[Row], tuple[bool, float | None, float | None, str]]:
    """Row (bad, total): at most `limit` bad ones."""
    def judge(row: Row) -> tuple[bool, float | None, float | None, str]:
        bad, total = _n(row[0]), _n(row[1])
        return bad <= limit, float(bad), float(limit), f"{bad} {what} in {total} {of} (limit {limit})"
    return judge


def _rate_at_most(limit: float, what: str, of: str) -> Callable[[Row], tuple[bool, float | None, float | None, str]]:
    """Row (bad, total): bad / total at most `limit`; an empty table has rate 0."""
    def judge(row: Row) -> tuple[bool, float | None, float | None, str]:
        bad, total = _n(row[0]), _n(row[1])
        rate = bad / total if total else 0.0
        return rate <= limit, rate, limit, f"{bad} of {total} {of} {what}: rate {rate:.4f} (limit {limit:.4f})"
    return judge


def unique_keys(table: str, key: Sequence[str]) -> Check:
    columns = ", ".join(key)
    sql = (f"SELECT count_if(n > 1), coalesce(sum(n), 0) FROM "
           f"(SELECT count(*) AS n FROM {table} GROUP BY {columns})")
    return Check("unique_keys", table, sql, _at_most(0, f"duplicated ({columns}) keys", "rows"))


def single_current_version() -> Check:
    sql = ("SELECT count_if(n > 1), count(*) FROM "
           "(SELECT count_if(is_current) AS n FROM silver.products GROUP BY product_id)")
    return Check("single_current_version", "silver.products", sql,
                 _at_most(0, "products with more than one is_current version", "products"))


def ledger_balanced(run_id: str) -> Check:
    """Every batch the run merged: received = clean + quarantined + duplicates."""
    sql = ("SELECT count_if(received <> clean + quarantined + duplicates), count(*) FROM ops.merged_batches "
           f"WHERE run_id = {_literal(run_id)}")
    return Check("ledger_balanced", "ops.merged_batches", sql,
                 _at_most(0, "batches where received <> clean + quarantined + duplicates", "batches of this run"))


# Tables whose rows carry the batch that owns them (first copy wins), so a batch's ledger `clean` is exactly
# their rows with its batch_id: (source, table).
HELD_BY_BATCH: tuple[tuple[str, str], ...] = (("clickstream", "silver.events"), ("orders", "silver.order_events"))


def ledger_held(run_id: str) -> Check:
    """The tables hold what the run's ledger rows say: each stream batch's `clean` rows in silver under its
    batch_id, each batch's `quarantined` rows in ops.quarantine. (The ledger balances by construction;
    this compares it with the data itself.)"""
    held = " UNION ALL ".join(
        f"SELECT '{source}' AS source, batch_id, count(*) AS n FROM {table} WHERE batch_id IN "
        f"(SELECT batch_id FROM b WHERE source = '{source}') GROUP BY batch_id" for source, table in HELD_BY_BATCH)
    sources = ", ".join(f"'{source}'" for source, _ in HELD_BY_BATCH)
    sql = (f"WITH b AS (SELECT source, batch_id, clean, quarantined FROM ops.merged_batches "
           f"WHERE run_id = {_literal(run_id)}), h AS ({held}), "
           "q AS (SELECT source, batch_id, count(*) AS n FROM ops.quarantine WHERE batch_id IN "
           "(SELECT batch_id FROM b) GROUP BY source, batch_id) "
           f"SELECT count_if(b.source IN ({sources}) AND b.clean <> coalesce(h.n, 0)), "
           "count_if(b.quarantined <> coalesce(q.n, 0)), count(*) FROM b "
           "LEFT JOIN h ON b.source = h.source AND b.batch_id = h.batch_id "
           "LEFT JOIN q ON b.source = q.source AND b.batch_id = q.batch_id")

    def judge(row: Row) -> tuple[bool, float | None, float | None, str]:
        clean_off, quarantine_off, batches = _n(row[0]), _n(row[1]), _n(row[2])
        message = (f"run {run_id}: of {batches} batches, {clean_off} hold another number of rows in silver than "
                   f"their ledger's clean count, {quarantine_off} another number in ops.quarantine than their "
                   "quarantined count")
        return clean_off + quarantine_off == 0, float(clean_off + quarantine_off), 0.0, message
    return Check("ledger_held", "ops.merged_batches", sql, judge)


def ledger_matches_run(run_id: str) -> Check:
    """The run's silver_merge row in ops.pipeline_runs holds the sums of the run's ledger rows."""
    sums = ", ".join(f"coalesce(sum({c}), 0) AS {c}" for c in LEDGER)
    maxes = ", ".join(f"max({c}) AS {c}" for c in LEDGER)
    sql = (f"WITH b AS (SELECT {sums} FROM ops.merged_batches WHERE run_id = {_literal(run_id)}), "
           f"r AS (SELECT count(*) AS n, {maxes} FROM ops.pipeline_runs "
           f"WHERE run_id = {_literal(run_id)} AND step = 'silver_merge') "
           f"SELECT {', '.join('b.' + c for c in LEDGER)}, r.n, {', '.join('r.' + c for c in LEDGER)} "
           "FROM b CROSS JOIN r")

    def judge(row: Row) -> tuple[bool, float | None, float | None, str]:
        batches, steps, recorded = row[:4], _n(row[4]), row[5:]
        if steps != 1:
            return False, None, 0.0, f"expected one silver_merge row of run {run_id} in ops.pipeline_runs, found {steps}"
        off = {c: (_n(b), _n(r)) for c, b, r in zip(LEDGER, batches, recorded) if _n(b) != _n(r)}
        gap = float(sum(abs(b - r) for b, r in off.values()))
        if off:
            detail = ", ".join(f"{c} {b} in ops.merged_batches vs {r} in ops.pipeline_runs" for c, (b, r) in off.items())
            return False, gap, 0.0, f"run {run_id}: {detail}"
        counts = ", ".join(f"{c} {_n(b)}" for c, b in zip(LEDGER, batches))
        return True, 0.0, 0.0, f"run {run_id}: silver_merge row equals its batches' sums ({counts})"
    return Check("ledger_matches_run", "ops.pipeline_runs", sql, judge)


def freshness(max_age_minutes: int, now: datetime) -> Check:
    sql = "SELECT to_unixtime(max(event_time)), count(*) FROM silver.events"
    limit = max_age_minutes * 60.0

    def judge(row: Row) -> tuple[bool, float | None, float | None, str]:
        if row[0] is None:
            return False, None, limit, "silver.events is empty: no event has ever arrived"
        age = now.timestamp() - float(row[0])
        return (age <= limit, age,  limit,
                f"newest event_time is {age / 60:.1f} minutes old (limit {max_age_minutes} minutes)")
    return Check("freshness", "silver.events", sql, judge)


def null_user_agent(run_id: str, limit: float) -> Check:
    """Judged on the events this run merged: a drift in new data shows at once, and Athena scans less."""
    sql = ("SELECT count_if(user_agent IS NULL), count(*) FROM silver.events WHERE batch_id IN "
           f"(SELECT batch_id FROM ops.merged_batches WHERE run_id = {_literal(run_id)} "
           f"AND source = {_literal(CLICKSTREAM)})")
    return Check("null_rate", "silver.events", sql, _rate_at_most(limit, "have no user_agent", "events merged by this run"))


def negative_order_total(limit: float) -> Check:
    sql = "SELECT count_if(total < 0), count(*) FROM silver.orders"
    return Check("out_of_range", "silver.orders", sql, _rate_at_most(limit, "have total < 0", "orders"))


def nonpositive_fx_rate(limit: float) -> Check:
    sql = "SELECT count_if(usd_per_unit <= 0), count(*) FROM silver.fx_rates"
    return Check("out_of_range", "silver.fx_rates", sql, _rate_at_most(limit, "have usd_per_unit <= 0", "rates"))


def unknown_products(limit: float) -> Check:
    """A rate, not zero: an order may name a product before the catalog file that adds it lands."""
    sql = ("SELECT count_if(p.product_id IS NULL), count(*) FROM silver.order_lines l LEFT JOIN "
           "(SELECT DISTINCT product_id FROM silver.products) p ON l.product_id = p.product_id")
    return Check("referential_integrity", "silver.order_lines", sql,
                 _rate_at_most(limit, "name a product_id missing from silver.products", "order lines"))


def all_checks(run_id: str, thresholds: Thresholds, now: datetime) -> list[Check]:
    """Every check of a batch run, in the order they are reported."""
    return [
        ledger_balanced(run_id),
        ledger_held(run_id),
        ledger_matches_run(run_id),
        *(unique_keys(table, key) for table, key in KEYS),
        single_current_version(),
        freshness(thresholds.freshness_max_age_minutes, now),
        null_user_agent(run_id, thresholds.max_null_user_agent_rate),
        negative_order_total(thresholds.max_negative_order_total_rate),
        nonpositive_fx_rate(thresholds.max_nonpositive_fx_rate_rate),
        unknown_products(thresholds.max_unknown_product_rate),
    ]
