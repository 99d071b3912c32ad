"""Record-level rules every contract shares: bytes to contract fields, strings, timestamps, e-mails.

These are the cleaner's reference semantics, one record at a time. Pure and total: any input gives
a value or a `Rejected` (never an exception), so a bad record is quarantined and never fails a batch.
The columnar path (lambdas/cleaner/clickstream.py) must agree with them on every record; records it
does not accept are decided here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from types import ModuleType
from typing import Any

import msgspec

from lambdas.contracts.common import TRIM_CHARACTERS, Reason
from lambdas.contracts.countries import ISO_3166_ALPHA2

# An e-mail address, plain or with a percent-encoded "@" (as in a query string). The local part is at
# most 64 characters (RFC 5321's limit): that keeps the search linear in the text's length (unbounded,
# a long run without an address is quadratic), and a longer run only keeps its head.
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]{1,64}(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}", re.IGNORECASE | re.ASCII)
# Characters of an IP or e-mail address (an IPv6 zone and a percent-encoded "@" included).
_ADDRESS_CHARACTER = re.compile(r"[A-Za-z0-9._%+\-@:\[\]]", re.ASCII)
_ADDRESS_TAIL = re.compile(r"[A-Za-z0-9._%+\-@:\[\]]+\Z", re.ASCII)
# RFC 3339 (the ISO-8601 profile with a mandatory offset); re.ASCII keeps \d to 0-9.
TIMESTAMP_PATTERN = r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN, re.ASCII)
# java.time.ZoneOffset's range, so Spark can represent every offset we accept.
MAX_OFFSET_MINUTES = 18 * 60
_NULL = msgspec.Raw(b"null")
# str.upper() maps some non-ASCII letters onto ASCII ones ("ı" -> "I"): only ASCII letters may be upper-cased.
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # a contract's reason code
    message: str


@lru_cache(maxsize=None)
def _fields_decoder(names: tuple[str, ...]) -> msgspec.json.Decoder:
    """Decodes an object's contract fields as raw JSON, skipping (but syntax-checking) other keys."""
    struct = msgspec.defstruct("ContractFields", [(name, msgspec.Raw, _NULL) for name in names], gc=False)
    return msgspec.json.Decoder(struct)


def decode_fields(raw: bytes, names: tuple[str, ...], max_bytes: int,
                  exact_numbers: bool = False) -> dict[str, Any] | Rejected:
    """The named fields of a JSON object record (absent = None), or why the record is not one.

    Other keys are skipped like the columnar decoder skips them, so both accept the same bytes.
    `exact_numbers` decodes numbers with a fraction or exponent as Decimal instead of float.
    """
    if len(raw) > max_bytes:
        return Rejected(Reason.OVERSIZED, f"record is {len(raw)} bytes, limit {max_bytes}")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Rejected(Reason.MALFORMED_JSON, f"not valid UTF-8 at byte {err.start}")
    values = _VALUE_DECODERS[exact_numbers]
    try:  # the whole document in one call; any failure is decided by the field-wise decode below
        document = values.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        pass
    else:
        if isinstance(document, dict):
            return {name: document.get(name) for name in names}
        return Rejected(Reason.NOT_AN_OBJECT, f"expected a JSON object, got {json_type(document)}")
    try:
        struct = _fields_decoder(names).decode(raw)
        return {name: _value(values, getattr(struct, name)) for name in names}
    except RecursionError:
        return Rejected(Reason.MALFORMED_JSON, "JSON nested too deeply")
    except msgspec.ValidationError:  # (a DecodeError subclass) valid JSON, but not an object
        return Rejected(Reason.NOT_AN_OBJECT, f"expected a JSON object, got {_kind_of_document(raw)}")
    except msgspec.DecodeError as err:
        return Rejected(Reason.MALFORMED_JSON, f"invalid JSON: {err}")


class _OutOfRange:
    """A JSON number too large for a Python number: still a number, for the type rules."""


_VALUE_DECODERS = {False: msgspec.json.Decoder(), True: msgspec.json.Decoder(float_hook=Decimal)}


def _value(decoder: msgspec.json.Decoder, raw: msgspec.Raw) -> Any:
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:  # e.g. 1e999: valid JSON, out of range
        return _OutOfRange()


def _kind_of_document(raw: bytes) -> str:
    first = raw.lstrip(b" \t\r\n")[:1]
    return {b"[": "an array", b'"': "a string", b"t": "a boolean", b"f": "a boolean", b"n": "null"}.get(first, "a number")


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float, Decimal, _OutOfRange)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"


