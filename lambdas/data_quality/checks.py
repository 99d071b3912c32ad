"""The data-quality checks: each is one Athena SQL statement returning one row of numbers, and a rule
that judges that row. The same SQL runs on Athena in AWS and on DuckDB locally (engines.py).

Rates and counts are judged here, not in SQL, so a result row can say what was measured, against
which limit, in words an operator can act on (docs/runbooks/quality-failure.md has each check's SQL
to list the offending rows).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from lambdas.data_quality.thresholds import Thresholds

Row = Sequence[float | None]
Judgement = tuple[bool, float | None, float | None, str]  # passed, observed, threshold, message
Judge = Callable[[Row], Judgement]
Unit = tuple[str, int]  # a unit of age: its name and its seconds
MINUTES, HOURS = ("minutes", 60), ("hours", 3600)
DAY_SECONDS = 86400
# Silver tables and their keys (iceberg_tables/specs.py identifier fields).
KEYS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("silver.events", ("event_id",)),
    ("silver.order_events", ("order_id", "event_type", "event_time")),
    ("silver.orders", ("order_id",)),
    ("silver.products", ("product_id", "valid_from")),
    ("silver.fx_rates", ("rate_date", "currency")),
    ("ops.pipeline_runs", ("run_id", "step")),  # a retried step or run record replaces its row
)
CLICKSTREAM = "clickstream"
# Each source (lambdas.contracts.lake_layout.BATCH_SOURCES) and the silver table its batches feed: a source's
# quarantine rate is reported under that table.
SOURCE_TABLES: tuple[tuple[str, str], ...] = (
    ("clickstream", "silver.events"), ("orders", "silver.order_events"), ("products", "silver.products"),
    ("fx_rates", "silver.fx_rates"),
)
# The streams' tables, whose daily volume is judged (by event_time).
VOLUME_TABLES = ("silver.events", "silver.order_events")


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
    judge: Judge

    def result(self, row: Row) -> Result:
        passed, observed, threshold, message = self.judge(row)
        return Result(self.name, self.table, passed, observed, threshold, message)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _n(value: float | None) -> int:
    return int(value or 0)


def _timestamp(at: datetime) -> str:
    """An Athena timestamp literal in UTC, to the second (DuckDB reads it too, through the stand-in)."""
    return f"TIMESTAMP '{at.astimezone(timezone.utc):%Y-%m-%d %H:%M:%S} UTC'"


def _at_most(limit: int, what: str, of: str) -> Judge:
    """Row (bad, total): at most `limit` bad ones."""
    def judge(row: Row) -> Judgement:
        bad, total = _n(row[0]), _n(row[1])
        return bad <= limit, float(bad), float(limit), f"{bad} {what} in {total} {of} (limit {limit})"
    return judge


def _rate_at_most(limit: float, what: str, of: str) -> Judge:
    """Row (bad, total): bad / total at most `limit`; an empty table has rate 0."""
    def judge(row: Row) -> Judgement:
        bad, total = _n(row[0]), _n(row[1])
        rate = bad / total if total else 0.0
        return rate <= limit, rate, limit, f"{bad} of {total} {of} {what}: rate {rate:.4f} (limit {limit:.4f})"
    return judge


def unique_keys(table: str, key: Sequence[str]) -> Check:
    columns = ", ".join(key)
    sql = (f"SELECT count_if(n > 1), coalesce(sum(n), 0) FROM "
           f"(SELECT count(*) AS n FROM {table} GROUP BY {columns})")
    return Check("unique_keys", table, sql, _at_most(0, f"duplicated ({columns}) keys", "rows"))


def staging_merged(run_id: str) -> Check:
    """silver_merge refused no source's staging this run. A refused source (a broken manifest, files that disagree
    with it) waits whole while the others merge (glue_jobs/silver_merge.py); its FAILED `silver_merge:<source>`
    row in ops.pipeline_runs names the batch. One column per source, so the message names the sources."""
    sources = [source for source, _ in SOURCE_TABLES]
    columns = ", ".join(f"count_if(step = {_literal(f'silver_merge:{source}')})" for source in sources)
    sql = (f"SELECT {columns} FROM ops.pipeline_runs WHERE run_id = {_literal(run_id)} "
           "AND step LIKE 'silver_merge:%' AND status = 'FAILED'")

    def judge(row: Row) -> Judgement:
        refused = [source for source, n in zip(sources, row) if _n(n)]
        if not refused:
            return True, 0.0, 0.0, f"run {run_id}: every source's pending staging was merged"
        steps = ", ".join(f"'silver_merge:{source}'" for source in refused)
        return False, float(len(refused)), 0.0, (
            f"run {run_id}: silver_merge refused the staging of {', '.join(refused)} (its batches wait, the other "
            f"sources merged); the batch is named in ops.pipeline_runs WHERE run_id = '{run_id}' AND step IN ({steps})")
    return Check("staging_merged", "ops.pipeline_runs", sql, judge)


def single_current_version() -> Check:
    sql = ("SELECT count_if(n > 1), count(*) FROM "
           "(SELECT count_if(is_current) AS n FROM silver.products GROUP BY product_id)")
    return Check("single_current_version", "silver.products", sql,
                 _at_most(0, "products with more than one is_current version", "products"))


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

    def judge(row: Row) -> Judgement:
        clean_off, quarantine_off, batches = _n(row[0]), _n(row[1]), _n(row[2])
        message = (f"run {run_id}: of {batches} batches, {clean_off} hold another number of rows in silver than "
                   f"their ledger's clean count, {quarantine_off} another number in ops.quarantine than their "
                   "quarantined count")
        return clean_off + quarantine_off == 0, float(clean_off + quarantine_off), 0.0, message
    return Check("ledger_held", "ops.merged_batches", sql, judge)


def quarantine_rate(run_id: str, source: str, table: str, limit: float) -> Check:
    """Of the records the source's batches of this run received, the share quarantined. A producer sending only
    bad records leaves silver as it was, so this rate is what shows it."""
    sql = ("SELECT coalesce(sum(quarantined), 0), coalesce(sum(received), 0) FROM ops.merged_batches "
           f"WHERE run_id = {_literal(run_id)} AND source = {_literal(source)}")
    return Check("quarantine_rate", table, sql,
                 _rate_at_most(limit, "were quarantined", f"{source} records this run merged"))


def _freshness(table: str, newest: str, what: str, max_age: int, unit: Unit, now: datetime,
               if_empty: tuple[bool, str]) -> Check:
    """`newest`: SQL of the table's newest instant in epoch seconds (NULL when empty); at most `max_age` units old."""
    name, seconds = unit
    limit = float(max_age * seconds)

    def judge(row: Row) -> Judgement:
        if row[0] is None:
            passed, message = if_empty
            return passed, None, limit, message
        age = now.timestamp() - float(row[0])
        return age <= limit, age, limit, f"{what} is {age / seconds:.1f} {name} old (limit {max_age} {name})"
    return Check("freshness", table, f"SELECT {newest}, count(*) FROM {table}", judge)


