"""The `lakehouse` command line."""
from __future__ import annotations

import csv
import json
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console
from rich.table import Table

from lakehouse.lake.layout import LocalLake

app = typer.Typer(help="Serverless Lakehouse: the local runtime. `lakehouse demo` runs everything offline. The "
                       "local lake lives in $LAKEHOUSE_HOME (default: .lakehouse/ in the project).",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()
ENV_HELP = ("local (the running `lakehouse up`) or a deployed environment of cdk.json (dev, prod: your AWS "
            "credentials).")


def _positive(value: int) -> int:
    if value <= 0:
        raise typer.BadParameter(f"must be a positive number, got {value}")
    return value


def _rate(value: float) -> float:
    if not 0.0 <= value <= 0.9:
        raise typer.BadParameter(f"must be between 0 and 0.9, got {value}")
    return value


def _positive_or_none(value: Optional[int]) -> Optional[int]:
    return None if value is None else _positive(value)


def _existing_lake() -> LocalLake:
    """The local lake, or exit 2 saying how to make one."""
    lake = LocalLake.default()
    if not lake.catalog_db.exists():
        console.print(f"[red]no local lake at {lake.root}: run `lakehouse demo --no-serve` first")
        raise typer.Exit(2)
    return lake


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise typer.BadParameter(f"must be between 1 and 65535, got {value}")
    return value


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"lakehouse {version('serverless-lakehouse')}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.", callback=_version,
                                                is_eager=True)] = False) -> None:
    pass  # the options of `lakehouse` itself; each command is its own function


# One vocabulary for every command: an input file is --input, a count of events --events, the share of
# generated defects --defect-rate, and --env an environment of cdk.json.
Seed = Annotated[int, typer.Option(help="Generator seed: the same seed gives the same events.")]
DefectRate = Annotated[float, typer.Option(help="Share of defective records (0-0.9).", callback=_rate)]
InputFile = Annotated[Optional[Path], typer.Option(
    "--input", help="NDJSON file to send: one record per line, any bytes (instead of generated events).",
    exists=True, dir_okay=False, readable=True)]
EnvName = Annotated[str, typer.Option("--env", help=ENV_HELP)]


@app.command(epilog="Example: lakehouse demo --events 20000 --no-serve")
def demo(
    events: Annotated[int, typer.Option(help="How many events to generate.", callback=_positive)] = 10_000,
    seed: Seed = 7,
    defect_rate: DefectRate = 0.05,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the dashboards until Ctrl-C.")] = True,
    port: Annotated[int, typer.Option(help="Superset port on 127.0.0.1.", callback=_port)] = 8088,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the summary as JSON here.")] = None,
    input_path: InputFile = None,
) -> None:
    """Local only: run the whole pipeline offline on a fresh lake: Kinesis, cleaner, Spark batch, DuckDB, then
    Superset."""
    from lakehouse import demo as demo_module

    lake = LocalLake.default()
    console.rule("[bold]Serverless Lakehouse demo (offline)")
    records, keys, sessions = _records(input_path, events, seed, defect_rate)
    summary = demo_module.run_pipeline(records, keys, lake, progress=console.print, on_steps=_step_printer(),
                                       sessions=sessions)
    _print_summary(summary)
    if json_path:
        demo_module.write_json(summary, json_path)
        console.print(f"summary written to {json_path}")
    if summary.state_machine_status != "SUCCEEDED":
        console.print(f"[red]the batch state machine ended {summary.state_machine_status}: {summary.error}")
        raise typer.Exit(1)
    if not summary.conserved:
        console.print("[red]conservation ledger broken: received != clean + quarantined + duplicates")
        raise typer.Exit(1)
    if summary.source_failures:
        console.print(f"[red]not every source was loaded: {'; '.join(summary.source_failures)}")
        raise typer.Exit(1)
    if serve:
        from lakehouse.analytics.dashboards import serve_dashboards
        serve_dashboards(lake, port=port, console=console)


