"""The dashboard bundle renders into what Superset's assets import needs, for both targets, and its
dataset matches the Iceberg table spec it charts; Superset's config and control fail clearly.
(The import itself: tests/e2e/test_dashboards.py.)"""
from __future__ import annotations

import importlib.util
import json
import socket
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlglot
import yaml
from pyiceberg.schema import Schema
from pyiceberg.types import DateType, LongType, NestedField

from cdk_app.config import PROJECT_ROOT
from dashboards.layout import LayoutError, position
from dashboards.query_context import ChartError, query_context
from dashboards.render import (BUNDLE_DIR, ROOT_FOLDER, BundleError, bundle_dashboards, render, render_bundle,
                               spec_schemas)
from iceberg_tables.specs import ALL_TABLES, GOLD_DAILY_KPIS, OPS_PIPELINE_RUNS
from lakehouse.analytics.superset import LocalSuperset, SupersetError
from tests.fixtures.superset import free_port

ATHENA = {"region": "eu-west-1", "s3_staging_dir": "s3://lakehouse-dev-athena/results/", "work_group": "lakehouse-dev",
          "databases": {ns: f"lakehouse_dev_{ns}" for ns in ("silver", "gold", "ops", "live", "fresh")}}


def unzip(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as bundle:
        return {name: yaml.safe_load(bundle.read(name)) for name in bundle.namelist()}


def of_kind(docs: dict[str, Any], folder: str) -> list[dict[str, Any]]:
    return [doc for path, doc in docs.items() if path.startswith(folder)]


@pytest.fixture(scope="module")
def local_docs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = render_bundle("duckdb", tmp_path_factory.mktemp("bundle") / "b.zip", serving_db=Path("/srv/lake/serving.duckdb"))
    return unzip(out)


def test_every_file_is_under_one_root_folder(local_docs: dict[str, Any]) -> None:
    assert {name.split("/")[0] for name in local_docs} == {ROOT_FOLDER}
    inside = sorted(name.removeprefix(f"{ROOT_FOLDER}/") for name in local_docs)
    assert inside == sorted(str(p.relative_to(BUNDLE_DIR)) for p in BUNDLE_DIR.rglob("*.yaml"))
    assert local_docs[f"{ROOT_FOLDER}/metadata.yaml"]["type"] == "assets"


def _placed(dashboard: dict[str, Any]) -> dict[int, str]:
    """The dashboard's charts: placeholder chart id -> chart UUID."""
    return {item["meta"]["chartId"]: item["meta"]["uuid"] for item in dashboard["position"].values()
            if isinstance(item, dict) and item.get("type") == "CHART"}


def test_references_between_objects_resolve(local_docs: dict[str, Any]) -> None:
    [database] = of_kind(local_docs, f"{ROOT_FOLDER}/databases/")
    datasets = {d["uuid"]: d for d in of_kind(local_docs, f"{ROOT_FOLDER}/datasets/")}
    charts = {c["uuid"]: c for c in of_kind(local_docs, f"{ROOT_FOLDER}/charts/")}
    dashboards = of_kind(local_docs, f"{ROOT_FOLDER}/dashboards/")
    assert {d["database_uuid"] for d in datasets.values()} == {database["uuid"]} and database["extra"] == {}
    assert {c["dataset_uuid"] for c in charts.values()} == set(datasets)  # every dataset is charted
    placed = [uuid for dashboard in dashboards for uuid in _placed(dashboard).values()]
    assert sorted(placed) == sorted(charts)  # every chart is on exactly one dashboard
    assert {d["dashboard_title"] for d in dashboards} >= {"Business", "Operations", "Data quality"}
    uuids = [doc["uuid"] for doc in local_docs.values() if "uuid" in doc]
    assert len(uuids) == len(set(uuids))


def test_dataset_columns_are_the_iceberg_spec_or_what_the_sql_returns(local_docs: dict[str, Any]) -> None:
    specs = {spec.full_name: spec for spec in ALL_TABLES}
    datasets = of_kind(local_docs, f"{ROOT_FOLDER}/datasets/")
    physical = [d for d in datasets if not d.get("sql")]
    assert {f"{d['schema']}.{d['table_name']}" for d in physical} >= {GOLD_DAILY_KPIS.full_name}
    for dataset in physical:
        spec = specs[f"{dataset['schema']}.{dataset['table_name']}"]
        assert [(c["column_name"], c["description"]) for c in dataset["columns"]] == [
            (c.name, c.doc) for c in spec.columns]
    kpis = next(d for d in physical if d["table_name"] == "daily_kpis")
    types = {c["column_name"]: c["type"] for c in kpis["columns"]}
    assert (types["event_date"], types["country"], types["events"], types["updated_at"]) == (
        "DATE", "VARCHAR", "BIGINT", "TIMESTAMP WITH TIME ZONE")
    assert {c["column_name"] for c in kpis["columns"] if c["is_dttm"]} == {"event_date", "updated_at"}
    assert kpis["main_dttm_col"] == "event_date"
    runs = next(d for d in datasets if d["table_name"] == "batch_runs")
    assert {c["column_name"]: c["type"] for c in runs["columns"]}["duration_seconds"] == "DOUBLE"
    assert "unaccounted" in {c["column_name"]: c["description"] for c in runs["columns"]}


def test_query_contexts_are_json_over_the_dataset_metrics_and_columns(local_docs: dict[str, Any]) -> None:
    datasets = {d["uuid"]: d for d in of_kind(local_docs, f"{ROOT_FOLDER}/datasets/")}
    for chart in of_kind(local_docs, f"{ROOT_FOLDER}/charts/"):
        dataset = datasets[chart["dataset_uuid"]]
        context = json.loads(chart["query_context"])
        for query in context["queries"]:
            assert set(query["metrics"]) <= {m["metric_name"] for m in dataset["metrics"]}
            names = {c if isinstance(c, str) else c["sqlExpression"] for c in query["columns"]}
            assert names <= {c["column_name"] for c in dataset["columns"]}, chart["slice_name"]
        assert context["form_data"]["viz_type"] == chart["viz_type"] == chart["params"]["viz_type"]
    failing = next(c for c in of_kind(local_docs, f"{ROOT_FOLDER}/charts/") if c["slice_name"] == "Failing checks")
    assert json.loads(failing["query_context"])["queries"][0]["extras"]["where"] == "(status = 'FAILED')"


def test_a_filter_reaches_the_charts_whose_dataset_has_its_column(local_docs: dict[str, Any]) -> None:
    charts = {c["uuid"]: c for c in of_kind(local_docs, f"{ROOT_FOLDER}/charts/")}
    [business] = [d for d in of_kind(local_docs, f"{ROOT_FOLDER}/dashboards/") if d["slug"] == "business"]
    filters = {f["name"]: f for f in business["metadata"]["native_filter_configuration"]}
    assert filters["Date range"]["filterType"] == "filter_time" and filters["Date range"]["scope"]["excluded"] == []
    country = filters["Country"]
    excluded = {charts[_placed(business)[chart_id]]["slice_name"] for chart_id in country["scope"]["excluded"]}
    assert excluded == {"Top products", "Revenue by category"}  # gold.product_sales_daily has no country
    assert country["targets"] == [{"column": {"name": "country"}, "datasetUuid": "4b1fc439-d46e-414f-951f-c81a7d1ef85b"}]


def test_local_target_opens_the_serving_file_read_only(local_docs: dict[str, Any]) -> None:
    [database] = of_kind(local_docs, f"{ROOT_FOLDER}/databases/")
    assert database["sqlalchemy_uri"] == "duckdb:////srv/lake/serving.duckdb?access_mode=read_only"
    assert {d["schema"] for d in of_kind(local_docs, f"{ROOT_FOLDER}/datasets/")} == {"gold", "ops", "fresh", "live"}


def test_the_serving_file_holds_every_fresh_view_a_dataset_reads(local_docs: dict[str, Any]) -> None:
    """The local Live dashboard reads the serving file: each per-minute view its datasets read is served."""
    import sqlglot

    from lakehouse.analytics.serving import SERVED_VIEWS

    read = {f"{t.db}.{t.name}" for d in of_kind(local_docs, f"{ROOT_FOLDER}/datasets/") if d.get("sql")
            for t in sqlglot.parse_one(d["sql"], read="athena").find_all(sqlglot.exp.Table) if t.db == "fresh"}
    assert read == {v.full_name for v in SERVED_VIEWS}
    [live] = [d for d in of_kind(local_docs, f"{ROOT_FOLDER}/dashboards/") if d["slug"] == "live"]
    charts = {d["uuid"]: d["slice_name"] for d in of_kind(local_docs, f"{ROOT_FOLDER}/charts/")}
    assert {"Orders per minute", "Revenue per minute (USD)", "Quarantine rate per source"} <= {
        charts[uuid] for uuid in _placed(live).values()}


def test_athena_target_uses_pyathena_the_glue_databases_and_athena_sql() -> None:
    docs = render("athena", **ATHENA)
    assert docs["databases/lakehouse.yaml"]["sqlalchemy_uri"] == (
        "awsathena+rest://@athena.eu-west-1.amazonaws.com:443/lakehouse_dev_gold"
        "?s3_staging_dir=s3%3A%2F%2Flakehouse-dev-athena%2Fresults%2F&work_group=lakehouse-dev")
    assert docs["datasets/lakehouse/daily_kpis.yaml"]["schema"] == "lakehouse_dev_gold"
    databases = set(ATHENA["databases"].values())
    virtual = [d for path, d in docs.items() if path.startswith("datasets/") and d.get("sql")]
    assert len(virtual) >= 4
    for dataset in virtual:
        assert dataset["schema"] in databases
        statement = sqlglot.parse_one(dataset["sql"], read="athena")  # raises unless it is Athena SQL
        assert {t.db for t in statement.find_all(sqlglot.exp.Table)} <= databases, dataset["table_name"]
    local = render("duckdb", serving_db=Path("/x.duckdb"))
    for path in docs:
        if path.startswith(("charts/", "dashboards/")):
            assert docs[path] == local[path]  # only the connection and the datasets differ between targets


@pytest.mark.parametrize(("target", "params", "message"), [
    ("bigquery", {}, "unknown target 'bigquery'"),
    ("duckdb", {}, "missing a required argument: 'serving_db'"),
    ("duckdb", {"serving_db": "x", "region": "eu-west-1"}, "unexpected keyword argument 'region'"),
    ("athena", {**ATHENA, "s3_staging_dir": "/tmp/results"}, "s3_staging_dir must be an s3:// URI"),
])
def test_bad_parameters_are_named(target: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(BundleError, match=message):
        render(target, **params)


def test_a_column_the_charts_need_but_the_table_lacks_is_named() -> None:
    narrower = Schema(NestedField(1, "event_date", DateType(), required=True),
                      NestedField(2, "events", LongType(), required=True))
    with pytest.raises(BundleError, match=r"\['active_users', 'add_to_cart', 'checkouts', .*\] are not in table gold.daily_kpis"):
        render("duckdb", tables={**spec_schemas(), "gold.daily_kpis": narrower}, serving_db="x")


def test_a_virtual_dataset_whose_sql_needs_a_missing_column_is_named() -> None:
    runs = OPS_PIPELINE_RUNS.schema()
    without = Schema(*[f for f in runs.fields if f.name != "finished_at"])
    with pytest.raises(BundleError, match=r"datasets/lakehouse/batch_runs.yaml: its SQL does not run .*finished_at"):
        render("duckdb", tables={**spec_schemas(), "ops.pipeline_runs": without}, serving_db="x")


@pytest.mark.parametrize(("rows", "message"), [
    ([[{"chart": "No such chart", "width": 4}]], "no chart named 'No such chart'"),
    ([[{"chart": "Funnel", "width": 8}, {"chart": "Total events", "width": 5}]], "row 1 is wider than 12 columns"),
    ([[{"chart": "Funnel", "width": 4}], [{"chart": "Funnel", "width": 4}]], "chart 'Funnel' is placed twice"),
])
def test_a_bad_dashboard_layout_is_named(rows: list, message: str) -> None:
    charts = {"Funnel": "u1", "Total events": "u2"}
    with pytest.raises(LayoutError, match=f"dashboard 'D': {message}"):
        position("D", rows, charts)


def test_a_chart_of_an_unsupported_kind_is_named() -> None:
    with pytest.raises(ChartError, match="chart 'Map': viz_type 'deck_arc' is not one the bundle builds"):
        query_context("Map", {"viz_type": "deck_arc"})


def test_superset_config_is_offline_and_keeps_state_under_its_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_SUPERSET_HOME", str(tmp_path))
    monkeypatch.delenv("SUPERSET_SECRET_KEY", raising=False)
    monkeypatch.delenv("SUPERSET_METADATA_URI", raising=False)
    spec = importlib.util.spec_from_file_location("superset_config", BUNDLE_DIR.parent / "superset_config.py")
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    assert config.SQLALCHEMY_DATABASE_URI.startswith(f"sqlite:///{tmp_path}/")
    assert "local-only" in config.SECRET_KEY
    policy = config.TALISMAN_CONFIG["content_security_policy"]
    sources = [s for directive in policy.values() for s in ([directive] if isinstance(directive, str) else directive)]
    assert not [s for s in sources if "://" in s or "." in s], "the CSP must allow no other host"
    assert config.RATELIMIT_STORAGE_URI == "memory://"


def test_superset_control_says_make_setup_when_its_venv_is_missing(tmp_path: Path) -> None:
    with pytest.raises(SupersetError, match=r"venv .*nowhere is not installed \(run make setup\)"):
        LocalSuperset(tmp_path / "home", free_port(), venv=tmp_path / "nowhere").init()


def test_superset_refuses_a_port_that_is_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(SupersetError, match=f"port {taken.getsockname()[1]} on 127.0.0.1 is already in use"):
            LocalSuperset(tmp_path / "home", taken.getsockname()[1]).start()


def test_the_readme_shows_a_picture_of_every_dashboard() -> None:
    """`make screenshots` writes docs/images/<slug>.png per dashboard; a new dashboard needs its picture."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    for slug in bundle_dashboards().values():
        assert (PROJECT_ROOT / "docs" / "images" / f"{slug}.png").stat().st_size > 10_000
        assert f"(docs/images/{slug}.png)" in readme
