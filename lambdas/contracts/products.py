"""Product catalog contract, version 1: the CSV files the catalog team drops, and their rules.

The file loader enforces it, the catalog generator writes to it, and docs/sources/product_catalog.md
describes it. Change it here only, and bump VERSION.

A file is UTF-8 CSV (comma, double quotes, an optional byte-order mark), one product per line,
with a header line naming the columns in any order. A quoted value may not span lines: a
product's fields hold no line breaks, and it keeps one bad quote from swallowing the rest of a file.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from lambdas.contracts import currencies
from lambdas.contracts.common import Field

SOURCE = "products"
VERSION = 1

# Files are dropped in the landing bucket under lake_layout.landing_prefix(SOURCE); the loader is
# notified of names with this ending only.
FILE_SUFFIX = ".csv"

# A line longer than this is quarantined unparsed (its first MAX_ROW_BYTES bytes are kept).
MAX_ROW_BYTES = 8 * 1024
MAX_NAME_CHARS = 200

# "P-" and 5 to 9 digits: the ids the clickstream's product events carry.
PRODUCT_ID_PATTERN = r"P-(\d{5,9})"

CATEGORIES: tuple[str, ...] = ("shoes", "jackets", "bags", "watches", "outdoor", "kitchen", "toys", "books")

# Currencies: the shop's (lambdas/contracts/currencies.py); a price has at most their minor units.
MAX_PRICE = Decimal("100000")  # per unit, in the row's currency; a price must also be above 0
PRICE_SCALE = max(currencies.MINOR_UNITS.values())  # decimal places of the staged price

TRUE_VALUES: tuple[str, ...] = ("true", "1", "yes")
FALSE_VALUES: tuple[str, ...] = ("false", "0", "no")

# updated_at window: not after the file's arrival (plus clock skew), not before the catalog system
# existed (earlier dates are broken defaults such as the Unix epoch).
MAX_FUTURE_SECONDS = 15 * 60
OLDEST_UPDATED_AT = datetime(2000, 1, 1, tzinfo=timezone.utc)
MAX_OFFSET_HOURS = 18  # java.time.ZoneOffset's range, so Spark can hold every offset accepted

# Every column is required: an empty value (after trimming) is a MISSING_FIELD.
FIELDS: tuple[Field, ...] = tuple(Field(name, type_, True, doc) for name, type_, doc in (
    ("product_id", "string", "P- and 5 to 9 digits, any case; stored upper-case. Unique per file."),
    ("name", "string", f"Display name, 1 to {MAX_NAME_CHARS} characters, no control characters."),
    ("category", "string", f"One of {', '.join(CATEGORIES)}, any case; stored lower-case."),
    ("price", "decimal", "Unit price above 0 and at most MAX_PRICE, a dot as decimal separator, "
                         "no more decimals than the currency has."),
    ("currency", "string", "ISO 4217 code the shop takes (currencies.CODES), any case; stored upper-case."),
    ("active", "boolean", f"{'/'.join(TRUE_VALUES)} or {'/'.join(FALSE_VALUES)}, any case."),
    ("updated_at", "timestamp", "ISO-8601 with a UTC offset; stored in UTC, its offset kept."),
))
COLUMNS: tuple[str, ...] = tuple(f.name for f in FIELDS)

# Columns of a staged product beyond the contract's fields: the offset of updated_at, and lineage.
EXTRA_CLEAN_COLUMNS: tuple[Field, ...] = tuple(Field(name, type_, True, doc) for name, type_, doc in (
    ("updated_at_offset", "string", "The producer's UTC offset of updated_at, e.g. +02:00."),
    ("file_id", "string", "SHA-256 of the file the row came from (the name of its manifest)."),
    ("line_number", "integer", "Line of the row in that file; the header is line 1."),
    ("ingested_at", "timestamp", "When the file arrived: the time of its S3 event."),
))


class Reason:
    """Stable reason codes of quarantined rows (documented in docs/sources/product_catalog.md)."""

    BAD_HEADER = "BAD_HEADER"  # file-level: every data line of the file is quarantined with it
    BAD_ENCODING = "BAD_ENCODING"
    OVERSIZED_ROW = "OVERSIZED_ROW"
    MALFORMED_ROW = "MALFORMED_ROW"
    WRONG_FIELD_COUNT = "WRONG_FIELD_COUNT"
    MISSING_FIELD = "MISSING_FIELD"
    BAD_PRODUCT_ID = "BAD_PRODUCT_ID"
    BAD_NAME = "BAD_NAME"
    UNKNOWN_CATEGORY = "UNKNOWN_CATEGORY"
    BAD_PRICE = "BAD_PRICE"
    UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
    BAD_BOOLEAN = "BAD_BOOLEAN"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    CONFLICTING_DUPLICATE = "CONFLICTING_DUPLICATE"

    ALL: tuple[str, ...] = (
        BAD_HEADER, BAD_ENCODING, OVERSIZED_ROW, MALFORMED_ROW, WRONG_FIELD_COUNT, MISSING_FIELD,
        BAD_PRODUCT_ID, BAD_NAME, UNKNOWN_CATEGORY, BAD_PRICE, UNKNOWN_CURRENCY, BAD_BOOLEAN,
        BAD_TIMESTAMP, CONFLICTING_DUPLICATE,
    )
