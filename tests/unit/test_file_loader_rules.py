"""Every rule of the products contract, the header's and each line's, and every reason code."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lambdas.contracts import products as contract
from lambdas.contracts.products import Reason
from lambdas.file_loader.rules import Header, Product, Rejected, parse_header, parse_row

ARRIVED = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
HEADER_LINE = b"product_id,name,category,price,currency,active,updated_at"
GOOD = {"product_id": "P-00042", "name": "Alpine Trail Runner", "category": "shoes", "price": "89.90",
        "currency": "EUR", "active": "true", "updated_at": "2026-11-01T09:30:00+01:00"}


def header(line: bytes = HEADER_LINE) -> Header:
    result = parse_header(line)
    assert isinstance(result, Header), result
    return result


def line(**changes: str) -> bytes:
    """A valid line (in HEADER_LINE's order) with `changes` applied; values are written as given."""
    return ",".join({**GOOD, **changes}.values()).encode()


def accepted(data: bytes, head: Header | None = None) -> Product:
    result = parse_row(data, head or header(), arrived=ARRIVED)
    assert isinstance(result, Product), result
    return result


def rejected(data: bytes, head: Header | None = None) -> Rejected:
    result = parse_row(data, head or header(), arrived=ARRIVED)
    assert isinstance(result, Rejected), result
    return result


def test_a_valid_line_is_normalised() -> None:
    got = accepted(line(product_id=" p-00042", name='"Alpine ""Trail"" Runner, black"', category=" SHOES ",
                        price="89.9", currency="eur", active="YES", updated_at="2026-11-01T09:30:00.250+05:45"))
    assert got == Product(
        product_id="P-00042", name='Alpine "Trail" Runner, black', category="shoes", price=Decimal("89.90"),
        currency="EUR", active=True, updated_at=datetime(2026, 11, 1, 3, 45, 0, 250_000, tzinfo=timezone.utc),
        updated_at_offset="+05:45")
    assert str(got.price) == "89.90"  # scaled to the staged decimals
    # A quote inside an unquoted value is taken literally (as exporters write inches), not an error.
    assert accepted(line(name='Monitor 27" screen')).name == 'Monitor 27" screen'


def test_header_columns_in_any_order_any_case_with_unknown_ones_ignored() -> None:
    head = header(b"\xef\xbb\xbf Updated_At ,PRICE,name,supplier,product_id,currency,active,category")
    assert head.width == 8 and head.ignored == ("supplier",)
    got = accepted(b"2026-11-01T09:30:00Z,5,Kite,acme,P-00001,USD,0,toys", head)
    assert (got.product_id, got.name, got.price, got.active, got.category) == ("P-00001", "Kite", Decimal("5.00"),
                                                                                False, "toys")


@pytest.mark.parametrize("data, message", [
    (b"", "the first line is empty"),
    (b"   ", "the first line is empty"),
    (b"\xff\xfep\x00r\x00", "UTF-16"),
    (b"product_id,n\xe4me,category", "not valid UTF-8 at byte 13"),
    (b'product_id,"name', "not valid CSV: unexpected end of data"),
    (b"product_id,name,category,price,currency,active", "lacks column(s) updated_at"),
    (b"product_id,name,price,price,currency,active,updated_at,category", "names column(s) price more than once"),
    (b"P-00001,Kite,toys,5,USD,true,2026-11-01T09:30:00Z", "is the header missing?"),
])
def test_a_bad_header_is_named(data: bytes, message: str) -> None:
    result = parse_header(data)
    assert isinstance(result, Rejected) and result.reason == Reason.BAD_HEADER
    assert message in result.message, result.message


@pytest.mark.parametrize("data, reason, message", [
    (line(name="Caf\xe9").replace("é".encode(), b"\xe9"), Reason.BAD_ENCODING, "not valid UTF-8 at byte 12"),
    (line(name='"Alpine Trail'), Reason.MALFORMED_ROW, "unexpected end of data"),
    (line(name='"Alpine"x'), Reason.MALFORMED_ROW, "',' expected after '\"'"),
    (line(name="Alpine\rTrail"), Reason.MALFORMED_ROW, "new-line character seen in unquoted field"),
    (line() + b",surplus", Reason.WRONG_FIELD_COUNT, "line has 8 field(s), the header has 7"),
    (line().rsplit(b",", 1)[0], Reason.WRONG_FIELD_COUNT, "line has 6 field(s), the header has 7"),
    (b"", Reason.WRONG_FIELD_COUNT, "line has 0 field(s)"),
    (line(name="  ", price=""), Reason.MISSING_FIELD, "empty required field(s): name, price"),
    (line(product_id="SKU-42"), Reason.BAD_PRODUCT_ID, "product_id 'SKU-42' is not P- and 5 to 9 digits"),
    (line(product_id="P-1234567890"), Reason.BAD_PRODUCT_ID, "5 to 9 digits"),
    (line(product_id="P-٤٢٤٢٤"), Reason.BAD_PRODUCT_ID, "5 to 9 digits"),  # Arabic-Indic digits are not 0-9
    (line(name="x" * (contract.MAX_NAME_CHARS + 1)), Reason.BAD_NAME, f"201 characters, limit {contract.MAX_NAME_CHARS}"),
    (line(name="Kite\x07"), Reason.BAD_NAME, "control character U+0007 at position 5"),
    (line(name="Kite\tXL"), Reason.BAD_NAME, "U+0009"),
    (line(category="gadgets"), Reason.UNKNOWN_CATEGORY, "category 'gadgets' is not one of shoes, jackets"),
    (line(currency="EURO"), Reason.UNKNOWN_CURRENCY, "currency 'EURO' is not one of"),
    (line(price="-12.50"), Reason.BAD_PRICE, "price -12.50 is not above 0"),
    (line(price="0.00"), Reason.BAD_PRICE, "not above 0"),
    (line(price='"12,99"'), Reason.BAD_PRICE, "price '12,99' is not a decimal number like 19.99"),
    (line(price="1e3"), Reason.BAD_PRICE, "not a decimal number"),
    (line(price="NaN"), Reason.BAD_PRICE, "not a decimal number"),
    (line(price="€15"), Reason.BAD_PRICE, "not a decimal number"),
    (line(price="100000.01"), Reason.BAD_PRICE, "above the limit of 100000"),
    (line(price="19.999"), Reason.BAD_PRICE, "more decimals than EUR allows (2)"),
    (line(price="1500.5", currency="JPY"), Reason.BAD_PRICE, "more decimals than JPY allows (0)"),
    (line(active="maybe"), Reason.BAD_BOOLEAN, "active 'maybe' is not one of true, 1, yes, false, 0, no"),
    (line(updated_at="2026-13-01T00:00:00Z"), Reason.BAD_TIMESTAMP, "month must be in 1..12"),
    (line(updated_at="01/05/2026 12:00"), Reason.BAD_TIMESTAMP, "is not an ISO-8601 timestamp"),
    (line(updated_at="2026-05-01T12:00:00"), Reason.BAD_TIMESTAMP, "has no UTC offset"),
    (line(updated_at="2026-05-01T12:00:00+18:30"), Reason.BAD_TIMESTAMP, "out-of-range UTC offset"),
    (line(updated_at="2026-11-27T12:15:01Z"), Reason.BAD_TIMESTAMP, "after the file arrived"),
    (line(updated_at="1999-12-31T23:59:59Z"), Reason.BAD_TIMESTAMP, "before 2000-01-01"),
    (line(updated_at="0001-01-01T00:00:00+02:00"), Reason.BAD_TIMESTAMP, "out of range in UTC"),
])
def test_each_rule_names_the_problem(data: bytes, reason: str, message: str) -> None:
    got = rejected(data)
    assert got.reason == reason and message in got.message, got


def test_the_first_broken_rule_decides() -> None:
    # Unknown category and bad price: the category is checked first, as documented.
    assert rejected(line(category="gadgets", price="-1")).reason == Reason.UNKNOWN_CATEGORY
    assert rejected(line(product_id="x", name="")).reason == Reason.MISSING_FIELD


def test_limits_are_inclusive() -> None:
    assert accepted(line(name="x" * contract.MAX_NAME_CHARS)).name == "x" * contract.MAX_NAME_CHARS
    assert accepted(line(price=str(contract.MAX_PRICE))).price == contract.MAX_PRICE
    assert accepted(line(price="0.01")).price == Decimal("0.01")
    assert accepted(line(price="1500.00", currency="jpy")).price == Decimal("1500")  # 1500.00 is a whole yen
    skew = ARRIVED + timedelta(seconds=contract.MAX_FUTURE_SECONDS)
    assert accepted(line(updated_at=skew.isoformat())).updated_at == skew
    assert accepted(line(updated_at="2000-01-01T00:00:00Z")).updated_at == contract.OLDEST_UPDATED_AT
    assert accepted(line(updated_at="2026-05-01T12:00:00-18:00")).updated_at_offset == "-18:00"
    assert accepted(line(product_id="P-123456789")).key == 123456789 * 10 + 9


def test_the_same_values_written_differently_have_one_digest_and_ids_keep_their_width() -> None:
    one = accepted(line(price="20", active="1", updated_at="2026-11-01T10:00:00+01:00"))
    other = accepted(line(price="20.000", active="TRUE", category="Shoes", updated_at="2026-11-01T09:00:00Z"))
    assert one.digest == other.digest and one.updated_at_offset != other.updated_at_offset
    assert accepted(line(price="20.01")).digest != one.digest
    assert accepted(line(product_id="P-00012")).key != accepted(line(product_id="P-000012")).key


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_product_or_a_reason(data: bytes) -> None:
    result = parse_row(data, header(), arrived=ARRIVED)
    assert isinstance(result, Product) or result.reason in Reason.ALL


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20), min_size=7, max_size=7))
def test_any_text_fields_give_a_product_or_a_reason(fields: list[str]) -> None:
    data = ",".join('"' + f.replace('"', '""') + '"' for f in fields).encode()
    result = parse_row(data, header(), arrived=ARRIVED)
    assert isinstance(result, Product) or result.reason in Reason.ALL
