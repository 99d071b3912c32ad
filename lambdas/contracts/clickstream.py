"""Clickstream contract, version 2: the schema and rules of a shop's clickstream event.

The cleaner enforces it, the generator writes to it, the Iceberg spec of silver.events and the
docs are derived from it. Change it here only, and bump VERSION.
Version 2 (from 1): `country` must be an assigned ISO 3166-1 code, and IPs are keyed-hashed by
default (docs/decisions/0412-ip-addresses-are-keyed-hashes.md).
"""
from __future__ import annotations


from lambdas.contracts import common
from lambdas.contracts.common import Field, FieldType

SOURCE = "clickstream"
VERSION = 2

EVENT_TYPES: tuple[str, ...] = ("page_view", "product_view", "add_to_cart", "checkout_started")

# Records larger than this are quarantined, not parsed (Kinesis allows 1 MiB).
MAX_RECORD_BYTES = 64 * 1024
# Events further in the future than this (clock skew allowance) are rejected.
MAX_FUTURE_SECONDS = 15 * 60
# Events older than this are rejected as implausible (late data within it is accepted).
MAX_AGE_DAYS = 365

# PII masking, applied by the cleaner before anything is staged. An IP becomes
# IP_HASH_PREFIX + hex(HMAC-SHA256(key, canonical address)) by default, or, with the cleaner's
# PII_IP_MODE=truncate, its network address (/24 for IPv4, /48 for IPv6). Every e-mail address in
# page_url (also a percent-encoded one) is replaced by EMAIL_REDACTION.
IP_HASH_PREFIX = "h1:"
IPV4_PREFIX_BITS = 24
IPV6_PREFIX_BITS = 48
EMAIL_REDACTION = "REDACTED"

FIELDS: tuple[Field, ...] = (
    Field("event_id", "string", True, "Unique id of the event; a re-send keeps it."),
    Field("event_type", "string", True, f"One of {', '.join(EVENT_TYPES)}."),
    Field("event_time", "timestamp", True, "ISO-8601 with a UTC offset; stored in UTC."),
    Field("user_id", "string", True, "Pseudonymous shop user id."),
    Field("session_id", "string", True, "Browser session id."),
    Field("page_url", "string", False, "URL of the page; e-mail addresses are redacted."),
    Field("product_id", "string", False, "Product viewed or added, for product events."),
    Field("user_agent", "string", False, "Browser user agent."),
    Field("ip", "string", False, "Client IP; keyed-hashed (or truncated to its network) before the lake."),
    Field("country", "string", True, "ISO 3166-1 alpha-2 country code, upper-cased."),
)

REQUIRED: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)

# Columns of a clean staged record: the contract's fields (event_time as UTC timestamp), plus
# the original UTC offset and where the record came from.
EXTRA_CLEAN_COLUMNS: tuple[tuple[str, FieldType], ...] = (
    ("event_time_offset", "string"),  # the producer's offset, e.g. "+02:00", kept for audits
    ("ingested_at", "timestamp"),      # arrival time at the stream (Kinesis) or broker (Kafka)
)

# Within one batch, a second record with the same key is a duplicate (the first one wins).
DEDUPLICATION_KEY: tuple[str, ...] = ("event_id",)


class Reason(common.Reason):
    """Stable reason codes of quarantined clickstream records (documented in docs/contracts.md)."""

    ALL: tuple[str, ...] = (*common.Reason.COMMON, common.Reason.BAD_COUNTRY)


REASONS = Reason.ALL
