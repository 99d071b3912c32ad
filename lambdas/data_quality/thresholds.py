"""The data-quality limits of one environment: set in cdk.json (`quality`), validated here, passed to the
function as one JSON environment variable. No third-party dependencies: cdk_app/config.py validates with it too."""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lambdas.contracts.lake_layout import BATCH_SOURCES

ENV_THRESHOLDS = "QUALITY_THRESHOLDS"


class ThresholdError(ValueError):
    """A missing, unknown or out-of-range threshold: the message names it."""


@dataclass(frozen=True)
class _Kind:
    expected: str  # for the error message: "expected <this>"
    valid: Callable[[Any], bool]


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_rate(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


MINUTES = _Kind("a whole number of minutes >= 1", _is_whole)
HOURS = _Kind("a whole number of hours >= 1", _is_whole)
DAYS = _Kind("a whole number of days >= 1", _is_whole)
RATE = _Kind("a rate in [0, 1]", _is_rate)
RATE_PER_SOURCE = _Kind(f"an object with a rate in [0, 1] for each source: {', '.join(BATCH_SOURCES)}",
                        lambda value: isinstance(value, Mapping))


def _limit(kind: _Kind) -> Any:
    return field(metadata={"kind": kind})


@dataclass(frozen=True)
class Thresholds:
    # how old the newest data may be when the run checks it
    freshness_max_age_minutes: int = _limit(MINUTES)  # silver.events' newest event_time
    order_freshness_max_age_minutes: int = _limit(MINUTES)  # silver.order_events' newest event_time
    fx_rate_freshness_max_age_hours: int = _limit(HOURS)  # the end of silver.fx_rates' newest rate_date
    # the events of the last 24 hours, as a share of the daily mean of the trailing days before them
    volume_trailing_days: int = _limit(DAYS)
    min_volume_ratio: float = _limit(RATE)
    # shares (0..1) that may break a rule before the check fails
    max_null_user_agent_rate: float = _limit(RATE)  # silver.events without a user agent
    max_unknown_product_rate: float = _limit(RATE)  # silver.order_lines whose product_id silver.products lacks
    # per source: the share of the records a run merged that the cleaner or loader quarantined
    max_quarantine_rate: dict[str, float] = _limit(RATE_PER_SOURCE)

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "quality") -> Thresholds:
        if not isinstance(raw, Mapping):
            raise ThresholdError(f"{where}: expected an object of thresholds, got {raw!r}")
        _exact_keys(raw, [f.name for f in fields(cls)], where)
        for f in fields(cls):
            _check(f.metadata["kind"], raw[f.name], f.name, where)
        return cls(**{f.name: _copy(raw[f.name]) for f in fields(cls)})

    @classmethod
    def from_json(cls, text: str | None) -> Thresholds:
        if not text:
            raise ThresholdError(f"environment variable {ENV_THRESHOLDS} is not set")
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise ThresholdError(f"{ENV_THRESHOLDS} is not JSON: {err}") from err
        return cls.from_mapping(raw, ENV_THRESHOLDS)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def _exact_keys(raw: Mapping[str, Any], wanted: list[str], where: str) -> None:
    missing, unknown = set(wanted) - raw.keys(), raw.keys() - set(wanted)
    if missing or unknown:
        raise ThresholdError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")


def _check(kind: _Kind, value: Any, name: str, where: str) -> None:
    if not kind.valid(value):
        raise ThresholdError(f"{where}: invalid value {value!r} for '{name}' (expected {kind.expected})")
    if kind is RATE_PER_SOURCE:
        _exact_keys(value, list(BATCH_SOURCES), f"{where}: {name}")
        for source in BATCH_SOURCES:
            _check(RATE, value[source], f"{name}.{source}", where)


def _copy(value: Any) -> Any:
    """A plain dict of a per-source mapping (the caller's object stays theirs), a number as it is."""
    return dict(value) if isinstance(value, Mapping) else value
