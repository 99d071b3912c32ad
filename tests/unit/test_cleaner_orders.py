"""The orders contract: every rule and reason code one record at a time, and the handler with
SOURCE=orders against the generator's ground truth."""
from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lakehouse.sources.generator import GeneratedOrders, generate_orders
from lambdas.cleaner.handler import handler
from lambdas.cleaner.orders import clean_record
from lambdas.cleaner.rules import Rejected
from lambdas.cleaner.schemas import CLEAN_SCHEMAS
from lambdas.contracts import orders as contract
from lambdas.contracts.orders import Reason
from tests.fixtures.kinesis_events import ARRIVAL, kinesis_event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def order(**changes: Any) -> bytes:
    """A valid order event with `changes` applied (a value of ... removes the field)."""
    doc: dict[str, Any] = {
        "order_id": "o-1", "event_type": "order_paid", "event_time": "2026-11-27T12:30:00+01:00", "user_id": "u-7",
        "country": "DE", "currency": "EUR", "total": 59.97,
        "items": [{"product_id": "P-00001", "qty": 2, "unit_price": 19.99}, {"product_id": "P-00002", "qty": 1,
                                                                           "unit_price": 19.99}],
    }
    doc.update(changes)
    return json.dumps({k: v for k, v in doc.items() if v is not ...}).encode()


def rejected(raw: bytes) -> Rejected:
    result = clean_record(raw, now=NOW)
    assert isinstance(result, Rejected), result
    return result


def test_a_valid_order_is_exact_and_normalised() -> None:
    got = clean_record(order(currency=" eur ", order_id=" o-1 ", country="\tnl "), now=NOW)
    assert got == {
        "order_id": "o-1", "event_type": "order_paid", "event_time": datetime(2026, 11, 27, 11, 30, tzinfo=timezone.utc),
        "user_id": "u-7", "country": "NL", "currency": "EUR", "total": Decimal("59.9700"),
        "items": [{"product_id": "P-00001", "qty": 2, "unit_price": Decimal("19.99")},
                  {"product_id": "P-00002", "qty": 1, "unit_price": Decimal("19.99")}],
        "session_id": None, "event_time_offset": "+01:00",
    }


def test_session_id_is_optional_trimmed_and_a_string() -> None:
    got = clean_record(order(session_id=" s-0123456789abcdef0123 "), now=NOW)
    assert not isinstance(got, Rejected) and got["session_id"] == "s-0123456789abcdef0123"
    for absent in (..., None, "", "  "):  # an order without a session (older producers) is still clean
        got = clean_record(order(session_id=absent), now=NOW)
        assert not isinstance(got, Rejected) and got["session_id"] is None
    wrong = rejected(order(session_id=42))
    assert wrong.reason == Reason.WRONG_TYPE and "session_id is a number, expected string" in wrong.message


@pytest.mark.parametrize("changes, reason, message", [
    ({"items": ...}, Reason.MISSING_FIELD, "missing or empty required field(s): items"),
    ({"items": [], "total": None}, Reason.MISSING_FIELD, "missing or empty required field(s): total, items"),
    ({"currency": "  "}, Reason.MISSING_FIELD, "missing or empty required field(s): currency"),
    ({"country": ..., "currency": None}, Reason.MISSING_FIELD, "missing or empty required field(s): country, currency"),
    ({"country": ""}, Reason.MISSING_FIELD, "missing or empty required field(s): country"),
    ({"country": 49}, Reason.WRONG_TYPE, "country is a number, expected string"),
    ({"items": [{"product_id": "P", "qty": 1}]}, Reason.MISSING_FIELD, "items[0].unit_price"),
    ({"total": "59.97"}, Reason.WRONG_TYPE, "total is a string, expected number"),
    ({"total": True}, Reason.WRONG_TYPE, "total is a boolean, expected number"),
    ({"total": 0.00001}, Reason.WRONG_TYPE, "at most 4 decimal places"),
    ({"total": 10 ** 15}, Reason.WRONG_TYPE, "below 100,000,000,000,000"),
    ({"items": {"product_id": "P"}}, Reason.WRONG_TYPE, "items is an object, expected array"),
    ({"items": ["P-1"]}, Reason.WRONG_TYPE, "items[0] is a string, expected object"),
    ({"items": [{"product_id": "P", "qty": 1.5, "unit_price": 1}]}, Reason.WRONG_TYPE,
     "items[0].qty is a number with a fraction or exponent, expected an integer"),
    ({"items": [{"product_id": 5, "qty": 1, "unit_price": 1}]}, Reason.WRONG_TYPE, "items[0].product_id is a number"),
    ({"items": [{"product_id": "P", "qty": 1, "unit_price": 1}] * 101}, Reason.WRONG_TYPE, "101 lines, limit 100"),
    ({"user_id": 7}, Reason.WRONG_TYPE, "user_id is a number, expected string"),
    ({"event_type": "order_shipped"}, Reason.UNKNOWN_EVENT_TYPE, "'order_shipped' is not one of order_placed"),
    ({"event_time": "2026-11-27 12:00"}, Reason.BAD_TIMESTAMP, "is not ISO-8601"),
    ({"event_time": "2026-12-27T12:00:00Z"}, Reason.BAD_TIMESTAMP, "in the future"),
    ({"country": "Germany"}, Reason.BAD_COUNTRY, "country 'Germany' is not an ISO 3166-1 alpha-2 code"),
    ({"country": "UK"}, Reason.BAD_COUNTRY, "'UK'"),  # reserved, not GB: nothing is mapped
    ({"country": "ıs"}, Reason.BAD_COUNTRY, "'ıs'"),  # upper-cases to IS, but is not ASCII
    ({"country": "XX", "currency": "EURO"}, Reason.BAD_COUNTRY, "'XX'"),  # the country rule comes first
    ({"currency": "EURO"}, Reason.UNKNOWN_CURRENCY, "currency 'EURO' is not one the shop takes"),
    ({"currency": "XAU"}, Reason.UNKNOWN_CURRENCY, "XAU"),
    ({"items": [{"product_id": "P", "qty": 0, "unit_price": 1}], "total": 0}, Reason.BAD_QUANTITY,
     "items[0].qty is 0, expected 1 to 10000"),
    ({"items": [{"product_id": "P", "qty": 10_001, "unit_price": 1}], "total": 10_001}, Reason.BAD_QUANTITY, "10001"),
    ({"items": [{"product_id": "P", "qty": 1, "unit_price": -5}], "total": -5}, Reason.NEGATIVE_AMOUNT,
     "items[0].unit_price is negative (-5.0000)"),
    ({"total": -59.97}, Reason.NEGATIVE_AMOUNT, "total is negative"),
    ({"total": 59.96}, Reason.TOTAL_MISMATCH, "total 59.96 EUR is not the items' sum 59.97"),
    ({"total": 59.975}, Reason.TOTAL_MISMATCH, "is not the items' sum 59.97"),
])
def test_each_rule_names_its_reason(changes: dict[str, Any], reason: str, message: str) -> None:
    got = rejected(order(**changes))
    assert got.reason == reason and message in got.message, got