def freshness(max_age_minutes: int, now: datetime) -> Check:
    """silver.events is the lake's heartbeat: empty, it fails (no event ever arriving is what this must catch)."""
    return _freshness("silver.events", "to_unixtime(max(event_time))", "newest event_time", max_age_minutes, MINUTES,
                      now, (False, "silver.events is empty: no event has ever arrived"))


def order_freshness(max_age_minutes: int, now: datetime) -> Check:
    """Empty passes, as the uniqueness checks do: orders have their own producer, which may start later than the
    clickstream's. Once orders have come, their stopping fails."""
    return _freshness("silver.order_events", "to_unixtime(max(event_time))", "newest event_time", max_age_minutes,
                      MINUTES, now, (True, "silver.order_events is empty: no order has arrived yet, so none is late"))


def fx_rate_freshness(max_age_hours: int, now: datetime) -> Check:
    """Rates are daily, and the connector fetches a day once it is over: the age counts from the end of the newest
    rate_date. Empty passes, like orders: the connector's first daily pull may come after the first run."""
    day_end = f"(date_diff('day', DATE '1970-01-01', max(rate_date)) + 1) * {DAY_SECONDS}"
    return _freshness("silver.fx_rates", day_end, "the end of the newest rate_date", max_age_hours, HOURS, now,
                      (True, "silver.fx_rates is empty: the connector has not loaded a day yet"))


