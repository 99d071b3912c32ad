"""A chart's query_context, built from its params as Superset's own frontend builds it.

The chart-data API (GET /api/v1/chart/<id>/data/) runs a chart's saved query_context, while the
browser rebuilds the query from the params. Writing both by hand in every chart file would state
each chart twice, so the bundle's charts hold only their params and this module derives the rest,
for the visualizations the bundle uses.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Query = dict[str, Any]


class ChartError(ValueError):
    """A chart the bundle cannot express: the message names the chart and the parameter."""


def metrics_of(params: dict[str, Any]) -> list[str]:
    """The saved metrics a chart shows (`metric` or `metrics`)."""
    return list(params.get("metrics", [])) + ([params["metric"]] if "metric" in params else [])


def columns_of(params: dict[str, Any]) -> list[str]:
    """The dataset columns a chart groups by, puts on its x-axis or lists."""
    return [*([params["x_axis"]] if "x_axis" in params else []), *params.get("groupby", []),
            *params.get("all_columns", [])]


def _where(params: dict[str, Any]) -> str:
    """The chart's SQL adhoc WHERE filters, as the frontend puts them in `extras.where`."""
    clauses = []
    for adhoc in params.get("adhoc_filters", []):
        if adhoc.get("expressionType") != "SQL" or adhoc.get("clause") != "WHERE":
            raise ChartError(f"only SQL WHERE adhoc filters are supported, got {adhoc}")
        clauses.append(f"({adhoc['sqlExpression']})")
    return " AND ".join(clauses)


def _axis(params: dict[str, Any]) -> dict[str, Any]:
    axis = {"columnType": "BASE_AXIS", "sqlExpression": params["x_axis"], "label": params["x_axis"],
            "expressionType": "SQL"}
    if "time_grain_sqla" in params:
        axis["timeGrain"] = params["time_grain_sqla"]
    return axis


def _pivot(params: dict[str, Any], metrics: list[str]) -> list[dict[str, Any]]:
    """Rows become one per x value, a column per metric (and group: '<metric>, <group>')."""
    return [{"operation": "pivot", "options": {
        "index": [params["x_axis"]], "columns": list(params.get("groupby", [])),
        "aggregates": {m: {"operator": "mean"} for m in metrics}, "drop_missing_columns": False}},
        {"operation": "flatten"}]


def _timeseries(params: dict[str, Any]) -> Query:
    metrics = metrics_of(params)
    return {"columns": [_axis(params), *params.get("groupby", [])], "metrics": metrics,
            "orderby": [[metrics[0], False]], "post_processing": _pivot(params, metrics)}


def _big_number(params: dict[str, Any]) -> Query:
    """A number with its trendline; the chart compares the last point with `compare_lag` points before."""
    metrics = metrics_of(params)
    return {"columns": [_axis(params)], "metrics": metrics, "post_processing": _pivot(params, metrics)}


def _big_number_total(params: dict[str, Any]) -> Query:
    return {"columns": [], "metrics": metrics_of(params), "row_limit": 1}


def _ranked(params: dict[str, Any]) -> Query:
    """Groups ranked by the metric: funnel, pie."""
    return {"columns": list(params["groupby"]), "metrics": metrics_of(params),
            "orderby": [[metrics_of(params)[0], False]]}


def _table(params: dict[str, Any]) -> Query:
    if params.get("query_mode") == "raw":
        order = [json.loads(item) for item in params.get("order_by_cols", [])]
        return {"columns": list(params["all_columns"]), "metrics": [], "orderby": order}
    metrics = metrics_of(params)
    return {"columns": list(params.get("groupby", [])), "metrics": metrics,
            "orderby": [[metrics[0], not params.get("order_desc", True)]]}


BUILDERS: dict[str, Callable[[dict[str, Any]], Query]] = {
    "echarts_timeseries_line": _timeseries, "echarts_timeseries_bar": _timeseries, "big_number": _big_number,
    "big_number_total": _big_number_total, "funnel": _ranked, "pie": _ranked, "table": _table}


def query_context(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The query_context Superset saves with chart `name` (the datasource id is set on import)."""
    viz = params.get("viz_type")
    if viz not in BUILDERS:
        raise ChartError(f"chart '{name}': viz_type {viz!r} is not one the bundle builds ({', '.join(BUILDERS)})")
    query = {"filters": [], "extras": {"where": _where(params), "having": ""},
             "row_limit": params.get("row_limit", 10000), **BUILDERS[viz](params)}
    form_data = {k: v for k, v in params.items() if k != "adhoc_filters"}
    return {"datasource": {"id": 0, "type": "table"}, "force": False, "queries": [query], "form_data": form_data,
            "result_format": "json", "result_type": "full"}
