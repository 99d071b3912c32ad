"""docs/sources/fx_rates.md names every reason code, fault, setting and bound the code has."""
from __future__ import annotations

from cdk_app.config import PROJECT_ROOT
from lakehouse.sources.fx_fixture import Fault
from lambdas.api_connector import handler
from lambdas.api_connector.retry import RetryPolicy
from lambdas.api_connector.schedule import MAX_DAYS_PER_INVOCATION
from lambdas.api_connector.secrets import SECRET_MAX_AGE_SECONDS
from lambdas.api_connector.validate import MAX_PAGES
from lambdas.contracts import fx_rates as contract
from tests.environment_variables import read_by

DOC = (PROJECT_ROOT / "docs" / "sources" / "fx_rates.md").read_text()


def test_every_reason_code_fault_and_field_is_documented() -> None:
    for name in (*contract.Reason.ALL, *(fault.name for fault in Fault), *(f.name for f in contract.FIELDS)):
        assert f"`{name}`" in DOC, name


def test_every_environment_variable_the_handler_reads_is_documented() -> None:
    variables = read_by(PROJECT_ROOT / "lambdas" / "api_connector" / "handler.py", r"FX_API_[A-Z_]+")
    assert len(variables) == 9
    for variable in variables:
        assert f"`{variable}`" in DOC, variable


def test_the_documented_bounds_are_the_codes() -> None:
    policy = RetryPolicy()
    assert f"default {policy.max_attempts})" in DOC
    assert f"default base {policy.base_delay:g} s" in DOC and f"(default {policy.max_delay:g} s)" in DOC
    assert f"default {handler.DEFAULT_TIMEOUT_SECONDS:g} s" in DOC
    assert f"= {policy.worst_case_seconds(handler.DEFAULT_TIMEOUT_SECONDS):g} s with the defaults" in DOC
    assert f"at most {MAX_PAGES} pages" in DOC and f"at most {MAX_DAYS_PER_INVOCATION} |" in DOC
    assert f"for {SECRET_MAX_AGE_SECONDS // 60} minutes" in DOC
