"""The data-quality function's engine on one machine: its Athena SQL run by the Athena stand-in.

The function (lambdas/data_quality/) never imports the local runtime; `provision` hands this engine in
with `use_local_engine`, for QUALITY_ENGINE=duckdb.
"""
from __future__ import annotations

from pyiceberg.catalog import Catalog
from sqlglot.schema import MappingSchema

from lakehouse.analytics.athena import column_types, connect, transpile
from lambdas.data_quality.engines import NumberRow, number


class StandInEngine:
    """One DuckDB connection: every check sees the same snapshot of each table, as the checks of one run
    should."""

    def __init__(self, catalog: Catalog) -> None:
        self._con = connect(catalog)
        self._schema = MappingSchema(column_types(self._con), dialect="duckdb")

    def rows(self, sql: str) -> list[NumberRow]:
        return [tuple(number(value) for value in row)
                for row in self._con.execute(transpile(sql, self._schema)).fetchall()]

    def close(self) -> None:
        self._con.close()
