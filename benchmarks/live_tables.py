"""The live table after a day of commits: what planning a query costs, without and with the maintenance
(docs/decisions/0503).

A simulated stream: one commit every COMMIT_EVERY of simulated time, each registering one small staging file
(ROWS_PER_FILE events, the cleaner's clean columns, no field ids: what the committer registers), in a live.events
of a fresh local lake (sqlite catalog, pyiceberg), with the committer's own `commit`. The batch merges every
BATCH_EVERY (the prod schedule): each run records every batch registered before it in the ledger. Two tables get
the same commits:
- without maintenance: the commits only;
- with it: `maintenance.maintain` every MAINTAIN_EVERY (the schedule of cdk_app/live_committer.py), at the
  simulated time (snapshots are stamped with it, so the trim's margin and the expiry count in it).
Every MEASURE_EVERY of simulated time, timed (the best of ROUNDS): loading the table (its metadata file), pyiceberg's
`scan().plan_files()` and a COUNT(*) over fresh.events through the Athena stand-in (DuckDB's iceberg_scan reads
the same manifests and files Athena would). The default run simulates BARE_HOURS of the unmaintained table and
MAINTAINED_HOURS of the maintained one (8 minutes here, on a 2-core machine shared with other runs; LIVE_BENCH_HOURS and
LIVE_BENCH_MAINTAINED_HOURS change them); a full day (8,640 commits) is extrapolated from the unmaintained table's
growth per commit, and labelled so.
"""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pyiceberg
import pyiceberg.table.snapshots
from pyiceberg.catalog import Catalog
from pyiceberg.io.pyarrow import schema_to_pyarrow

from iceberg_tables.catalogs import local_catalog
from iceberg_tables.migrator import migrate
from iceberg_tables.specs import LIVE_EVENTS, SILVER_EVENTS
from iceberg_tables.views import FRESH_EVENTS
from lakehouse.analytics.athena import query
from lambdas.live_committer import maintenance
from lambdas.live_committer.committer import Staged, commit

COMMIT_EVERY = timedelta(seconds=10)  # the cadence: 8,640 commits a day
DAY_COMMITS = int(timedelta(days=1) / COMMIT_EVERY)
# The default run's share of the day: the unmaintained table's commits get slower with every one (most of the run's
# time), the maintained table's do not, and it needs more than the snapshots' retention to show the expiry.
BARE_HOURS = float(os.environ.get("LIVE_BENCH_HOURS", "1"))
MAINTAINED_HOURS = float(os.environ.get("LIVE_BENCH_MAINTAINED_HOURS", "2"))
MEASURE_EVERY = timedelta(minutes=15)
BATCH_EVERY = timedelta(hours=1)
BATCH_AT = timedelta(minutes=10)  # prod's batch runs at ten past each hour (cdk.json batch_schedule)
MAINTAIN_EVERY = timedelta(minutes=15)
ROWS_PER_FILE = 50
ROUNDS = 3
LIVE = LIVE_EVENTS.full_name


@dataclass(frozen=True)
class Point:
    """One table at one simulated hour."""
    maintained: bool
    hours: float
    commits: int
    snapshots: int
    data_files: int
    manifests: int
    rows: int
    metadata_kb: int
    load_s: float
    plan_s: float
    count_s: float
    commit_s: float  # the committer's commits since the last point, on average: what a commit costs by then


def staging_file(folder: Path, number: int, schema: pa.Schema, at: datetime) -> Staged:
    """A small clean staging file as the cleaner writes it (no field ids)."""
    rows = pa.Table.from_pylist([{
        "event_id": f"e-{number}-{i}", "event_type": "page_view", "event_time": at, "user_id": f"u{i % 97}",
        "session_id": f"s{number % 500}", "page_url": "https://shop.example/p", "product_id": None,
        "user_agent": "bench", "ip": None, "country": "DE", "event_time_offset": "+00:00", "ingested_at": at,
    } for i in range(ROWS_PER_FILE)], schema=schema)
    path = folder / f"{at:%Y-%m-%d-%H}" / f"batch-{number:06d}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, path)
    return Staged(f"batch-{number:06d}", path.as_uri())


