"""Orders contract, version 3: one change of an order's status, as the shop's order service emits it.

An order is placed, then paid, and may be cancelled or refunded: each step is one event carrying the
order's items and total at that moment. The cleaner enforces the contract, the generator writes to
it, and the docs (docs/contracts.md) describe it. Change it here only, and bump VERSION.
Version 2 (from 1): the required `country`, the shopper's billing country, under the clickstream's
country rule (docs/decisions/0420-orders-carry-the-billing-country.md).
Version 3 (from 2): the optional `session_id`, the clickstream session that placed the order, so the funnel
ends in sessions that paid (docs/decisions/0421-orders-carry-their-session.md). Records without it stay clean.
"""
from __future__ import annotations

from decimal import Decimal

from lambdas.contracts import common, currencies
from lambdas.contracts.common import Field, FieldType

SOURCE = "orders"
VERSION = 3

EVENT_TYPES: tuple[str, ...] = ("order_placed", "order_paid", "order_cancelled", "order_refunded")
CURRENCIES: tuple[str, ...] = currencies.CODES

MAX_RECORD_BYTES = 64 * 1024
MAX_FUTURE_SECONDS = 15 * 60
MAX_AGE_DAYS = 365

MAX_ITEMS = 100
MAX_QUANTITY = 10_000
# Amounts are exact decimals, staged as decimal(AMOUNT_PRECISION, AMOUNT_SCALE): at most
# AMOUNT_SCALE decimal places and below MAX_AMOUNT, or the record is quarantined (never rounded).
AMOUNT_PRECISION = 18
AMOUNT_SCALE = 4
MAX_AMOUNT = Decimal(10) ** (AMOUNT_PRECISION - AMOUNT_SCALE)

FIELDS: tuple[Field, ...] = (
    Field("order_id", "string", True, "Id of the order; every status change of one order carries it."),
    Field("event_type", "string", True, f"One of {', '.join(EVENT_TYPES)}."),
    Field("event_time", "timestamp", True, "ISO-8601 with a UTC offset; stored in UTC."),
    Field("user_id", "string", True, "Pseudonymous shop user id."),
    Field("country", "string", True, "The shopper's billing country: ISO 3166-1 alpha-2 code, upper-cased."),
    Field("currency", "string", True, "ISO 4217 code the shop takes (CURRENCIES), upper-cased."),
    Field("total", "decimal", True, "Order total in `currency`: the items' sum, rounded to the currency's minor units."),
    Field("items", "items", True, f"1 to {MAX_ITEMS} lines: product_id (string), qty (integer, 1 to "
                                  f"{MAX_QUANTITY}), unit_price (number >= 0)."),
    Field("session_id", "string", False, "The clickstream's session_id of the session that placed the order."),
)

ITEM_FIELDS: tuple[str, ...] = ("product_id", "qty", "unit_price")
REQUIRED: tuple[str, ...] = tuple(f.name for f in FIELDS if f.required)

EXTRA_CLEAN_COLUMNS: tuple[tuple[str, FieldType], ...] = (
    ("event_time_offset", "string"),  # the producer's offset, e.g. "+02:00"
    ("ingested_at", "timestamp"),      # arrival time at the stream or broker
)

# One event per order, status and moment: an exact re-send repeats all three.
DEDUPLICATION_KEY: tuple[str, ...] = ("order_id", "event_type", "event_time")


class Reason(common.Reason):
    """Stable reason codes of quarantined order records (documented in docs/contracts.md)."""

    UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
    BAD_QUANTITY = "BAD_QUANTITY"
    NEGATIVE_AMOUNT = "NEGATIVE_AMOUNT"
    TOTAL_MISMATCH = "TOTAL_MISMATCH"

    ALL: tuple[str, ...] = (*common.Reason.COMMON, common.Reason.BAD_COUNTRY, UNKNOWN_CURRENCY, BAD_QUANTITY,
                            NEGATIVE_AMOUNT, TOTAL_MISMATCH)


REASONS = Reason.ALL
