"""docs/sources/product_catalog.md names every column, reason code, limit and setting the code has."""
from __future__ import annotations

from cdk_app.config import PROJECT_ROOT
from lambdas.contracts import currencies
from lambdas.contracts import products as contract
from lambdas.file_loader import loader
from lambdas.file_loader.outputs import CLEAN_SCHEMA, QUARANTINE_SCHEMA
from tests.environment_variables import read_by

DOC = (PROJECT_ROOT / "docs" / "sources" / "product_catalog.md").read_text()


def test_every_column_reason_code_and_staged_column_is_documented() -> None:
    for name in (*contract.Reason.ALL, *contract.COLUMNS, *CLEAN_SCHEMA.names, *QUARANTINE_SCHEMA.names,
                 *contract.CATEGORIES, *contract.TRUE_VALUES, *contract.FALSE_VALUES):
        assert f"`{name}`" in DOC, name


def test_every_environment_variable_the_handler_reads_is_documented() -> None:
    variables = read_by(PROJECT_ROOT / "lambdas" / "file_loader" / "handler.py", r"[A-Z]+_URI")
    assert variables == {"LANDING_URI", "RAW_URI", "STAGING_URI", "POWERTOOLS_METRICS_NAMESPACE", "SOURCE"}
    for variable in variables:
        assert f"`{variable}`" in DOC, variable


def test_the_documented_limits_are_the_codes() -> None:
    assert f"`MAX_ROW_BYTES` ({contract.MAX_ROW_BYTES // 1024} KiB)" in DOC
    assert f"`MAX_NAME_CHARS` ({contract.MAX_NAME_CHARS})" in DOC
    assert f"`MAX_PRICE` ({contract.MAX_PRICE})" in DOC
    assert f"`MAX_FUTURE_SECONDS` ({contract.MAX_FUTURE_SECONDS // 60} min)" in DOC
    assert f"`OLDEST_UPDATED_AT` ({contract.OLDEST_UPDATED_AT.date().isoformat()}" in DOC
    assert f"decimal(12, {contract.PRICE_SCALE})" in DOC
    assert f"`CHUNK_BYTES` chunks ({loader.CHUNK_BYTES // 2 ** 20} MiB" in DOC
    assert f"`BATCH_ROWS` {loader.BATCH_ROWS:,} lines or `BATCH_BYTES` {loader.BATCH_BYTES // 2 ** 20} MiB" in DOC
    zero = sorted(code for code, units in currencies.MINOR_UNITS.items() if units == 0)
    assert f"({' and '.join(zero)} none, the others 2" in DOC
