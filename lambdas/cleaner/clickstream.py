"""The clickstream contract, applied two ways that must agree.

- `clean_record`: one record, the reference semantics (every rule, with its reason and message).
- `clean_columns`: a whole batch at once in Arrow. It decides only which records are clean and their
  values; every record it does not accept goes to `clean_record` for the verdict. So a rejection
  always carries the reference's reason and message, and a bug in the fast path can only cost speed
  if it rejects too much, which the agreement tests (tests/unit/test_cleaner_agreement.py) catch.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from lambdas.cleaner import rules
from lambdas.cleaner.events import map_or_none
from lambdas.cleaner.pii import IpMasker
from lambdas.cleaner.rules import Rejected
from lambdas.contracts import clickstream as contract
from lambdas.contracts.clickstream import Reason
from lambdas.contracts.common import TRIM_CHARACTERS
from lambdas.contracts.countries import ISO_3166_ALPHA2

NAMES: tuple[str, ...] = tuple(f.name for f in contract.FIELDS)


def clean_record(raw: bytes, *, now: datetime, masker: IpMasker) -> dict[str, Any] | Rejected:
    """One record: its clean column values (without `ingested_at`), or why it is rejected."""
    doc = rules.decode_fields(raw, NAMES, contract.MAX_RECORD_BYTES)
    if isinstance(doc, Rejected):
        return doc
    values = rules.string_fields(doc, NAMES, contract.REQUIRED)
    if isinstance(values, Rejected):
        return values
    parsed = rules.event_type_and_time(values, contract, now)
    if isinstance(parsed, Rejected):
        return parsed
    country = rules.country(values["country"])  # type: ignore[arg-type]
    if isinstance(country, Rejected):
        return country
    ip = values["ip"]
    masked_ip = masker.mask(ip) if ip is not None else None
    if ip is not None and masked_ip is None:
        # The value itself is not echoed: it may be personal data.
        return Rejected(Reason.WRONG_TYPE, "ip is not an IPv4 or IPv6 address")
    url = values["page_url"]
    return {
        **values,
        "event_time": parsed[0],
        "page_url": rules.redact_emails(url, contract.EMAIL_REDACTION) if url is not None else None,
        "ip": masked_ip,
        "country": country,
        "event_time_offset": parsed[1],
    }


# --- the columnar path ---------------------------------------------------------------------------

# The contract's fields as strings (or null); any other JSON type fails the decode, and the record
# goes to clean_record. Unknown keys are skipped, with the same syntax checks as rules.decode_fields.
_Wire = msgspec.defstruct("ClickstreamWire", [(name, str | None, None) for name in NAMES], gc=False)
_DECODER = msgspec.json.Decoder(_Wire)
_EVENT_TYPES = pa.array(contract.EVENT_TYPES, pa.string())
_COUNTRIES = pa.array(sorted(ISO_3166_ALPHA2), pa.string())
_TIMESTAMP_RE = "^" + rules.TIMESTAMP_PATTERN.replace("\\d", "[0-9]") + "$"
_EPOCH_SAMPLE = "1970-01-01T00:00:00Z"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def clean_columns(records: list[bytes | None], *, now: datetime,
                  masker: IpMasker) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """(indices of the records accepted as clean, their clean columns without `ingested_at`).

    `records[i]` is record i, or None for a record this path must not try (oversized, not UTF-8).
    """
    # The one per-record step: msgspec parses and type-checks each record in C (TypeError: a None,
    # a record not to try).
    decoded = map_or_none(_DECODER.decode, records, msgspec.DecodeError, RecursionError, TypeError)
    # map()/filter() over the list stay in C (a struct is truthy, a failure is None).
    indices = np.flatnonzero(np.fromiter(map(bool, decoded), dtype=bool, count=len(decoded)))
    decoded = list(filter(None, decoded))
    if not decoded:
        return np.zeros(0, dtype=np.int64), {}
    raw_columns = zip(*map(msgspec.structs.astuple, decoded))
    cols = {name: _trimmed(pa.array(values, pa.string())) for name, values in zip(NAMES, raw_columns)}

    ok = pc.and_(pc.is_in(cols["event_type"], value_set=_EVENT_TYPES), pc.is_valid(cols["event_type"]))
    for name in contract.REQUIRED:
        ok = pc.and_(ok, pc.is_valid(cols[name]))
    event_time, offset, time_ok = _event_times(cols["event_time"], now)
    country = pc.ascii_upper(cols["country"])
    ok = pc.and_(ok, pc.and_(time_ok, pc.fill_null(pc.is_in(country, value_set=_COUNTRIES), False)))
    ip, ip_ok = masker.mask_array(cols["ip"])
    ok = pc.fill_null(pc.and_(ok, ip_ok), False)

    out = {**cols, "event_time": event_time, "ip": ip, "country": country, "event_time_offset": offset}
    out = {name: pc.filter(column, ok) for name, column in out.items()}
    out["page_url"] = _redacted(out["page_url"])
    return indices[ok.to_numpy(zero_copy_only=False)], out


def _trimmed(column: pa.Array) -> pa.Array:
    trimmed = pc.utf8_trim(column, characters=TRIM_CHARACTERS)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _redacted(urls: pa.Array) -> pa.Array:
    """E-mail redaction, in Python for the few URLs that could hold an address (the same function
    as the reference, so both redact the same)."""
    suspect = pc.fill_null(pc.match_substring_regex(urls, "@|%40"), False)
    if not pc.any(suspect).as_py():
        return urls
    redacted = [rules.redact_emails(url, contract.EMAIL_REDACTION) for url in pc.filter(urls, suspect).to_pylist()]
    return pc.replace_with_mask(urls, suspect, pa.array(redacted, pa.string()))


def _event_times(texts: pa.Array, now: datetime) -> tuple[pa.Array, pa.Array, pa.Array]:
    """(UTC timestamps, "+HH:MM" offsets, ok) of RFC 3339 strings, as rules.parse_event_time decides.

    The pattern is checked by RE2; the numbers are then read straight from the strings' bytes (their
    positions are fixed once the pattern matched), which is far cheaper than more string kernels.
    """
    shaped = pc.fill_null(pc.match_substring_regex(texts, _TIMESTAMP_RE), False)
    safe = pc.if_else(shaped, texts, _EPOCH_SAMPLE)
    offsets = np.frombuffer(safe.buffers()[1], dtype=np.int32)[safe.offset: safe.offset + len(safe) + 1]
    data = np.frombuffer(safe.buffers()[2], dtype=np.uint8).astype(np.int64)
    start, end = offsets[:-1].astype(np.int64), offsets[1:].astype(np.int64)

    def number(first: np.ndarray, digits: int) -> np.ndarray:
        value = np.zeros(len(first), dtype=np.int64)
        for k in range(digits):
            value = value * 10 + data[first + k] - 48
        return value

    year, month, day = number(start, 4), number(start + 5, 2), number(start + 8, 2)
    hour, minute, second = number(start + 11, 2), number(start + 14, 2), number(start + 17, 2)
    zulu = (data[end - 1] | 0x20) == ord("z")
    zone_start = np.where(zulu, end - 1, end - 6)
    fraction_digits = np.minimum(np.maximum(zone_start - start - 20, 0), 6)  # after "SS."; beyond 6 truncated
    micros = np.zeros(len(start), dtype=np.int64)
    for k in range(6):
        micros = micros * 10 + np.where(k < fraction_digits, data[np.minimum(start + 20 + k, end - 1)] - 48, 0)
    sign = np.where(data[zone_start] == ord("-"), -1, 1)
    off_h = np.where(zulu, 0, number(np.where(zulu, start, zone_start + 1), 2))
    off_m = np.where(zulu, 0, number(np.where(zulu, start, zone_start + 4), 2))

    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + ((month == 2) & leap)
    valid = (shaped.to_numpy(zero_copy_only=False) & (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1)
             & (day <= month_days) & (hour <= 23) & (minute <= 59) & (second <= 59)
             & (off_m <= 59) & (off_h * 60 + off_m <= rules.MAX_OFFSET_MINUTES))
    local_seconds = _days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
    utc_micros = (local_seconds - sign * (off_h * 3_600 + off_m * 60)) * 1_000_000 + micros
    now_micros = (now - _EPOCH) // timedelta(microseconds=1)
    oldest = now_micros - 86_400_000_000 * contract.MAX_AGE_DAYS
    latest = now_micros + 1_000_000 * contract.MAX_FUTURE_SECONDS
    valid &= (utc_micros >= oldest) & (utc_micros <= latest)
    timestamps = pa.array(np.where(valid, utc_micros, 0), pa.timestamp("us", tz="UTC"))
    zone = pc.utf8_slice_codeunits(safe, -6)
    offsets_text = pc.if_else(pa.array(zulu, pa.bool_()), "+00:00", zone)
    return timestamps, offsets_text, pa.array(valid, pa.bool_())


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's algorithm), vectorised."""
    y = year - (month <= 2)
    era = np.floor_divide(y, 400)
    year_of_era = y - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - 719_468