def best_of(call: Callable[[], Any]) -> tuple[float, Any]:
    spent, found = [], None
    for _ in range(ROUNDS):
        started = time.perf_counter()
        found = call()
        spent.append(time.perf_counter() - started)
    return min(spent), found


def fresh_count(catalog: Catalog) -> int:
    return int(query(catalog, f"SELECT count(*) FROM {FRESH_EVENTS.full_name}")[1][0][0])


def measure(catalog: Catalog, maintained: bool, hours: float, commits: int, commit_s: float) -> Point:
    load_s, table = best_of(lambda: catalog.load_table(LIVE))
    plan_s, tasks = best_of(lambda: list(table.scan().plan_files()))
    count_s, rows = best_of(lambda: fresh_count(catalog))
    snapshot = table.current_snapshot()
    manifests = len(snapshot.manifests(table.io)) if snapshot else 0
    metadata_kb = Path(table.metadata_location.removeprefix("file://")).stat().st_size // 1024
    return Point(maintained, hours, commits, len(table.metadata.snapshots), len(tasks), manifests, rows,
                 metadata_kb, load_s, plan_s, count_s, commit_s)


def lake(root: Path) -> Catalog:
    catalog = local_catalog(root / "warehouse", root / "catalog.db")
    migrate(catalog, (SILVER_EVENTS, LIVE_EVENTS))  # fresh.events reads both; silver stays empty here
    return catalog


def simulate(root: Path, hours: float, maintained: bool) -> list[Point]:
    catalog = lake(root)
    schema = schema_to_pyarrow(catalog.load_table(LIVE).schema(), include_field_ids=False)
    start = datetime.now(timezone.utc)
    clock = SimpleNamespace(now=start)
    # a snapshot's time is the simulated one, so that the expiry sees the simulated hours
    pyiceberg.table.snapshots.time = SimpleNamespace(time=lambda: clock.now.timestamp())  # type: ignore[attr-defined]
    merged: dict[str, datetime] = {}
    registered: list[str] = []
    points: list[Point] = []
    spent: list[float] = []
    for number in range(int(timedelta(hours=hours) / COMMIT_EVERY)):
        now = clock.now = start + (number + 1) * COMMIT_EVERY
        staged = staging_file(root / "staging", number, schema, now)
        started = time.perf_counter()
        commit(catalog.load_table(LIVE), [staged])
        spent.append(time.perf_counter() - started)
        registered.append(staged.batch_id)
        elapsed = now - start
        if elapsed % BATCH_EVERY == BATCH_AT:  # the batch run: everything registered so far is merged
            merged.update({batch: now for batch in registered if batch not in merged})
        if maintained and elapsed % MAINTAIN_EVERY == timedelta(0):
            maintenance.maintain(catalog.load_table(LIVE), lambda: merged, now)
        if elapsed % MEASURE_EVERY == timedelta(0):
            points.append(measure(catalog, maintained, elapsed / timedelta(hours=1), number + 1,
                                  sum(spent) / len(spent)))
            spent.clear()
            print(points[-1], flush=True)
    return points


def run(bare_hours: float = BARE_HOURS, maintained_hours: float = MAINTAINED_HOURS) -> list[Point]:
    points = []
    try:
        for maintained, hours in ((False, bare_hours), (True, maintained_hours)):
            with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
                points += simulate(Path(tmp), hours, maintained)
    finally:
        pyiceberg.table.snapshots.time = time  # type: ignore[attr-defined]
    return points


