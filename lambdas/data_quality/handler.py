"""The data_quality Lambda: the batch pipeline's quality step (docs/runbooks/quality-failure.md).

Event: {"run_id": the execution name}. Runs every check of checks.py on the engine the environment
names (engines.py), records the results (results.py) and returns
{"run_id", "passed", "checks", "failed": [labels], "summary"}; the state machine fails the run and
alerts when `passed` is false. A check that cannot run (a query error) raises: the step fails.

Environment: QUALITY_ENGINE, ATHENA_WORKGROUP (athena), QUALITY_THRESHOLDS (JSON, from cdk.json's
`quality`), and the catalog's variables (iceberg_tables.catalogs).
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

from aws_lambda_powertools import Logger

from iceberg_tables.catalogs import catalog_from_env
from lambdas.data_quality import results
from lambdas.data_quality.checks import Result, all_checks
from lambdas.data_quality.engines import Engine, engine_from_env
from lambdas.data_quality.thresholds import ENV_THRESHOLDS, Thresholds

logger = Logger(service="data_quality")


class BadQualityEvent(ValueError):
    """The event names no run: the message says what was received."""


def run_checks(engine: Engine, run_id: str, thresholds: Thresholds, now: datetime) -> list[Result]:
    found = []
    for check in all_checks(run_id, thresholds, now):
        rows = engine.rows(check.sql)
        if len(rows) != 1:
            raise RuntimeError(f"check {check.name} on {check.table} returned {len(rows)} rows, expected 1")
        found.append(check.result(rows[0]))
    return found


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run_id = event.get("run_id") if isinstance(event, dict) else None
    if not isinstance(run_id, str) or not run_id:
        raise BadQualityEvent(f"event needs a non-empty 'run_id' string, got {event!r}")
    # Read per invocation: the local runtime sets a function's environment per invoke.
    thresholds = Thresholds.from_json(os.environ.get(ENV_THRESHOLDS))
    catalog = catalog_from_env()
    started_at = datetime.now(timezone.utc)
    engine = engine_from_env(os.environ, catalog)
    try:
        found = run_checks(engine, run_id, thresholds, started_at)
    finally:
        engine.close()
    results.record(catalog, run_id, found, started_at, datetime.now(timezone.utc))
    failed = [r.label for r in found if not r.passed]
    outcome = {"run_id": run_id, "passed": not failed, "checks": len(found), "failed": failed,
               "summary": results.summary(found)}
    logger.info("quality checked", extra=outcome)
    return outcome
