"""The products contract's rules for a catalog file's header and for one of its lines.

Pure and total on lines: any bytes give a Product or a Rejected (never an exception), so a bad
row is quarantined and never fails a file. The first rule a row breaks decides its reason.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation

from lambdas.contracts import currencies
from lambdas.contracts import products as contract
from lambdas.contracts.common import TRIM_CHARACTERS
from lambdas.contracts.products import Reason

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_PRODUCT_ID = re.compile(contract.PRODUCT_ID_PATTERN, re.ASCII | re.IGNORECASE)
# Digits with an optional sign and fraction: anything else (1e3, 12,99, $5, NaN) is not a price.
_PRICE = re.compile(r"[+-]?\d+(?:\.\d+)?", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_MAX_OFFSET = timedelta(hours=contract.MAX_OFFSET_HOURS)


@dataclass(frozen=True, slots=True)
class Product:
    """A row that satisfies the contract, normalised."""

    product_id: str  # upper case
    name: str
    category: str  # lower case
    price: Decimal  # exact, at most the currency's decimals
    currency: str  # upper case
    active: bool
    updated_at: datetime  # UTC
    updated_at_offset: str  # "+HH:MM" as sent ("Z" is "+00:00")

    @property
    def key(self) -> int:
        """The id as one integer: its digits and their count (so P-00012 and P-000012 differ)."""
        digits = self.product_id[2:]
        return int(digits) * 10 + len(digits)

    @property
    def digest(self) -> int:
        """A 64-bit hash of the values (not the id): equal for rows that normalise the same."""
        return hash((self.name, self.category, self.price, self.currency, self.active, self.updated_at))


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # one of contract.Reason.ALL
    message: str


@dataclass(frozen=True)
class Header:
    """Where each contract column is in the file's lines, and the columns the contract does not know."""

    positions: tuple[int, ...]  # per contract.COLUMNS
    width: int  # fields per line
    ignored: tuple[str, ...]


def parse_header(data: bytes) -> Header | Rejected:
    """The file's first line (as read, with a possible byte-order mark) as a Header, or why not."""
    if data.startswith(_UTF16_BOMS):
        return Rejected(Reason.BAD_HEADER, "the file is UTF-16 (it starts with a UTF-16 byte-order mark); "
                                           "it must be UTF-8")
    data = data.removeprefix(_BOM)
    if not data.strip():
        return Rejected(Reason.BAD_HEADER, "the first line is empty; it must be the header "
                                           f"({','.join(contract.COLUMNS)})")
    fields = _fields(data)
    if isinstance(fields, Rejected):
        return Rejected(Reason.BAD_HEADER, f"the header line {fields.message}")
    names = [name.strip(TRIM_CHARACTERS).lower() for name in fields]
    repeated = sorted({name for name in names if names.count(name) > 1 and name})
    if repeated:
        return Rejected(Reason.BAD_HEADER, f"the header names column(s) {', '.join(repeated)} more than once")
    missing = [name for name in contract.COLUMNS if name not in names]
    if missing:
        hint = (" (the first line looks like a product row: is the header missing?)"
                if any(_PRODUCT_ID.fullmatch(name) for name in names) else "")
        return Rejected(Reason.BAD_HEADER, f"the header lacks column(s) {', '.join(missing)}; expected "
                                           f"{','.join(contract.COLUMNS)} in any order{hint}")
    return Header(positions=tuple(names.index(name) for name in contract.COLUMNS), width=len(names),
                  ignored=tuple(name for name in names if name not in contract.COLUMNS))


def parse_row(data: bytes, header: Header, *, arrived: datetime) -> Product | Rejected:
    """Apply the contract to one data line (without its line break). `arrived` (tz-aware) is when
    the file arrived: updated_at may not be later (beyond clock skew)."""
    fields = _fields(data)
    if isinstance(fields, Rejected):
        return fields
    if len(fields) != header.width:
        return Rejected(Reason.WRONG_FIELD_COUNT, f"line has {len(fields)} field(s), the header has {header.width}")
    values = dict(zip(contract.COLUMNS, (fields[i].strip(TRIM_CHARACTERS) for i in header.positions)))
    missing = [name for name, value in values.items() if not value]
    if missing:
        return Rejected(Reason.MISSING_FIELD, f"empty required field(s): {', '.join(missing)}")

    if not _PRODUCT_ID.fullmatch(values["product_id"]):
        return Rejected(Reason.BAD_PRODUCT_ID,
                        f"product_id {_quote(values['product_id'])} is not P- and 5 to 9 digits (e.g. P-00042)")
    name = values["name"]
    if len(name) > contract.MAX_NAME_CHARS:
        return Rejected(Reason.BAD_NAME, f"name is {len(name)} characters, limit {contract.MAX_NAME_CHARS}")
    control = _CONTROL.search(name)
    if control:
        return Rejected(Reason.BAD_NAME, f"name contains control character U+{ord(control.group()):04X} "
                                         f"at position {control.start() + 1}")
    category = values["category"].lower()
    if category not in contract.CATEGORIES:
        return Rejected(Reason.UNKNOWN_CATEGORY, f"category {_quote(values['category'])} is not one of "
                                                 f"{', '.join(contract.CATEGORIES)}")
    currency = values["currency"].upper()
    if currency not in currencies.MINOR_UNITS:
        return Rejected(Reason.UNKNOWN_CURRENCY, f"currency {_quote(values['currency'])} is not one of "
                                                 f"{', '.join(currencies.CODES)}")
    price = parse_price(values["price"], currency)
    if isinstance(price, Rejected):
        return price
    active = values["active"].lower()
    if active not in contract.TRUE_VALUES + contract.FALSE_VALUES:
        return Rejected(Reason.BAD_BOOLEAN, f"active {_quote(values['active'])} is not one of "
                                            f"{', '.join(contract.TRUE_VALUES + contract.FALSE_VALUES)}")
    updated = parse_updated_at(values["updated_at"], arrived=arrived)
    if isinstance(updated, Rejected):
        return updated
    return Product(
        product_id=values["product_id"].upper(), name=name, category=category, price=price,
        currency=currency, active=active in contract.TRUE_VALUES, updated_at=updated[0], updated_at_offset=updated[1],
    )


