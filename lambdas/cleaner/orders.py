"""The orders contract, one record at a time: money is exact (Decimal), never a float.

Orders are a small share of a shop's events, so they take the reference path only; the batch around
them (decoding, staging, deduplication, writing) is the same as for the clickstream.
"""
from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from lambdas.cleaner import rules
from lambdas.cleaner.pii import IpMasker
from lambdas.cleaner.rules import Rejected
from lambdas.contracts import orders as contract
from lambdas.contracts.common import TRIM_CHARACTERS
from lambdas.contracts.currencies import MINOR_UNITS
from lambdas.contracts.orders import Reason

NAMES: tuple[str, ...] = tuple(f.name for f in contract.FIELDS)
STRINGS: tuple[str, ...] = tuple(f.name for f in contract.FIELDS if f.type in ("string", "timestamp"))
REQUIRED_STRINGS: tuple[str, ...] = tuple(name for name in STRINGS if name in contract.REQUIRED)
_SCALE = Decimal(1).scaleb(-contract.AMOUNT_SCALE)


def clean_record(raw: bytes, *, now: datetime, masker: IpMasker | None = None) -> dict[str, Any] | Rejected:
    """One order event: its clean column values (without `ingested_at`), or why it is rejected."""
    del masker  # orders carry no IP address
    doc = rules.decode_fields(raw, NAMES, contract.MAX_RECORD_BYTES, exact_numbers=True)
    if isinstance(doc, Rejected):
        return doc
    missing = [name for name in contract.REQUIRED if _missing(doc[name])]
    if missing:
        return Rejected(Reason.MISSING_FIELD, f"missing or empty required field(s): {', '.join(missing)}")
    values = rules.string_fields(doc, STRINGS, REQUIRED_STRINGS)
    if isinstance(values, Rejected):
        return values
    items = _items(doc["items"])
    if isinstance(items, Rejected):
        return items
    total = _amount("total", doc["total"])
    if isinstance(total, Rejected):
        return total
    parsed = rules.event_type_and_time(values, contract, now)
    if isinstance(parsed, Rejected):
        return parsed
    country = rules.country(values["country"])  # type: ignore[arg-type]
    if isinstance(country, Rejected):
        return country
    currency = values["currency"].upper() if values["currency"].isascii() else values["currency"]  # type: ignore[union-attr]
    if currency not in MINOR_UNITS:
        return Rejected(Reason.UNKNOWN_CURRENCY,
                        f"currency {rules.show(values['currency'])} is not one the shop takes ({', '.join(contract.CURRENCIES)})")
    rejected = _check_amounts(items, total, currency)
    if rejected:
        return rejected
    return {
        **values, "event_time": parsed[0], "country": country, "currency": currency, "total": total, "items": items,
        "event_time_offset": parsed[1],
    }


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list)) and not (value.strip(TRIM_CHARACTERS)
                                                                       if isinstance(value, str) else value))


def _items(value: Any) -> list[dict[str, Any]] | Rejected:
    if not isinstance(value, list):
        return Rejected(Reason.WRONG_TYPE, f"items is {rules.json_type(value)}, expected array")
    if len(value) > contract.MAX_ITEMS:
        return Rejected(Reason.WRONG_TYPE, f"items has {len(value)} lines, limit {contract.MAX_ITEMS}")
    items = []
    for k, item in enumerate(value):
        where = f"items[{k}]"
        if not isinstance(item, dict):
            return Rejected(Reason.WRONG_TYPE, f"{where} is {rules.json_type(item)}, expected object")
        missing = [f"{where}.{name}" for name in contract.ITEM_FIELDS if _missing(item.get(name))]
        if missing:
            return Rejected(Reason.MISSING_FIELD, f"missing or empty required field(s): {', '.join(missing)}")
        product_id, qty = item["product_id"], item["qty"]
        if not isinstance(product_id, str):
            return Rejected(Reason.WRONG_TYPE, f"{where}.product_id is {rules.json_type(product_id)}, expected string")
        if not isinstance(qty, int) or isinstance(qty, bool):
            kind = "a number with a fraction or exponent" if isinstance(qty, Decimal) else rules.json_type(qty)
            return Rejected(Reason.WRONG_TYPE, f"{where}.qty is {kind}, expected an integer")
        price = _amount(f"{where}.unit_price", item["unit_price"])
        if isinstance(price, Rejected):
            return price
        items.append({"product_id": product_id.strip(TRIM_CHARACTERS), "qty": qty, "unit_price": price})
    return items


def _amount(name: str, value: Any) -> Decimal | Rejected:
    """An exact amount that fits decimal(AMOUNT_PRECISION, AMOUNT_SCALE); sign checked later."""
    if not isinstance(value, (int, Decimal)) or isinstance(value, bool):
        return Rejected(Reason.WRONG_TYPE, f"{name} is {rules.json_type(value)}, expected number")
    amount = Decimal(value)
    try:
        fits = abs(amount) < contract.MAX_AMOUNT and amount == amount.quantize(_SCALE)
    except InvalidOperation:
        fits = False
    if not fits:
        return Rejected(Reason.WRONG_TYPE, f"{name} {value} does not fit an amount: at most "
                                           f"{contract.AMOUNT_SCALE} decimal places, below {contract.MAX_AMOUNT:,}")
    return amount.quantize(_SCALE)


def _check_amounts(items: list[dict[str, Any]], total: Decimal, currency: str) -> Rejected | None:
    for k, item in enumerate(items):
        if not 1 <= item["qty"] <= contract.MAX_QUANTITY:
            return Rejected(Reason.BAD_QUANTITY, f"items[{k}].qty is {item['qty']}, expected 1 to {contract.MAX_QUANTITY}")
        if item["unit_price"] < 0:
            return Rejected(Reason.NEGATIVE_AMOUNT, f"items[{k}].unit_price is negative ({item['unit_price']})")
    if total < 0:
        return Rejected(Reason.NEGATIVE_AMOUNT, f"total is negative ({total})")
    exact = sum((item["qty"] * item["unit_price"] for item in items), Decimal(0))
    expected = exact.quantize(Decimal(1).scaleb(-MINOR_UNITS[currency]), rounding=ROUND_HALF_EVEN)
    if total != expected:
        return Rejected(Reason.TOTAL_MISMATCH, f"total {total.normalize():f} {currency} is not the items' sum "
                                               f"{expected:f} (sum of qty x unit_price, rounded to the currency)")
    return None
