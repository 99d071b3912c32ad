"""The decision index (docs/decisions/index.md), generated from the records' own headers.

Every record starts with its number and title, then a header list:

    # 0110: exactly-once staging batches ...

    - **Status:** accepted; amended 2026-12-07 (sources are isolated)
    - **Date:** 2026-11-27
    - **Supersedes in part:** [0102](0102-silver-merge-ledger.md) (...)

Status and Date are required; Supersedes, Superseded by, Extends and Extended by (each optionally "in part")
link the records they relate to. `Status: ...` lines without the list's dash and bold are read too.

    python docs/tools/decision_index.py          # rewrite docs/decisions/index.md
    python docs/tools/decision_index.py --check  # exit 1 if it is stale

tests/unit/test_docs_site.py fails when the committed index differs from what this writes.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tools, run as a script or loaded by path
from generated_page import write_or_check  # noqa: E402

DECISIONS = Path(__file__).resolve().parents[1] / "decisions"
INDEX = DECISIONS / "index.md"

RELATIONS = ("Supersedes", "Supersedes in part", "Superseded by", "Superseded in part by", "Extends", "Extended by")
FIELDS = ("Status", "Date", *RELATIONS)
_FIELD = re.compile(r"^(?:- )?(?:\*\*)?(" + "|".join(sorted(FIELDS, key=len, reverse=True)) + r")(?::\*\*|\*\*:|:)\s*(.*)$")
_TITLE = re.compile(r"^# (\d{4})[.:]\s+(.+?)\s*$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LINK = re.compile(r"\[(\d{4})\]\(([^)\s]+\.md)\)")

# The hundreds group the records by area (the same groups as mkdocs.yml's nav).
AREAS = {
    "00": "Project and tooling",
    "01": "Lake and batch",
    "02": "Infrastructure",
    "03": "Analytics and dashboards",
    "04": "Sources and cleaning",
    "05": "The live half",
}


@dataclass
class Record:
    number: str
    title: str
    file: str
    status: str
    date: str
    relations: list[tuple[str, str]] = field(default_factory=list)

    @property
    def short_status(self) -> str:
        """The status without its parenthesised details: 'accepted; amended 2026-12-07'."""
        text = self.status
        while True:
            shorter = re.sub(r"\s+\([^()]*\)", "", text)
            if shorter == text:
                break
            text = shorter
        return text.strip().rstrip(".").strip()

    def status_cell(self) -> str:
        parts = [self.short_status]
        for name, text in self.relations:
            links = [f"[{number}]({target})" for number, target in _LINK.findall(text)]
            parts.append(f"{name.lower()} {', '.join(links) if links else text}")
        return "; ".join(parts)


def read_header(lines: list[str]) -> tuple[dict[str, str], list[tuple[str, str]], int, int]:
    """The header fields after the title: (fields, relations in order, first line, line after the header)."""
    start = 1
    while start < len(lines) and not lines[start].strip():
        start += 1
    fields: dict[str, str] = {}
    relations: list[tuple[str, str]] = []
    current: str | None = None
    end = start
    while end < len(lines) and lines[end].strip():
        match = _FIELD.match(lines[end])
        if match:
            current = match.group(1)
            value = match.group(2).strip()
            if current in RELATIONS:
                relations.append((current, value))
            else:
                fields[current] = value
        elif current is None:
            break
        elif current in RELATIONS:  # a continuation line
            name, value = relations[-1]
            relations[-1] = (name, f"{value} {lines[end].strip()}")
        else:
            fields[current] = f"{fields[current]} {lines[end].strip()}"
        end += 1
    if current is None:
        end = start
    return fields, relations, start, end


def read_record(path: Path) -> Record:
    lines = path.read_text(encoding="utf-8").splitlines()
    title = _TITLE.match(lines[0]) if lines else None
    if not title:
        raise ValueError(f"{path.name}: the first line must be '# NNNN: title'")
    number = title.group(1)
    if not path.name.startswith(number + "-"):
        raise ValueError(f"{path.name}: its title's number {number} is not its file name's")
    fields, relations, _, _ = read_header(lines)
    missing = [name for name in ("Status", "Date") if not fields.get(name)]
    if missing:
        raise ValueError(f"{path.name}: no {' or '.join(missing)} in the header under its title "
                         "('- **Status:** accepted', '- **Date:** YYYY-MM-DD')")
    if not _DATE.match(fields["Date"]):
        raise ValueError(f"{path.name}: Date {fields['Date']!r} is not YYYY-MM-DD")
    for name, text in relations:
        for _, target in _LINK.findall(text):
            if not (path.parent / target).is_file():
                raise ValueError(f"{path.name}: {name} links to {target}, which is not a record")
    return Record(number, title.group(2), path.name, fields["Status"], fields["Date"], relations)


def records(folder: Path = DECISIONS) -> list[Record]:
    return [read_record(path) for path in sorted(folder.glob("[0-9][0-9][0-9][0-9]-*.md"))]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_index(folder: Path = DECISIONS) -> str:
    found = records(folder)
    out = [
        "# Decision records",
        "",
        "Each record states one decision: why it was needed, what was decided, what follows from it and what",
        "else was weighed. A record is not rewritten when a later one changes it: the later one says what it",
        "supersedes or extends, and the earlier one links to it.",
        "",
        f"{len(found)} records, numbered by area. This page is generated from the records' headers by",
        "`docs/tools/decision_index.py` (`python docs/tools/decision_index.py` rewrites it; `make test` fails",
        "while it is stale).",
        "",
    ]
    for prefix in sorted({record.number[:2] for record in found}):
        out += [f"## {AREAS.get(prefix, 'Other')} ({prefix}xx)", "", "| # | decision | status | date |",
                "| --- | --- | --- | --- |"]
        out += [f"| {r.number} | [{_cell(r.title)}]({r.file}) | {_cell(r.status_cell())} | {r.date} |"
                for r in found if r.number[:2] == prefix]
        out.append("")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    return write_or_check(INDEX, render_index(), argv, "docs/tools/decision_index.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
