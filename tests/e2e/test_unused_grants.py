"""Grants that no local run uses are each explained (tests/fixtures/least_privilege.py UNEXERCISED, shown in
docs/security.md) or removed. Needs the two e2e local runs of this session (test_pipeline.py's demo and
test_cli_workflows.py's `lakehouse up` workflows), which pytest runs before this file."""
from __future__ import annotations

import pytest

from cdk_app import config
from tests.fixtures import least_privilege


def test_every_grant_no_local_run_uses_is_explained(synthesized, local_run_calls) -> None:  # noqa: ANN001
    if set(local_run_calls) != {"demo", "workflows"}:
        pytest.skip("needs the calls of both e2e local runs: run tests/e2e whole, or with test_pipeline.py and "
                    "test_cli_workflows.py")
    templates = least_privilege.Templates(synthesized("local").outdir / "assembly-local", config.load("local"))
    evaluated = least_privilege.requests(templates, [c for calls in local_run_calls.values() for c in calls])
    unused = least_privilege.unused_grants(templates, evaluated)
    unexplained = {role: [a for a in actions if least_privilege.unexercised_pattern(a) is None]
                   for role, actions in unused.items()}
    assert {role: actions for role, actions in unexplained.items() if actions} == {}, (
        "grants no local run uses: say why AWS needs each (UNEXERCISED in tests/fixtures/least_privilege.py, "
        "then docs/security.md), or remove it")
    # and no reason outlives its grants
    explained = {least_privilege.unexercised_pattern(action) for actions in unused.values() for action in actions}
    assert set(least_privilege.UNEXERCISED) - explained == set()