def string_fields(doc: dict[str, Any], names: tuple[str, ...], required: tuple[str, ...]) -> dict[str, str | None] | Rejected:
    """Trimmed string fields (empty -> None); all missing required ones named, before any wrong type."""
    values: dict[str, str | None] = {}
    missing: list[str] = []
    wrong: list[str] = []
    for name in names:
        value = doc[name]
        if value is not None and not isinstance(value, str):
            wrong.append(f"{name} is {json_type(value)}, expected string")
            continue
        value = value.strip(TRIM_CHARACTERS) if value is not None else None
        values[name] = value or None  # an empty optional string carries nothing: null
        if name in required and not value:
            missing.append(name)
    if missing:
        return Rejected(Reason.MISSING_FIELD, f"missing or empty required field(s): {', '.join(missing)}")
    if wrong:
        return Rejected(Reason.WRONG_TYPE, "; ".join(wrong))
    return values


def event_type_and_time(values: dict[str, str | None], contract: ModuleType,
                        now: datetime) -> tuple[datetime, str] | Rejected:
    """The contract's event_type and event_time rules: (UTC time, "+HH:MM" offset), or why not."""
    event_type = values["event_type"]
    if event_type not in contract.EVENT_TYPES:
        return Rejected(Reason.UNKNOWN_EVENT_TYPE,
                        f"event_type {show(event_type)} is not one of {', '.join(contract.EVENT_TYPES)}")
    return parse_event_time(values["event_time"], now=now,  # type: ignore[arg-type]
                            max_future_seconds=contract.MAX_FUTURE_SECONDS, max_age_days=contract.MAX_AGE_DAYS)


def parse_event_time(text: str, *, now: datetime, max_future_seconds: int,
                     max_age_days: int) -> tuple[datetime, str] | Rejected:
    """An RFC 3339 timestamp inside the window around `now`, as (UTC datetime, "+HH:MM" offset).

    Fractions beyond microseconds are truncated; "Z" is kept as "+00:00".
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return Rejected(Reason.BAD_TIMESTAMP,
                        f"event_time {show(text)} is not ISO-8601 with a UTC offset (e.g. 2024-05-01T12:00:00+02:00)")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        sign, off_h, off_m = "+", "00", "00"
    if int(off_m) > 59 or int(off_h) * 60 + int(off_m) > MAX_OFFSET_MINUTES:
        return Rejected(Reason.BAD_TIMESTAMP, f"event_time {show(text)} has an out-of-range UTC offset")
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                         int((fraction or "0")[:6].ljust(6, "0")),
                         tzinfo=timezone(-offset if sign == "-" else offset))
        utc = local.astimezone(timezone.utc)
    except (ValueError, OverflowError) as err:
        return Rejected(Reason.BAD_TIMESTAMP, f"event_time {show(text)} is not a valid date-time: {err}")
    # Messages name the limit, not the distance from now, so a retried batch writes the same bytes.
    if utc > now + timedelta(seconds=max_future_seconds):
        return Rejected(Reason.BAD_TIMESTAMP, f"event_time {show(text)} is more than {max_future_seconds} s in the future")
    if utc < now - timedelta(days=max_age_days):
        return Rejected(Reason.BAD_TIMESTAMP, f"event_time {show(text)} is older than {max_age_days} days")
    return utc, f"{sign}{off_h}:{off_m}"


def country(text: str) -> str | Rejected:
    """The `country` rule of every contract with one: a trimmed `text` naming an assigned ISO 3166-1
    alpha-2 code in any case, upper-cased. Nothing is mapped (UK is not GB: decision 0415)."""
    if len(text) == 2 and set(text) <= _ASCII_LETTERS and text.upper() in ISO_3166_ALPHA2:
        return text.upper()
    return Rejected(Reason.BAD_COUNTRY, f"country {show(text)} is not an ISO 3166-1 alpha-2 code")


def redact_emails(url: str, replacement: str) -> str:
    """Replace every e-mail address (also percent-encoded ones) with `replacement`."""
    # Until nothing matches: one pass can leave an address behind another ("a@b.cc@d.ee").
    # Each pass removes at least one "@", so this ends; no "@" left means nothing can match.
    while "@" in url or "%40" in url:
        url, replaced = _EMAIL.subn(replacement, url)
        if not replaced:
            break
    return url


def show(value: str | None, limit: int = 40) -> str:
    """A value quoted for a message, cut short so a message stays readable. Never cut inside a word that may
    be an IP or e-mail address: the message is masked later (pii.masked_text), which must see it whole."""
    if value is None:
        return "null"
    if len(value) <= limit:
        return repr(value)
    cut = value[:limit]
    if _ADDRESS_CHARACTER.match(value[limit]):
        cut = _ADDRESS_TAIL.sub("", cut)
    return repr(cut + "...")
