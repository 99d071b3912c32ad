"""`lakehouse demo`: the whole pipeline, offline, on the embedded local cloud.

Starts the local cloud, migrates the tables, provisions the resources from the same definitions
as CDK, generates events with defects, streams them through Kinesis and the cleaner, runs the
batch state machine (Spark jobs, quality checks), and reports the conservation ledger, what every
source's batches brought to silver, the tables' sizes, the quality checks and the gold numbers.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import boto3

from iceberg_tables.specs import ALL_TABLES
from lakehouse.cloud import moto_patches
from lakehouse.cloud.pipeline import LocalPipeline
from lakehouse.lake.layout import LocalLake
from lakehouse.operations import workflows
from lakehouse.operations.ledger import staged_ledger
from lakehouse.sources import landing
from lakehouse.sources.generator import CheckoutSession, NoCheckoutSession, generate_orders
from lakehouse.sources.producer import put_records, unsendable
from lakehouse.sources.product_catalog import write_catalog


@dataclass
class Summary:
    """What a run did. `received == clean + quarantined + duplicates` must hold."""

    input_records: int  # generated, or lines of the --input file
    not_sent: int        # records Kinesis refuses (over 1 MiB), never put
    sent: int
    received: int
    clean: int
    quarantined: dict[str, int]
    duplicates: int
    silver_events: int
    gold_daily_kpis: int
    state_machine_status: str
    run_id: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)  # staged ledger per source
    merged: dict[str, dict[str, Any]] = field(default_factory=dict)  # per source: what the run merged
    tables: dict[str, int] = field(default_factory=dict)  # rows of every silver and gold table
    quality: list[dict[str, Any]] = field(default_factory=list)  # the run's checks (ops.quality_results)
    # The demo's clock for the other sources: the catalog drop's arrival, the FX days fetched before it.
    sources_loaded_at: str | None = None
    source_failures: list[str] = field(default_factory=list)  # a source that could not be loaded, and why
    # the live half: rows registered in live.events before the batch ran, and event -> queryable (seconds)
    live: dict[str, float] = field(default_factory=dict)

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def conserved(self) -> bool:
        return (self.input_records == self.sent + self.not_sent
                and self.sent == self.received == self.clean + self.quarantined_total + self.duplicates
                and all(s["received"] == s["clean"] + s["quarantined"] + s["duplicates"]
                        for s in (*self.sources.values(), *self.merged.values())))

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "quarantined_total": self.quarantined_total, "conserved": self.conserved}


Progress = Callable[[str], None]
# The catalog lists the products the shop's events name (P-00001 to P-01999), less those its own defects
# spoil: about 4 % of ordered lines then name a product missing from it, which local's quality limit allows.
CATALOG_ROWS, CATALOG_SEED = 2100, 17
# Orders are placed by the clickstream's checkout sessions (one order each while they last); this many
# keep paid sessions below the checkouts of 10,000 clickstream events, as in a real shop's funnel.
ORDERS, ORDERS_SEED = 300, 23
FX_DAYS = 4  # the generator's events span the last days; the connector backfills their rates
SOURCES = ("clickstream", "orders", "products", "fx_rates")


def run_pipeline(records: list[bytes], partition_keys: list[str], lake: LocalLake,
                 progress: Progress = lambda message: None,
                 on_steps: Callable[[list[workflows.Step]], None] | None = None,
                 sessions: Sequence[CheckoutSession] | None = None) -> Summary:
    """Run every stage on a fresh local lake and return the run's ledger. `sessions`: the clickstream's
    checkout sessions, which place the orders (None: orders without a session, e.g. for an --input file)."""
    with LocalPipeline(lake, progress=progress) as pipeline:
        assert pipeline.resources is not None
        refused = set(unsendable(records, partition_keys))
        if refused:
            progress(f"[yellow]kinesis: {len(refused)} records over 1 MiB can't be put and are not sent "
                     f"(record numbers {', '.join(str(i + 1) for i in sorted(refused)[:10])})")
        records = [r for i, r in enumerate(records) if i not in refused]
        partition_keys = [k for i, k in enumerate(partition_keys) if i not in refused]
        put = put_records(pipeline.resources.stream_name, records, partition_keys)
        progress(f"kinesis: put {put.records} records in {put.calls} PutRecords calls")
        polled = pipeline.drain()
        progress(f"cleaner: {polled.records} records in {polled.invocations} invocations "
                 f"(its logs and metrics: {moto_patches.LOG_DIR})")
        if polled.failed_records:
            progress(f"[red]cleaner: {polled.failed_records} records given up on, in the on-failure queue")
        live = _commit_live(pipeline, lake, progress)
        _load_orders(pipeline, progress, sessions)
        loaded_at = datetime.now(timezone.utc)
        failures = _load_catalog_and_fx(pipeline, loaded_at, progress)
        execution = workflows.run(pipeline.resources.state_machine_arn, on_change=on_steps)
        run_id = execution.arn.rsplit(":", 1)[-1]
        summary = _summary(lake, len(records) + len(refused), put.records, len(refused), run_id, execution)
        summary.sources_loaded_at = loaded_at.isoformat()
        summary.source_failures = failures
        summary.live = live
        return summary


def _commit_live(pipeline: LocalPipeline, lake: LocalLake, progress: Progress) -> dict[str, float]:
    """The live committer registers what the cleaner staged (before any batch run); event -> queryable."""
    from iceberg_tables.specs import LIVE_EVENTS
    from lakehouse.lake.catalog import local_catalog
    from lakehouse.operations.live_latency import queryable_latencies, summarize

    committed = pipeline.drain_live()
    latency = summarize(queryable_latencies(local_catalog(lake.warehouse, lake.catalog_db).load_table(
        LIVE_EVENTS.full_name)))
    if latency is None:
        progress("[yellow]live committer: nothing registered")
        return {}
    progress(f"live committer: {committed.messages} staged batches in {committed.invocations} commits; "
             f"{latency.events} events queryable in fresh.events before any batch run, event -> queryable "
             f"p50 {latency.p50_s:.1f} s, p95 {latency.p95_s:.1f} s")
    return {"events": latency.events, "p50_s": latency.p50_s, "p95_s": latency.p95_s, "max_s": latency.max_s}


def _load_orders(pipeline: LocalPipeline, progress: Progress, sessions: Sequence[CheckoutSession] | None) -> None:
    """Order events, placed by the clickstream's checkout sessions, on their own stream, cleaned by the
    cleaner's orders instance and registered in live.order_events by the live committer."""
    assert pipeline.resources is not None
    try:
        orders = generate_orders(ORDERS, seed=ORDERS_SEED, sessions=sessions)
    except NoCheckoutSession:  # a small clickstream may have no session that checked out in time
        progress("[yellow]orders: no clickstream session started checkout in time to place an order; "
                 "the orders carry no session")
        orders = generate_orders(ORDERS, seed=ORDERS_SEED)
    put_records(pipeline.resources.kinesis_sources["orders"]["stream"], orders.records, orders.partition_keys)
    polled = pipeline.drain("orders")
    progress(f"orders: {polled.records} records through the orders cleaner in {polled.invocations} invocations")
    committed = pipeline.drain_live()  # into live.order_events (and its ledgers), as `lakehouse up` commits them
    progress(f"live committer: {committed.messages} staged orders batches in {committed.invocations} commits")


