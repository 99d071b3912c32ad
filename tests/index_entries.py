"""Staging's manifest index in tests: each manifest has exactly one entry naming it (docs/decisions/0114)."""
from __future__ import annotations

import re
from collections.abc import Iterable

_ENTRY = re.compile(r"^manifest-index/(?P<source>[^/]+)/written_hour=\d{4}-\d{2}-\d{2}-\d{2}/(?P<path>.+)$")


def without_index_entries(keys: Iterable[str]) -> set[str]:
    """`keys` (paths under the staging zone's root) less their manifest index entries, once it is checked that
    every manifest among them has exactly one entry, and every entry names one of them."""
    keys = set(keys)
    named = sorted(f"manifests/{m['source']}/{m['path']}" for m in map(_ENTRY.match, keys) if m)
    assert named == sorted(k for k in keys if k.startswith("manifests/")), "one index entry per manifest"
    return {k for k in keys if not _ENTRY.match(k)}
