"""The FX connector's retry policy: exponential caps, full jitter, Retry-After, and its bounds."""
from __future__ import annotations

import pytest

from lambdas.api_connector.retry import RETRYABLE_STATUSES, RetryPolicy, parse_retry_after


def upper(low: float, high: float) -> float:
    return high


def lower(low: float, high: float) -> float:
    return low


def test_the_cap_doubles_per_attempt_up_to_max_delay() -> None:
    policy = RetryPolicy(max_attempts=8, base_delay=0.5, max_delay=5.0, draw=upper)
    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_jitter_draws_between_zero_and_the_cap() -> None:
    seen: list[tuple[float, float]] = []

    def draw(low: float, high: float) -> float:
        seen.append((low, high))
        return (low + high) / 2

    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0, draw=draw)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
    assert seen == [(0.0, 1.0), (0.0, 2.0), (0.0, 4.0)]


def test_real_jitter_stays_within_the_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.2, max_delay=1.0)
    delays = [policy.delay(3) for _ in range(2_000)]
    assert all(0.0 <= d <= 0.8 for d in delays)
    assert len(set(delays)) > 1_000  # jittered, not a fixed wait


def test_retry_after_is_honoured_but_never_beyond_max_delay() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0, draw=lower)
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=3600.0) == 10.0
    # a jittered wait longer than Retry-After wins: Retry-After is a minimum
    assert RetryPolicy(max_attempts=4, base_delay=8.0, max_delay=10.0, draw=upper).delay(1, retry_after=1.0) == 8.0


def test_the_worst_case_of_one_request_is_bounded() -> None:
    policy = RetryPolicy(max_attempts=4, base_delay=1.0, max_delay=10.0)
    assert policy.worst_case_seconds(timeout=10.0) == 4 * 10.0 + 3 * 10.0


@pytest.mark.parametrize("kwargs", [{"max_attempts": 0}, {"base_delay": -1.0}, {"base_delay": 30.0, "max_delay": 1.0}])
def test_an_impossible_policy_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("value, seconds", [
    ("0", 0.0), ("7", 7.0), (" 2.5 ", 2.5), (None, None), ("-1", None), ("nan", None), ("inf", None),
    ("Wed, 21 Oct 2026 07:28:00 GMT", None),  # the HTTP-date form is not followed: the policy decides
])
def test_retry_after_header_values(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_only_transient_statuses_are_retried() -> None:
    assert {408, 429, 500, 502, 503, 504} == RETRYABLE_STATUSES
    assert not RETRYABLE_STATUSES & {400, 401, 403, 404, 301, 302}
