"""Where the checks' SQL runs: Athena in AWS, the project's DuckDB stand-in for Athena locally.

The environment chooses (QUALITY_ENGINE): `athena` needs ATHENA_WORKGROUP (its enforced settings
name the results location and encryption); `duckdb` is the local runtime's Athena stand-in, which the
local runtime hands in (`use_local_engine`, decision 0005): code that runs in AWS never imports it. Both
return rows of numbers (or None); a failed Athena query raises lambdas.common.athena.QueryFailed.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import boto3
from pyiceberg.catalog import Catalog

from lambdas.common.athena import run_query

ENV_ENGINE = "QUALITY_ENGINE"
ENV_WORKGROUP = "ATHENA_WORKGROUP"
ATHENA, DUCKDB = "athena", "duckdb"
NumberRow = tuple[float | None, ...]


class EngineConfigError(ValueError):
    """The environment names no usable query engine: the message says what to set."""


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
    """Athena through boto3 (lambdas/common/athena.py), each cell read as a number."""

    def __init__(self, workgroup: str, client: Any = None, poll_seconds: float = 0.5) -> None:
        self._workgroup, self._poll = workgroup, poll_seconds
        self._client = client or boto3.client("athena")

    def rows(self, sql: str) -> list[NumberRow]:
        _, rows = run_query(self._client, sql, self._workgroup, self._poll)
        return [tuple(number(value) for value in row) for row in rows]

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