def _records(input_path: Path | None, events: int, seed: int,
             defect_rate: float) -> tuple[list[bytes], list[str], tuple | None]:
    """The records to send, with their partition keys: the file's lines, or generated events; and the
    generated sessions that reached checkout (the orders' sessions; None for a file)."""
    if input_path is not None:
        from lakehouse.cloud.pipeline import read_lines
        from lakehouse.sources.producer import partition_key

        records = read_lines(input_path)
        console.print(f"read {len(records):,} records from {input_path}")
        return records, [partition_key(r) for r in records], None
    from lakehouse.sources.generator import generate

    with console.status("generating events"):
        generated = generate(events, seed=seed, defect_rate=defect_rate)
    console.print(f"generated {len(generated.records):,} records (seed {seed}, defect rate {defect_rate:.0%})")
    return generated.records, generated.partition_keys, generated.checkout_sessions


def _step_printer():  # noqa: ANN202 - a callback for lakehouse.operations.workflows.run
    """Print each state machine step once as it starts and once as it ends."""
    printed: set[tuple[str, str, int]] = set()

    def on_steps(steps: list) -> None:
        for index, step in enumerate(steps):
            if (step.name, step.status, index) in printed:
                continue
            printed.add((step.name, step.status, index))
            took = f" in {step.seconds:.1f}s" if step.seconds is not None else ""
            console.print(f"  state machine: {step.name} {step.status.lower()}{took}")
    return on_steps


def _print_summary(summary) -> None:  # noqa: ANN001 - lakehouse.demo.Summary, imported lazily
    ledger = Table(title="Conservation ledger: the clickstream sent, and what this run merged of it", show_header=True)
    ledger.add_column("records")
    ledger.add_column("count", justify="right")
    ledger.add_row("input records", f"{summary.input_records:,}")
    if summary.not_sent:
        ledger.add_row("not sent: over Kinesis' 1 MiB limit", f"{summary.not_sent:,}")
    ledger.add_row("sent to Kinesis", f"{summary.sent:,}")
    ledger.add_row("received by the cleaner", f"{summary.received:,}")
    ledger.add_row("clean (in silver.events)", f"{summary.clean:,}")
    for reason, count in sorted(summary.quarantined.items()):
        ledger.add_row(f"quarantined: {reason}", f"{count:,}")
    ledger.add_row("duplicates dropped", f"{summary.duplicates:,}")
    ok = "[green]holds" if summary.conserved else "[red]BROKEN"
    ledger.add_row("received = clean + quarantined + duplicates", ok)
    console.print(ledger)
    sources = Table(title="By source: staged (the batch manifests) -> merged into silver by this run")
    for column in ("source", "batches", "received", "clean", "quarantined", "duplicates", "merged batches",
                   "merged clean", "ledger"):
        sources.add_column(column, justify="left" if column == "source" else "right")
    for name, counts in summary.sources.items():
        merged = summary.merged.get(name, {"batches": 0, "clean": 0})
        holds = all(c["received"] == c["clean"] + c["quarantined"] + c["duplicates"]
                    for c in (counts, summary.merged.get(name, counts)))
        sources.add_row(name, *(f"{counts[k]:,}" for k in ("batches", "received", "clean", "quarantined", "duplicates")),
                        f"{merged['batches']:,}", f"{merged['clean']:,}", "[green]holds" if holds else "[red]BROKEN")
    console.print(sources)
    console.print("rows: " + "   ".join(f"{name} {rows:,}" for name, rows in summary.tables.items()))
    quality = Table(title=f"Quality checks of run {summary.run_id}")
    for column in ("check", "table", "status", "observed", "threshold"):
        quality.add_column(column, justify="right" if column in ("observed", "threshold") else "left")
    for check in summary.quality:
        colour = "green" if check["status"] == "PASSED" else "red"
        quality.add_row(check["check_name"], check["table_name"], f"[{colour}]{check['status']}",
                        *(f"{check[k]:g}" if check[k] is not None else "" for k in ("observed", "threshold")))
    console.print(quality)
    console.print(f"state machine: {summary.state_machine_status}")
    _print_gold()


