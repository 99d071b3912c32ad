"""The README's figures are docs/performance.md's, which `make bench` writes: a "about N" in the README is
within 5 % of the measured figure, so a new measurement that moves a figure fails here until the README
follows (issue 16)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = " ".join((ROOT / "README.md").read_text().split())
PERFORMANCE = " ".join((ROOT / "docs" / "performance.md").read_text().split())
ABOUT = 0.05


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _readme(pattern: str) -> float:
    found = re.search(pattern, README)
    assert found, f"the README no longer says {pattern!r}: update this test with it"
    return _number(found.group(1))


def _measured(pattern: str) -> float:
    found = re.search(pattern, PERFORMANCE)
    assert found, f"docs/performance.md no longer has {pattern!r}"
    return _number(found.group(1))


def test_the_cleaners_speed_ratio_is_the_measured_one() -> None:
    said = _readme(r"docs/performance\.md`: about ([\d.]+)x that handler")
    measured = _measured(r"Cleaner vs baseline: \*\*([\d.]+)x\*\* on medians")
    assert abs(said - measured) <= ABOUT * measured, (said, measured)


def test_the_cleaners_memory_is_the_measured_one() -> None:
    said = _readme(r"a 6 MB batch in about ([\d,]+) MB")
    measured = _measured(r"\*\*([\d,]+) MB\*\* peak RSS")
    assert abs(said - measured) <= ABOUT * measured, (said, measured)


def test_the_cleaners_records_per_second_are_the_measured_ones() -> None:
    said = _readme(r"about ([\d,]+) records/s on one core")
    measured = _measured(r"\| the cleaner \(`lambdas/cleaner`\) \| [\d.]+ \| [\d.]+ \| ([\d,]+) \|")
    assert abs(said - measured) <= ABOUT * measured, (said, measured)
