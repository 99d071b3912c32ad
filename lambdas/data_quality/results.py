"""The checks' results in the lake: one row per check in ops.quality_results, and the run's `quality`
step row in ops.pipeline_runs. A retried invocation replaces its run's earlier rows (a delete and an
append in one commit per table), so each run keeps one set."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime

import pyarrow as pa
from pyiceberg.catalog import Catalog
from pyiceberg.expressions import And, BooleanExpression, EqualTo
from pyiceberg.table import Table

from iceberg_tables.specs import OPS_PIPELINE_RUNS, OPS_QUALITY_RESULTS
from lambdas.data_quality.checks import Result

STEP = "quality"
PASSED, FAILED = "PASSED", "FAILED"
MAX_MESSAGE_CHARS = 4000


def _replace(table: Table, rows: list[dict], where: BooleanExpression) -> None:
    with table.transaction() as transaction, warnings.catch_warnings():
        # a first attempt has nothing to replace: not worth a warning in every run's log
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        transaction.delete(where)
        transaction.append(pa.Table.from_pylist(rows, schema=table.schema().as_arrow()))


def summary(results: Sequence[Result]) -> str:
    """The failed checks with their findings, or how many passed."""
    failed = [r for r in results if not r.passed]
    if not failed:
        return f"all {len(results)} checks passed"
    return f"{len(failed)} of {len(results)} checks failed: " + "; ".join(f"{r.label}: {r.message}" for r in failed)


def record(catalog: Catalog, run_id: str, results: Sequence[Result], started_at: datetime,
           finished_at: datetime) -> None:
    checks = catalog.load_table(OPS_QUALITY_RESULTS.full_name)
    _replace(checks, [{
        "run_id": run_id, "check_name": r.check_name, "table_name": r.table_name,
        "status": PASSED if r.passed else FAILED, "observed": r.observed, "threshold": r.threshold,
        "message": r.message, "checked_at": finished_at,
    } for r in results], EqualTo("run_id", run_id))
    runs = catalog.load_table(OPS_PIPELINE_RUNS.full_name)
    _replace(runs, [{
        "run_id": run_id, "step": STEP, "status": "SUCCEEDED" if all(r.passed for r in results) else "FAILED",
        "started_at": started_at, "finished_at": finished_at, "rows_written": len(results),
        "message": summary(results)[:MAX_MESSAGE_CHARS],
    }], And(EqualTo("run_id", run_id), EqualTo("step", STEP)))
