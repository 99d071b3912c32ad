"""The data-quality limits of one environment: set in cdk.json (`quality`), validated here, passed to the
function as one JSON environment variable. No dependencies: cdk_app/config.py validates with it too."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

ENV_THRESHOLDS = "QUALITY_THRESHOLDS"


class ThresholdError(ValueError):
    """A missing, unknown or out-of-range threshold: the message names it."""


@dataclass(frozen=True)
class Thresholds:
    # silver.events' newest event_time may be at most this old when the run checks it
    freshness_max_age_minutes: int
    # shares of rows (0..1) that may break a rule before the check fails
    max_null_user_agent_rate: float  # silver.events without a user agent
    max_negative_order_total_rate: float  # silver.orders with total < 0
    max_nonpositive_fx_rate_rate: float  # silver.fx_rates with usd_per_unit <= 0
    max_unknown_product_rate: float  # silver.order_lines whose product_id silver.products lacks

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "quality") -> Thresholds:
        if not isinstance(raw, Mapping):
            raise ThresholdError(f"{where}: expected an object of thresholds, got {raw!r}")
        wanted = {f.name for f in fields(cls)}
        missing, unknown = wanted - raw.keys(), raw.keys() - wanted
        if missing or unknown:
            raise ThresholdError(f"{where}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
        for name in wanted:
            value = raw[name]
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if name == "freshness_max_age_minutes":
                ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
            else:
                ok = is_number and 0 <= value <= 1
            if not ok:
                kind = "a whole number of minutes >= 1" if name == "freshness_max_age_minutes" else "a rate in [0, 1]"
                raise ThresholdError(f"{where}: invalid value {value!r} for '{name}' (expected {kind})")
        return cls(**{name: raw[name] for name in wanted})

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