_GOLD_QUERIES = {
    "gold.daily_kpis by day (all countries)": """
        SELECT event_date, sum(active_users) AS active_users, sum(sessions) AS sessions, sum(events) AS events,
               sum(orders) AS orders, sum(paid_orders) AS paid_orders, round(sum(revenue_usd), 2) AS revenue_usd
        FROM gold.daily_kpis GROUP BY event_date ORDER BY event_date""",
    "gold.funnel_daily, all days and countries": """
        SELECT sum(view_sessions) AS viewed, sum(product_view_sessions) AS product_viewed,
               sum(add_to_cart_sessions) AS added_to_cart, sum(checkout_sessions) AS checked_out,
               sum(paid_orders) AS paid
        FROM gold.funnel_daily""",
    "gold.product_sales_daily: top products": """
        SELECT product_id, max(name) AS name, max(category) AS category, sum(units_sold) AS units_sold,
               round(sum(revenue_usd), 2) AS revenue_usd
        FROM gold.product_sales_daily GROUP BY product_id ORDER BY revenue_usd DESC NULLS LAST, product_id LIMIT 5""",
}


def _print_gold() -> None:
    from lakehouse.analytics import athena
    from lakehouse.lake.catalog import local_catalog

    lake = LocalLake.default()
    catalog = local_catalog(lake.warehouse, lake.catalog_db)
    for title, sql in _GOLD_QUERIES.items():
        columns, rows = athena.query(catalog, sql)
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right")
        for row in rows:
            table.add_row(*(f"{v:,}" if isinstance(v, (int, float)) else str(v) for v in row))
        console.print(table)


@app.command(epilog="Example: lakehouse dashboards --port 8089")
def dashboards(port: Annotated[int, typer.Option(help="Superset port on 127.0.0.1.", callback=_port)] = 8088) -> None:
    """Local only: serve the dashboards over the existing local lake (no pipeline run) until Ctrl-C."""
    from lakehouse.analytics.dashboards import serve_dashboards

    serve_dashboards(_existing_lake(), port=port, console=console)


@app.command(epilog="Example: lakehouse screenshots --out /tmp/dashboards")
def screenshots(
    out: Annotated[Path, typer.Option(help="Folder of the PNG files, one per dashboard.")] = Path("docs/images"),
    port: Annotated[int, typer.Option(help="Superset port on 127.0.0.1.", callback=_port)] = 8088,
) -> None:
    """Local only: render every dashboard over the existing local lake in headless Chromium, as PNG files."""
    from lakehouse.analytics.dashboards import screenshot_dashboards

    for path in screenshot_dashboards(_existing_lake(), port, out, console):
        console.print(f"wrote {path}")


@app.command(epilog="Example: lakehouse up   (then, in another shell: lakehouse ingest --events 1000)")
def up(port: Annotated[int, typer.Option(help="Local cloud port on 127.0.0.1 (0: a free one).")] = 4566) -> None:
    """Local only: run the local cloud until Ctrl-C: a fresh lake, the pipeline's resources, the cleaners polling
    the streams and the live committer. Other shells reach it with `lakehouse ingest`, `run batch`, `replay`,
    `watch` (or AWS_ENDPOINT_URL)."""
    import signal
    import threading

    from lakehouse.cloud.pipeline import LocalPipeline, PollerStopped

    lake = LocalLake.default()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # set explicitly: background jobs start with SIGINT ignored
        signal.signal(signum, lambda *_: stop.set())
    try:
        with LocalPipeline(lake, port=port, progress=console.print) as pipeline:
            assert pipeline.cloud is not None
            console.print(f"[bold green]local cloud up[/] at {pipeline.cloud.endpoint} (lake: {lake.root}); "
                          "Ctrl-C stops it. In another shell:")
            console.print("  lakehouse ingest --events 1000   then   lakehouse watch   or   lakehouse run batch")
            pipeline.serve(stop)
    except PollerStopped as error:
        console.print(f"[red]{error}; local cloud stopped")
        raise typer.Exit(1) from None
    console.print("local cloud stopped")


