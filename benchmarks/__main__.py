"""`python -m benchmarks [--only NAME] [--rounds N] [--no-write]`: run every benchmark and write each
one's section of docs/performance.md (between its markers; the rest of the page is left as it is).
Benchmarks are not tests: they assert nothing about time, they measure it and write it down."""
from __future__ import annotations

import argparse
import re
from pathlib import Path
from collections.abc import Callable

from benchmarks import batch, cleaner, freshness, live_tables

# name: its section of the page, from the rounds asked for
BENCHMARKS: dict[str, Callable[[int], str]] = {"cleaner": cleaner.section, "batch": batch.section,
                                               "listing": batch.listing_section, "live_tables": live_tables.section,
                                               "freshness": freshness.section}
PAGE = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
_HEADER = ("# Performance\n\nMeasured by `make bench` (`python -m benchmarks`), which rewrites each section below "
           "between its markers. Figures depend on the machine and on what else runs on it.\n")


def update_page(page: str, name: str, section: str) -> str:
    """`page` with the section of benchmark `name` replaced (or appended when it has none yet)."""
    start, end = f"<!-- benchmark:{name} -->", f"<!-- /benchmark:{name} -->"
    block = f"{start}\n{section.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(page):
        return pattern.sub(lambda _: block, page)
    return page.rstrip("\n") + "\n\n" + block + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(BENCHMARKS), help="run one benchmark")
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds per benchmark (default 7)")
    parser.add_argument("--no-write", action="store_true", help="print the sections, leave the page alone")
    args = parser.parse_args(argv)
    page = PAGE.read_text() if PAGE.exists() else _HEADER
    for name, measure in BENCHMARKS.items():
        if args.only and name != args.only:
            continue
        section = measure(args.rounds)
        print(section, flush=True)
        page = update_page(page, name, section)
    if not args.no_write:
        PAGE.write_text(page)
        print(f"wrote {PAGE}")


if __name__ == "__main__":
    main()
