"""The retry policy of FX API calls: bounded attempts, exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the exponential cap) spreads the retries of concurrent
clients instead of letting them hammer a recovering API in lockstep. A server's Retry-After is
honoured, but never beyond `max_delay`, so one answer cannot stall the function.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Callable

# Statuses worth retrying: the server is overloaded, throttling us, or briefly broken.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4        # calls in all, the first one included
    base_delay: float = 1.0      # seconds; the cap before attempt n+1 is base_delay * 2**(n-1)
    max_delay: float = 10.0      # seconds; no single wait is longer
    draw: Callable[[float, float], float] = field(default=random.uniform, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")
        if not 0 <= self.base_delay <= self.max_delay:
            raise ValueError(f"need 0 <= base_delay <= max_delay, got {self.base_delay}, {self.max_delay}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based) before the next one."""
        cap = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        jittered = self.draw(0.0, cap)
        if retry_after is not None:
            return min(self.max_delay, max(retry_after, jittered))
        return jittered

    def worst_case_seconds(self, timeout: float) -> float:
        """The longest one request can take with its retries: every attempt times out, every wait is the
        longest allowed (a Retry-After can ask for max_delay at any attempt)."""
        return self.max_attempts * timeout + (self.max_attempts - 1) * self.max_delay


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (the delta-seconds form); an HTTP date or garbage is ignored."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None
