"""The FX-rates connector Lambda: daily currency -> USD rates from an HTTP API into staging.

Invoked by EventBridge Scheduler (see schedule.py for the event). For each day: fetch every page
with retries, validate, write the day's files (writer.py), count it. Bad data (a malformed body, a
missing day, a bad entry) is quarantined and counted, never retried. A day whose fetch fails for
good (retries exhausted, an unexpected status) or whose write fails is left as it was, the other
days go on, and the invocation then raises naming those days, so Lambda's retry and alarms see it;
re-running a day is harmless.

Environment: FX_API_BASE_URL, FX_API_SECRET_ID (name or ARN of the secret holding
{"api_key": "..."}), RAW_URI and STAGING_URI (zone roots, `file:///abs/path` or `s3://bucket`),
POWERTOOLS_METRICS_NAMESPACE; optional FX_API_TIMEOUT_SECONDS, FX_API_MAX_ATTEMPTS,
FX_API_BACKOFF_BASE_SECONDS, FX_API_BACKOFF_MAX_SECONDS (the retry policy's defaults otherwise).
"""
from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from datetime import date, datetime, timezone
from functools import partial
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.api_connector.client import FetchError, FxApiClient
from lambdas.api_connector.day import DayResult, fetch_day
from lambdas.api_connector.retry import RetryPolicy
from lambdas.api_connector.schedule import days_to_fetch
from lambdas.api_connector.secrets import api_key
from lambdas.api_connector.writer import write_day
from lambdas.common import environment as names
from lambdas.common.storage import Locations

SERVICE = "api_connector"
DEFAULT_TIMEOUT_SECONDS = 10.0
logger = Logger(service=SERVICE)


class ConfigurationError(RuntimeError):
    """A missing or wrong environment variable; the message names it."""


class DaysFailed(RuntimeError):
    """Some days could not be fetched or written; the others were. The message names each day and why."""


