"""What every generator of a docs page shares: write the page, or with --check exit 1 when the committed page is
not what the generator makes (tests/unit/test_docs_site.py runs the same comparison)."""
from __future__ import annotations

import sys
from pathlib import Path


def write_or_check(page: Path, text: str, argv: list[str], tool: str) -> int:
    """`page` rewritten with `text`; with `--check` in `argv`, 1 (and a message naming `tool`) if it differs."""
    if "--check" in argv:
        if not page.exists() or page.read_text(encoding="utf-8") != text:
            print(f"{page} is stale: run `python {tool}`", file=sys.stderr)
            return 1
        return 0
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page}")
    return 0
