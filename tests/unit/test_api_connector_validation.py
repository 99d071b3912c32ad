"""The FX connector's page validation: every rule of the contract, in order, on hand-written bodies."""
from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from lambdas.api_connector.validate import MAX_PAGES, Page, Rejected, parse_page
from lambdas.contracts import fx_rates as contract
from lambdas.contracts.fx_rates import Reason

DAY = date(2026, 3, 14)


def body(**changes: Any) -> dict[str, Any]:
    page = {"date": DAY.isoformat(), "quote_currency": "USD", "page": 1, "next_page": None,
            "rates": [{"currency": "EUR", "rate": 1.08}, {"currency": "JPY", "rate": 0.0066}]}
    page.update(changes)
    return page


def parse(doc: Any, page: int = 1) -> Page | Rejected:
    raw = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return parse_page(raw, DAY, page)


def rejected(doc: Any, page: int = 1) -> Rejected:
    result = parse(doc, page)
    assert isinstance(result, Rejected), result
    return result


def test_a_valid_page_gives_its_rates_with_each_entry_as_json() -> None:
    page = parse(body(next_page=2))
    assert isinstance(page, Page)
    assert [(r.currency, r.usd_per_unit, r.page) for r in page.rates] == [("EUR", 1.08, 1), ("JPY", 0.0066, 1)]
    assert json.loads(page.rates[0].payload) == {"currency": "EUR", "rate": 1.08}
    assert page.rejected == [] and page.next_page == 2


def test_an_integer_rate_is_a_number_and_extra_keys_are_ignored() -> None:
    page = parse(body(rates=[{"currency": "CHF", "rate": 1, "source": "ecb"}], provider="x"))
    assert isinstance(page, Page) and page.rates[0].usd_per_unit == 1.0


@pytest.mark.parametrize("raw, fragment", [
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"date": "2026-03-14", "rates": [', "not valid JSON"),
    (b"", "not valid JSON"),
    (b'{"date": "2026-03-14", "date": "2026-03-15"}', "key 'date' appears twice"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'[{"currency": "EUR"}]', "a JSON array, not an object"),
    (b"null", "a JSON null, not an object"),
])
def test_a_body_that_is_not_a_json_object_is_malformed_and_kept_as_received(raw: bytes, fragment: str) -> None:
    result = rejected(raw)
    assert result.reason == Reason.MALFORMED_BODY and fragment in result.message
    assert result.payload == raw and result.page == 1
    assert result.message.startswith("2026-03-14 page 1: ")


def test_a_truncated_body_is_malformed_whatever_it_holds() -> None:
    result = parse_page(json.dumps(body()).encode(), DAY, 1, truncated=True)
    assert isinstance(result, Rejected) and result.reason == Reason.MALFORMED_BODY


def test_every_missing_or_mistyped_top_level_key_is_named() -> None:
    doc = body(page="1", rates={"EUR": 1.08})
    del doc["next_page"], doc["quote_currency"]
    result = rejected(doc)
    assert result.reason == Reason.SCHEMA_MISMATCH
    assert result.message == ("2026-03-14 page 1: 'quote_currency' must be a string (missing); 'page' must be an "
                              "integer; 'next_page' must be an integer or null (missing); 'rates' must be an array")


def test_a_boolean_is_not_a_page_number() -> None:
    assert rejected(body(page=True)).reason == Reason.SCHEMA_MISMATCH


def test_rates_for_another_day_are_rejected() -> None:
    result = rejected(body(date="2026-03-13"))
    assert result.reason == Reason.WRONG_DATE and "'2026-03-13', asked for 2026-03-14" in result.message


def test_rates_quoted_in_another_currency_are_rejected() -> None:
    assert rejected(body(quote_currency="EUR")).reason == Reason.WRONG_QUOTE_CURRENCY


@pytest.mark.parametrize("changes, asked", [
    ({"page": 2}, 1),                     # the body is another page
    ({"page": 3, "next_page": 3}, 3),     # a loop
    ({"page": 3, "next_page": 2}, 3),     # backwards
    ({"next_page": MAX_PAGES + 1}, 1),    # beyond the bound
])
def test_broken_page_numbers_are_bad_pagination(changes: dict[str, Any], asked: int) -> None:
    assert rejected(body(**changes), page=asked).reason == Reason.BAD_PAGINATION


def test_the_first_broken_rule_decides() -> None:
    assert rejected(body(date="2026-03-13", quote_currency="EUR", page=9)).reason == Reason.WRONG_DATE


@pytest.mark.parametrize("entry, reason", [
    ({"currency": "XAU", "rate": 2650.0}, Reason.UNKNOWN_CURRENCY),
    ({"currency": "USD", "rate": 1.0}, Reason.UNKNOWN_CURRENCY),   # the quote currency is implied
    ({"currency": "eur", "rate": 1.08}, Reason.UNKNOWN_CURRENCY),  # codes are case-sensitive
    ({"currency": "EUR", "rate": 0}, Reason.BAD_RATE),
    ({"currency": "EUR", "rate": -1.08}, Reason.BAD_RATE),
    ({"currency": "EUR", "rate": float("nan")}, Reason.BAD_RATE),
    ({"currency": "EUR", "rate": float("inf")}, Reason.BAD_RATE),
    ({"currency": "EUR", "rate": 10**400}, Reason.BAD_RATE),      # an integer beyond any double
    ({"currency": "EUR", "rate": "1.08"}, Reason.BAD_RATE),
    ({"currency": "EUR", "rate": True}, Reason.BAD_RATE),
    ({"currency": "EUR", "rate": None}, Reason.BAD_RATE),
    ({"currency": "EUR"}, Reason.BAD_ENTRY),
    ({"rate": 1.08}, Reason.BAD_ENTRY),
    ({"currency": 978, "rate": 1.08}, Reason.BAD_ENTRY),
    ("EUR", Reason.BAD_ENTRY),
])
def test_a_bad_entry_is_rejected_alone_and_the_rest_of_the_page_is_kept(entry: Any, reason: str) -> None:
    page = parse(body(rates=[{"currency": "GBP", "rate": 1.27}, entry]))
    assert isinstance(page, Page)
    assert [r.currency for r in page.rates] == ["GBP"]
    (bad,) = page.rejected
    assert bad.reason == reason and bad.page == 1
    assert bad.message.startswith("2026-03-14 page 1 rates[1]: ")
    assert bad.payload == json.dumps(entry, sort_keys=True).encode()


def test_bare_nan_and_huge_number_tokens_are_parsed_then_rejected_as_bad_rates() -> None:
    raw = (b'{"date": "2026-03-14", "quote_currency": "USD", "page": 1, "next_page": null, "rates": '
           b'[{"currency": "EUR", "rate": NaN}, {"currency": "GBP", "rate": 1e999}, {"currency": "CHF", "rate": 1.1}]}')
    page = parse(raw)
    assert isinstance(page, Page)
    assert [r.reason for r in page.rejected] == [Reason.BAD_RATE, Reason.BAD_RATE]
    assert [r.currency for r in page.rates] == ["CHF"]


def test_the_contract_lists_unique_iso_codes_without_the_quote_currency() -> None:
    assert len(set(contract.CURRENCIES)) == len(contract.CURRENCIES)
    assert all(len(c) == 3 and c.isalpha() and c.isupper() for c in contract.CURRENCIES)
    assert contract.QUOTE_CURRENCY not in contract.CURRENCIES
    assert set(Reason.ALL) == set(Reason.BODY) | set(Reason.ENTRY) and len(Reason.ALL) == len(set(Reason.ALL))
