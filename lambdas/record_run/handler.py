"""The record_run Lambda: the batch run's own row in ops.pipeline_runs (step "run").

The state machine calls it last, on success and on failure (and for a run skipped because another
held the run lock), with {run_id, status, started_at (the execution's start, ISO-8601), steps (the
state: each step's result, and `error` after a Catch)}. The row copies the conservation ledger from
the run's silver_merge row, which covers exactly the staging batches this run merged (a re-run
records zeros; a skipped run, nulls), so one row per run tells what the run did. The state machine retries
this step, and a retry can follow an append that committed: the row replaces the run's earlier one, in
one commit, so a run never has two (the data-quality check `unique_keys` on ops.pipeline_runs holds it).

Environment: LAKEHOUSE_WAREHOUSE + LAKEHOUSE_CATALOG_DB (local sqlite catalog) or WAREHOUSE_URI
(Glue catalog in AWS); see iceberg_tables.catalogs.
"""
from __future__ import annotations

import functools
import os
from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
from aws_lambda_powertools import Logger
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, EqualTo
from pyiceberg.table import Table

from iceberg_tables.catalogs import ENV_CATALOG_DB, ENV_WAREHOUSE, ENV_WAREHOUSE_URI, catalog_from_env
from iceberg_tables.specs import OPS_PIPELINE_RUNS
from lambdas.common.execution import start_time

logger = Logger(service="record_run")

RUN_STEP = "run"
STATUSES = ("SUCCEEDED", "FAILED", "SKIPPED")  # SKIPPED: another run held the run lock; nothing ran
LEDGER = ("received", "clean", "quarantined", "duplicates", "quarantined_by_reason")
MAX_MESSAGE_CHARS = 4000


class BadRunEvent(ValueError):
    """The state machine sent an event this function cannot record: the message names the field."""


def _started_at(value: Any) -> datetime:
    try:
        return start_time(value)
    except ValueError as err:
        raise BadRunEvent(f"'started_at' {err}") from err


def _message(status: str, steps: dict[str, Any]) -> str:
    """The failure's error and cause, or each step's state and duration."""
    error = steps.get("error")
    if isinstance(error, dict):
        text = f"{error.get('Error', 'error')}: {error.get('Cause', '')}"
    else:
        parts = [f"{name} {result.get('JobRunState', '?')} ({result.get('ExecutionTime', '?')} s)"
                 for name, result in steps.items() if isinstance(result, dict) and "JobRunState" in result]
        text = f"{status}: " + (", ".join(parts) or "no step results")
    return text[:MAX_MESSAGE_CHARS]


def _run_rows(table: Table, run_id: str) -> list[dict[str, Any]]:
    """This run's rows of ops.pipeline_runs: its steps', and its own when a retry records it again."""
    scan = table.scan(row_filter=EqualTo("run_id", run_id), selected_fields=("step", "finished_at", *LEDGER))
    return scan.to_arrow().to_pylist()


def _ledger(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The ledger of this run's step row that has one (silver_merge); nulls when the run failed before it."""
    with_ledger = [r for r in rows if r["step"] != RUN_STEP and r["received"] is not None]
    if not with_ledger:
        return dict.fromkeys(LEDGER)
    # silver_merge keeps one row per run (a retry replaces it); a lake from before that may hold two
    latest = max(with_ledger, key=lambda r: r["finished_at"])
    return {key: latest[key] for key in LEDGER}


@functools.lru_cache(maxsize=4)
def _catalog(warehouse: str | None, catalog_db: str | None, warehouse_uri: str | None) -> Catalog:
    environ = {k: v for k, v in ((ENV_WAREHOUSE, warehouse), (ENV_CATALOG_DB, catalog_db),
                                 (ENV_WAREHOUSE_URI, warehouse_uri)) if v}
    return catalog_from_env(environ)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    for key in ("run_id", "status", "started_at"):
        if key not in event:
            raise BadRunEvent(f"event has no '{key}' (keys: {sorted(event)})")
    run_id, status = str(event["run_id"]), event["status"]
    if status not in STATUSES:
        raise BadRunEvent(f"'status' must be one of {STATUSES}, got {status!r}")
    steps = event.get("steps") if isinstance(event.get("steps"), dict) else {}
    # Read per invocation: the local runtime sets a function's environment per invoke.
    catalog = _catalog(os.environ.get(ENV_WAREHOUSE), os.environ.get(ENV_CATALOG_DB),
                       os.environ.get(ENV_WAREHOUSE_URI))
    table = catalog.load_table(OPS_PIPELINE_RUNS.full_name)
    earlier = _run_rows(table, run_id)
    row = {
        "run_id": run_id, "step": RUN_STEP, "status": status, "started_at": _started_at(event["started_at"]),
        "finished_at": datetime.now(timezone.utc), **_ledger(earlier), "rows_written": None,
        "message": _message(status, steps),
    }
    recorded = pa.Table.from_pylist([row], schema=table.schema().as_arrow())
    if any(r["step"] == RUN_STEP for r in earlier):  # a retry: replace the row, in one commit
        table.overwrite(recorded, overwrite_filter=And(EqualTo("run_id", run_id), EqualTo("step", RUN_STEP)))
    else:
        table.append(recorded)
    logger.info("run recorded", extra={"run_id": run_id, "status": status})
    return {key: value.isoformat() if isinstance(value, datetime) else value for key, value in row.items()}
