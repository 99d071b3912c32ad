"""Serve the dashboards of a local lake: export gold to DuckDB, start Superset, import the bundle."""
from __future__ import annotations

import signal
import threading

from rich.console import Console

from lakehouse.catalog import local_catalog
from lakehouse.layout import LocalLake
from lakehouse.superset import ADMIN_PASSWORD, ADMIN_USER, LocalSuperset, publish_dashboards


def serve_dashboards(lake: LocalLake, port: int, console: Console) -> None:
    """Serve Superset on 127.0.0.1:`port` until Ctrl-C (or SIGTERM), then stop it by its PID."""
    superset = LocalSuperset(lake.superset_home, port)
    with console.status("Superset: first-time set-up (about 30 s; later runs skip it)"):
        superset.init()
    with console.status(f"Superset: starting on 127.0.0.1:{port}"):
        superset.start()
    try:
        urls = publish_dashboards(superset, local_catalog(lake.warehouse, lake.catalog_db), lake.serving_db,
                                  lake.root / "dashboards.zip")
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
    finally:
        superset.stop()
        console.print("Superset stopped.")
