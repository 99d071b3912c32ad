"""S3 event notifications, as the loader reads them: which object was dropped, and when.

The loader is subscribed to ObjectCreated events of the landing bucket for keys under
`lake_layout.landing_prefix("products")` ending in `.csv`. An event outside that subscription
means the notification is misconfigured: it is refused with an error naming what is wrong, so it
fails loudly (and reaches the on-failure destination) instead of being skipped unseen.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, unquote_plus

from lambdas.contracts import lake_layout
from lambdas.contracts import products as contract

TEST_EVENT = "s3:TestEvent"  # sent once by S3 when a notification is configured


class BadEvent(ValueError):
    """An event the loader is not subscribed to, or not shaped like S3's: the message names it."""


@dataclass(frozen=True)
class Drop:
    bucket: str
    key: str  # decoded: S3 sends keys URL-encoded, a space as "+"
    event_time: datetime  # UTC: when the object was created
    event_name: str
    etag: str  # informational only: under SSE-KMS it is no content hash


def parse_event(event: dict[str, Any]) -> list[Drop]:
    """The dropped objects of an S3 event notification (none for S3's test event)."""
    if event.get("Event") == TEST_EVENT:
        return []
    records = event.get("Records")
    if not isinstance(records, list):
        raise BadEvent("not an S3 event notification: it has no 'Records' list")
    return [_drop(number, record) for number, record in enumerate(records, 1)]


def _drop(number: int, record: Any) -> Drop:
    try:
        source, name, time_text = record["eventSource"], record["eventName"], record["eventTime"]
        bucket, s3_object = record["s3"]["bucket"]["name"], record["s3"]["object"]
        key = unquote_plus(s3_object["key"])
    except (KeyError, TypeError) as err:
        raise BadEvent(f"record {number} is not shaped like an S3 event record (missing or wrong {err})") from err
    if source != "aws:s3":
        raise BadEvent(f"record {number} comes from {source!r}, not aws:s3")
    if not name.startswith("ObjectCreated:"):
        raise BadEvent(f"record {number} is a {name} event; the loader takes ObjectCreated events only")
    try:
        when = datetime.fromisoformat(time_text)
    except (TypeError, ValueError) as err:
        raise BadEvent(f"record {number} has an eventTime that is not ISO-8601: {time_text!r}") from err
    if when.tzinfo is None:
        raise BadEvent(f"record {number} has an eventTime without a UTC offset: {time_text!r}")
    return Drop(bucket=bucket, key=key, event_time=when.astimezone(timezone.utc), event_name=name,
                etag=s3_object.get("eTag", ""))


def landing_bucket(landing_uri: str) -> str:
    """The bucket name events of the landing zone carry (locally: the landing folder's name)."""
    if landing_uri.startswith("s3://"):
        return landing_uri.removeprefix("s3://").split("/", 1)[0]
    return landing_uri.rstrip("/").rsplit("/", 1)[-1]


def object_uri(drop: Drop, landing_uri: str) -> str:
    """The dropped object's URI under `landing_uri`, once the event is one the loader is meant to get."""
    bucket = landing_bucket(landing_uri)
    if drop.bucket != bucket:
        raise BadEvent(f"event for bucket {drop.bucket!r}, but the landing zone is {landing_uri} "
                       f"(bucket {bucket!r}): check the bucket notification and LANDING_URI")
    prefix = lake_layout.landing_prefix(contract.SOURCE)
    if not drop.key.startswith(prefix) or not drop.key.endswith(contract.FILE_SUFFIX):
        raise BadEvent(f"key {drop.key!r} is not a {contract.FILE_SUFFIX} file under {prefix}: "
                       "check the notification's prefix and suffix filter")
    if any(part in ("", ".", "..") for part in drop.key.split("/")):
        # S3 keys are opaque, but a local landing folder would resolve them as paths.
        raise BadEvent(f"key {drop.key!r} has an empty, '.' or '..' path segment")
    # An s3:// URI carries the key as it is; a file:// URI is a real URI, its path percent-encoded.
    return lake_layout.join(landing_uri, drop.key if landing_uri.startswith("s3://") else quote(drop.key))