def test_a_huge_total_does_not_fit_an_amount() -> None:
    got = rejected(order()[:-1] + b', "total": 1e999}')  # the last of duplicate keys wins
    assert got.reason == Reason.WRONG_TYPE and "total 1E+999 does not fit an amount" in got.message


def test_totals_are_rounded_to_the_currencys_minor_units() -> None:
    one_third = [{"product_id": "P", "qty": 3, "unit_price": 0.3333}]
    assert clean_record(order(items=one_third, total=1.00), now=NOW)["total"] == Decimal("1.0000")  # type: ignore[index]
    yen = [{"product_id": "P", "qty": 3, "unit_price": 333.5}]
    assert clean_record(order(items=yen, total=1000, currency="JPY"), now=NOW)["total"] == Decimal(1000)  # type: ignore[index]
    assert rejected(order(items=yen, total=1000.5, currency="JPY")).reason == Reason.TOTAL_MISMATCH


def test_amounts_are_exact_decimals_never_floats() -> None:
    items = [{"product_id": "P", "qty": 3, "unit_price": 0.1}]
    got = clean_record(order(items=items, total=0.3, currency="USD"), now=NOW)  # 3 * 0.1 != 0.3 in floats
    assert not isinstance(got, Rejected) and got["total"] == Decimal("0.3")


# --- the handler ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated() -> GeneratedOrders:
    return generate_orders(4_000, seed=13, now=ARRIVAL)


def test_the_handler_cleans_orders_into_their_own_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         generated: GeneratedOrders) -> None:
    monkeypatch.setenv("RAW_URI", (tmp_path / "raw").as_uri())
    monkeypatch.setenv("STAGING_URI", (tmp_path / "staging").as_uri())
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LakehouseTest")
    monkeypatch.setenv("SOURCE", "orders")
    assert handler(kinesis_event(generated.records, generated.partition_keys), None) == {"batchItemFailures": []}
    (path,) = (tmp_path / "staging" / "manifests" / "orders").rglob("*.json")
    manifest = json.loads(path.read_text())
    truth = generated.counts
    assert (manifest["source"], manifest["contract_version"]) == ("orders", contract.VERSION)
    assert (manifest["received"], manifest["clean"], manifest["duplicates"]) == (4_000, truth.clean, truth.duplicates)
    assert manifest["quarantined_by_reason"] == dict(sorted(truth.quarantined_by_reason.items()))
    assert "/raw/orders/" in manifest["files"]["raw"] and "/staging/clean/orders/" in manifest["files"]["clean"]

    clean = pq.read_table(manifest["files"]["clean"].removeprefix("file://"))
    assert clean.schema.equals(CLEAN_SCHEMAS["orders"])
    assert clean.schema.field("country") == pa.field("country", pa.string(), nullable=False)  # what silver reads
    events = generated.clean_events
    assert clean.column("order_id").to_pylist() == [e.order_id for e in events]
    assert clean.column("total").to_pylist() == [e.total for e in events]
    assert clean.column("currency").to_pylist() == [e.currency for e in events]
    assert clean.column("country").to_pylist() == [e.country for e in events]
    assert clean.column("event_time").to_pylist() == [e.event_time for e in events]
    assert clean.column("items").to_pylist() == [
        [{"product_id": i.product_id, "qty": i.qty, "unit_price": i.unit_price} for i in e.items] for e in events]
    quarantine = pq.read_table(manifest["files"]["quarantine"].removeprefix("file://"))
    assert Counter(quarantine.column("reason").to_pylist()) == Counter(truth.quarantined_by_reason)
    assert set(quarantine.column("source").to_pylist()) == {"orders"}
