"""The docs site (mkdocs.yml, docs/): it builds with --strict, offline, its nav lists every page, and the
decision index is what docs/tools/decision_index.py generates from the records (issue 16)."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
CONFIG = ROOT / "mkdocs.yml"


def _tool(name: str):
    """A script of docs/tools/ (beside the docs, not a package)."""
    key = f"docs_tools_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, DOCS / "tools" / f"{name}.py")
        sys.modules[key] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
        spec.loader.exec_module(sys.modules[key])
    return sys.modules[key]


def _decision_index():
    return _tool("decision_index")


def _nav_pages(entries) -> list[str]:
    """Every page a nav names: entries are 'page.md', {'Title': 'page.md'} or {'Section': [entries]}."""
    pages = []
    for entry in entries:
        values = entry.values() if isinstance(entry, dict) else [entry]
        for value in values:
            if isinstance(value, list):
                pages += _nav_pages(value)
            elif isinstance(value, str) and not re.match(r"^[a-z]+://", value):
                pages.append(value)
    return pages


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's end-of-life banner, not a build warning
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(CONFIG),
                             "--site-dir", str(out)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def test_the_site_builds_strictly(site: Path) -> None:
    """A broken link or anchor, a link out of docs/, or a page missing from the nav fails the build."""
    assert (site / "index.html").is_file()
    assert (site / "decisions" / "index.html").is_file()


def test_the_site_loads_nothing_from_the_network(site: Path) -> None:
    """No web fonts, no CDN: every script, stylesheet and image the pages load is the site's own."""
    external = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"((?:https?:)?//[^\"]*)\"")
    found = {f"{page.relative_to(site)}: {url}" for page in site.rglob("*.html")
             for url in external.findall(page.read_text(encoding="utf-8"))}
    assert found == set()


def test_the_nav_lists_every_page_under_docs() -> None:
    config = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    listed = _nav_pages(config["nav"])
    pages = {path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md")}
    assert sorted(pages - set(listed)) == [], "pages missing from mkdocs.yml's nav"
    assert sorted(set(listed) - pages) == [], "nav entries with no page under docs/"
    assert len(listed) == len(set(listed)), "a page is listed twice"


def test_the_decision_index_is_current() -> None:
    index = _decision_index()
    assert index.INDEX.read_text(encoding="utf-8") == index.render_index(), \
        "docs/decisions/index.md is stale: run `python docs/tools/decision_index.py`"


def test_the_cli_reference_is_current() -> None:
    cli_reference = _tool("cli_reference")
    assert cli_reference.PAGE.read_text() == cli_reference.render(), \
        "docs/reference/cli.md is stale: run python docs/tools/cli_reference.py"


def test_the_config_reference_is_current() -> None:
    config_reference = _tool("config_reference")
    assert config_reference.PAGE.read_text() == config_reference.render(), \
        "docs/reference/config.md is stale: run python docs/tools/config_reference.py"


def test_every_record_has_a_status_and_a_date() -> None:
    records = _decision_index().records()
    assert len(records) == len(list((DOCS / "decisions").glob("[0-9][0-9][0-9][0-9]-*.md")))
    assert all(record.status and re.fullmatch(r"\d{4}-\d{2}-\d{2}", record.date) for record in records)


def test_supersession_is_linked_both_ways() -> None:
    """A record that supersedes or extends another is named in the other's header, and the reverse."""
    inverse = {"Supersedes": "Superseded by", "Supersedes in part": "Superseded in part by", "Extends": "Extended by"}
    inverse |= {later: earlier for earlier, later in inverse.items()}
    records = {record.file: record for record in _decision_index().records()}
    missing = []
    for record in records.values():
        for name, text in record.relations:
            for target in re.findall(r"\]\(([^)\s]+\.md)\)", text):
                back = [t for n, t in records[target].relations if n == inverse[name] and f"({record.file})" in t]
                if not back:
                    missing.append(f"{record.file} {name} {target}, whose header lacks '{inverse[name]}: {record.number}'")
    assert missing == []


def test_the_index_reads_every_header_format(tmp_path: Path) -> None:
    """The three header styles the records were written in all give a status and a date."""
    index = _decision_index()
    (tmp_path / "0901-a.md").write_text("# 0901: bulleted\n\n- **Status:** accepted (kept small)\n- **Date:** 2026-01-02\n")
    (tmp_path / "0902-b.md").write_text("# 0902. plain lines\n\nStatus: accepted; amended 2026-02-01 (a\nwrapped reason).\n"
                                        "Date: 2026-01-03\n\n## Context\nDate: not a header\n")
    (tmp_path / "0903-c.md").write_text("# 0903: plain bullets\n\n- Status: accepted\n- Date: 2026-01-04\n"
                                        "- **Superseded in part by:** [0901](0901-a.md) (a part)\n")
    found = [(r.number, r.short_status, r.date, r.status_cell()) for r in index.records(tmp_path)]
    assert found == [("0901", "accepted", "2026-01-02", "accepted"),
                     ("0902", "accepted; amended 2026-02-01", "2026-01-03", "accepted; amended 2026-02-01"),
                     ("0903", "accepted", "2026-01-04", "accepted; superseded in part by [0901](0901-a.md)")]
    (tmp_path / "0904-d.md").write_text("# 0904: no header\n\n**Decision.** Something.\n")
    with pytest.raises(ValueError, match="0904-d.md: no Status or Date"):
        index.records(tmp_path)


def test_lists_are_read_as_github_shows_them() -> None:
    """A list right after a paragraph line gets its blank line; nested items 4 spaces a level; code kept."""
    normalize = _tool("commonmark_lists").normalize
    source = ("Errors:\n- one\n  - nested\n    more\n- two\n\nText\n1. first\n   - under\n"
              "2. second\n   ```\n   code\n   ```\n\nA year\n2026. is no list\n\n```\n- not a list\n```\n")
    assert normalize(source) == ("Errors:\n\n- one\n    - nested\n        more\n- two\n\nText\n\n1. first\n    - under\n"
                                 "2. second\n    ```\n    code\n    ```\n\nA year\n2026. is no list\n\n```\n- not a list\n```\n")