def _load_catalog_and_fx(pipeline: LocalPipeline, now: datetime, progress: Progress) -> list[str]:
    """The other sources: a product catalog CSV dropped in the landing folder at `now` (the loader receives
    S3 events for it), and the FX connector's scheduled run backfilling the days before from the API fixture.
    Returns what failed (the run goes on without it, and the demo then exits 1)."""
    assert pipeline.resources is not None
    lake = pipeline.lake
    catalog = landing.landing_folder(lake) / "catalog-demo.csv"
    catalog.parent.mkdir(parents=True, exist_ok=True)
    write_catalog(catalog, rows=CATALOG_ROWS, seed=CATALOG_SEED, arrived=now)
    files = landing.deliver_new_files(lake, landing.invoke_function(pipeline.resources.file_loader_function))
    progress(f"file loader: {len(files)} catalog file(s) from the landing folder")
    days = {"from": (now - timedelta(days=FX_DAYS)).date().isoformat(),
            "to": (now - timedelta(days=1)).date().isoformat()}
    response = boto3.client("lambda").invoke(FunctionName=pipeline.resources.fx_connector_function,
                                             Payload=json.dumps(days).encode())
    body = json.loads(response["Payload"].read() or b"null")
    if "FunctionError" in response:
        failure = f"FX connector failed: {body.get('errorMessage')}"
        progress(f"[red]{failure}")
        return [failure]
    progress(f"FX connector: {len(body['days'])} days from {days['from']} to {days['to']}")
    return []


def _summary(lake: LocalLake, input_records: int, sent: int, not_sent: int, run_id: str,
             execution: workflows.Execution) -> Summary:
    from lakehouse.analytics import athena
    from lakehouse.lake.catalog import local_catalog

    catalog = local_catalog(lake.warehouse, lake.catalog_db)
    _, rows = athena.query(catalog, f"""
        SELECT source, count(*), sum(received), sum(clean), sum(quarantined), sum(duplicates)
        FROM ops.merged_batches WHERE run_id = '{run_id}' GROUP BY source""")
    merged = {row[0]: dict(zip(("batches", "received", "clean", "quarantined", "duplicates"), row[1:]))
              for row in rows}
    _, by_reason = athena.query(catalog, f"""
        SELECT quarantined_by_reason FROM ops.merged_batches WHERE run_id = '{run_id}' AND source = 'clickstream'""")
    reasons: Counter[str] = Counter()
    for (batch_reasons,) in by_reason:
        reasons.update(json.loads(batch_reasons))
    tables = {spec.full_name: athena.query(catalog, f"SELECT count(*) FROM {spec.full_name}")[1][0][0]
              for spec in ALL_TABLES if spec.namespace in ("silver", "gold")}
    quality_columns, checks = athena.query(catalog, f"""
        SELECT check_name, table_name, status, observed, threshold, message FROM ops.quality_results
        WHERE run_id = '{run_id}' ORDER BY check_name, table_name""")
    clicks = merged.get("clickstream", dict.fromkeys(("received", "clean", "quarantined", "duplicates"), 0))
    steps = [{"name": s.name, "status": s.status, "seconds": s.seconds} for s in execution.steps]
    return Summary(
        input_records=input_records, not_sent=not_sent, sent=sent, received=clicks["received"],
        clean=clicks["clean"], quarantined=dict(sorted(reasons.items())), duplicates=clicks["duplicates"],
        silver_events=tables["silver.events"], gold_daily_kpis=tables["gold.daily_kpis"],
        state_machine_status=execution.status, run_id=run_id, steps=steps,
        error=execution.cause if execution.status != "SUCCEEDED" else None,
        sources={source: asdict(staged_ledger(lake, source)) for source in SOURCES},
        merged=merged, tables=tables, quality=[dict(zip(quality_columns, row)) for row in checks],
    )


def write_json(summary: Summary, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary.as_json(), indent=2, default=str) + "\n")
