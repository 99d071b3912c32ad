"""A batch's manifest as every writer stages it: its index entry first, then the manifest.

The manifest (written last, after the batch's files) marks the batch complete. The index entry, in the folder of
the hour it is written (`manifest-index/<source>/written_hour=.../<the manifest's path under its prefix>`), is how
silver_merge finds it without listing every manifest ever written (docs/decisions/0114). Written just before the
manifest, so every manifest has an entry at most one write older than itself; an entry whose manifest is not there
(the writer died between the two) names nothing yet and is skipped. A retry writes both again, the entry in its
own hour, so a manifest rewritten later (a re-fetched FX day, a replayed batch) is found in that later hour.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

from lambdas.common.storage import write_bytes
from lambdas.contracts import lake_layout

Put = Callable[[str, bytes], object]  # writes bytes at a URI (storage.write_bytes, or an atomic variant)


def manifest_uri(staging_uri: str, source: str, relative: str) -> str:
    """Where the manifest of `source` at `relative` (its path under the source's manifest prefix) lives."""
    return lake_layout.join(staging_uri, lake_layout.manifest_prefix(source), relative)


def index_entry_uri(staging_uri: str, source: str, relative: str, written_at: datetime) -> str:
    return lake_layout.join(staging_uri, lake_layout.manifest_index_prefix(source),
                            lake_layout.written_hour_folder(written_at), relative)


def encode(manifest: dict[str, object]) -> bytes:
    """A manifest's bytes as every writer writes them (silver_merge's ledger keys batches by their SHA-256)."""
    return json.dumps(manifest, indent=2).encode() + b"\n"


def write_manifest(staging_uri: str, source: str, relative: str, manifest: dict[str, object], *,
                   put: Put = write_bytes, written_at: datetime | None = None) -> str:
    """Write the manifest (as indented JSON) at `relative` under the source's manifest prefix, its index entry
    first; returns the manifest's URI. `written_at` is the wall clock (never a batch's data time): the index
    hour must be when the write happens, which is what silver_merge's listing window is measured in."""
    at = written_at or datetime.now(timezone.utc)
    put(index_entry_uri(staging_uri, source, relative, at), json.dumps({"manifest": relative}).encode())
    uri = manifest_uri(staging_uri, source, relative)
    put(uri, encode(manifest))
    return uri
