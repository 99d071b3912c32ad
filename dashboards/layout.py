"""A dashboard's Superset position and native filters, from the bundle's short form.

A dashboard file lists its charts as rows (`rows: [[{chart: <slice name>, width: 1-12}, ...], ...]`)
and its filters (`filters: [{name, type: time}, {name, type: select, column}]`). Superset's own
form (a tree of ROW and CHART nodes; filters scoped by chart id) is derived here, so a chart is
placed by its name and a filter reaches exactly the charts whose dataset has its column.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

DEFAULT_HEIGHT = 50
GRID_WIDTH = 12


class LayoutError(ValueError):
    """A dashboard the bundle cannot lay out: the message names the dashboard and the entry."""


def _node_id(kind: str, text: str) -> str:
    return f"{kind}-" + re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def position(title: str, rows: list[list[dict[str, Any]]], charts: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, int]]:
    """Superset's position tree for `rows`, and the placeholder chart id given to each chart name.

    `charts` maps each chart's name to its UUID; the import replaces the placeholder ids by the real ones.
    """
    tree: dict[str, Any] = {"DASHBOARD_VERSION_KEY": "v2",
                            "ROOT_ID": {"id": "ROOT_ID", "type": "ROOT", "children": ["GRID_ID"]},
                            "GRID_ID": {"id": "GRID_ID", "type": "GRID", "children": [], "parents": ["ROOT_ID"]},
                            "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": title}}}
    ids: dict[str, int] = {}
    for number, row in enumerate(rows, start=1):
        row_id = f"ROW-{number}"
        tree["GRID_ID"]["children"].append(row_id)
        tree[row_id] = {"id": row_id, "type": "ROW", "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                        "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        if sum(item["width"] for item in row) > GRID_WIDTH:
            raise LayoutError(f"dashboard '{title}': row {number} is wider than {GRID_WIDTH} columns")
        for item in row:
            name = item["chart"]
            if name not in charts:
                raise LayoutError(f"dashboard '{title}': no chart named '{name}' in the bundle")
            if name in ids:
                raise LayoutError(f"dashboard '{title}': chart '{name}' is placed twice")
            ids[name] = len(ids) + 1
            node_id = _node_id("CHART", name)
            tree[row_id]["children"].append(node_id)
            tree[node_id] = {"id": node_id, "type": "CHART", "children": [], "parents": ["ROOT_ID", "GRID_ID", row_id],
                             "meta": {"chartId": ids[name], "uuid": charts[name], "width": item["width"],
                                      "height": item.get("height", DEFAULT_HEIGHT), "sliceName": name}}
    return tree, ids


def native_filters(title: str, filters: list[dict[str, Any]], ids: Mapping[str, int],
                   chart_columns: Mapping[str, tuple[str, set[str]]]) -> list[dict[str, Any]]:
    """Superset's native_filter_configuration for `filters`.

    `chart_columns` maps each placed chart's name to (its dataset's UUID, that dataset's column names).
    A select filter reads its values from the first placed chart's dataset that has its column, and
    leaves out the charts whose dataset lacks it; the time filter reaches every chart.
    """
    configured = []
    for spec in filters:
        base = {"id": _node_id("NATIVE_FILTER", spec["name"]), "name": spec["name"], "type": "NATIVE_FILTER",
                "description": spec.get("description", ""), "cascadeParentIds": [],
                "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}}}
        if spec["type"] == "time":
            configured.append({**base, "filterType": "filter_time", "targets": [{}], "controlValues": {},
                               "scope": {"rootPath": ["ROOT_ID"], "excluded": []}})
        elif spec["type"] == "select":
            column = spec["column"]
            having = [name for name in ids if column in chart_columns[name][1]]
            if not having:
                raise LayoutError(f"dashboard '{title}': filter '{spec['name']}': no chart's dataset has column "
                                  f"'{column}'")
            configured.append({
                **base, "filterType": "filter_select",
                "targets": [{"column": {"name": column}, "datasetUuid": chart_columns[having[0]][0]}],
                "controlValues": {"enableEmptyFilter": False, "defaultToFirstItem": False, "multiSelect": True,
                                  "searchAllOptions": False, "inverseSelection": False},
                "scope": {"rootPath": ["ROOT_ID"], "excluded": sorted(ids[n] for n in ids if n not in having)}})
        else:
            raise LayoutError(f"dashboard '{title}': filter '{spec['name']}' has type {spec['type']!r}; "
                              "use time or select")
    return configured
