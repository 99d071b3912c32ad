"""cfn-lint, AWS's CloudFormation linter, finds no error in any template of any environment (decision 0222).

The templates are the session's synths (tests/fixtures/cdk.py), linted by the cfn-lint CLI for the region each
stack deploys to: one process a region, all at once (linting is CPU-bound, about 8 s an environment, and the
import alone takes 5 s). Warnings are counted in pytest's warnings summary and listed one by one
in the test's output (`pytest -rP`), never failed on. No rule is ignored: today's warnings are all W3005 (an
explicit DependsOn that a GetAtt already implies: CDK writes it for a function or state machine and its role).
"""
from __future__ import annotations

import json
import subprocess
import sys
import warnings
from collections import Counter
from pathlib import Path

import pytest

from tests.fixtures.cdk import Synthesized

ENVS = ("dev", "prod", "local")
IGNORED_RULES: dict[str, str] = {}  # {rule id: why}; none so far
CFN_LINT = [sys.executable, "-c", "from cfnlint.runner import main; raise SystemExit(main())"]  # the venv's
CONTROL = "control"
# A template CloudFormation would refuse: SQS keeps a message 60 s at the least.
BAD_TEMPLATE = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 30}}}}


def _command(templates: list[Path], region: str) -> list[str]:
    ignore = ["--ignore-checks", *IGNORED_RULES] if IGNORED_RULES else []
    return [*CFN_LINT, "--format", "json", "--regions", region, *ignore, "--", *map(str, templates)]


@pytest.fixture(scope="module")
def findings(synthesized, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """{environment (or CONTROL): cfn-lint's findings on its templates}."""
    out = tmp_path_factory.mktemp("cfn-lint")
    owner: dict[str, str] = {}  # {template file: environment}
    by_region: dict[str, list[Path]] = {}
    for env in ENVS:
        synth = synthesized(env)
        for stack in synth.stage.stacks.values():
            template = synth.outdir / f"assembly-{env}" / stack.template_file
            owner[str(template)] = env
            by_region.setdefault(stack.region, []).append(template)
    control = out / "control.template.json"
    control.write_text(json.dumps(BAD_TEMPLATE))
    owner[str(control)] = CONTROL
    by_region[min(by_region)].append(control)
    running = []
    for region, templates in by_region.items():
        with (out / f"{region}.json").open("w") as stdout, (out / f"{region}.err").open("w") as stderr:
            running.append((subprocess.Popen(_command(templates, region), stdout=stdout, stderr=stderr), region))
    found: dict[str, list[dict]] = {name: [] for name in (*ENVS, CONTROL)}
    for process, region in running:
        process.wait()  # its exit code is a bit mask of what it found, not a failure of its own
        report = (out / f"{region}.json").read_text()
        assert report.strip().startswith("["), report + (out / f"{region}.err").read_text()
        for finding in json.loads(report):
            found[owner[finding["Filename"]]].append(finding)
    return found


@pytest.mark.parametrize("env", ENVS)
def test_every_template_of_the_environment_passes_cfn_lint_without_error(findings, env: str) -> None:
    found = findings[env]
    errors = [f for f in found if f["Level"] == "Error"]
    others = [f for f in found if f["Level"] != "Error"]
    for finding in others:  # listed (pytest -rP shows them), not failed on
        print(f"{env}: {finding['Rule']['Id']} {finding['Location']['Path']}: {finding['Message']}")
    if others:
        counts = Counter(f["Rule"]["Id"] for f in others)
        warnings.warn(f"cfn-lint, {env}: {dict(sorted(counts.items()))} (not errors)", stacklevel=1)
    assert errors == [], "\n".join(f"{Path(f['Filename']).name} {f['Rule']['Id']} {f['Location']['Path']}: "
                                   f"{f['Message']}" for f in errors)


def test_cfn_lint_reports_an_error_it_is_shown(findings) -> None:
    """Control: a template CloudFormation would refuse, linted in the same run, is found in error (else the test
    above could pass with a linter that ran nothing)."""
    assert [(f["Level"], f["Rule"]["Id"], f["Location"]["Path"]) for f in findings[CONTROL]] == [
        ("Error", "E3034", ["Resources", "Queue", "Properties", "MessageRetentionPeriod"])]
