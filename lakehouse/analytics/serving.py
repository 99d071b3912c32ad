"""The serving file: the tables the dashboards read, copied out of Iceberg into one DuckDB file for Superset.

It holds the gold and ops tables, for every table of the catalog its Athena metadata table
`"<table>$snapshots"` (the dashboards' freshness reads it), and the live metrics views' last two days
(the Live dashboard reads them), so a dashboard's SQL runs unchanged here and on Athena.

Superset opens the file read-only. The export writes a new file beside it and renames it over
the old one, so a running Superset sees either the previous complete file or the new one, never a
half-written file, and never meets a writer's lock (docs/decisions/0302-serving-duckdb-file.md).
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from pyiceberg.catalog import Catalog

from iceberg_tables.views import MINUTE_EVENTS, MINUTE_ORDERS, MINUTE_QUARANTINE, MINUTE_SESSIONS
from lakehouse.analytics.athena import SNAPSHOTS_SUFFIX, UnknownTableError, connect, ident, literal, snapshots, table_names

SERVED_NAMESPACES = ("gold", "ops")
# per minute (the Live dashboard's): their last LIVE_WINDOW of minutes is copied
SERVED_VIEWS = (MINUTE_EVENTS, MINUTE_SESSIONS, MINUTE_ORDERS, MINUTE_QUARANTINE)
LIVE_WINDOW = "INTERVAL 2 DAY"  # the Live dashboard shows the last hour; a re-export stays small however old the lake


def export_serving(catalog: Catalog, db_path: Path, tables: Iterable[str] | None = None) -> Path:
    """Materialize `tables` ('namespace.table'; default: every gold and ops table) into `db_path`, and the
    snapshots of every table of the catalog.

    Each table keeps its schema and name (`gold.daily_kpis` stays `gold.daily_kpis`), so the
    dashboards' SQL is the same on this file as on Athena. Returns `db_path`.
    """
    known = table_names(catalog)
    names = list(tables) if tables is not None else [t for t in known if t.split(".")[0] in SERVED_NAMESPACES]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise UnknownTableError(f"cannot export {', '.join(unknown)}: not in catalog '{catalog.name}' "
                                f"(it has {', '.join(known) or 'no tables'})")
    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = db_path.with_name(f".{db_path.name}.{uuid.uuid4().hex}.tmp")
    con = connect(catalog)
    try:
        con.execute(f"ATTACH {literal(str(scratch))} AS serving")
        for name in names:
            namespace, table = name.rsplit(".", 1)
            con.execute(f"CREATE SCHEMA IF NOT EXISTS serving.{ident(namespace)}")
            con.execute(f"CREATE TABLE serving.{ident(namespace)}.{ident(table)} AS "
                        f"SELECT * FROM {ident(namespace)}.{ident(table)}")
        for name in known:
            namespace, table = name.rsplit(".", 1)
            con.register("table_snapshots", snapshots(catalog.load_table(name)))
            con.execute(f"CREATE SCHEMA IF NOT EXISTS serving.{ident(namespace)}")
            con.execute(f"CREATE TABLE serving.{ident(namespace)}.{ident(table + SNAPSHOTS_SUFFIX)} AS "
                        "SELECT * FROM table_snapshots")
            con.unregister("table_snapshots")
        views = {f"{schema}.{name}" for schema, name in con.execute(
            "SELECT schema_name, view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
        for view in SERVED_VIEWS:
            if view.full_name in views:  # a lake from before the live half has none
                name = f"{ident(view.namespace)}.{ident(view.name)}"
                con.execute(f"CREATE SCHEMA IF NOT EXISTS serving.{ident(view.namespace)}")
                con.execute(f"CREATE TABLE serving.{name} AS SELECT * FROM {name} "
                            f"WHERE minute >= (SELECT max(minute) FROM {name}) - {LIVE_WINDOW}")
        con.execute("DETACH serving")  # checkpoints, so no .wal is left to go with the file
        os.replace(scratch, db_path)
    finally:
        con.close()
        scratch.unlink(missing_ok=True)
        scratch.with_name(scratch.name + ".wal").unlink(missing_ok=True)
    return db_path