@app.command(epilog="Example: lakehouse ingest --events 1000 --defect-rate 0.1   or   lakehouse ingest --input "
                     "events.ndjson --env dev")
def ingest(
    input_path: InputFile = None,
    events: Annotated[Optional[int], typer.Option(help="Send this many generated events.", callback=_positive_or_none)]
    = None,
    seed: Seed = 7,
    defect_rate: DefectRate = 0.05,
    env_name: EnvName = "local",
) -> None:
    """Put records to the pipeline's clickstream Kinesis stream: the running `lakehouse up`, or AWS for another
    --env."""
    from cdk_app import config
    from lakehouse.cloud.pipeline import NoLocalCloud, connect_to_local_cloud
    from lakehouse.sources.producer import ProducerError, put_records, unsendable

    if (input_path is None) == (events is None):
        raise typer.BadParameter("give exactly one of --input PATH or --events N")
    try:
        env = config.load(env_name)
        if env_name == "local":
            connect_to_local_cloud(LocalLake.default())
    except (config.ConfigError, NoLocalCloud) as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None
    records, keys, _ = _records(input_path, events or 0, seed, defect_rate)
    refused = set(unsendable(records, keys))
    sendable = [i for i in range(len(records)) if i not in refused]
    try:
        result = put_records(env.stream_name, [records[i] for i in sendable], [keys[i] for i in sendable])
    except ProducerError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(1) from None
    console.print(f"put {result.records:,} records to {env.stream_name} in {result.calls} calls "
                  f"({result.retried_entries} entries retried)")
    if refused:
        console.print(f"[yellow]{len(refused)} records over Kinesis' 1 MiB limit were not sent: lines "
                      f"{', '.join(str(i + 1) for i in sorted(refused))}")
        raise typer.Exit(1)


run_app = typer.Typer(help="Local only: start a workflow on the running `lakehouse up` and follow its steps.",
                      no_args_is_help=True)
app.add_typer(run_app, name="run")


@run_app.command("batch", epilog="Example: lakehouse run batch")
def run_batch() -> None:
    """Local only: run the batch state machine (silver merge, gold build, record the run) and show its steps."""
    _run_workflow("state_machine_arn")


@run_app.command("maintenance", epilog="Example: lakehouse run maintenance")
def run_maintenance() -> None:
    """Local only: run table maintenance (compaction, snapshot expiry, orphan files, manifests) and show its steps;
    and ask the live committer to maintain the live tables now, as their schedule does every 15 minutes."""
    from lakehouse.cloud.pipeline import send_live_maintenance

    _run_workflow("maintenance_state_machine_arn", after=lambda resources: console.print(
        f"live tables to maintain next: {', '.join(send_live_maintenance(resources.live_queue_url))}"))


def _run_workflow(arn_field: str, payload: dict[str, str] | None = None,
                  after: Callable[[Any], None] | None = None) -> None:
    """Run a state machine of the running `lakehouse up`, named by its field of the provisioned resources; then
    `after(resources)`, if given."""
    from lakehouse.cloud.pipeline import NoLocalCloud, connect_to_local_cloud

    try:
        info = connect_to_local_cloud(LocalLake.default())
    except NoLocalCloud as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None
    _follow_workflow(getattr(info.resources, arn_field), payload)
    if after is not None:
        after(info.resources)


def _follow_workflow(arn: str, payload: dict[str, str] | None) -> None:
    """Start an execution of the state machine `arn`, print its steps as they change, exit 1 unless it succeeds."""
    from lakehouse.operations import workflows

    execution = workflows.run(arn, payload, on_change=_step_printer())
    console.print(f"execution {execution.arn.rsplit(':', 1)[-1]}: {execution.outcome}")
    totals = (execution.output or {}).get("totals")
    if totals:  # the replay's re-cleaning
        console.print(f"re-cleaned {totals['batches']:,} batches, {totals['records']:,} records: {totals['clean']:,} "
                      f"clean, {totals['quarantined']:,} quarantined, {totals['duplicates']:,} duplicates in batch")
    if execution.status != "SUCCEEDED":
        console.print(f"[red]{execution.error}: {execution.cause}")
        raise typer.Exit(1)