def markdown(points: list[Point]) -> str:
    bare = [p for p in points if not p.maintained]
    kept = [p for p in points if p.maintained]
    lines = [
        "## The live tables after a day of commits (planning, without and with the maintenance)",
        "",
        f"A simulated stream: one commit every {COMMIT_EVERY.seconds} s (a day is {DAY_COMMITS:,} commits), each "
        f"registering one staging file of {ROWS_PER_FILE} events with the committer's `commit`; the batch merges "
        f"every {BATCH_EVERY.seconds // 3600} h at {BATCH_AT.seconds // 60} past (prod's schedule). The same "
        f"commits go to two tables: one never maintained, one maintained every {MAINTAIN_EVERY.seconds // 60} "
        f"minutes (`lambdas/live_committer/maintenance.py`: the trim {maintenance.TRIM_MARGIN.seconds // 60} "
        "minutes after the merge, compaction, "
        "expiry, orphans) at the simulated time. Every "
        f"{MEASURE_EVERY.seconds // 60} simulated minutes, the best of "
        f"{ROUNDS}: loading the table (its metadata file), pyiceberg's `plan_files()` and `SELECT count(*) FROM "
        "fresh.events` on the Athena stand-in (DuckDB, reading the same manifests and files). Local files on this "
        "machine: on S3 each manifest and data file is a request, so the counts of manifests and files are what "
        "multiplies there.",
        "",
        "| table | hours | commits | snapshots | data files | manifests | metadata KB | load s | plan s | "
        "fresh count s | a commit s (mean) | plan vs first |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for group in (bare, kept):
        for p in group:
            lines.append(
                f"| {'maintained' if p.maintained else 'commits only'} | {p.hours:g} | {p.commits:,} | "
                f"{p.snapshots:,} | {p.data_files:,} | {p.manifests:,} | {p.metadata_kb:,} | {p.load_s:.3f} | "
                f"{p.plan_s:.3f} | {p.count_s:.3f} | {p.commit_s:.3f} | {p.plan_s / group[0].plan_s:.1f}x |")
    simulated = bare[-1].hours
    # each costs in proportion to the commits (a manifest and a file each; the commit copies every snapshot): the
    # last point scaled, which a busy machine's noise cannot turn negative as a fitted line can
    day = [getattr(bare[-1], field) * DAY_COMMITS / bare[-1].commits for field in ("plan_s", "count_s", "commit_s")]
    slower = f", longer than the {COMMIT_EVERY.seconds} s between commits" if day[2] > COMMIT_EVERY.seconds else ""
    last = kept[-1]
    both = max(p.hours for p in bare if any(k.hours == p.hours for k in kept))  # the last hour both reached
    b, k = (next(p for p in group if p.hours == both) for group in (bare, kept))
    lines += [
        "",
        f"**A day, extrapolated** (the point after {simulated:g} simulated h scaled to {DAY_COMMITS:,} commits, as "
        f"each cost grows with the commits): without the maintenance the table would hold {DAY_COMMITS:,} files in "
        f"{DAY_COMMITS:,} manifests; planning ≈ {day[0]:.1f} s, the fresh count ≈ {day[1]:.0f} s and each commit "
        f"≈ {day[2]:.0f} s{slower}. With it, the files and manifests stay bounded by what the batch has not merged "
        f"and the trim's margin, one compacted file per {MAINTAIN_EVERY.seconds // 60} minutes: about two hours of "
        f"commits at the most (at "
        f"hour {last.hours:g}: {last.data_files} files in {last.manifests} manifests, planning {last.plan_s:.3f} s, "
        f"the count {last.count_s:.3f} s; at hour {both:g}, planning and the count cost {b.plan_s / k.plan_s:.0f}x "
        f"and {b.count_s / k.count_s:.0f}x less than without). "
        f"The snapshots stay bounded too: those of the last {maintenance.SNAPSHOT_RETENTION.seconds // 60} minutes "
        f"(the queue's retention, {maintenance.QUEUE_RETENTION.seconds // 60} minutes, and a margin), "
        f"{last.snapshots:,} at the end, so a commit costs {last.commit_s:.2f} s there instead of growing with "
        "every commit of the day.",
    ]
    return "\n".join(lines + [
        "", f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {platform.machine()} ({os.cpu_count()} cores, "
        f"Python {platform.python_version()}, pyiceberg {pyiceberg.__version__}, DuckDB {duckdb.__version__}). "
        f"Simulated: {bare[-1].hours:g} h without the maintenance, {kept[-1].hours:g} h with it. Re-run with "
        "`python -m benchmarks --only live_tables` (LIVE_BENCH_HOURS=24 simulates the whole day without it).",
        "", f"<!-- figures: {json.dumps([asdict(p) for p in points])} -->"])


def section(rounds: int) -> str:
    """The page's section; `rounds` does not apply (ROUNDS per figure, the best kept)."""
    del rounds
    return markdown(run())


if __name__ == "__main__":
    print(section(ROUNDS))
