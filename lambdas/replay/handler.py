"""The replay Lambda: re-clean the raw zone's stream batches of a time range into staging.

After a contract fix, or when staging was lost, the raw zone (every record as it arrived) is the
source of truth. A batch is replayed when its first record arrived in [from, to): whole batches
only, so a batch's staging files and manifest are replaced as a unit. Each is re-cleaned by the
cleaner's own code under its original batch id, judged against its own arrival time as the cleaner judged it (so an
unchanged contract gives byte-identical staging and silver_merge finds nothing new), and its raw
file is left as it is. silver_merge then merges what changed without duplicates (event_id / the
orders key; ops.quarantine rows are replaced per batch).

Event (the replay state machine's state): {"from": ISO-8601, "to": ISO-8601, "resume_after": a raw
file URI or null, "totals": the counts so far}. The reply has the same shape: a non-null
resume_after means the invocation ran short of time, and the state machine calls again with it.
Environment: the cleaner's (RAW_URI, STAGING_URI, POWERTOOLS_METRICS_NAMESPACE, the PII key's
location; lambdas/cleaner/handler.py), SOURCE excepted: every stream source is replayed.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pyarrow.fs as pafs
from aws_lambda_powertools import Logger

from lambdas.cleaner.batch import SOURCES, clean_batch, judged_at
from lambdas.cleaner.handler import Settings
from lambdas.cleaner.raw import RawFileError, read_delivery
from lambdas.cleaner.writer import write_batch
from lambdas.common.storage import read_bytes, resolve
from lambdas.contracts import lake_layout

logger = Logger(service="replay")

HOUR_FOLDER = "ingest_hour="
# Stop taking new batches when less time than this is left: one batch takes about a second.
MIN_REMAINING_MS = 60_000
COUNTS = ("batches", "records", "clean", "quarantined", "duplicates")
MAX_LISTED_FAILURES = 20  # unreadable files named in the reply (all are counted and logged)


class BadReplayRequest(ValueError):
    """The replay's event is unusable: the message names the field."""


def _time(event: dict[str, Any], key: str) -> datetime:
    value = event.get(key)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as err:
        raise BadReplayRequest(f"'{key}' must be an ISO-8601 time, got {value!r}") from err
    if parsed.tzinfo is None:
        raise BadReplayRequest(f"'{key}' needs a UTC offset (e.g. 2026-03-01T00:00:00Z), got {value!r}")
    return parsed.astimezone(timezone.utc)


def raw_files(raw_uri: str, start: datetime, end: datetime) -> list[str]:
    """URIs of the stream sources' raw files in the ingest hours that overlap [start, end), sorted: each call
    of a replay lists the same files in the same order, so it resumes after a URI. Only those hours'
    folders are listed (one LIST per hour and source), not the whole raw zone."""
    first = start.replace(minute=0, second=0, microsecond=0)
    hours = -(-(end - first) // timedelta(hours=1))  # ceiling: the hour `end` falls in, if not on the hour
    found: list[str] = []
    for source in SOURCES:
        for n in range(hours):
            # the cleaner's folder of a batch's first arrival (lambdas/cleaner/writer.py)
            hour = f"{HOUR_FOLDER}{first + timedelta(hours=n):%Y-%m-%d-%H}"
            folder = lake_layout.join(raw_uri, lake_layout.raw_prefix(source), hour)
            filesystem, path = resolve(folder, make_parent=False)
            scheme = folder[: len(folder) - len(path)]
            listed = filesystem.get_file_info(pafs.FileSelector(path, allow_not_found=True))
            found += [scheme + info.path for info in listed if info.is_file and info.path.endswith(".ndjson.gz")]
    return sorted(found)


def _source_of(uri: str, raw_uri: str) -> str:
    relative = uri[len(raw_uri.rstrip("/")) + 1:]
    return next(s for s in SOURCES if relative.startswith(lake_layout.raw_prefix(s)))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise BadReplayRequest(f"expected an object with 'from' and 'to', got {type(event).__name__}")
    start, end = _time(event, "from"), _time(event, "to")
    if start >= end:
        raise BadReplayRequest(f"'from' ({start.isoformat()}) must be before 'to' ({end.isoformat()})")
    settings = Settings.from_env()
    totals: dict[str, Any] = {k: 0 for k in COUNTS} | {"unreadable": 0, "unreadable_files": []}
    totals.update(event.get("totals") or {})
    resume_after = event.get("resume_after")
    for uri in raw_files(settings.locations.raw_uri, start, end):
        if resume_after is not None and uri <= resume_after:
            continue
        if context is not None and context.get_remaining_time_in_millis() < MIN_REMAINING_MS:
            return {"from": event["from"], "to": event["to"], "resume_after": resume_after, "totals": totals}
        resume_after = uri
        try:
            delivery = read_delivery(uri, read_bytes(uri))
        except RawFileError as error:
            logger.error("raw file unreadable, skipped", extra={"error": str(error)})
            totals["unreadable"] += 1
            if len(totals["unreadable_files"]) < MAX_LISTED_FAILURES:
                totals["unreadable_files"].append(str(error))
            continue
        first = datetime.fromtimestamp(delivery.arrivals_ms[0] / 1000, timezone.utc)
        if not start <= first < end:
            continue
        source = SOURCES[_source_of(uri, settings.locations.raw_uri)]
        batch = clean_batch(delivery, source, masker=settings.masker, now=judged_at(delivery, datetime.now(timezone.utc)))
        manifest = write_batch(batch, settings.locations, write_raw=False)
        totals["batches"] += 1
        for key, value in (("records", manifest["received"]), ("clean", manifest["clean"]),
                           ("quarantined", manifest["quarantined"]), ("duplicates", manifest["duplicates"])):
            totals[key] += value
    logger.info("replay re-cleaned the range", extra={"from": start.isoformat(), "to": end.isoformat(), **totals})
    return {"from": event["from"], "to": event["to"], "resume_after": None, "totals": totals}
