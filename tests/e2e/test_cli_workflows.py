"""The CLI as a user drives it: `demo --input FILE`, and `up` in one process with `ingest`, `run batch`,
`replay --dlq`, `replay --from --to` and `status` from others. moto stands in for AWS inside the `lakehouse` processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cdk_app import config
from cdk_app.config import PROJECT_ROOT
from lakehouse.cloud import aws_calls
from lakehouse.sources.generator import generate
from tests.fixtures import least_privilege

LAKEHOUSE = str(Path(sys.executable).parent / "lakehouse")


def _run(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "PYSPARK_PYTHON": sys.executable, "COLUMNS": "200"}
    return subprocess.run([LAKEHOUSE, *argv], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)


def test_demo_on_a_file_accounts_for_every_line(tmp_path: Path) -> None:
    generated = generate(400, seed=21, defect_rate=0.1)
    odd_lines = [b"\xff\xfe not utf-8 \x80", b"", b"   ", b'{"event_id": 1e999}', b"x" * (1024 * 1024 + 1)]
    path = tmp_path / "input.ndjson"
    path.write_bytes(b"\n".join([*generated.records, *odd_lines]) + b"\n")

    process = _run(tmp_path / "home", "demo", "--no-serve", "--input", str(path), "--json", str(tmp_path / "s.json"))
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["input_records"] == len(generated.records) + len(odd_lines)
    assert summary["not_sent"] == 1  # the line over Kinesis' 1 MiB limit
    assert summary["sent"] == summary["received"] == summary["input_records"] - 1
    assert summary["clean"] == generated.counts.clean
    assert summary["duplicates"] == generated.counts.duplicates
    quarantined_odd = summary["quarantined_total"] - sum(generated.counts.quarantined_by_reason.values())
    assert quarantined_odd == len(odd_lines) - 1
    assert summary["conserved"] is True


def _eventually(condition: Callable[[], bool]) -> None:
    """Wait for what the `lakehouse up` process does in the background. The bound (ten minutes) only
    keeps a broken run from hanging CI; it is no expectation of speed, and the caller asserts after."""
    for _ in range(6000):
        if condition():
            return
        time.sleep(0.1)


@pytest.fixture
def local_cloud_process(tmp_path: Path) -> Iterator[Path]:
    """`lakehouse up` in its own process, stopped by its PID with SIGINT (Ctrl-C) at the end."""
    home = tmp_path / "home"
    env = {**os.environ, "LAKEHOUSE_HOME": str(home), "PYSPARK_PYTHON": sys.executable,
           aws_calls.ENV_VAR: str(tmp_path / "aws-calls.jsonl")}  # for the least-privilege check
    log = (tmp_path / "up.log").open("w")
    process = subprocess.Popen([LAKEHOUSE, "up", "--port", "0"], cwd=PROJECT_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    _eventually(lambda: (home / "cloud.json").exists() or process.poll() is not None)
    assert (home / "cloud.json").exists(), (tmp_path / "up.log").read_text()
    yield home
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0, (tmp_path / "up.log").read_text()
    assert not (home / "cloud.json").exists()  # it says it is gone


def test_up_ingest_run_batch_and_status_from_other_processes(local_cloud_process: Path, tmp_path: Path,
                                                            synthesized, local_run_calls) -> None:
    home = local_cloud_process
    generated = generate(600, seed=2, defect_rate=0.05)
    path = tmp_path / "events.ndjson"
    generated.to_ndjson(path)

    ingested = _run(home, "ingest", "--input", str(path))
    assert ingested.returncode == 0, ingested.stdout + ingested.stderr
    assert "put 600 records" in ingested.stdout
    manifests = home / "lake" / "staging" / "manifests" / "clickstream"
    def received() -> int:  # the up process's poller delivers them in the background
        return sum(json.loads(p.read_text())["received"] for p in manifests.rglob("*.json"))

    _eventually(lambda: received() == 600)
    assert received() == 600

    batch = _run(home, "run", "batch")
    assert batch.returncode == 0, batch.stdout + batch.stderr
    assert "SUCCEEDED" in batch.stdout and "GoldBuild succeeded" in batch.stdout

    replay = _run(home, "replay", "--dlq")
    assert replay.returncode == 0
    assert "clickstream: replayed 0 batches" in replay.stdout and "orders: replayed 0 batches" in replay.stdout

    now = datetime.now(timezone.utc)
    ranged = _run(home, "replay", "--from", (now - timedelta(hours=1)).isoformat(), "--to", now.isoformat())
    assert ranged.returncode == 0, ranged.stdout + ranged.stderr
    assert "MergeAndBuild succeeded" in ranged.stdout and "600 records" in ranged.stdout

    maintenance = _run(home, "run", "maintenance")
    assert maintenance.returncode == 0, maintenance.stdout + maintenance.stderr
    # the step as it ended (the history is read to its terminal event), and the execution
    assert "state machine: Maintenance succeeded" in maintenance.stdout and ": SUCCEEDED" in maintenance.stdout
    assert "live tables to maintain next: live.events, live.order_events" in maintenance.stdout

    status = _run(home, "status")
    # the batch run merged every clean event; the replay's child run found nothing new to merge
    run_line = next(line for line in status.stdout.splitlines() if "silver_merge" in line and "batch" not in line)
    assert f" {generated.counts.clean} " in run_line
    assert any("maintenance" in line and "SUCCEEDED" in line for line in status.stdout.splitlines())

    # `smoke`, as docs/deploy.md runs it against AWS: its own events, a batch run, Athena (here the stand-in)
    smoke = _run(home, "smoke", "--events", "15")
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "put 15 events" in smoke.stdout and "silver.events holds all 15 events" in smoke.stdout
    assert "smoke test passed on local" in smoke.stdout

    # `ingest --events`: the CLI's own generator; what it should send is what the generator makes
    # for that N, seed and the CLI's 5% defect rate, here computed in this process.
    expected = generate(40, seed=11, defect_rate=0.05).counts
    before = set(manifests.rglob("*.json"))
    generated_ingest = _run(home, "ingest", "--events", "40", "--seed", "11")
    assert generated_ingest.returncode == 0, generated_ingest.stdout + generated_ingest.stderr
    assert f"put {expected.received} records" in generated_ingest.stdout
    def new_manifests() -> list[dict]:
        return [json.loads(p.read_text()) for p in set(manifests.rglob("*.json")) - before]

    _eventually(lambda: sum(m["received"] for m in new_manifests()) == expected.received)
    new = new_manifests()
    assert sum(m["received"] for m in new) == expected.received
    assert sum(m["quarantined"] for m in new) == expected.quarantined
    by_reason: dict[str, int] = {}
    for m in new:
        for reason, count in m["quarantined_by_reason"].items():
            by_reason[reason] = by_reason.get(reason, 0) + count
    assert {r: n for r, n in by_reason.items() if n} == {r: n for r, n in expected.quarantined_by_reason.items() if n}
    # The cleaner drops duplicates within a batch; a re-send split from its original by a batch
    # boundary is clean here and dropped by the silver merge, so only the sum is fixed per batch.
    assert sum(m["clean"] + m["duplicates"] for m in new) == expected.clean + expected.duplicates

    # Least privilege: the replay and maintenance workflows' calls too, against the synthesized policies
    calls = local_run_calls["workflows"] = aws_calls.read(tmp_path / "aws-calls.jsonl")
    assert {(c["kind"], c["component"]) for c in calls} >= {(aws_calls.STATE_MACHINE, "lakehouse-local-replay"),
                                                             (aws_calls.STATE_MACHINE, "lakehouse-local-maintenance")}
    denied, _ = least_privilege.denied(synthesized("local").outdir / "assembly-local", config.load("local"), calls)
    assert denied == [], "grant these in cdk_app/ (where the parts meet):\n" + "\n".join(denied)


def test_commands_that_need_the_local_cloud_say_how_to_start_it(tmp_path: Path) -> None:
    for argv in (["ingest", "--events", "10"], ["run", "batch"], ["replay", "--dlq"], ["smoke"]):
        process = _run(tmp_path / "no-cloud", *argv)
        assert process.returncode == 2
        assert "start one with `lakehouse up`" in " ".join(process.stdout.split())
