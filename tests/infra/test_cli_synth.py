"""The real CDK CLI synthesizes dev offline, with CDK's CloudFormation validation and real bundling."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cdk_app.config import PROJECT_ROOT, load
from cdk_app.wheelhouse import WHEELHOUSE
from tests.infra.test_layers import assert_fits, powertools_layer_bytes, tree_bytes

pytestmark = pytest.mark.slow


def _cdk_synth(out: Path, env_name: str, *stacks: str) -> Path:
    """`cdk synth` of `stacks` of one environment, as a user runs it; the assembly folder."""
    cdk = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "the pinned CDK CLI is not installed: run `make setup` (npm ci)"
    assert (WHEELHOUSE / ".complete").exists(), "no Lambda wheelhouse: run `make setup` (python -m cdk_app.wheelhouse)"
    env = {k: v for k, v in os.environ.items() if k != "CDK_VALIDATION"}  # keep CDK's validation on
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    # offline: cdk.json's placeholder account and FX URL, which a deploy refuses (test_placeholders_stop_the_cli)
    done = subprocess.run([str(cdk), "synth", "-c", f"env={env_name}", "-c", "offline=true", *stacks, "-q",
                           "-o", str(out)],
                          cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # CloudFormation's schema check only warns (a security group description EC2 refuses, say): none allowed
    report = json.loads((out / "validation-report.json").read_text())
    findings = [(v["ruleName"], v["description"]) for plugin in report["pluginReports"]
                for v in plugin.get("violations", [])]
    assert findings == [], findings
    return out / f"assembly-{env_name}"


@pytest.fixture(scope="module")
def cli_synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _cdk_synth(tmp_path_factory.mktemp("cdk-cli"), "dev", "dev/*")


def _asset_dirs(assembly: Path, stack: str) -> dict[str, Path]:
    """{Lambda function name: its bundled asset folder} of one stack."""
    template = _template(assembly, stack)
    found = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Function" and "FunctionName" in resource["Properties"]:
            found[resource["Properties"]["FunctionName"]] = _asset(assembly, resource["Properties"]["Code"]["S3Key"])
    return found


def _template(assembly: Path, stack: str, env_name: str = "dev") -> dict:
    manifest = json.loads((assembly / "manifest.json").read_text())
    [artifact] = [a for name, a in manifest["artifacts"].items()
                  if a["type"] == "aws:cloudformation:stack" and name.startswith(f"{env_name}{stack}")]
    return json.loads((assembly / artifact["properties"]["templateFile"]).read_text())


def test_every_dev_stack_is_synthesized(cli_synth: Path) -> None:
    manifest = json.loads((cli_synth / "manifest.json").read_text())
    stacks = {a["displayName"] for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"}
    dashboards = {"dev/Dashboards"} if load("dev").dashboards.enabled else set()
    assert stacks == {"dev/Lake", "dev/Ingestion", "dev/Processing", "dev/Analytics", "dev/Operations", *dashboards}


def test_cleaner_package_holds_its_code_and_nothing_a_layer_provides(cli_synth: Path) -> None:
    package = _asset_dirs(cli_synth, "Ingestion")[load("dev").function_name("cleaner")]
    for module in ("lambdas/cleaner/handler.py", "lambdas/contracts/lake_layout.py", "lambdas/__init__.py"):
        assert (package / module).is_file(), module
    # Powertools and pyarrow come from the public layers
    assert not any((package / name).exists() for name in ("pyarrow", "aws_lambda_powertools", "pyiceberg"))
    assert not list(package.rglob("__pycache__"))


@pytest.mark.parametrize("folder", ["cleaner", "api_connector", "file_loader"])
def test_packages_carry_the_shared_storage_code_and_only_the_wheels_they_import(cli_synth: Path, folder: str) -> None:
    package = _asset_dirs(cli_synth, "Ingestion")[load("dev").function_name(folder)]
    for module in (f"lambdas/{folder}/handler.py", "lambdas/common/storage.py", "lambdas/contracts/lake_layout.py"):
        assert (package / module).is_file(), module
    for wheel in ("isal", "msgspec"):  # the cleaner's fast paths, built for Lambda's Python, not this machine's
        assert bool(list(package.glob(f"{wheel}-*.dist-info"))) == (folder == "cleaner"), wheel
        assert all("cpython-312-x86_64-linux-gnu" in so.name for so in (package / wheel).rglob("*.so"))
    assert (folder == "cleaner") == (package / "lambdas/cleaner").exists()
    assert not any((package / name).exists() for name in ("pyarrow", "aws_lambda_powertools", "pyiceberg"))


def test_prod_with_msk_passes_cloudformation_validation(tmp_path: Path) -> None:
    """Only prod has MSK: its VPC, security groups and cluster must meet CloudFormation's schemas too.
    Only the ingestion stack is bundled, so it stays quick."""
    assembly = _cdk_synth(tmp_path, "prod", "prod/Ingestion", "--exclusively")
    resources = _template(assembly, "Ingestion", env_name="prod")["Resources"].values()
    assert {"AWS::MSK::ServerlessCluster", "AWS::EC2::VPC", "AWS::Scheduler::Schedule"} <= {r["Type"] for r in resources}


def test_migrator_package_bundles_pyiceberg_for_lambdas_python(cli_synth: Path) -> None:
    package = _asset_dirs(cli_synth, "Lake")[load("dev").function_name("table_migrator")]
    assert (package / "iceberg_tables" / "migrator.py").is_file()
    assert (package / "lambdas" / "table_migrator").is_dir()
    assert list(package.glob("pyiceberg-0.12.0.dist-info"))
    extensions = [p.name for p in package.rglob("*.so")]
    assert extensions and all("cpython-312-x86_64-linux-gnu" in name or "abi3" in name or name.startswith("lib")
                              for name in extensions), extensions


def test_every_function_with_its_layers_as_synthesized_fits_lambdas_limit(cli_synth: Path) -> None:
    """The asset folders cdk synth bundled, measured: each function's code and its own layers (our pyarrow and
    numpy), plus the Powertools layer as tests/infra/test_layers.py measures it."""
    powertools, _ = powertools_layer_bytes()
    sizes = {}
    for stack in ("Lake", "Ingestion", "Processing"):
        resources = _template(cli_synth, stack)["Resources"]
        for function in (r["Properties"] for r in resources.values()
                         if r["Type"] == "AWS::Lambda::Function" and "FunctionName" in r["Properties"]):
            parts = {"code": tree_bytes(_asset(cli_synth, function["Code"]["S3Key"]))}
            if "Layers" in function:  # ours; CDK's own provider function has none
                parts["powertools (measured + margin)"] = powertools
            for layer in function.get("Layers", [])[1:]:  # the first is Powertools, by its SSM parameter
                props = resources[layer["Ref"]]["Properties"]
                folder = _asset(cli_synth, props["Content"]["S3Key"])
                assert [p.name for p in folder.iterdir()] == ["python"], folder
                parts[props["LayerName"]] = tree_bytes(folder)
            sizes[function["FunctionName"]] = parts
    config = load("dev")
    assert {config.function_name(f) for f in ("cleaner", "api_connector", "file_loader", "table_migrator",
                                              "record_run")} <= set(sizes)
    assert_fits(sizes)


def _asset(assembly: Path, s3_key: str) -> Path:
    return assembly.parent / f"asset.{s3_key.removesuffix('.zip')}"


def test_placeholders_stop_the_cli_with_the_key_and_how_to_set_it() -> None:
    """Without `-c offline=true`, `cdk synth` (and so `cdk deploy`) ends before any stack, naming the key."""
    cdk = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LAKEHOUSE_")}
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    done = subprocess.run([str(cdk), "synth", "-c", "env=dev", "dev/Lake", "-q"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode != 0
    assert ("lakehouse config: environment 'dev': 'account' is the placeholder '123456789012' from cdk.json"
            in done.stderr), done.stderr
    assert "LAKEHOUSE_DEV_ACCOUNT" in done.stderr and "Traceback" not in done.stderr
