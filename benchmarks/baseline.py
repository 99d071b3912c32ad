"""The cleaner written the common way, for comparison only (never deployed): Powertools'
BatchProcessor calls a record handler per record, which validates it with a pydantic model.

It applies the same clickstream rules (types, required fields, event types, the time window, ISO
countries, keyed IP hashes, e-mail redaction, in-batch duplicates) and writes the same kinds of files
(gzip NDJSON raw, Parquet clean and quarantine with personal data masked, a JSON manifest), so the
benchmark compares ways of doing the same work, not different amounts of it.
"""
from __future__ import annotations

import base64
import gzip
import hmac
import ipaddress
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator

from lambdas.cleaner.pii import LOCAL_KEY, masked_payload, masker
from lambdas.contracts import clickstream as contract
from lambdas.contracts.countries import ISO_3166_ALPHA2

_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9.\-]+\.[A-Za-z]{2,}", re.IGNORECASE | re.ASCII)
NOW = datetime.now(timezone.utc)
_MASKER = masker("hash", LOCAL_KEY)


Required = Annotated[str, StringConstraints(min_length=1)]  # after stripping: blank is missing


class ClickEvent(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, strict=True)

    event_id: Required
    event_type: Literal["page_view", "product_view", "add_to_cart", "checkout_started"]
    event_time: Required
    user_id: Required
    session_id: Required
    page_url: str | None = None
    product_id: str | None = None
    user_agent: str | None = None
    ip: str | None = None
    country: Required

    @field_validator("event_time")
    @classmethod
    def _in_window(cls, value: str) -> str:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("no UTC offset")
        if not NOW - timedelta(days=contract.MAX_AGE_DAYS) <= moment <= NOW + timedelta(
                seconds=contract.MAX_FUTURE_SECONDS):
            raise ValueError("outside the time window")
        return value

    @field_validator("country")
    @classmethod
    def _iso(cls, value: str) -> str:
        if value.upper() not in ISO_3166_ALPHA2:
            raise ValueError("not an ISO country")
        return value.upper()

    @field_validator("ip")
    @classmethod
    def _hash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        canonical = str(ipaddress.ip_address(value)).encode()
        return contract.IP_HASH_PREFIX + hmac.digest(LOCAL_KEY, canonical, "sha256").hex()[:32]

    @field_validator("page_url")
    @classmethod
    def _redact(cls, value: str | None) -> str | None:
        return _EMAIL.sub(contract.EMAIL_REDACTION, value) if value else value


class BaselineCleaner:
    """A handler object holding one batch's results, as a record handler has to."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.processor = BatchProcessor(event_type=EventType.KinesisDataStreams)

    def handler(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.clean: list[dict[str, Any]] = []
        self.quarantine: list[dict[str, Any]] = []
        self.raw: list[bytes] = []
        self.seen: set[str] = set()
        self.duplicates = 0
        response = process_partial_response(event=event, record_handler=self.record, processor=self.processor,
                                             context=context)
        first, last = event["Records"][0]["kinesis"]["sequenceNumber"], event["Records"][-1]["kinesis"]["sequenceNumber"]
        name = f"baseline-{first}-{last}"
        (self.out / f"{name}.ndjson.gz").write_bytes(gzip.compress(b"".join(self.raw), compresslevel=1, mtime=0))
        pq.write_table(pa.Table.from_pylist(self.clean), self.out / f"{name}.parquet")
        pq.write_table(pa.Table.from_pylist(self.quarantine), self.out / f"{name}.quarantine.parquet")
        (self.out / f"{name}.json").write_text(json.dumps({
            "received": len(self.raw), "clean": len(self.clean), "quarantined": len(self.quarantine),
            "duplicates": self.duplicates}))
        return response

    def record(self, record: KinesisStreamRecord) -> None:
        payload = record.kinesis.data_as_bytes()
        self.raw.append(json.dumps({"sequence_number": record.kinesis.sequence_number,
                                    "data_base64": base64.b64encode(payload).decode()}).encode() + b"\n")
        try:
            event = ClickEvent.model_validate_json(payload)
        except (ValidationError, ValueError) as err:
            # personal data masked before staging, as the cleaner does (its function: the same work)
            self.quarantine.append({"raw_payload": masked_payload(payload, _MASKER), "message": str(err)[:200]})
            return
        if event.event_id in self.seen:
            self.duplicates += 1
            return
        self.seen.add(event.event_id)
        self.clean.append(event.model_dump())
