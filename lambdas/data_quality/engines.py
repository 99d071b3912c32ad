"""Where the checks' SQL runs: Athena in AWS, the project's DuckDB stand-in for Athena locally.

The environment chooses (QUALITY_ENGINE): `athena` needs ATHENA_WORKGROUP (its enforced settings
name the results location and encryption); `duckdb` reads the local Iceberg catalog through
lakehouse/analytics/athena.py, which transpiles the same Athena SQL. Both return rows of numbers (or None).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import boto3
from pyiceberg.catalog import Catalog

ENV_ENGINE = "QUALITY_ENGINE"
ENV_WORKGROUP = "ATHENA_WORKGROUP"
ATHENA, DUCKDB = "athena", "duckdb"
NumberRow = tuple[float | None, ...]


class EngineConfigError(ValueError):
    """The environment names no usable query engine: the message says what to set."""


class QueryFailed(RuntimeError):
    """Athena ended a query FAILED or CANCELLED: the message has its reason and query id."""


class Engine(Protocol):
    def rows(self, sql: str) -> list[NumberRow]:
        """Run one Athena SQL statement; its result rows, every value a float or None."""

    def close(self) -> None:
        """Free what the engine holds."""


def number(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, Decimal, str)):
        return float(value)
    raise TypeError(f"a check's SQL must return numbers, got {value!r}")


class AthenaEngine:
    """Athena through boto3: start, poll until terminal, read the (small) result."""

    TERMINAL_FAILURES = ("FAILED", "CANCELLED")

    def __init__(self, workgroup: str, client: Any = None, poll_seconds: float = 0.5) -> None:
        self._workgroup, self._poll = workgroup, poll_seconds
        self._client = client or boto3.client("athena")

    def rows(self, sql: str) -> list[NumberRow]:
        query_id = self._client.start_query_execution(QueryString=sql, WorkGroup=self._workgroup)["QueryExecutionId"]
        while True:
            status = self._client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
            if status["State"] == "SUCCEEDED":
                break
            if status["State"] in self.TERMINAL_FAILURES:
                raise QueryFailed(f"Athena query {query_id} {status['State']}: "
                                  f"{status.get('StateChangeReason', 'no reason given')}\n  in: {sql}")
            time.sleep(self._poll)  # the Lambda's timeout bounds a query that never ends
        result = self._client.get_query_results(QueryExecutionId=query_id)["ResultSet"]["Rows"]
        # a SELECT's first row holds the column names
        return [tuple(number(cell.get("VarCharValue")) for cell in row["Data"]) for row in result[1:]]

    def close(self) -> None:
        """Nothing to free: each query is its own."""


# The local runtime's engine over a catalog, when it has handed one in: None in AWS.
_local_engine: Callable[[Catalog], Engine] | None = None


def use_local_engine(factory: Callable[[Catalog], Engine]) -> None:
    """Hand in the engine that QUALITY_ENGINE=duckdb means: the local runtime does, as it provisions the
    function (lakehouse/cloud/provision.py)."""
    global _local_engine
    _local_engine = factory


def engine_from_env(environ: Mapping[str, str], catalog: Catalog) -> Engine:
    name = environ.get(ENV_ENGINE)
    if name == ATHENA:
        workgroup = environ.get(ENV_WORKGROUP)
        if not workgroup:
            raise EngineConfigError(f"{ENV_ENGINE}={ATHENA} needs {ENV_WORKGROUP}")
        return AthenaEngine(workgroup)
    if name == DUCKDB:
        if _local_engine is None:
            raise EngineConfigError(f"{ENV_ENGINE}={DUCKDB} is the local runtime's engine, and none was handed in "
                                    f"(use_local_engine): in AWS set {ENV_ENGINE}={ATHENA}")
        return _local_engine(catalog)
    raise EngineConfigError(f"{ENV_ENGINE} must be '{ATHENA}' or '{DUCKDB}', got {name!r}")