def volume(table: str, trailing_days: int, min_ratio: float, now: datetime) -> Check:
    """The events of the last 24 hours against the daily mean of the `trailing_days` days before them, by event_time
    (a replay or a backfill of old days does not count as today's). Judged once the table reaches back that far: a
    young lake has no mean yet. The scan reaches one day further, to see whether events precede the trailing days."""
    day_ago, since = now - timedelta(days=1), now - timedelta(days=trailing_days + 1)
    sql = (f"SELECT count_if(event_time > {_timestamp(day_ago)}), count_if(event_time <= {_timestamp(day_ago)} "
           f"AND event_time > {_timestamp(since)}), to_unixtime(min(event_time)) FROM {table} "
           f"WHERE event_time > {_timestamp(since - timedelta(days=1))}")

    def judge(row: Row) -> Judgement:
        recent, trailing = _n(row[0]), _n(row[1])
        reach = 0.0 if row[2] is None else (day_ago.timestamp() - float(row[2])) / DAY_SECONDS
        if trailing == 0 or reach < trailing_days:
            return True, None, min_ratio, (
                f"not judged yet: {table} holds {trailing} events of the {trailing_days} days before the last "
                f"24 hours and reaches {reach:.1f} days back from them; judged once it reaches {trailing_days} "
                f"({recent} events in the last 24 hours)")
        mean = trailing / trailing_days
        ratio = recent / mean
        return ratio >= min_ratio, ratio, min_ratio, (
            f"{recent} events in the last 24 hours against a daily mean of {mean:.1f} in the {trailing_days} days "
            f"before: ratio {ratio:.4f} (limit {min_ratio:.4f})")
    return Check("volume", table, sql, judge)


def null_user_agent(run_id: str, limit: float) -> Check:
    """Judged on the events this run merged: a drift in new data shows at once, and Athena scans less."""
    sql = ("SELECT count_if(user_agent IS NULL), count(*) FROM silver.events WHERE batch_id IN "
           f"(SELECT batch_id FROM ops.merged_batches WHERE run_id = {_literal(run_id)} "
           f"AND source = {_literal(CLICKSTREAM)})")
    return Check("null_rate", "silver.events", sql,
                 _rate_at_most(limit, "have no user_agent", "events merged by this run"))


def unknown_products(limit: float) -> Check:
    """A rate, not zero: an order may name a product before the catalog file that adds it lands."""
    sql = ("SELECT count_if(p.product_id IS NULL), count(*) FROM silver.order_lines l LEFT JOIN "
           "(SELECT DISTINCT product_id FROM silver.products) p ON l.product_id = p.product_id")
    return Check("referential_integrity", "silver.order_lines", sql,
                 _rate_at_most(limit, "name a product_id missing from silver.products", "order lines"))


def all_checks(run_id: str, thresholds: Thresholds, now: datetime) -> list[Check]:
    """Every check of a batch run, in the order they are reported."""
    return [
        ledger_held(run_id),
        staging_merged(run_id),
        *(quarantine_rate(run_id, source, table, thresholds.max_quarantine_rate[source])
          for source, table in SOURCE_TABLES),
        *(unique_keys(table, key) for table, key in KEYS),
        single_current_version(),
        freshness(thresholds.freshness_max_age_minutes, now),
        order_freshness(thresholds.order_freshness_max_age_minutes, now),
        fx_rate_freshness(thresholds.fx_rate_freshness_max_age_hours, now),
        *(volume(table, thresholds.volume_trailing_days, thresholds.min_volume_ratio, now) for table in VOLUME_TABLES),
        null_user_agent(run_id, thresholds.max_null_user_agent_rate),
        unknown_products(thresholds.max_unknown_product_rate),
    ]