@app.command(epilog="Example: lakehouse smoke --env dev")
def smoke(
    env_name: EnvName = "local",
    events: Annotated[int, typer.Option(help="How many events to put.", callback=_positive)] = 20,
    wait_seconds: Annotated[int, typer.Option(help="How long the cleaner may take to stage them.",
                                              callback=_positive)] = 300,
) -> None:
    """Check an environment end to end: put events, run the batch pipeline, find them with Athena, check the ledger."""
    from cdk_app import config
    from lakehouse.cloud.pipeline import NoLocalCloud
    from lakehouse.operations import deployed
    from lakehouse.operations import smoke as smoke_test

    try:
        if env_name == "local":
            target = smoke_test.local_target(LocalLake.default())
        else:
            target = smoke_test.aws_target(deployed.environment(env_name))
    except (config.ConfigError, NoLocalCloud) as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None
    try:
        smoke_test.run(target, events, wait_seconds, progress=console.print)
    except smoke_test.SmokeFailed as error:
        console.print(f"[red]smoke test failed: {error}")
        raise typer.Exit(1) from None
    console.print(f"[bold green]smoke test passed[/] on {env_name}")


def _utc_time(value: Optional[str]) -> Optional[datetime]:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(f"not an ISO-8601 time: {value!r} (e.g. 2026-03-01T00:00:00Z)") from None
    if parsed.tzinfo is None:
        raise typer.BadParameter(f"{value!r} needs a UTC offset, e.g. {value}Z or {value}+02:00")
    return parsed.astimezone(timezone.utc)


@app.command(epilog="Example: lakehouse replay --from 2026-03-01T00:00:00Z --to 2026-03-01T06:00:00Z --env dev")
def replay(
    dlq: Annotated[bool, typer.Option("--dlq", help="Replay the cleaners' on-failure queues.")] = False,
    start: Annotated[Optional[datetime], typer.Option(
        "--from", parser=_utc_time, metavar="TIME", help="Re-clean the raw zone's batches that arrived from "
        "this ISO-8601 time (with an offset)...")] = None,
    end: Annotated[Optional[datetime], typer.Option(
        "--to", parser=_utc_time, metavar="TIME", help="...until this one (exclusive), then merge them.")] = None,
    env_name: EnvName = "local",
) -> None:
    """Reprocess without duplicates: the batches the cleaners gave up on (--dlq), or the raw zone of a time
    range through the cleaner, the merges, gold and the quality checks (--from/--to, the replay workflow);
    docs/runbooks/replay.md."""
    from lakehouse.cloud.pipeline import NoLocalCloud, connect_to_local_cloud

    if dlq == (start is not None or end is not None):
        raise typer.BadParameter("say what to replay: --dlq (the cleaner's on-failure queue), or --from and --to "
                                 "(a time range of the raw zone)")
    if not dlq and (start is None or end is None or start >= end):
        raise typer.BadParameter("--from and --to are both needed, --from before --to")
    if env_name != "local":
        _replay_deployed(env_name, dlq, start, end)
        return
    lake = LocalLake.default()
    try:
        info = connect_to_local_cloud(lake)
    except NoLocalCloud as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None
    if dlq:
        _replay_dlq(info.resources.kinesis_sources, lake.raw_uri)
    else:
        assert start is not None and end is not None
        _run_workflow("replay_state_machine_arn", {"from": start.isoformat(), "to": end.isoformat()})


def _replay_deployed(env_name: str, dlq: bool, start: Optional[datetime], end: Optional[datetime]) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    from lakehouse.operations import deployed

    env = _deployed_env(env_name)
    try:
        if dlq:
            _replay_dlq(deployed.kinesis_sources(env), deployed.raw_uri(env))
        else:
            assert start is not None and end is not None
            _follow_workflow(deployed.replay_state_machine_arn(env), {"from": start.isoformat(), "to": end.isoformat()})
    except (BotoCoreError, ClientError) as error:
        console.print(f"[red]{env_name}: {error}")
        raise typer.Exit(1) from None


