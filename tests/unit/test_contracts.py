"""The contracts themselves: their lists against an independent source, and the docs naming them."""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from lambdas.contracts import clickstream, common, countries, currencies, orders

DOCS = Path(__file__).resolve().parents[2] / "docs" / "contracts.md"
ISO_CODES = Path("/usr/share/iso-codes/json")  # Debian's iso-codes package


def _iso(name: str, key: str) -> set[str]:
    path = ISO_CODES / f"iso_{name}.json"
    # `make setup` installs Debian's iso-codes (APT_PACKAGES): its absence is a broken set-up, not a skip.
    assert path.exists(), f"Debian's iso-codes data ({path}) is missing: run `make setup` (apt-get install iso-codes)"
    return {entry[key] for entry in json.loads(path.read_text())[name]}


def test_country_codes_are_exactly_the_assigned_iso_3166_codes() -> None:
    assert countries.ISO_3166_ALPHA2 == _iso("3166-1", "alpha_2")


def test_currencies_are_iso_4217_codes_with_the_right_minor_units() -> None:
    assert set(currencies.MINOR_UNITS) <= _iso("4217", "alpha_3")
    assert {code for code, units in currencies.MINOR_UNITS.items() if units != 2} == {"JPY", "KRW"}
    assert orders.CURRENCIES == currencies.CODES == tuple(sorted(currencies.MINOR_UNITS))


@pytest.mark.parametrize("contract", [clickstream, orders], ids=lambda c: c.SOURCE)
def test_reason_codes_are_stable_and_distinct(contract: ModuleType) -> None:
    assert contract.REASONS[:len(common.Reason.COMMON)] == common.Reason.COMMON
    assert len(set(contract.REASONS)) == len(contract.REASONS)
    assert all(code == code.upper() and getattr(contract.Reason, code) == code for code in contract.REASONS)


@pytest.mark.parametrize("contract", [clickstream, orders], ids=lambda c: c.SOURCE)
def test_docs_name_every_field_reason_code_and_limit(contract: ModuleType) -> None:
    docs = DOCS.read_text()
    assert f"version {contract.VERSION} (`lambdas/contracts/{contract.SOURCE}.py`)" in docs
    names = ([f.name for f in contract.FIELDS] + list(contract.REASONS) + [n for n, _ in contract.EXTRA_CLEAN_COLUMNS]
             + list(contract.EVENT_TYPES) + ["MAX_RECORD_BYTES", "MAX_FUTURE_SECONDS", "MAX_AGE_DAYS"])
    missing = [name for name in names if f"`{name}`" not in docs]
    assert missing == [], f"docs/contracts.md does not describe {missing}"


def test_docs_name_the_orders_limits_and_item_fields() -> None:
    docs = DOCS.read_text()
    for name in [*orders.ITEM_FIELDS, "MAX_ITEMS", "MAX_QUANTITY", "AMOUNT_PRECISION", "AMOUNT_SCALE", "CURRENCIES"]:
        assert f"`{name}`" in docs, name
