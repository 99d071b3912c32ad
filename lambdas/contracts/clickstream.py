"""Clickstream contract, version 1: the schema and rules of a shop's clickstream event.

The cleaner enforces it, the generator writes to it, the Iceberg spec of silver.events and the
docs are derived from it. Change it here only, and bump VERSION.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SOURCE = "clickstream"
VERSION = 1

EVENT_TYPES: tuple[str, ...] = ("page_view", "product_view", "add_to_cart", "checkout_started")

# Records larger than this are quarantined, not parsed (Kinesis allows 1 MiB).
MAX_RECORD_BYTES = 64 * 1024
# Events further in the future than this (clock skew allowance) are rejected.
MAX_FUTURE_SECONDS = 15 * 60
# Events older than this are rejected as implausible (late data within it is accepted).
MAX_AGE_DAYS = 365

# PII masking, applied by the cleaner before anything is staged: an IP keeps only its network,
# and every e-mail address in page_url (also a percent-encoded one) is replaced by EMAIL_REDACTION.
IPV4_PREFIX_BITS = 24
IPV6_PREFIX_BITS = 48
EMAIL_REDACTION = "REDACTED"

FieldType = Literal["string", "timestamp"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool
    doc: str


FIELDS: tuple[Field, ...] = (
    Field("event_id", "string", True, "Unique id of the event; a re-send keeps it."),
    Field("event_type", "string", True, f"One of {', '.join(EVENT_TYPES)}."),
    Field("event_time", "timestamp", True, "ISO-8601 with a UTC offset; stored in UTC."),
    Field("user_id", "string", True, "Pseudonymous shop user id."),
    Field("session_id", "string", True, "Browser session id."),
    Field("page_url", "string", False, "URL of the page; e-mail addresses are redacted."),
    Field("product_id", "string", False, "Product viewed or added, for product events."),
    Field("user_agent", "string", False, "Browser user agent."),
    Field("ip", "string", False, "Client IP; masked to its network before the lake."),
    Field("country", "string", True, "ISO 3166-1 alpha-2 country code, upper-cased."),
)

REQUIRED: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)

# Columns of a clean staged record: the contract's fields (event_time as UTC timestamp), plus
# the original UTC offset and where the record came from.
EXTRA_CLEAN_COLUMNS: tuple[tuple[str, FieldType], ...] = (
    ("event_time_offset", "string"),  # the producer's offset, e.g. "+02:00", kept for audits
    ("ingested_at", "timestamp"),      # Kinesis approximate arrival time
)


class Reason:
    """Stable reason codes of quarantined records (documented in docs/contracts.md)."""

    MALFORMED_JSON = "MALFORMED_JSON"
    NOT_AN_OBJECT = "NOT_AN_OBJECT"
    OVERSIZED = "OVERSIZED"
    MISSING_FIELD = "MISSING_FIELD"
    WRONG_TYPE = "WRONG_TYPE"
    UNKNOWN_EVENT_TYPE = "UNKNOWN_EVENT_TYPE"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    BAD_COUNTRY = "BAD_COUNTRY"

    ALL: tuple[str, ...] = (
        MALFORMED_JSON, NOT_AN_OBJECT, OVERSIZED, MISSING_FIELD, WRONG_TYPE,
        UNKNOWN_EVENT_TYPE, BAD_TIMESTAMP, BAD_COUNTRY,
    )