def _deployed_env(env_name: str):  # noqa: ANN202 - cdk_app.config.EnvConfig, imported lazily
    """The deployed environment, or exit 2 naming what is wrong with it (unknown, placeholder account)."""
    from cdk_app import config
    from lakehouse.operations import deployed

    try:
        return deployed.environment(env_name)
    except config.ConfigError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None


def _replay_dlq(sources: dict[str, dict[str, str]], raw_uri: str) -> None:
    from lakehouse.operations.replay import replay_dlq

    failures: list[str] = []
    for source, names in sources.items():  # each cleaner has its own queue
        result = replay_dlq(names["dlq_url"], names["function"], raw_uri)
        console.print(f"{source}: replayed {result.batches} batches, {result.records} records "
                      f"({result.from_stream} from the stream, {result.from_raw} from the raw zone)")
        failures += result.failed
    for failure in failures:
        console.print(f"[red]{failure}")
    if failures:
        raise typer.Exit(1)


@app.command(epilog="Example: lakehouse generate --events 1000 --out events.ndjson")
def generate(
    events: Annotated[int, typer.Option(help="How many events to generate.", callback=_positive)] = 10_000,
    out: Annotated[Path, typer.Option(help="NDJSON file to write, one record per line.")] = Path("events.ndjson"),
    seed: Seed = 7,
    defect_rate: DefectRate = 0.05,
) -> None:
    """Generate shop clickstream events with a controlled share of defects."""
    from lakehouse.sources.generator import generate as generate_events

    generated = generate_events(events, seed=seed, defect_rate=defect_rate)
    generated.to_ndjson(out)
    console.print(f"wrote {len(generated.records):,} records to {out}")


QUERY_FORMATS = ("table", "csv", "json")


def _query_format(value: str) -> str:
    if value not in QUERY_FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(QUERY_FORMATS)}, got {value!r}")
    return value


OutputFormat = Annotated[str, typer.Option("--format", help="table, csv or json (an array of objects).",
                                           callback=_query_format)]


def _query_sql(sql: Optional[str], file: Optional[Path]) -> str:
    """The statement to run: the SQL argument or the file's text, exactly one of them."""
    if (sql is None) == (file is None):
        raise typer.BadParameter("give exactly one of the SQL argument or --input query.sql")
    if file is None:
        assert sql is not None
        return sql
    if not file.is_file():
        raise typer.BadParameter(f"no such file: {file}", param_hint="'--input'")
    return file.read_text(encoding="utf-8")


def _json_value(value: object) -> object:
    """JSON for what DuckDB returns beyond JSON's types: dates and times as ISO-8601, decimals as text
    (no float rounding), bytes as hex."""
    if hasattr(value, "isoformat"):
        return value.isoformat()  # type: ignore[union-attr]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _finite(value: object) -> object:
    """NaN and the infinities as text ("NaN", "Infinity", "-Infinity"): JSON has no such numbers."""
    return str(value).replace("inf", "Infinity").replace("nan", "NaN") \
        if isinstance(value, float) and not math.isfinite(value) else value


def _print_rows(columns: list[str], rows: list[tuple], output_format: str) -> None:
    if output_format == "json":
        if len(set(columns)) != len(columns):
            console.print(f"[red]--format json needs distinct column names, got {', '.join(columns)}: alias them")
            raise typer.Exit(2)
        objects = [{c: _finite(v) for c, v in zip(columns, row)} for row in rows]
        typer.echo(json.dumps(objects, default=_json_value, indent=2, allow_nan=False))
    elif output_format == "csv":
        out = csv.writer(sys.stdout, lineterminator="\n")
        out.writerow(columns)
        out.writerows(["" if v is None else v for v in row] for row in rows)
    else:
        table = Table()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)


@app.command(epilog="Example: lakehouse query \"SELECT country, sum(events) FROM gold.daily_kpis GROUP BY 1\" "
                     "--format csv --env dev")
