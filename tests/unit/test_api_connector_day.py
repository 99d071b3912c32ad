"""One FX day through pagination and the contract, on in-memory pages: the ledger always balances."""
from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from lambdas.api_connector.client import FetchError, Response
from lambdas.api_connector.day import fetch_day
from lambdas.contracts import fx_rates as contract
from lambdas.contracts.fx_rates import Reason

DAY = date(2026, 5, 4)
RATES = {currency: round(0.1 + i / 7, 6) for i, currency in enumerate(contract.CURRENCIES)}


def pages(per_page: int, rates: dict[str, float] = RATES) -> dict[int, Response]:
    """The day as an API would page it: (page, body) with next_page links."""
    items = sorted(rates.items())
    chunks = [items[i:i + per_page] for i in range(0, len(items), per_page)] or [[]]
    return {n: ok({"date": DAY.isoformat(), "quote_currency": "USD", "page": n,
                   "next_page": n + 1 if n < len(chunks) else None,
                   "rates": [{"currency": c, "rate": r} for c, r in chunk]})
            for n, chunk in enumerate(chunks, start=1)}


def ok(doc: Any, status: int = 200) -> Response:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return Response(status, raw, "http://api.invalid/rates", truncated=False)


class Source:
    """get_page over a dict of responses; records what was asked."""

    def __init__(self, responses: dict[int, Response]) -> None:
        self.responses, self.asked = responses, []

    def __call__(self, day: date, page: int) -> Response:
        self.asked.append((day, page))
        return self.responses[page]


def ledger(result: Any) -> tuple[int, int, int, int]:
    return result.received, len(result.rates), len(result.quarantined), result.duplicates


@pytest.mark.parametrize("per_page", [1, 3, 8, 20, 50])
def test_every_page_is_followed_once_and_the_day_is_complete(per_page: int) -> None:
    source = Source(pages(per_page))
    result = fetch_day(DAY, source)
    assert source.asked == [(DAY, n) for n in range(1, len(source.responses) + 1)]
    assert {r.currency: r.usd_per_unit for r in result.rates} == RATES
    assert [r.currency for r in result.rates] == sorted(RATES)
    assert ledger(result) == (20, 20, 0, 0)
    assert result.complete and result.missing_currencies == []
    assert [page for page, _ in result.bodies] == list(range(1, len(source.responses) + 1))


def test_a_404_on_the_first_page_is_a_missing_day_kept_with_its_body() -> None:
    result = fetch_day(DAY, Source({1: ok({"error": "no_rates"}, status=404)}))
    assert not result.complete and ledger(result) == (1, 0, 1, 0)
    (missing,) = result.quarantined
    assert missing.reason == Reason.MISSING_DAY and missing.payload == b'{"error": "no_rates"}'
    assert "2026-05-04" in missing.message and "404" in missing.message
    assert result.missing_currencies == list(contract.CURRENCIES)


def test_a_day_without_rates_is_a_missing_day() -> None:
    result = fetch_day(DAY, Source(pages(8, rates={})))
    assert not result.complete and ledger(result) == (1, 0, 1, 0)
    assert result.quarantined[0].reason == Reason.MISSING_DAY


def test_a_failed_later_page_keeps_the_whole_day_out_of_staging() -> None:
    responses = pages(8)
    responses[2] = ok(b'{"date": "2026-05-04", "rat')
    result = fetch_day(DAY, Source(responses))
    assert not result.complete and result.rates == []
    assert result.failure is not None and result.failure.reason == Reason.MALFORMED_BODY and result.failure.page == 2
    # page 1's eight valid rates are quarantined, not dropped; page 3 was never asked for
    assert result.quarantined_by_reason == {Reason.INCOMPLETE_DAY: 8, Reason.MALFORMED_BODY: 1}
    assert ledger(result) == (9, 0, 9, 0)
    assert [page for page, _ in result.bodies] == [1, 2]
    incomplete = [q for q in result.quarantined if q.reason == Reason.INCOMPLETE_DAY]
    assert {json.loads(q.payload)["currency"] for q in incomplete} == set(sorted(RATES)[:8])


def test_a_404_for_an_announced_page_is_bad_pagination() -> None:
    responses = pages(8)
    responses[2] = ok({"error": "no_such_page"}, status=404)
    result = fetch_day(DAY, Source(responses))
    assert result.failure is not None and result.failure.reason == Reason.BAD_PAGINATION


def test_a_pagination_loop_ends_at_the_page_that_loops() -> None:
    responses = pages(8)
    looping = json.loads(responses[2].body)
    responses[2] = ok({**looping, "next_page": 2})
    source = Source(responses)
    result = fetch_day(DAY, source)
    assert source.asked == [(DAY, 1), (DAY, 2)]
    assert result.failure is not None and result.failure.reason == Reason.BAD_PAGINATION


def test_repeats_are_duplicates_and_conflicts_quarantine_every_copy() -> None:
    responses = pages(10)
    first = json.loads(responses[1].body)
    second = json.loads(responses[2].body)
    eur = next(e for e in first["rates"] if e["currency"] == "EUR")
    gbp = next(e for e in first["rates"] if e["currency"] == "GBP")
    second["rates"] += [dict(eur), dict(eur), {**gbp, "rate": gbp["rate"] + 1}]
    responses[2] = ok(second)
    result = fetch_day(DAY, Source(responses))
    assert result.complete
    assert ledger(result) == (23, 19, 2, 2)
    assert result.quarantined_by_reason == {Reason.CONFLICTING_RATE: 2}
    assert {q.page for q in result.quarantined} == {1, 2}
    assert "GBP" not in {r.currency for r in result.rates}
    assert result.missing_currencies == ["GBP"]


def test_entry_rejections_and_clean_rates_of_one_day_add_up() -> None:
    responses = pages(20, rates={"EUR": 1.08, "GBP": 1.27})
    doc = json.loads(responses[1].body)
    doc["rates"] += [{"currency": "XAU", "rate": 2650.0}, {"currency": "JPY", "rate": -1}]
    result = fetch_day(DAY, Source({1: ok(doc)}))
    assert result.complete and ledger(result) == (4, 2, 2, 0)
    assert result.quarantined_by_reason == {Reason.BAD_RATE: 1, Reason.UNKNOWN_CURRENCY: 1}
    assert len(result.missing_currencies) == 18


def test_a_fetch_error_propagates_and_keeps_nothing() -> None:
    responses = pages(8)

    def get_page(day: date, page: int) -> Response:
        if page == 2:
            raise FetchError("GET .../rates?page=2: HTTP 503, gave up after 4 attempts")
        return responses[page]

    with pytest.raises(FetchError, match="gave up"):
        fetch_day(DAY, get_page)
