"""One day of FX rates: follow the pages, validate each, and account for every record received.

A record is a rate entry of a valid page, or a whole body that could not be read as a page (a
404 for the day included). The day's ledger must balance: received = clean + quarantined +
duplicates. A day is staged only complete: if one page fails, the valid entries of the others are
quarantined too (INCOMPLETE_DAY), because a half day of rates would look like a whole one downstream.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

from lambdas.api_connector.client import Response
from lambdas.api_connector.validate import Page, Rate, Rejected, parse_page
from lambdas.contracts import fx_rates as contract
from lambdas.contracts.fx_rates import Reason

GetPage = Callable[[date, int], Response]


class ConservationError(RuntimeError):
    """The day's ledger does not balance: a record would be lost or counted twice."""


@dataclass
class DayResult:
    day: date
    bodies: list[tuple[int, bytes]] = field(default_factory=list)  # (page, body) of every response, in order
    received: int = 0
    rates: list[Rate] = field(default_factory=list)                # clean: one per currency, sorted
    quarantined: list[Rejected] = field(default_factory=list)
    duplicates: int = 0
    failure: Rejected | None = None                                # the body that made the day incomplete

    @property
    def complete(self) -> bool:
        return self.failure is None

    @property
    def missing_currencies(self) -> list[str]:
        """Contract currencies without a clean rate (every one, for an incomplete day)."""
        have = {rate.currency for rate in self.rates}
        return [currency for currency in contract.CURRENCIES if currency not in have]

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for rejected in self.quarantined:
            counts[rejected.reason] += 1
        return dict(sorted(counts.items()))


def fetch_day(day: date, get_page: GetPage) -> DayResult:
    """Every page of `day`, validated. A FetchError from `get_page` propagates: nothing of the day is kept."""
    result = DayResult(day)
    accepted: list[Rate] = []
    page_number: int | None = 1
    # Bounded: parse_page accepts a next_page only if it is after this page and at most MAX_PAGES.
    while page_number is not None:
        response = get_page(day, page_number)
        result.bodies.append((page_number, response.body))
        page = _page_or_rejection(response, day, page_number)
        if isinstance(page, Rejected):
            result.failure = page
            break
        accepted.extend(page.rates)
        result.quarantined.extend(page.rejected)
        page_number = page.next_page
    result.received = len(accepted) + len(result.quarantined) + (result.failure is not None)

    if result.failure is not None:
        result.quarantined.append(result.failure)
        result.quarantined.extend(_incomplete(rate, result.failure) for rate in accepted)
    elif not accepted and not result.quarantined:
        # A valid but empty day: the API has nothing for it, which is a missing day too.
        first_page, body = result.bodies[0]
        result.failure = Rejected(Reason.MISSING_DAY, f"{day.isoformat()}: the API returned no rates",
                                  body, first_page)
        result.quarantined.append(result.failure)
        result.received = 1
    else:
        _dedupe(accepted, result)

    if result.received != len(result.rates) + len(result.quarantined) + result.duplicates:
        raise ConservationError(f"{day.isoformat()}: received {result.received} != clean {len(result.rates)} + "
                                f"quarantined {len(result.quarantined)} + duplicates {result.duplicates}")
    return result


def _page_or_rejection(response: Response, day: date, number: int) -> Page | Rejected:
    if response.status == 404:
        if number == 1:
            return Rejected(Reason.MISSING_DAY, f"{day.isoformat()}: the API has no rates for the day (HTTP 404)",
                            response.body, number)
        return Rejected(Reason.BAD_PAGINATION,
                        f"{day.isoformat()} page {number}: HTTP 404 for a page the previous one announced",
                        response.body, number)
    return parse_page(response.body, day, number, truncated=response.truncated)


def _incomplete(rate: Rate, failure: Rejected) -> Rejected:
    return Rejected(Reason.INCOMPLETE_DAY,
                    f"{rate.currency} rate kept out of staging: page {failure.page} of the day failed "
                    f"({failure.reason})", rate.payload, rate.page)


def _dedupe(accepted: list[Rate], result: DayResult) -> None:
    """One rate per currency: repeats of the same value are duplicates; different values quarantine them all."""
    by_currency: dict[str, list[Rate]] = defaultdict(list)
    for rate in accepted:
        by_currency[rate.currency].append(rate)
    for currency in sorted(by_currency):
        copies = by_currency[currency]
        values = {rate.usd_per_unit for rate in copies}
        if len(values) == 1:
            result.rates.append(copies[0])
            result.duplicates += len(copies) - 1
            continue
        listed = ", ".join(repr(v) for v in sorted(values))
        result.quarantined.extend(
            Rejected(Reason.CONFLICTING_RATE, f"{result.day.isoformat()} {currency}: the API sent "
                     f"{len(copies)} different rates for one day ({listed})", rate.payload, rate.page)
            for rate in copies)
