"""What every event contract shares: the record-level reason codes and the normalisation of strings.

Each contract (clickstream, orders) extends `Reason` with its own codes and lists the codes it can
produce in `REASONS`. Codes are stable: dashboards, alarms and the quarantine table key on them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Trimmed from both ends of every string field: ASCII whitespace only, so the cleaner's columnar
# path (Arrow) and its per-record path (Python) trim exactly the same characters.
TRIM_CHARACTERS = " \t\n\r\x0b\x0c"


FieldType = Literal["string", "timestamp", "decimal", "items"]


@dataclass(frozen=True)
class Field:
    """One field of a contract: its name, type on the wire (see docs/contracts.md), and meaning."""

    name: str
    type: FieldType
    required: bool
    doc: str


class Reason:
    """Reason codes any event contract can give (documented in docs/contracts.md)."""

    OVERSIZED = "OVERSIZED"
    MALFORMED_JSON = "MALFORMED_JSON"
    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    MISSING_FIELD = "MISSING_FIELD"
    WRONG_TYPE = "WRONG_TYPE"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"

    COMMON: tuple[str, ...] = (
        OVERSIZED, MALFORMED_JSON, NOT_AN_OBJECT, MISSING_FIELD, WRONG_TYPE, UNKNOWN_EVENT_TYPE, BAD_TIMESTAMP,
    )
    # Only for contracts with a `country` field (one rule for all of them: lambdas/cleaner/rules.country),
    # so each lists it in its own ALL.
    BAD_COUNTRY = "BAD_COUNTRY"
