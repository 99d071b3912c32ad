"""Strict validation of one FX API page against the contract. No I/O.

A body that can't be trusted as a whole (not JSON, wrong shape, another day, another quote
currency, broken page numbers) is rejected as one record with its raw bytes. Inside a valid page,
each rate entry is checked on its own, so one bad entry costs one rate, not the day.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from lambdas.contracts import fx_rates as contract
from lambdas.contracts.fx_rates import Reason

# More pages than this for one day is a pagination loop, not a bigger day (there are 20 currencies).
MAX_PAGES = 50

_CURRENCIES = frozenset(contract.CURRENCIES)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Every top-level key is required (next_page is null on the last page); other keys are ignored.
_TOP_LEVEL: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("date", lambda v: isinstance(v, str), "a string"),
    ("quote_currency", lambda v: isinstance(v, str), "a string"),
    ("page", _is_int, "an integer"),
    ("next_page", lambda v: v is None or _is_int(v), "an integer or null"),
    ("rates", lambda v: isinstance(v, list), "an array"),
)


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str      # a contract Reason code
    message: str
    payload: bytes   # the body as received (body level), or the entry as JSON (entry level)
    page: int


@dataclass(frozen=True, slots=True)
class Rate:
    currency: str
    usd_per_unit: float
    page: int
    payload: bytes   # the entry as JSON: what is quarantined if the day turns out incomplete


@dataclass(frozen=True, slots=True)
class Page:
    number: int
    rates: list[Rate]
    rejected: list[Rejected]   # entry-level rejections
    next_page: int | None


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads keeps the last of repeated keys; an ambiguous body is rejected instead."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(f"key {key!r} appears twice in one object")
        result[key] = value
    return result


def parse_page(body: bytes, day: date, page: int, *, truncated: bool = False) -> Page | Rejected:
    """The page's rates and entry rejections, or the body's rejection. The first broken rule decides."""
    def reject(reason: str, message: str) -> Rejected:
        return Rejected(reason, f"{day.isoformat()} page {page}: {message}", body, page)

    if truncated:
        return reject(Reason.MALFORMED_BODY, "body larger than the connector reads; not a page")
    try:
        doc = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except UnicodeDecodeError as error:
        return reject(Reason.MALFORMED_BODY, f"not UTF-8 ({error.reason} at byte {error.start})")
    except (ValueError, RecursionError) as error:  # JSONDecodeError and _DuplicateKey are ValueErrors
        return reject(Reason.MALFORMED_BODY, f"not valid JSON ({error})")
    if not isinstance(doc, dict):
        return reject(Reason.MALFORMED_BODY, f"a JSON {_json_type(doc)}, not an object")

    problems = [f"'{key}' must be {expected}" + ("" if key in doc else " (missing)")
                for key, ok, expected in _TOP_LEVEL if key not in doc or not ok(doc[key])]
    if problems:
        return reject(Reason.SCHEMA_MISMATCH, "; ".join(problems))
    if doc["date"] != day.isoformat():
        return reject(Reason.WRONG_DATE, f"rates for {doc['date']!r}, asked for {day.isoformat()}")
    if doc["quote_currency"] != contract.QUOTE_CURRENCY:
        return reject(Reason.WRONG_QUOTE_CURRENCY,
                      f"quoted in {doc['quote_currency']!r}, the contract needs {contract.QUOTE_CURRENCY}")
    next_page = doc["next_page"]
    if doc["page"] != page:
        return reject(Reason.BAD_PAGINATION, f"the body says page {doc['page']}")
    if next_page is not None and not page < next_page <= MAX_PAGES:
        return reject(Reason.BAD_PAGINATION,
                      f"next_page {next_page} must be after {page} and at most {MAX_PAGES}")

    rates: list[Rate] = []
    rejected: list[Rejected] = []
    for index, entry in enumerate(doc["rates"]):
        payload = json.dumps(entry, sort_keys=True).encode()
        checked = _check_entry(entry)
        if isinstance(checked, float):
            rates.append(Rate(entry["currency"], checked, page, payload))
        else:
            reason, message = checked
            rejected.append(Rejected(reason, f"{day.isoformat()} page {page} rates[{index}]: {message}",
                                     payload, page))
    return Page(page, rates, rejected, next_page)


def _check_entry(entry: Any) -> float | tuple[str, str]:
    """The entry's rate, or its (reason, message)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("currency"), str) or "rate" not in entry:
        return Reason.BAD_ENTRY, 'an entry must be an object {"currency": string, "rate": number}'
    currency = entry["currency"]
    if currency not in _CURRENCIES:
        return Reason.UNKNOWN_CURRENCY, f"currency {currency[:16]!r} is not in the contract"
    rate = entry["rate"]
    if not isinstance(rate, (int, float)) or isinstance(rate, bool):
        return Reason.BAD_RATE, f"{currency}: rate must be a number, got a JSON {_json_type(rate)}"
    try:
        value = float(rate)
    except OverflowError:  # an integer too large for a double
        value = math.inf
    if not math.isfinite(value) or value <= 0:
        return Reason.BAD_RATE, f"{currency}: rate must be positive and finite, got {value}"
    return value


def _json_type(value: Any) -> str:
    return {str: "string", bool: "boolean", list: "array", dict: "object", type(None): "null"}.get(
        type(value), type(value).__name__)

