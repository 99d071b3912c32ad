"""Serve the dashboards of a local lake: export gold to DuckDB, start Superset, import the bundle."""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console

from dashboards.render import bundle_dashboards
from lakehouse.analytics.superset import ADMIN_PASSWORD, ADMIN_USER, LocalSuperset, publish_dashboards
from lakehouse.lake.catalog import local_catalog
from lakehouse.lake.layout import LocalLake


@contextmanager
def running_dashboards(lake: LocalLake, port: int, console: Console) -> Iterator[tuple[LocalSuperset, list[str]]]:
    """Superset on 127.0.0.1:`port` with the lake's dashboards published (and their URLs); stopped by its PID
    afterwards."""
    superset = LocalSuperset(lake.superset_home, port)
    with console.status("Superset: first-time set-up (about 30 s; later runs skip it)"):
        superset.init()
    with console.status(f"Superset: starting on 127.0.0.1:{port}"):
        superset.start()
    try:
        yield superset, publish_dashboards(superset, local_catalog(lake.warehouse, lake.catalog_db),
                                           lake.serving_db, lake.root / "dashboards.zip")
    finally:
        superset.stop()
        console.print("Superset stopped.")


def serve_dashboards(lake: LocalLake, port: int, console: Console) -> None:
    """Serve Superset on 127.0.0.1:`port` until Ctrl-C (or SIGTERM), then stop it by its PID."""
    with running_dashboards(lake, port, console) as (_, urls):
        console.print(f"[bold green]Dashboards served[/] (log in as {ADMIN_USER} / {ADMIN_PASSWORD}, local only):")
        for url in urls:
            console.print(f"  {url}")
        console.print("Press Ctrl-C to stop.")
        stop = threading.Event()
        # Set explicitly: a shell starts background jobs with SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.wait(1):
            pass


def screenshot_dashboards(lake: LocalLake, port: int, out_dir: Path, console: Console) -> list[Path]:
    """Every dashboard of the bundle over the lake, rendered in headless Chromium into `out_dir/<slug>.png`."""
    from lakehouse.analytics.screenshots import capture  # Playwright: only this command needs it

    with running_dashboards(lake, port, console) as (superset, _):
        with console.status("Chromium: rendering the dashboards"):
            return capture(superset.url, bundle_dashboards(), out_dir)
