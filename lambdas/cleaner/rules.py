"""The clickstream contract's rules for one record: bytes in, a Clean event or a Rejected reason out.

Pure and total: any input bytes give exactly one of the two (never an exception), so a bad record
is quarantined and never fails a batch. PII is masked here, before anything is staged.
"""
from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from lambdas.contracts import clickstream as contract
from lambdas.contracts.clickstream import Reason

# An e-mail address, plain or with a percent-encoded "@" (as in a query string).
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}", re.IGNORECASE | re.ASCII)
# RFC 3339 (the ISO-8601 profile with a mandatory offset); re.ASCII keeps \d to 0-9.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))",
    re.ASCII,
)
_COUNTRY = re.compile(r"[A-Za-z]{2}", re.ASCII)
# java.time.ZoneOffset's range, so Spark can represent every offset we accept.
_MAX_OFFSET = timedelta(hours=18)


@dataclass(frozen=True, slots=True)
class Clean:
    """A record that satisfies the contract, normalised and with PII masked."""

    event_id: str
    event_type: str
    event_time: datetime  # UTC
    user_id: str
    session_id: str
    page_url: str | None
    product_id: str | None
    user_agent: str | None
    ip: str | None  # masked to its /24 (IPv4) or /48 (IPv6) network
    country: str
    event_time_offset: str  # the producer's UTC offset, "+HH:MM" / "-HH:MM"


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str  # one of contract.Reason.ALL
    message: str


def clean(raw: bytes, *, now: datetime) -> Clean | Rejected:
    """Apply the contract to one received record. `now` (tz-aware) anchors the time window."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if len(raw) > contract.MAX_RECORD_BYTES:
        return Rejected(Reason.OVERSIZED, f"record is {len(raw)} bytes, limit {contract.MAX_RECORD_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return Rejected(Reason.MALFORMED_JSON, f"not valid UTF-8 at byte {err.start}")
    try:
        doc = json.loads(text)
    except RecursionError:
        return Rejected(Reason.MALFORMED_JSON, "JSON nested too deeply")
    except ValueError as err:  # JSONDecodeError, or an integer literal too long to convert
        return Rejected(Reason.MALFORMED_JSON, f"invalid JSON: {err}")
    if not isinstance(doc, dict):
        return Rejected(Reason.NOT_AN_OBJECT, f"expected a JSON object, got {_json_type(doc)}")
    return _check_object(doc, now)


def _check_object(doc: dict[str, Any], now: datetime) -> Clean | Rejected:
    values: dict[str, str | None] = {}
    missing: list[str] = []
    wrong: list[str] = []
    for field in contract.FIELDS:
        value = doc.get(field.name)
        if value is not None and not isinstance(value, str):
            wrong.append(f"{field.name} is {_json_type(value)}, expected string")
            continue
        value = value.strip() if value is not None else None
        values[field.name] = value or None  # an empty optional string carries nothing: null
        if field.required and not value:
            missing.append(field.name)
    if missing:
        return Rejected(Reason.MISSING_FIELD, f"missing or empty required field(s): {', '.join(missing)}")
    if wrong:
        return Rejected(Reason.WRONG_TYPE, "; ".join(wrong))

    event_type = values["event_type"]
    if event_type not in contract.EVENT_TYPES:
        return Rejected(Reason.UNKNOWN_EVENT_TYPE,
                        f"event_type {_show(event_type)} is not one of {', '.join(contract.EVENT_TYPES)}")
    parsed = parse_event_time(values["event_time"], now=now)  # type: ignore[arg-type]
    if isinstance(parsed, Rejected):
        return parsed
    event_time, offset = parsed
    country = values["country"]
    if not _COUNTRY.fullmatch(country):  # type: ignore[arg-type]
        return Rejected(Reason.BAD_COUNTRY, f"country {_show(country)} is not a two-letter code")
    ip = values["ip"]
    masked_ip = mask_ip(ip) if ip is not None else None
    if ip is not None and masked_ip is None:
        # The value itself is not echoed: it may be personal data.
        return Rejected(Reason.WRONG_TYPE, "ip is not an IPv4 or IPv6 address")
    url = values["page_url"]
    return Clean(
        event_id=values["event_id"],  # type: ignore[arg-type]
        event_type=event_type,  # type: ignore[arg-type]
        event_time=event_time,
        user_id=values["user_id"],  # type: ignore[arg-type]
        session_id=values["session_id"],  # type: ignore[arg-type]
        page_url=redact_emails(url) if url is not None else None,
        product_id=values["product_id"],
        user_agent=values["user_agent"],
        ip=masked_ip,
        country=country.upper(),  # type: ignore[union-attr]
        event_time_offset=offset,
    )


def parse_event_time(text: str, *, now: datetime) -> tuple[datetime, str] | Rejected:
    """An RFC 3339 timestamp inside the contract's window, as (UTC datetime, "+HH:MM" offset).

    Fractions beyond microseconds are truncated; "Z" is kept as "+00:00".
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return Rejected(Reason.BAD_TIMESTAMP,
                        f"event_time {_show(text)} is not ISO-8601 with a UTC offset (e.g. 2024-05-01T12:00:00+02:00)")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        sign, off_h, off_m = "+", "00", "00"
    offset = timedelta(hours=int(off_h), minutes=int(off_m))
    if int(off_m) > 59 or offset > _MAX_OFFSET:
        return Rejected(Reason.BAD_TIMESTAMP, f"event_time {_show(text)} has an out-of-range UTC offset")
    try:
        local = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                         int((fraction or "0")[:6].ljust(6, "0")),
                         tzinfo=timezone(-offset if sign == "-" else offset))
        utc = local.astimezone(timezone.utc)
    except (ValueError, OverflowError) as err:
        return Rejected(Reason.BAD_TIMESTAMP, f"event_time {_show(text)} is not a valid date-time: {err}")
    # Messages name the limit, not the distance from now, so a retried batch writes the same bytes.
    if utc > now + timedelta(seconds=contract.MAX_FUTURE_SECONDS):
        return Rejected(Reason.BAD_TIMESTAMP,
                        f"event_time {_show(text)} is more than {contract.MAX_FUTURE_SECONDS} s in the future")
    if utc < now - timedelta(days=contract.MAX_AGE_DAYS):
        return Rejected(Reason.BAD_TIMESTAMP,
                        f"event_time {_show(text)} is older than {contract.MAX_AGE_DAYS} days")
    return utc, f"{sign}{off_h}:{off_m}"


def mask_ip(text: str) -> str | None:
    """The address's network (/24 for IPv4, /48 for IPv6) as an address string; None if not an IP."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    bits = contract.IPV4_PREFIX_BITS if address.version == 4 else contract.IPV6_PREFIX_BITS
    host_bits = address.max_prefixlen - bits
    # Rebuilt from the integer (cheaper than a network object), which also drops an IPv6 zone id.
    return str(type(address)(int(address) >> host_bits << host_bits))


def redact_emails(url: str) -> str:
    """Replace every e-mail address (also percent-encoded ones) with contract.EMAIL_REDACTION."""
    # Until nothing matches: one pass can leave an address behind another ("a@b.cc@d.ee").
    # Each pass removes at least one "@", so this ends.
    while True:
        url, replaced = _EMAIL.subn(contract.EMAIL_REDACTION, url)
        if not replaced:
            return url


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "a string"


def _show(value: str | None, limit: int = 40) -> str:
    """A value quoted for a message, cut short so a message stays readable."""
    if value is None:
        return "null"
    return repr(value if len(value) <= limit else value[:limit] + "...")
