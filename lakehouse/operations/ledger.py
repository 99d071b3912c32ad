"""Per-source ledgers from the staging manifests: every source's cleaner or loader writes one manifest
per batch (Kinesis batch, catalog file, FX day) with received = clean + quarantined + duplicates."""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from lakehouse.lake.layout import LocalLake
from lambdas.contracts import lake_layout


@dataclass
class Ledger:
    batches: int = 0
    received: int = 0
    clean: int = 0
    quarantined: int = 0
    duplicates: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)

    @property
    def conserved(self) -> bool:
        return self.received == self.clean + self.quarantined + self.duplicates


def staged_ledger(lake: LocalLake, source: str) -> Ledger:
    """The sum of a source's manifests in the local staging zone."""
    root = lake.root / "lake" / "staging" / lake_layout.manifest_prefix(source)
    ledger, reasons = Ledger(), Counter[str]()
    for path in sorted(root.rglob("*.json")):
        manifest = json.loads(path.read_text())
        ledger.batches += 1
        for key in ("received", "clean", "quarantined", "duplicates"):
            setattr(ledger, key, getattr(ledger, key) + int(manifest[key]))
        reasons.update(manifest.get("quarantined_by_reason") or {})
    ledger.quarantined_by_reason = dict(sorted(reasons.items()))
    return ledger
