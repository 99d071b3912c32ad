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
import yaml
from pyiceberg.schema import Schema
from pyiceberg.types import DateType, LongType, NestedField

from cdk_app.config import PROJECT_ROOT
from dashboards.render import BUNDLE_DIR, ROOT_FOLDER, BundleError, bundle_dashboards, render, render_bundle
from iceberg_tables.specs import GOLD_DAILY_KPIS
from lakehouse.superset import LocalSuperset, SupersetError
from tests.fixtures.superset import free_port

ATHENA = {"region": "eu-west-1", "s3_staging_dir": "s3://lakehouse-dev-athena/results/", "work_group": "lakehouse-dev",
          "databases": {"gold": "lakehouse_dev_gold"}}


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


def test_references_between_objects_resolve(local_docs: dict[str, Any]) -> None:
    [database] = of_kind(local_docs, f"{ROOT_FOLDER}/databases/")
    [dataset] = of_kind(local_docs, f"{ROOT_FOLDER}/datasets/")
    charts = of_kind(local_docs, f"{ROOT_FOLDER}/charts/")
    [dashboard] = of_kind(local_docs, f"{ROOT_FOLDER}/dashboards/")
    assert dataset["database_uuid"] == database["uuid"] and database["extra"] == {}
    assert {c["dataset_uuid"] for c in charts} == {dataset["uuid"]}
    placed = {item["meta"]["uuid"] for item in dashboard["position"].values()
              if isinstance(item, dict) and item.get("type") == "CHART"}
    assert placed == {c["uuid"] for c in charts}
    assert all("chartId" in item["meta"] for item in dashboard["position"].values()
               if isinstance(item, dict) and item.get("type") == "CHART")
    uuids = [doc["uuid"] for doc in local_docs.values() if "uuid" in doc]
    assert len(uuids) == len(set(uuids))


def test_dataset_columns_are_the_iceberg_spec(local_docs: dict[str, Any]) -> None:
    [dataset] = of_kind(local_docs, f"{ROOT_FOLDER}/datasets/")
    assert f"{dataset['schema']}.{dataset['table_name']}" == GOLD_DAILY_KPIS.full_name
    assert [(c["column_name"], c["description"]) for c in dataset["columns"]] == [
        (c.name, c.doc) for c in GOLD_DAILY_KPIS.columns]
    types = {c["column_name"]: c["type"] for c in dataset["columns"]}
    assert (types["event_date"], types["country"], types["events"], types["updated_at"]) == (
        "DATE", "VARCHAR", "BIGINT", "TIMESTAMP WITH TIME ZONE")
    assert {c["column_name"] for c in dataset["columns"] if c["is_dttm"]} == {"event_date", "updated_at"}
    assert dataset["main_dttm_col"] == "event_date"


def test_query_contexts_are_json_over_the_dataset_metrics(local_docs: dict[str, Any]) -> None:
    [dataset] = of_kind(local_docs, f"{ROOT_FOLDER}/datasets/")
    metrics = {m["metric_name"] for m in dataset["metrics"]}
    for chart in of_kind(local_docs, f"{ROOT_FOLDER}/charts/"):
        context = json.loads(chart["query_context"])
        for query in context["queries"]:
            assert set(query["metrics"]) <= metrics
        assert context["form_data"]["viz_type"] == chart["viz_type"] == chart["params"]["viz_type"]


def test_local_target_opens_the_serving_file_read_only(local_docs: dict[str, Any]) -> None:
    [database] = of_kind(local_docs, f"{ROOT_FOLDER}/databases/")
    assert database["sqlalchemy_uri"] == "duckdb:////srv/lake/serving.duckdb?access_mode=read_only"
    [dataset] = of_kind(local_docs, f"{ROOT_FOLDER}/datasets/")
    assert dataset["schema"] == "gold"


def test_athena_target_uses_pyathena_and_the_glue_database() -> None:
    docs = render("athena", **ATHENA)
    assert docs["databases/lakehouse.yaml"]["sqlalchemy_uri"] == (
        "awsathena+rest://@athena.eu-west-1.amazonaws.com:443/lakehouse_dev_gold"
        "?s3_staging_dir=s3%3A%2F%2Flakehouse-dev-athena%2Fresults%2F&work_group=lakehouse-dev")
    assert docs["datasets/lakehouse/daily_kpis.yaml"]["schema"] == "lakehouse_dev_gold"
    local = render("duckdb", serving_db=Path("/x.duckdb"))
    for path in ("charts/total_events.yaml", "charts/events_by_day.yaml", "dashboards/shop_kpis.yaml"):
        assert docs[path] == local[path]  # only the connection differs between targets


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
    with pytest.raises(BundleError, match=r"\['active_users', 'add_to_cart', 'checkouts'\] are not in table gold.daily_kpis"):
        render("duckdb", tables={"gold.daily_kpis": narrower}, serving_db="x")


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
