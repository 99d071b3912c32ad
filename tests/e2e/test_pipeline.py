"""The whole pipeline, as a user runs it: `lakehouse demo --no-serve --json` on 10,000 events with defects.

The expected numbers come from the generator's ground truth, computed from its own event objects,
independently of the cleaner, the Spark jobs and DuckDB. moto stands in for AWS (inside the demo).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cdk_app import config
from cdk_app.config import PROJECT_ROOT
from lakehouse.analytics import athena
from lakehouse.analytics.serving import export_serving
from lakehouse.analytics.superset import LocalSuperset
from lakehouse.cloud import aws_calls
from lakehouse.lake.catalog import local_catalog
from lakehouse.lake.layout import LocalLake
from lambdas.cleaner.pii import LOCAL_KEY
from lambdas.contracts.clickstream import EMAIL_REDACTION, IP_HASH_PREFIX, Reason
from tests import ground_truth
from tests.fixtures import least_privilege
from tests.fixtures.demo_run import DemoRun, Ledger, expected_gold, expected_ledgers
from tests.fixtures.superset import big_number, import_and_chart_data, series_by_day_and_country
from tests.pii_checks import EMAIL, addresses, keyed_hash, token_addresses



def test_the_ledger_accounts_for_every_record(demo_run: DemoRun) -> None:
    summary, counts = demo_run.summary, demo_run.truth.counts
    assert summary["state_machine_status"] == "SUCCEEDED"
    assert summary["sent"] == summary["received"] == len(demo_run.truth.records) == counts.received
    assert summary["received"] == summary["clean"] + summary["quarantined_total"] + summary["duplicates"]
    assert summary["conserved"] is True
    assert summary["source_failures"] == []  # each source loaded (a failure would make the demo exit 1)
    assert summary["clean"] == counts.clean
    assert summary["duplicates"] == counts.duplicates
    assert summary["quarantined"] == {k: v for k, v in counts.quarantined_by_reason.items() if v}
    assert summary["silver_events"] == counts.clean


OPERATING_DOCS = ("docs/tables.md", "docs/runbooks/failed-batch-run.md", "docs/runbooks/quality-failure.md",
                  "docs/runbooks/replay.md")  # docs/analytics.md's examples are files: tests/spark/test_gold_queries.py


def test_the_operating_docs_sql_runs_on_the_demos_lake(demo_run: DemoRun) -> None:
    """Every ```sql example of the tables doc and the runbooks, its placeholders filled from the demo's run,
    runs on the Athena stand-in against the real tables: a renamed column or table breaks this test."""
    catalog = local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db)
    run_id = demo_run.summary["run_id"]
    batches = dict(athena.query(catalog, f"SELECT source, max(batch_id) FROM ops.merged_batches "
                                         f"WHERE run_id = '{run_id}' GROUP BY source")[1])
    values = {"<run id>": run_id, "<run>": run_id, "<execution name>": run_id, "<batch id>": batches["clickstream"],
              "<catalog file sha256>": batches["products"], "<day>": batches["fx_rates"].split("=", 1)[1]}
    statements = []
    for doc in OPERATING_DOCS:
        for block in re.findall(r"```sql\n(.*?)```", (PROJECT_ROOT / doc).read_text(), flags=re.S):
            for placeholder, value in values.items():
                block = block.replace(placeholder, value)
            assert "<" not in re.sub(r"<>|<=|< ", "", block), f"{doc}: an unknown placeholder in {block}"
            code = "\n".join(line.split("--")[0] for line in block.splitlines())
            statements += [(doc, sql.strip()) for sql in code.split(";") if sql.strip()]
    assert len(statements) >= 15
    for doc, sql in statements:
        columns, _ = athena.query(catalog, sql)
        assert columns, f"{doc}: {sql}"


def test_every_defect_kind_was_exercised(demo_run: DemoRun) -> None:
    reasons = set(demo_run.summary["quarantined"])
    assert {"MALFORMED_JSON", "MISSING_FIELD", "BAD_TIMESTAMP", "UNKNOWN_EVENT_TYPE"} <= reasons
    assert demo_run.summary["duplicates"] > 0


GOLD_KEYS = {"daily_kpis": ("event_date", "country"), "funnel_daily": ("event_date", "country"),
             "product_sales_daily": ("event_date", "product_id")}


def _gold(lake: LocalLake, table: str) -> ground_truth.Gold:
    """A gold table through the Athena stand-in, as {key: other columns but updated_at}."""
    columns, rows = athena.query(local_catalog(lake.warehouse, lake.catalog_db), f"SELECT * FROM gold.{table}")
    keys = GOLD_KEYS[table]
    return {tuple(r[columns.index(k)] for k in keys): {c: v for c, v in zip(columns, r)
                                                       if c not in (*keys, "updated_at")} for r in rows}


def test_every_gold_number_equals_the_ground_truth(demo_run: DemoRun) -> None:
    """Every gold table equals tests.ground_truth over the generators' clean clicks and orders, the
    catalog's clean rows and the FX fixture's rates of the days the connector fetched."""
    expected = expected_gold(demo_run)
    assert demo_run.summary["gold_daily_kpis"] == len(expected.daily_kpis)
    for table in GOLD_KEYS:
        want = getattr(expected, table)
        assert want and ground_truth.differences(_gold(demo_run.lake, table), want) == [], table
    assert any(v["name"] is None for v in expected.product_sales_daily.values())  # sales of unknown products
    assert any(v["units_refunded"] for v in expected.product_sales_daily.values())
    funnel = expected.funnel_daily.values()  # orders are placed by checkout sessions: the last step is real
    assert 0 < sum(v["paid_sessions"] for v in funnel) < sum(v["checkout_sessions"] for v in funnel)


def test_silver_holds_each_clean_event_once_with_pii_masked(demo_run: DemoRun) -> None:
    _, rows = athena.query(local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db),
                           "SELECT event_id, ip, page_url FROM silver.events")
    truth = {e.event_id: e for e in demo_run.truth.clean_events}
    assert sorted(r[0] for r in rows) == sorted(truth)
    for event_id, ip, page_url in rows:
        assert page_url == truth[event_id].page_url_redacted
        assert "@" not in (page_url or "")
        # the generator hashes the IP independently with the local key (HMAC, no raw IP in the lake)
        assert ip == truth[event_id].ip_masked
        assert ip is None or ip.startswith("h1:")


def test_ops_quarantine_holds_the_streams_bad_records_with_pii_masked(demo_run: DemoRun) -> None:
    _, rows = athena.query(local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db),
                           "SELECT raw_payload FROM ops.quarantine WHERE source = 'clickstream'")
    payloads = [bytes(row[0]) for row in rows]
    assert len(payloads) == sum(demo_run.truth.counts.quarantined_by_reason.values())
    assert not any(addresses(payload) for payload in payloads)  # not one IP address left
    assert not any(EMAIL.search(payload) for payload in payloads)
    # each address the generator put in a bad record is there as its keyed hash (hmac, computed here)
    bad = [r for r, label in zip(demo_run.truth.records, demo_run.truth.labels) if label in Reason.ALL]
    expected = {keyed_hash(a, LOCAL_KEY) for record in bad for a in token_addresses(record)}
    assert expected and all(any(h in payload for payload in payloads) for h in expected)


def test_ops_quarantine_messages_quote_no_personal_data(demo_run: DemoRun) -> None:
    """The generator puts IP and e-mail addresses in the very fields that make records bad (country, event_type,
    currency); the messages naming those values reach ops.quarantine masked, for both streams."""
    _, rows = athena.query(local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db),
                           "SELECT source, message FROM ops.quarantine WHERE source IN ('clickstream', 'orders')")
    messages = [(source, message.encode()) for source, message in rows]
    assert {source for source, _ in messages} == {"clickstream", "orders"}
    leaks = [m for _, m in messages if addresses(m) or EMAIL.search(m)]
    assert leaks == []
    # not vacuous: the demo's bad fields did hold personal data, quoted (masked) in their messages
    assert any(IP_HASH_PREFIX.encode() in m for _, m in messages)
    assert any(EMAIL_REDACTION.encode() in m for _, m in messages)


def test_the_run_is_recorded_in_ops_pipeline_runs(demo_run: DemoRun) -> None:
    _, rows = athena.query(local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db),
                           f"SELECT step, status FROM ops.pipeline_runs WHERE run_id = '{demo_run.summary['run_id']}'")
    assert sorted(rows) == [("gold_build", "SUCCEEDED"), ("quality", "SUCCEEDED"), ("run", "SUCCEEDED"),
                            ("silver_merge", "SUCCEEDED")]
    # every check of the run passed, and the summary shows each one
    from cdk_app.config import load
    from lambdas.data_quality.checks import all_checks

    expected = {(c.name, c.table) for c in all_checks("any", load("local").quality, datetime.now(timezone.utc))}
    checks = demo_run.summary["quality"]
    assert {(c["check_name"], c["table_name"]) for c in checks} == expected
    assert {c["status"] for c in checks} == {"PASSED"}


def test_the_demo_prints_the_ledger_and_the_state_machine_steps(demo_run: DemoRun) -> None:
    for text in ("Conservation ledger", "holds", "SilverMerge", "GoldBuild", "Quality", "RecordSuccess",
                 "gold.daily_kpis", "gold.funnel_daily", "gold.product_sales_daily", "referential_integrity"):
        assert text in demo_run.output


def test_superset_shows_the_same_numbers_as_duckdb(demo_run: DemoRun, superset: LocalSuperset,
                                                   tmp_path: Path) -> None:
    """The dashboard's chart-data API, on the demo's gold table, against DuckDB over the same table."""
    catalog = local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db)
    serving_db = export_serving(catalog, tmp_path / "serving.duckdb")
    charts = import_and_chart_data(superset, serving_db, tmp_path / "bundle.zip")
    gold = _gold(demo_run.lake, "daily_kpis")
    assert big_number(charts["Total events"]) == sum(row["events"] for row in gold.values())
    assert series_by_day_and_country(charts["Events by day and country"], "total_events") == {
        key: row["events"] for key, row in gold.items()}


def _readme_cli_examples() -> list[str]:
    """The `lakehouse` command lines shown in the README's shell blocks."""
    lines = (PROJECT_ROOT / "README.md").read_text().splitlines()
    return [line.split("  #")[0].strip() for line in lines if line.startswith(".venv/bin/lakehouse ")]


def test_the_readme_cli_examples_run_on_the_demo_lake(demo_run: DemoRun, tmp_path: Path) -> None:
    examples = _readme_cli_examples()
    assert len(examples) >= 3
    env = {**os.environ, "LAKEHOUSE_HOME": str(demo_run.lake.root), "COLUMNS": "200"}
    outputs = {}
    for example in examples:
        argv = shlex.split(example)
        argv[0] = str(Path(sys.executable).parent / "lakehouse")
        process = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
        assert process.returncode == 0, f"{example}\n{process.stdout}{process.stderr}"
        outputs[argv[1]] = process.stdout
    assert (tmp_path / "events.ndjson").read_bytes().count(b"\n") == 1000
    by_country: dict[str, int] = {}
    for (_, country), row in demo_run.truth.expected_daily_kpis.items():
        by_country[country] = by_country.get(country, 0) + row["events"]
    top = max(by_country, key=by_country.__getitem__)
    first_row = next(line for line in outputs["query"].splitlines() if top in line)
    assert str(by_country[top]) in first_row
    assert demo_run.summary["run_id"] in outputs["status"]


def test_orders_the_catalog_drop_and_the_fx_connector_are_staged_as_their_ground_truth(
        demo_run: DemoRun, tmp_path: Path) -> None:
    from lakehouse.demo import FX_DAYS

    expected = expected_ledgers(demo_run, tmp_path)
    for source in ("orders", "products", "fx_rates"):
        staged = demo_run.summary["sources"][source]
        assert Ledger(staged["received"], staged["clean"], staged["duplicates"],
                      staged["quarantined_by_reason"]) == expected[source], source
    assert demo_run.summary["sources"]["fx_rates"]["batches"] == FX_DAYS


def test_every_aws_call_of_the_demo_is_allowed_by_its_roles_synthesized_policies(demo_run: DemoRun, synthesized,
                                                                               local_run_calls) -> None:
    """moto enforces no IAM: each call a function, an event source mapping or a state machine made is evaluated
    against the policies CDK synthesizes for its role (and the resource's own policy) by iam-simulate."""
    calls = local_run_calls["demo"] = aws_calls.read(demo_run.lake.root / "aws-calls.jsonl")
    assert least_privilege.kinds(calls) >= {aws_calls.FUNCTION, aws_calls.MAPPING, aws_calls.STATE_MACHINE}
    denied, evaluated = least_privilege.denied(synthesized("local").outdir / "assembly-local", config.load("local"),
                                               calls)
    assert evaluated >= 15
    assert denied == [], "grant these in cdk_app/ (where the parts meet):\n" + "\n".join(denied)


def test_the_live_half_made_every_clean_event_queryable_before_the_batch_and_the_batch_took_them_over(
        demo_run: DemoRun) -> None:
    """Before the batch ran, the live committer had registered every staged clean row (the demo prints its
    event -> queryable times); after it, fresh.events holds each of the generator's clean events once, from
    silver, and the batch's ledger is the one above (the live half changes nothing of the batch's)."""
    live = demo_run.summary["live"]
    staged = demo_run.summary["sources"]["clickstream"]["clean"]
    assert live["events"] == staged and 0 <= live["p50_s"] <= live["p95_s"] <= live["max_s"]
    assert "event -> queryable p50" in demo_run.output
    _, rows = athena.query(local_catalog(demo_run.lake.warehouse, demo_run.lake.catalog_db),
                           "SELECT event_id, origin FROM fresh.events")
    assert sorted(event_id for event_id, _ in rows) == sorted(e.event_id for e in demo_run.truth.clean_events)
    assert {origin for _, origin in rows} == {"silver"}