def query(
    sql: Annotated[Optional[str], typer.Argument(
        help="Athena (Trino) SQL, e.g. SELECT * FROM gold.daily_kpis (or --input).")] = None,
    file: Annotated[Optional[Path], typer.Option(
        "--input", help="Read the statement from this SQL file instead.", dir_okay=False)] = None,
    output_format: OutputFormat = "table",
    env_name: EnvName = "local",
) -> None:
    """Run Athena SQL: on the local lake (transpiled by sqlglot, executed by DuckDB), or with --env in the
    deployed environment's Athena workgroup lakehouse-<env>-analytics (every value comes back as text)."""
    from lakehouse.analytics import athena
    from lakehouse.lake.catalog import local_catalog

    statement = _query_sql(sql, file)
    if env_name != "local":
        _print_rows(*_query_deployed(env_name, statement), output_format)
        return
    lake = _existing_lake()
    try:
        columns, rows = athena.query(local_catalog(lake.warehouse, lake.catalog_db), statement)
    except athena.AthenaError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None
    _print_rows(columns, rows, output_format)


def _query_deployed(env_name: str, statement: str) -> tuple[list[str], list[tuple]]:
    from botocore.exceptions import BotoCoreError, ClientError

    from lakehouse.operations import deployed
    from lambdas.common.athena import QueryFailed

    env = _deployed_env(env_name)
    try:
        return deployed.query(env, statement)
    except QueryFailed as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None
    except (BotoCoreError, ClientError) as error:
        console.print(f"[red]{env_name} (Athena workgroup {env.workgroup_name}, {env.region}): {error}")
        raise typer.Exit(1) from None


@app.command(epilog="Example: lakehouse status --limit 5 --env dev")
def status(limit: Annotated[int, typer.Option(help="How many runs.", callback=_positive)] = 20,
           output_format: OutputFormat = "table", env_name: EnvName = "local") -> None:
    """Recent runs and steps from ops.pipeline_runs: of the local lake, or of a deployed environment (--env)."""
    query(f"SELECT run_id, step, status, started_at, received, clean, quarantined, duplicates "
          f"FROM ops.pipeline_runs ORDER BY started_at DESC LIMIT {limit}", output_format=output_format,
          env_name=env_name)


@app.command(epilog="Example: lakehouse watch --minutes 30   or   lakehouse watch --once")
def watch(
    interval: Annotated[int, typer.Option(help="Seconds between refreshes.", callback=_positive)] = 5,
    minutes: Annotated[int, typer.Option(help="Minutes of event time shown, up to the newest.", callback=_positive)] = 10,
    once: Annotated[bool, typer.Option("--once", help="Print once and exit (exit 1 when something is flagged).")] = False,
) -> None:
    """Local only: the live half of the local lake, per minute, refreshed until Ctrl-C: events and active sessions from
    fresh.events, the last live commit, each source's quarantine rate, and what the AWS alarms would flag."""
    import time

    from rich.live import Live

    from cdk_app import config
    from iceberg_tables.specs import LIVE_EVENTS
    from lakehouse.lake.catalog import local_catalog
    from lakehouse.operations.watch import Look, look, render

    lake = _existing_lake()
    catalog, env = local_catalog(lake.warehouse, lake.catalog_db), config.load("local")
    if not catalog.table_exists(LIVE_EVENTS.full_name):
        console.print(f"[red]the lake at {lake.root} has no {LIVE_EVENTS.full_name}: it predates the live half; "
                      "run `lakehouse up` or `lakehouse demo` to make a new one")
        raise typer.Exit(2)
    staging = Path(lake.staging_uri.removeprefix("file://"))

    def current() -> Look:
        return look(catalog, staging, env, datetime.now(timezone.utc), minutes)

    if once:
        view = current()
        console.print(render(view))
        raise typer.Exit(1 if view.alerts else 0)
    with Live(render(current()), console=console, refresh_per_second=1) as screen:
        try:
            while True:
                time.sleep(interval)
                screen.update(render(current()))
        except KeyboardInterrupt:
            pass


def main() -> None:
    sys.exit(app())
