"""The benchmarks' own logic (not their timings: benchmarks measure, tests never assert time).

The cleaner benchmark's floor and bare ways must do the work they claim, or the figures compared
with them mean nothing; the page writer must replace only its own section."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmarks import cleaner
from benchmarks.__main__ import update_page

PAYLOADS = [b'{"event_id": "a"}', b'{"event_id": ', b"\xff\xfe not text", b"[1, 2]", b'"a string"']
PARSEABLE = 3  # the object, the array and the string: the floor checks syntax, not the contract


def test_the_floor_parses_every_record_and_keeps_every_byte(tmp_path: Path) -> None:
    raw = tmp_path / "floor.bin"
    assert cleaner.floor(cleaner.event_of(PAYLOADS), raw) == PARSEABLE
    assert raw.read_bytes() == b"".join(PAYLOADS)


def test_the_bare_way_parses_the_same_records() -> None:
    independent = 0
    for payload in PAYLOADS:
        try:
            json.loads(payload)
            independent += 1
        except ValueError:
            pass
    assert cleaner.bare(cleaner.event_of(PAYLOADS)) == independent == PARSEABLE


def test_the_floor_is_said_to_leave_nothing_when_it_exceeds_the_budget() -> None:
    figures = _figures(floor_ms=cleaner.TARGET_MS + 1.5, cleaner_ms=80.0)
    text = cleaner.markdown(figures)
    assert "more than the whole budget: nothing is left" in text
    assert "leaving" not in text.split("The floor:")[1].split("\n")[0]
    within = cleaner.markdown(_figures(floor_ms=cleaner.TARGET_MS - 5.0, cleaner_ms=80.0))
    assert "leaving 5.0 ms for" in within


def test_a_benchmark_replaces_only_its_own_section() -> None:
    page = "# Performance\n\n<!-- benchmark:a -->\nold a\n<!-- /benchmark:a -->\n\nprose\n"
    updated = update_page(page, "a", "new a")
    assert updated == "# Performance\n\n<!-- benchmark:a -->\nnew a\n<!-- /benchmark:a -->\n\nprose\n"
    appended = update_page(updated, "b", "b's figures")
    assert appended.endswith("prose\n\n<!-- benchmark:b -->\nb's figures\n<!-- /benchmark:b -->\n")
    assert "new a" in appended


def _figures(floor_ms: float, cleaner_ms: float) -> cleaner.Figures:
    return cleaner.Figures(
        records=cleaner.RECORDS, mean_record_bytes=412.0, rounds=1, cpu="test",
        cleaner_records_per_s=cleaner.RECORDS / cleaner_ms * 1000, baseline_records_per_s=1.0,
        bare_records_per_s=1.0, floor_records_per_s=cleaner.RECORDS / floor_ms * 1000, cleaner_ms=cleaner_ms,
        baseline_ms=1.0, bare_ms=1.0, floor_ms=floor_ms, cleaner_best_ms=cleaner_ms, baseline_best_ms=1.0,
        bare_best_ms=1.0, floor_best_ms=floor_ms, six_mb_records=1, six_mb_event_bytes=1, peak_rss_mb=1.0,
        before_rss_mb=1.0, event_only_rss_mb=1.0, stage_ms={"a step": 1.0},
    )


def test_every_timed_cleaner_round_cleans_the_whole_batch(tmp_path: Path, monkeypatch) -> None:
    """Each round cleans and writes the batch again, as a first delivery (one staging zone each): in one zone the
    second round would find the batch staged and write nothing (lambdas/cleaner/redelivery.py)."""
    for name, value in cleaner.cleaner_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    event, rounds = cleaner.event_of(cleaner.records(200)), itertools.count()
    for _ in range(2):
        assert cleaner.cleaner_round(event, tmp_path, rounds) == {"batchItemFailures": []}
    received = [json.loads(p.read_text())["received"] for p in sorted(tmp_path.glob("staging-*/manifests/**/*.json"))]
    assert received == [200, 200]


def test_the_baseline_does_the_cleaners_work(tmp_path: Path, monkeypatch) -> None:
    """The ratio compares two ways of the same work: on the benchmark's kind of event, the baseline
    reaches the cleaner's verdicts (the same counts of clean, quarantined and duplicate records)."""
    from benchmarks.baseline import BaselineCleaner
    from lambdas.cleaner.handler import handler

    for name, value in cleaner.cleaner_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    event = cleaner.event_of(cleaner.records(3000))
    baseline = BaselineCleaner(tmp_path)
    baseline.handler(event, None)
    handler(event, None)
    (manifest,) = [json.loads(path.read_text()) for path in (tmp_path / "staging" / "manifests").rglob("*.json")]
    assert (len(baseline.clean), len(baseline.quarantine), baseline.duplicates) == \
        (manifest["clean"], manifest["quarantined"], manifest["duplicates"])
    assert manifest["quarantined"] > 0 and manifest["duplicates"] > 0
    (quarantine,) = (tmp_path / "staging").rglob("quarantine/**/*.parquet")
    assert [q["raw_payload"] for q in baseline.quarantine] == pq.read_table(quarantine).column("raw_payload").to_pylist()


def test_the_freshness_benchmarks_quick_parameters_validate(capsys) -> None:
    from benchmarks import freshness

    quick = freshness.parse_args(["--rate", "200", "--seconds", "20", "--no-write"])
    assert (quick.spec.rate, quick.spec.seconds, quick.spec.events, quick.spec.markers) == (200, 20, 4000, 20)
    assert freshness.parse_args([]).spec == freshness.LoadSpec(rate=1000, seconds=300)  # the full run's defaults
    for bad, said in ((["--rate", "0"], "rate must be more than 0"), (["--seconds", "-1"], "seconds must be more"),
                      (["--commits", "1"], "--commits must be at least 2")):
        with pytest.raises(SystemExit) as exit_:
            freshness.parse_args(bad)
        assert exit_.value.code == 2 and said in capsys.readouterr().err


def test_the_freshness_ledger_check_allows_the_merges_duplicates_only() -> None:
    from benchmarks.freshness import ledger_matches

    staged = {"batches": 20, "received": 4020, "clean": 3830, "quarantined": 140, "duplicates": 50}
    merged = {**staged, "clean": 3820, "duplicates": 60}  # ten re-sends fell in another batch than their original
    assert ledger_matches(merged, staged, 4020, 3820)
    assert not ledger_matches(merged, staged, 4021, 3820)  # a record sent and never received
    assert not ledger_matches({**merged, "batches": 19}, staged, 4020, 3820)
    assert not ledger_matches({**merged, "clean": 3819, "duplicates": 61}, staged, 4020, 3820)
