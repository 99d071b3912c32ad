"""The CLI refuses bad arguments with a message that names the problem (no pipeline is run)."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse.cli import app
from tests.fixtures.superset import append_daily_kpis, daily_kpis_rows, make_lake

runner = CliRunner()


@pytest.mark.parametrize(("argv", "message"), [
    (["demo", "--events", "0"], "must be a positive number, got 0"),
    (["demo", "--defect-rate", "1.5"], "must be between 0 and 0.9, got 1.5"),
    (["demo", "--events", "many"], "Invalid value for '--events': Input should be a valid integer"),
    (["generate", "--events", "-5"], "must be a positive number, got -5"),
    (["ingest"], "give exactly one of --input PATH or --events N"),
    (["ingest", "--events", "0"], "must be a positive number, got 0"),
    (["ingest", "--events", "5", "--defect-rate", "0.95"], "must be between 0 and 0.9, got 0.95"),
    (["status", "--limit", "0"], "must be a positive number, got 0"),
    (["replay"], "say what to replay: --dlq"),
    (["replay", "--dlq", "--from", "2026-03-01T00:00:00Z"], "say what to replay: --dlq"),
    (["replay", "--from", "yesterday", "--to", "2026-03-01T00:00:00Z"], "not an ISO-8601 time: 'yesterday'"),
    (["replay", "--from", "2026-03-01T00:00:00", "--to", "2026-03-02T00:00:00Z"], "needs a UTC offset"),
    (["replay", "--from", "2026-03-01T00:00:00Z"], "--from and --to are both needed, --from before --to"),
    (["replay", "--from", "2026-03-02T00:00:00Z", "--to", "2026-03-01T00:00:00+00:00"],
     "--from and --to are both needed, --from before --to"),
    (["smoke", "--events", "0"], "must be a positive number, got 0"),
    (["dashboards", "--port", "70000"], "must be between 1 and 65535, got 70000"),
    (["demo", "--port", "0"], "must be between 1 and 65535, got 0"),
    (["smoke", "--env", "staging"], "unknown environment 'staging': cdk.json defines dev, local, prod"),
    (["query", "SELECT 1", "--env", "staging"], "unknown environment 'staging': cdk.json defines dev, local, prod"),
    (["status", "--env", "staging"], "unknown environment 'staging': cdk.json defines dev, local, prod"),
    (["replay", "--dlq", "--env", "staging"], "unknown environment 'staging': cdk.json defines dev, local, prod"),
    (["query"], "give exactly one of the SQL argument or --input query.sql"),
    (["query", "SELECT 1", "--input", "tests/unit/test_cli.py"], "give exactly one of the SQL argument or --input"),
    (["query", "--input", "no/such/query.sql"], "Invalid value for '--input': no such file: no/such/query.sql"),
    (["query", "SELECT 1", "--format", "xml"], "must be one of table, csv, json, got 'xml'"),
    (["watch", "--interval", "0"], "must be a positive number, got 0"),
    (["watch", "--minutes", "-1"], "must be a positive number, got -1"),
])
def test_bad_arguments_are_named(argv: list[str], message: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize("argv", [["query", "SELECT 1"], ["dashboards"], ["screenshots"], ["watch", "--once"]])
def test_commands_without_a_lake_say_how_to_make_one(argv: list[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "nothing-here"))
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert "run `lakehouse demo --no-serve` first" in " ".join(result.output.split())


def _commands() -> list[tuple[str, ...]]:
    """Every command's path: ("demo",), ("run", "batch"), ..."""
    import typer.main

    def walk(group: object, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        commands = getattr(group, "commands", None)
        if commands is None:
            return [path]
        return [found for name, command in commands.items() for found in walk(command, (*path, name))]

    return walk(typer.main.get_command(app), ())


LOCAL_ONLY = {("demo",), ("dashboards",), ("screenshots",), ("up",), ("run", "batch"), ("run", "maintenance"),
              ("watch",)}


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_every_command_shows_an_example_and_says_where_it_works(command: tuple[str, ...]) -> None:
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    shown = " ".join(result.output.split())
    assert result.exit_code == 0 and f"Example: lakehouse {' '.join(command)}" in shown
    assert ("Local only:" in shown) == (command in LOCAL_ONLY), "say in the help whether it works only locally"


def test_the_version_is_the_packages() -> None:
    from importlib.metadata import version

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"lakehouse {version('serverless-lakehouse')}"


def test_every_command_that_generates_takes_the_same_options() -> None:
    for command in (("demo",), ("generate",), ("ingest",)):
        shown = " ".join(runner.invoke(app, [*command, "--help"], terminal_width=200).output.split())
        assert all(option in shown for option in ("--events", "--seed", "--defect-rate")), command


def test_generate_writes_one_record_per_line(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    result = runner.invoke(app, ["generate", "--events", "300", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert len(out.read_bytes().splitlines()) == 300


def test_smoke_against_aws_refuses_the_placeholder_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEHOUSE_DEV_ACCOUNT", raising=False)
    result = runner.invoke(app, ["smoke", "--env", "dev"])
    assert result.exit_code == 2
    assert "'account' is the placeholder '123456789012'" in " ".join(result.output.split())
    assert "LAKEHOUSE_DEV_ACCOUNT" in " ".join(result.output.split())


# --- lakehouse query --format / --file over a small real lake ----------------------------------
@pytest.fixture(scope="module")
def lake_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lake at the LocalLake layout (warehouse/, catalog.db) with two days of gold.daily_kpis."""
    root = tmp_path_factory.mktemp("cli_lake")
    append_daily_kpis(make_lake(root), daily_kpis_rows(seed=5, days=2))
    return root


_DAYS = ("SELECT event_date, count(*) AS countries, sum(events) AS events, NULL AS nothing FROM gold.daily_kpis "
         "GROUP BY event_date ORDER BY event_date")


def _expected_days() -> list[tuple[dt.date, int, int]]:
    by_day: dict[dt.date, list[int]] = {}
    for row in daily_kpis_rows(seed=5, days=2):
        counts = by_day.setdefault(row["event_date"], [0, 0])
        counts[0] += 1
        counts[1] += row["events"]
    return [(day, *counts) for day, counts in sorted(by_day.items())]


def test_query_csv_has_a_header_and_one_line_per_row(lake_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(lake_home))
    result = runner.invoke(app, ["query", _DAYS, "--format", "csv"])
    assert result.exit_code == 0, result.output
    lines = list(csv.reader(io.StringIO(result.output)))
    assert lines[0] == ["event_date", "countries", "events", "nothing"]
    assert lines[1:] == [[day.isoformat(), str(n), str(events), ""] for day, n, events in _expected_days()]


def test_query_json_from_a_file_is_an_array_of_objects(lake_home: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(lake_home))
    sql_file = tmp_path / "days.sql"
    sql_file.write_text(f"-- days in the lake\n{_DAYS};\n", encoding="utf-8")
    result = runner.invoke(app, ["query", "--input", str(sql_file), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [{"event_date": day.isoformat(), "countries": n, "events": events,
                                          "nothing": None} for day, n, events in _expected_days()]


def test_query_json_is_valid_json_for_every_value(lake_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(lake_home))
    result = runner.invoke(app, ["query", "SELECT CAST(1 AS double) / 0 AS up, -1e0 / 0 AS down, 0e0 / 0 AS nan, "
                                 "DECIMAL '1.10' AS price, TIMESTAMP '2026-12-07 10:00:00 UTC' AS at, "
                                 "MAP(ARRAY['a'], ARRAY[1]) AS m", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output, parse_constant=pytest.fail) == [
        {"up": "Infinity", "down": "-Infinity", "nan": "NaN", "price": "1.10", "at": "2026-12-07T10:00:00+00:00",
         "m": {"a": 1}}]


def test_query_table_is_the_default(lake_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(lake_home))
    result = runner.invoke(app, ["query", "SELECT 5 / 2 AS half, day_of_week(DATE '2026-12-06') AS sunday"])
    assert result.exit_code == 0, result.output
    assert "half" in result.output and "│ 2    │ 7" in result.output


def test_query_refusals_exit_2_naming_the_construct(lake_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(lake_home))
    result = runner.invoke(app, ["query", "SELECT date_format(DATE '2026-12-06', '%D')", "--format", "csv"])
    assert result.exit_code == 2
    assert "%D not supported" in " ".join(result.output.split())


def test_query_json_refuses_duplicate_column_names(lake_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(lake_home))
    result = runner.invoke(app, ["query", "SELECT 1 AS a, 2 AS a", "--format", "json"])
    assert result.exit_code == 2
    assert "--format json needs distinct column names" in " ".join(result.output.split())
