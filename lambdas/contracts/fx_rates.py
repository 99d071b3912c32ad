"""FX-rates contract, version 1: daily currency -> USD rates, as the API connector stages them.

One staged row per (rate_date, currency): how many US dollars one unit of the currency was worth
on that UTC day. The connector enforces it, the fixture server serves it, silver.fx_rates and the
docs (docs/sources/fx_rates.md) are derived from it. Change it here only, and bump VERSION.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lambdas.contracts import currencies

SOURCE = "fx_rates"
VERSION = 1

# Every rate is quoted in US dollars; USD itself is implied (1.0) and never staged.
QUOTE_CURRENCY = "USD"

# The currencies the shop takes (the list orders are checked against), besides USD: each needs a
# daily rate. A rate for any other code is quarantined (UNKNOWN_CURRENCY), so a provider's typo never
# becomes a silent new currency.
CURRENCIES: tuple[str, ...] = tuple(code for code in currencies.CODES if code != QUOTE_CURRENCY)

FieldType = Literal["date", "string", "double"]


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    doc: str


# Every field is required; (rate_date, currency) identifies a row.
FIELDS: tuple[Field, ...] = (
    Field("rate_date", "date", "UTC day the rate applies to."),
    Field("currency", "string", f"ISO 4217 code, one of CURRENCIES (never {QUOTE_CURRENCY})."),
    Field("usd_per_unit", "double", "US dollars for one unit of the currency; positive and finite."),
)
IDENTIFIER: tuple[str, ...] = ("rate_date", "currency")


class Reason:
    """Stable reason codes of quarantined FX records (documented in docs/sources/fx_rates.md).

    Body-level codes quarantine a whole response body as one record; entry-level codes quarantine
    one rate entry of an otherwise valid page.
    """

    # body level
    MISSING_DAY = "MISSING_DAY"              # 404, or a day with no rates at all
    MALFORMED_BODY = "MALFORMED_BODY"        # not UTF-8 JSON, or not a JSON object
    SCHEMA_MISMATCH = "SCHEMA_MISMATCH"      # a top-level key missing or of the wrong type
    WRONG_DATE = "WRONG_DATE"                # rates for another day than the one asked for
    WRONG_QUOTE_CURRENCY = "WRONG_QUOTE_CURRENCY"
    BAD_PAGINATION = "BAD_PAGINATION"        # page numbers out of order, a loop, or too many pages
    # entry level
    BAD_ENTRY = "BAD_ENTRY"                  # an entry that is not {"currency": str, "rate": number}
    UNKNOWN_CURRENCY = "UNKNOWN_CURRENCY"
    BAD_RATE = "BAD_RATE"                    # zero, negative, NaN or infinite
    CONFLICTING_RATE = "CONFLICTING_RATE"    # one currency twice in a day with different rates
    INCOMPLETE_DAY = "INCOMPLETE_DAY"        # a valid entry of a day whose other pages failed

    BODY: tuple[str, ...] = (MISSING_DAY, MALFORMED_BODY, SCHEMA_MISMATCH, WRONG_DATE, WRONG_QUOTE_CURRENCY,
                             BAD_PAGINATION)
    ENTRY: tuple[str, ...] = (BAD_ENTRY, UNKNOWN_CURRENCY, BAD_RATE, CONFLICTING_RATE, INCOMPLETE_DAY)
    ALL: tuple[str, ...] = BODY + ENTRY
