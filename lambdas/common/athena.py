"""Athena through boto3: start a statement in a workgroup, wait until it ends, read every page of its result.

The workgroup's enforced settings name the results location and its encryption, so a caller names nothing
else. Used by the data-quality function (lambdas/data_quality/engines.py) and by the CLI against a deployed
environment (`lakehouse query --env`).
"""
from __future__ import annotations

import time
from typing import Any

TERMINAL_FAILURES = ("FAILED", "CANCELLED")
Values = tuple[str | None, ...]  # Athena's result cells: text, or None for SQL NULL


class QueryFailed(RuntimeError):
    """Athena ended a query FAILED or CANCELLED: the message has its reason and query id."""


def run_query(client: Any, sql: str, workgroup: str, poll_seconds: float = 0.5) -> tuple[list[str], list[Values]]:
    """(column names, rows) of one statement. A caller's own timeout (a Lambda's) bounds a query that never
    ends."""
    query_id = client.start_query_execution(QueryString=sql, WorkGroup=workgroup)["QueryExecutionId"]
    while True:
        status = client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] == "SUCCEEDED":
            break
        if status["State"] in TERMINAL_FAILURES:
            raise QueryFailed(f"Athena query {query_id} {status['State']}: "
                              f"{status.get('StateChangeReason', 'no reason given')}\n  in: {sql}")
        time.sleep(poll_seconds)
    rows: list[Values] = []
    for page in client.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        rows += [tuple(cell.get("VarCharValue") for cell in row["Data"]) for row in page["ResultSet"]["Rows"]]
    if not rows:
        return [], []
    header, *body = rows  # a SELECT's first row holds the column names
    return [name or "" for name in header], body
