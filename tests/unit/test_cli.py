"""The CLI refuses bad arguments with a message that names the problem (no pipeline is run)."""
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lakehouse.cli import app

runner = CliRunner()


@pytest.mark.parametrize(("argv", "message"), [
    (["demo", "--events", "0"], "must be a positive number, got 0"),
    (["demo", "--defect-rate", "1.5"], "must be between 0 and 0.9, got 1.5"),
    (["demo", "--events", "many"], "Invalid value for '--events': Input should be a valid integer"),
    (["generate", "--", "-5"], "must be a positive number, got -5"),
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
])
def test_bad_arguments_are_named(argv: list[str], message: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


@pytest.mark.parametrize("argv", [["query", "SELECT 1"], ["dashboards"], ["screenshots"]])
def test_commands_without_a_lake_say_how_to_make_one(argv: list[str], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAKEHOUSE_HOME", str(tmp_path / "nothing-here"))
    result = runner.invoke(app, argv)
    assert result.exit_code == 2
    assert "run `lakehouse demo --no-serve` first" in " ".join(result.output.split())


def test_generate_writes_one_record_per_line(tmp_path: Path) -> None:
    out = tmp_path / "events.ndjson"
    result = runner.invoke(app, ["generate", "300", "--out", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert len(out.read_bytes().splitlines()) == 300


def test_smoke_against_aws_refuses_the_placeholder_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAKEHOUSE_DEV_ACCOUNT", raising=False)
    result = runner.invoke(app, ["smoke", "--env", "dev"])
    assert result.exit_code == 2
    assert "'account' is the placeholder '123456789012'" in " ".join(result.output.split())
    assert "LAKEHOUSE_DEV_ACCOUNT" in " ".join(result.output.split())