def parse_price(text: str, currency: str) -> Decimal | Rejected:
    """A price of `currency` (a known code) as an exact Decimal, or why it is not one."""
    if not _PRICE.fullmatch(text):
        return Rejected(Reason.BAD_PRICE, f"price {_quote(text)} is not a decimal number like 19.99 (a dot as "
                                          "decimal separator, no thousands separator or currency sign)")
    try:
        price = Decimal(text)
    except InvalidOperation:  # not reached for what the pattern admits; kept total all the same
        return Rejected(Reason.BAD_PRICE, f"price {_quote(text)} is not a decimal number")
    if price <= 0:
        return Rejected(Reason.BAD_PRICE, f"price {text} is not above 0")
    if price > contract.MAX_PRICE:
        return Rejected(Reason.BAD_PRICE, f"price {text} is above the limit of {contract.MAX_PRICE}")
    decimals = currencies.MINOR_UNITS[currency]
    exact = price.quantize(Decimal(1).scaleb(-decimals))
    if exact != price:
        return Rejected(Reason.BAD_PRICE, f"price {text} has more decimals than {currency} allows ({decimals})")
    return exact.quantize(Decimal(1).scaleb(-contract.PRICE_SCALE))


def parse_updated_at(text: str, *, arrived: datetime) -> tuple[datetime, str] | Rejected:
    """An ISO-8601 timestamp with a UTC offset inside the contract's window, as (UTC, "+HH:MM")."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as err:
        # Python's own reason where it has one ("month must be in 1..12"), not its echo of the value.
        why = "" if str(err).startswith("Invalid isoformat") else f": {err}"
        return Rejected(Reason.BAD_TIMESTAMP, f"updated_at {_quote(text)} is not an ISO-8601 timestamp{why}")
    offset = parsed.utcoffset()
    if offset is None:
        return Rejected(Reason.BAD_TIMESTAMP, f"updated_at {_quote(text)} has no UTC offset "
                                              "(e.g. 2026-05-01T12:00:00+02:00 or ...Z)")
    if abs(offset) > _MAX_OFFSET or offset % timedelta(minutes=1):
        return Rejected(Reason.BAD_TIMESTAMP, f"updated_at {_quote(text)} has an out-of-range UTC offset")
    try:
        utc = parsed.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00+02:00 is before year 1 in UTC
        return Rejected(Reason.BAD_TIMESTAMP, f"updated_at {_quote(text)} is out of range in UTC")
    # Messages name the limit, not the distance from `arrived`, so a reload writes the same bytes.
    if utc > arrived + timedelta(seconds=contract.MAX_FUTURE_SECONDS):
        return Rejected(Reason.BAD_TIMESTAMP, f"updated_at {_quote(text)} is after the file arrived "
                                              f"(more than {contract.MAX_FUTURE_SECONDS} s of clock skew)")
    if utc < contract.OLDEST_UPDATED_AT:
        return Rejected(Reason.BAD_TIMESTAMP, f"updated_at {_quote(text)} is before "
                                              f"{contract.OLDEST_UPDATED_AT.date().isoformat()}")
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return utc, f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _fields(data: bytes) -> list[str] | Rejected:
    """One line's CSV fields, or why the line is not one UTF-8 CSV record."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return Rejected(Reason.BAD_ENCODING, f"line is not valid UTF-8 at byte {err.start + 1}")
    try:
        # One reader per line: a quote left open must not run on into the next lines.
        return next(csv.reader((text,), strict=True))
    except csv.Error as err:
        # (csv's hint about "universal-newline mode" after a stray CR would only confuse here)
        return Rejected(Reason.MALFORMED_ROW, f"line is not valid CSV: {str(err).split(' - ')[0]}")


def _quote(value: str, limit: int = 40) -> str:
    """A value quoted for a message, cut short so the message stays readable."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + "..."
