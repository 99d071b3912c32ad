"""The `lakehouse` command line."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from lakehouse.layout import LocalLake

app = typer.Typer(help="Serverless Lakehouse: the local runtime. `lakehouse demo` runs everything offline.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
console = Console()


def _positive(value: int) -> int:
    if value <= 0:
        raise typer.BadParameter(f"must be a positive number, got {value}")
    return value


def _rate(value: float) -> float:
    if not 0.0 <= value <= 0.9:
        raise typer.BadParameter(f"must be between 0 and 0.9, got {value}")
    return value


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="How many events to generate.", callback=_positive)] = 10_000,
    seed: Annotated[int, typer.Option(help="Generator seed: the same seed gives the same events.")] = 7,
    defect_rate: Annotated[float, typer.Option(help="Share of defective records (0-0.9).", callback=_rate)] = 0.05,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the dashboards until Ctrl-C.")] = True,
    port: Annotated[int, typer.Option(help="Superset port on 127.0.0.1.")] = 8088,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the summary as JSON here.")] = None,
) -> None:
    """Run the whole pipeline offline: Kinesis, cleaner, Spark batch, DuckDB, then Superset."""
    from lakehouse import demo as demo_module
    from lakehouse.generator import generate

    lake = LocalLake.default()
    console.rule("[bold]Serverless Lakehouse demo (offline)")
    with console.status("generating events"):
        generated = generate(events, seed=seed, defect_rate=defect_rate)
    console.print(f"generated {len(generated.records):,} records (seed {seed}, defect rate {defect_rate:.0%})")

    def on_steps(steps: list) -> None:
        for step in steps[-1:]:
            took = f" in {step.seconds:.1f}s" if step.seconds is not None else ""
            console.print(f"  state machine: {step.name} {step.status.lower()}{took}")

    summary = demo_module.run_pipeline(generated.records, generated.partition_keys, lake,
                                       progress=console.print, on_steps=on_steps)
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
    if serve:
        from lakehouse.dashboards import serve_dashboards
        serve_dashboards(lake, port=port, console=console)


def _print_summary(summary) -> None:  # noqa: ANN001 - lakehouse.demo.Summary, imported lazily
    ledger = Table(title="Conservation ledger", show_header=True)
    ledger.add_column("records")
    ledger.add_column("count", justify="right")
    ledger.add_row("sent to Kinesis", f"{summary.sent:,}")
    ledger.add_row("received by the cleaner", f"{summary.received:,}")
    ledger.add_row("clean (in silver.events)", f"{summary.clean:,}")
    for reason, count in sorted(summary.quarantined.items()):
        ledger.add_row(f"quarantined: {reason}", f"{count:,}")
    ledger.add_row("duplicates dropped", f"{summary.duplicates:,}")
    ok = "[green]holds" if summary.conserved else "[red]BROKEN"
    ledger.add_row("received = clean + quarantined + duplicates", ok)
    console.print(ledger)
    console.print(f"silver.events rows: {summary.silver_events:,}   gold.daily_kpis rows: "
                  f"{summary.gold_daily_kpis:,}   state machine: {summary.state_machine_status}")
    _print_gold()


def _print_gold() -> None:
    from lakehouse import athena
    from lakehouse.catalog import local_catalog

    lake = LocalLake.default()
    columns, rows = athena.query(local_catalog(lake.warehouse, lake.catalog_db), """
        SELECT event_date, sum(active_users) AS active_users, sum(sessions) AS sessions,
               sum(events) AS events, sum(add_to_cart) AS add_to_cart
        FROM gold.daily_kpis GROUP BY event_date ORDER BY event_date""")
    table = Table(title="gold.daily_kpis by day (all countries)")
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    console.print(table)


@app.command()
def generate(
    events: Annotated[int, typer.Argument(help="How many events.", callback=_positive)],
    out: Annotated[Path, typer.Option(help="NDJSON file to write, one record per line.")] = Path("events.ndjson"),
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 7,
    defect_rate: Annotated[float, typer.Option(help="Share of defective records (0-0.9).", callback=_rate)] = 0.05,
) -> None:
    """Generate shop clickstream events with a controlled share of defects."""
    from lakehouse.generator import generate as generate_events

    generated = generate_events(events, seed=seed, defect_rate=defect_rate)
    generated.to_ndjson(out)
    console.print(f"wrote {len(generated.records):,} records to {out}")


@app.command()
def query(sql: Annotated[str, typer.Argument(help="Athena (Trino) SQL, e.g. SELECT * FROM gold.daily_kpis")]) -> None:
    """Run Athena SQL on the local lake (transpiled by sqlglot, executed by DuckDB)."""
    from lakehouse import athena
    from lakehouse.catalog import local_catalog

    lake = LocalLake.default()
    if not lake.catalog_db.exists():
        console.print(f"[red]no local lake at {lake.root}: run `lakehouse demo --no-serve` first")
        raise typer.Exit(2)
    try:
        columns, rows = athena.query(local_catalog(lake.warehouse, lake.catalog_db), sql)
    except athena.AthenaError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None
    table = Table()
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)


@app.command()
def status(limit: Annotated[int, typer.Option(help="How many runs.", callback=_positive)] = 20) -> None:
    """Recent runs and steps from ops.pipeline_runs."""
    query(f"SELECT run_id, step, status, started_at, received, clean, quarantined, duplicates "
          f"FROM ops.pipeline_runs ORDER BY started_at DESC LIMIT {limit}")


def main() -> None:
    sys.exit(app())