@dataclass(frozen=True)
class Settings:
    base_url: str
    secret_id: str
    locations: Locations
    metrics_namespace: str
    timeout: float
    policy: RetryPolicy

    @classmethod
    def from_env(cls) -> "Settings":
        # Read per invocation, not at import: the local runtime sets a function's environment per invoke.
        required = (names.FX_API_BASE_URL, names.FX_API_SECRET_ID, names.RAW_URI, names.STAGING_URI,
                    names.METRICS_NAMESPACE)
        missing = [key for key in required if not os.environ.get(key)]
        if missing:
            raise ConfigurationError(f"api_connector: environment variable(s) not set: {', '.join(missing)}")
        base_url = os.environ[names.FX_API_BASE_URL]
        _require_tls(base_url)
        defaults = RetryPolicy()
        try:
            policy = RetryPolicy(max_attempts=int(_number("FX_API_MAX_ATTEMPTS", defaults.max_attempts)),
                                 base_delay=_number("FX_API_BACKOFF_BASE_SECONDS", defaults.base_delay),
                                 max_delay=_number("FX_API_BACKOFF_MAX_SECONDS", defaults.max_delay))
        except ValueError as error:
            raise ConfigurationError(f"api_connector: retry policy: {error}") from None
        timeout = _number("FX_API_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
        if timeout <= 0:
            raise ConfigurationError(f"api_connector: FX_API_TIMEOUT_SECONDS must be > 0, got {timeout}")
        return cls(base_url, os.environ[names.FX_API_SECRET_ID],
                   Locations(os.environ[names.RAW_URI], os.environ[names.STAGING_URI]),
                   os.environ[names.METRICS_NAMESPACE], timeout, policy)


def _require_tls(url: str) -> None:
    """HTTPS, except plain HTTP to the loopback fixture server: the API key must never cross a network in clear."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost"):
        return
    raise ConfigurationError(f"api_connector: FX_API_BASE_URL must be https:// (or http:// on 127.0.0.1), got {url!r}")


def _number(key: str, default: float) -> float:
    value = os.environ.get(key)
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigurationError(f"api_connector: {key} must be a number, got {value!r}") from None


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    settings = Settings.from_env()
    days = days_to_fetch(event, today=datetime.now(timezone.utc).date())
    logger.append_keys(request_id=getattr(context, "aws_request_id", None))
    client = FxApiClient(settings.base_url, partial(api_key, settings.secret_id), timeout=settings.timeout,
                         policy=settings.policy, log=logger.warning)
    # Enough time left for one request with all its retries, or the day is not started.
    margin_ms = settings.policy.worst_case_seconds(settings.timeout) * 1000
    metrics = Metrics(namespace=settings.metrics_namespace, service=SERVICE)
    manifests: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    try:
        for day in days:
            if context is not None and context.get_remaining_time_in_millis() < margin_ms:
                failed[day.isoformat()] = "not started: too little time left in this invocation"
                continue
            outcome = _one_day(day, client, settings.locations)
            if isinstance(outcome, str):
                failed[day.isoformat()] = outcome
            else:
                manifests.append(outcome)
    finally:
        # Also when the key is refused or a bug raises: what was done is counted.
        _count(metrics, manifests, len(failed), client.retries, settings.metrics_namespace)
        metrics.flush_metrics()
    summary = {"days": [_summary(m) for m in manifests], "failed": failed}
    if failed:
        raise DaysFailed(f"FX rates: {len(failed)} of {len(days)} day(s) failed and were left as they were: "
                         + "; ".join(f"{day}: {why}" for day, why in failed.items()))
    return summary


def _one_day(day: date, client: FxApiClient, where: Locations) -> dict[str, Any] | str:
    """The day's manifest, or why it failed. An AuthenticationError stops the whole invocation."""
    try:
        result: DayResult = fetch_day(day, client.get_rates_page)
    except FetchError as error:
        logger.error("fetching the day failed; it is left as it was", extra={"rate_date": day.isoformat(),
                                                                              "error": str(error)})
        return f"fetch failed: {error}"
    try:
        manifest = write_day(result, where)
    except Exception as error:  # noqa: BLE001 - any failed write: the day is retried, never half-kept
        logger.exception("writing the day failed", extra={"rate_date": day.isoformat()})
        return f"write failed: {type(error).__name__}: {error}"
    if result.failure is None:
        (logger.warning if result.quarantined else logger.info)("day staged", extra=_summary(manifest))
    else:
        logger.warning(f"day not staged: {result.failure.message}", extra=_summary(manifest))
    return manifest


def _summary(manifest: dict[str, Any]) -> dict[str, Any]:
    return {key: manifest[key] for key in ("rate_date", "complete", "pages", "received", "clean", "quarantined",
                                           "quarantined_by_reason", "duplicates", "missing_currencies")}


def _count(metrics: Metrics, manifests: list[dict[str, Any]], failed_days: int, retries: int,
           namespace: str) -> None:
    """EMF metrics of the invocation; quarantines also per reason (their own dimension set)."""
    totals = {name: sum(m[name] for m in manifests) for name in ("received", "clean", "quarantined", "duplicates")}
    by_reason: dict[str, int] = {}
    for manifest in manifests:
        for reason, count in manifest["quarantined_by_reason"].items():
            by_reason[reason] = by_reason.get(reason, 0) + count
    for name, value in (
        ("records_in", totals["received"]), ("clean", totals["clean"]), ("quarantined", totals["quarantined"]),
        ("duplicates", totals["duplicates"]),
        ("days_staged", sum(m["complete"] for m in manifests)),
        ("days_incomplete", sum(not m["complete"] for m in manifests)),
        ("missing_days", by_reason.get("MISSING_DAY", 0)),
        ("missing_currencies", sum(len(m["missing_currencies"]) for m in manifests if m["complete"])),
        ("fetch_failures", failed_days),
        ("http_retries", retries),
    ):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for reason, value in sorted(by_reason.items()):
        with single_metric(name="quarantined", unit=MetricUnit.Count, value=value, namespace=namespace,
                           default_dimensions={"service": SERVICE}) as metric:
            metric.add_dimension(name="reason", value=reason)
