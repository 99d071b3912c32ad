"""The layers: Powertools from its public SSM parameter (one per stack, the lock's version); our pyarrow
and numpy layers, one per stack, holding only what the functions import; every function's imports met
by the runtime, its layers or its bundle; and every function with its layers measured under Lambda's
unzipped limit, with headroom."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cdk_app.layers import (
    HEADROOM, LAMBDA_UNZIPPED_LIMIT_BYTES, NUMPY_MODULES, POWERTOOLS_PARAMETER, POWERTOOLS_VERSION,
    PYARROW_MODULES, imported_modules,
)
from cdk_app.packaging import LAYER_PREFIX, PRUNED_MODULES, build
from cdk_app.python_function import PythonFunction
from cdk_app.wheelhouse import LAYER, WHEELHOUSE, pinned

MB = 1e6


def test_powertools_layer_is_the_tested_version() -> None:
    # bumping aws-lambda-powertools in requirements.in moves the SSM parameter read with it
    assert pinned("aws-lambda-powertools") == f"aws-lambda-powertools=={POWERTOOLS_VERSION}"
    assert POWERTOOLS_PARAMETER == f"/aws/service/powertools/python/x86_64/python3.12/{POWERTOOLS_VERSION}"


def _functions(synthesized, env: str) -> list[PythonFunction]:
    return [c for c in synthesized(env).stage.node.find_all() if isinstance(c, PythonFunction)]


def _stacks(synthesized, env: str) -> list:
    stage = synthesized(env).stage
    return [stage.lake, stage.ingestion, stage.processing, stage.analytics]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_stack_reads_the_powertools_arn_from_one_ssm_parameter_at_deploy(synthesized, env: str) -> None:
    for stack in _stacks(synthesized, env):
        template = Template.from_stack(stack).to_json()
        functions = [r["Properties"] for r in template["Resources"].values()
                     if r["Type"] == "AWS::Lambda::Function" and "Layers" in r["Properties"]]
        parameters = [name for name, p in template.get("Parameters", {}).items()
                      if p["Type"] == "AWS::SSM::Parameter::Value<String>" and p["Default"] == POWERTOOLS_PARAMETER]
        assert len(parameters) == (1 if functions else 0), stack.stack_name
        # no ARN is spelled in the template: CloudFormation resolves the parameter (synth looked nothing up)
        assert all(f["Layers"][0] == {"Ref": parameters[0]} for f in functions), stack.stack_name


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_own_layers_are_one_per_stack_for_python312_x86_64_and_only_where_imported(synthesized, env: str) -> None:
    by_stack: dict[str, list[PythonFunction]] = {}
    for function in _functions(synthesized, env):
        by_stack.setdefault(Stack.of(function).stack_name, []).append(function)
    for stack in _stacks(synthesized, env):
        template = Template.from_stack(stack)
        layers = template.find_resources("AWS::Lambda::LayerVersion")
        names = sorted(layer["Properties"]["LayerName"] for layer in layers.values())
        functions = by_stack.get(stack.stack_name, [])
        wanted = [f"{stack.stack_name}-{package}" for package in ("numpy", "pyarrow")
                  if any(f"{package}" in f.provided_modules for f in functions)]
        assert names == sorted(wanted), stack.stack_name
        for layer in layers.values():
            props = layer["Properties"]
            assert props["CompatibleRuntimes"] == ["python3.12"] and props["CompatibleArchitectures"] == ["x86_64"]
        for function in functions:
            # numpy exactly where the code imports it (the cleaner, its replay, the file loader)
            assert ("numpy" in function.provided_modules) == ("numpy" in imported_modules(function.sources))


def test_layer_modules_are_what_the_layer_distributions_install() -> None:
    # PYARROW_MODULES / NUMPY_MODULES (what provided_modules promises) against the installed distributions
    assert sorted(LAYER) == ["numpy", "pyarrow"]
    assert _bundled_modules(["pyarrow"]) == PYARROW_MODULES
    assert _bundled_modules(["numpy"]) == NUMPY_MODULES


def _bundled_modules(distributions: Sequence[str]) -> set[str]:
    """Modules of the bundled distributions and of everything they require (as installed here: the
    venv and the wheelhouse are both the lock)."""
    wanted = {name for name, _ in _closure(distributions)}
    return {module for module, dists in metadata.packages_distributions().items()
            if any(canonicalize_name(d) in wanted for d in dists)}


def _closure(distributions: Iterable[str], extra: str = "") -> list[tuple[str, metadata.Distribution | None]]:
    """[(canonical name, its installed distribution or None)] of the distributions (with `extra` on the
    first ones) and everything they require."""
    found: dict[str, metadata.Distribution | None] = {}
    todo = [(canonicalize_name(d), extra) for d in distributions]
    while todo:
        name, wanted_extra = todo.pop()
        if name in found:
            continue
        try:
            found[name] = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            found[name] = None
            continue
        todo += [(canonicalize_name(r.name), "") for r in map(Requirement, found[name].requires or [])
                 if r.marker is None or r.marker.evaluate({"extra": wanted_extra})]
    return sorted(found.items(), key=lambda item: item[0])


def test_every_function_can_import_what_its_code_imports(synthesized) -> None:
    """A module neither in the runtime, a layer nor the bundle fails only in AWS, at import: caught here."""
    functions = _functions(synthesized, "dev")
    assert len(functions) >= 5
    unresolved = {}
    for function in functions:
        available = function.provided_modules | _bundled_modules(function.bundled) | {"lambdas", "iceberg_tables"}
        missing = {module: where for module, where in imported_modules(function.sources).items()
                   if module not in sys.stdlib_module_names and module != "__future__" and module not in available}
        if missing:
            unresolved[function.node.path] = missing
    assert unresolved == {}, f"bundle these (cdk_app) and pin them (requirements.in, then make lock): {unresolved}"
    # the check means something: pyarrow is met by the layer alone, and no code needs what the layer prunes
    imports = [imported_modules(f.sources, dotted=True) for f in functions]
    assert any("pyarrow" in {m.split(".")[0] for m in found} for found in imports)
    assert all(not any(m == p or m.startswith(f"{p}.") for m in found for p in PRUNED_MODULES) for found in imports)


# --- sizes, measured ---------------------------------------------------------------------------------

# The public Powertools layer can't be downloaded here, but how it is built is public
# (powertools-lambda-python, layer_v3/docker/Dockerfile): `pip install -t python aws-lambda-powertools[all]`
# on Lambda's image, then `rm -rf boto* s3transfer* *dateutil* urllib3* six* jmespath*` (the runtime has
# them), strip the .so files, delete tests and bytecode.
# MEASURED: the installed files (no __pycache__) of aws-lambda-powertools[all] and everything it requires,
# as this venv holds them from the lock, less what that Dockerfile removes. Our .so files are not
# stripped, so this overestimates them.
# MARGIN (POWERTOOLS_MARGIN_BYTES): the extras' distributions this venv lacks (aws-encryption-sdk,
# fastjsonschema, pyjwt: well under 2 MB together as wheels) and differences between our CPython 3.11
# builds and the layer's 3.12 ones.
POWERTOOLS_MARGIN_BYTES = 5_000_000
POWERTOOLS_LAYER_REMOVES = frozenset({"boto3", "botocore", "s3transfer", "python-dateutil", "urllib3", "six",
                                      "jmespath"})


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def powertools_layer_bytes() -> tuple[int, list[str]]:
    """(measured bytes plus margin, the distributions not installed here) of the Powertools layer."""
    measured, absent = 0, []
    for name, distribution in _closure(["aws-lambda-powertools"], extra="all"):
        if name in POWERTOOLS_LAYER_REMOVES:
            continue
        if distribution is None:
            absent.append(name)
            continue
        measured += sum(f.locate().stat().st_size for f in distribution.files or []
                        if "__pycache__" not in f.parts and Path(f.locate()).is_file())
    return measured + POWERTOOLS_MARGIN_BYTES, absent


def assert_fits(sizes: dict[str, dict[str, int]]) -> None:
    """Every function's code and layers (bytes by part) within the limit, HEADROOM left; prints them."""
    budget = LAMBDA_UNZIPPED_LIMIT_BYTES * (1 - HEADROOM)
    report = {name: {**parts, "total": sum(parts.values())} for name, parts in sizes.items()}
    print(json.dumps({"limit": LAMBDA_UNZIPPED_LIMIT_BYTES, "budget": int(budget), "functions": report}, indent=1))
    over = {name: f"{parts['total'] / MB:.1f} MB" for name, parts in report.items() if parts["total"] > budget}
    assert not over, f"over {budget / MB:.1f} MB ({HEADROOM:.0%} below Lambda's limit): {over}"


@pytest.fixture(scope="module")
def layer_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{package: our layer of it, built as synth builds it} (python/<package>...)."""
    assert (WHEELHOUSE / ".complete").exists(), "no Lambda wheelhouse: run `make setup` (python -m cdk_app.wheelhouse)"
    return {package: build((), [package], prefix=LAYER_PREFIX).into(tmp_path_factory.mktemp(package))
            for package in LAYER}


@pytest.mark.slow
def test_every_function_with_its_layers_fits_lambdas_unzipped_limit_with_headroom(
        synthesized, layer_folders: dict[str, Path], tmp_path: Path) -> None:
    """Each function's package as the bundler builds it, our layers as built, Powertools as measured above."""
    powertools, absent = powertools_layer_bytes()
    assert set(absent) <= {"aws-encryption-sdk", "fastjsonschema", "pyjwt"}, absent  # what the margin covers
    layer_bytes = {package: tree_bytes(folder) for package, folder in layer_folders.items()}
    built: dict[tuple, int] = {}
    sizes = {}
    for env in ("dev", "prod"):
        for function in _functions(synthesized, env):
            key = (function.sources, function.bundled)
            if key not in built:
                built[key] = tree_bytes(build(function.sources, function.bundled).into(tmp_path / str(len(built))))
            name = function.function.node.default_child.function_name
            sizes[name] = {"code": built[key], "powertools (measured + margin)": powertools,
                           **{package: layer_bytes[package] for package in LAYER if package in function.provided_modules}}
    assert len(sizes) >= 10
    assert_fits(sizes)


def _python312() -> str | None:
    """A CPython 3.12 (Lambda's) on this machine, if any: on PATH or installed by pyenv."""
    for candidate in [shutil.which("python3.12"), *map(str, sorted(Path.home().glob(".pyenv/versions/3.12*/bin/python3.12")))]:
        if candidate:
            done = subprocess.run([candidate, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
            if done.returncode == 0:
                return done.stdout.strip()
    return None


@pytest.mark.slow
def test_layers_hold_their_package_under_python_pruned_and_importable_on_python312(
        layer_folders: dict[str, Path]) -> None:
    for package, folder in layer_folders.items():
        assert [p.name for p in folder.iterdir()] == [LAYER_PREFIX]
        tops = {p.name for p in (folder / LAYER_PREFIX).iterdir()}
        assert package in tops and not tops - {package, f"{package}.libs"} - {t for t in tops if t.endswith(".dist-info")}
        assert not list((folder / LAYER_PREFIX).rglob("tests")) and not list((folder / LAYER_PREFIX).rglob("*.h"))
    python312 = _python312()
    if python312 is None:
        pytest.skip("no python3.12 here to import the stripped layers with")
    # what the functions import from pyarrow, with both layers on the path as Lambda puts them (/opt/python)
    modules = sorted({m for m in imported_modules(["lambdas"], dotted=True) if m.split(".")[0] in LAYER}
                     | {"pyarrow.dataset", "pyarrow.parquet", "pyarrow.compute", "pyarrow.fs"})
    smoke = (f"import importlib, io; [importlib.import_module(m) for m in {modules!r}]\n"
             "import numpy as np, pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq\n"
             "t = pa.table({'a': np.arange(10)}); t = t.filter(pc.greater(t['a'], 3)); b = io.BytesIO()\n"
             "pq.write_table(t, b, compression='zstd'); b.seek(0); assert pq.read_table(b).num_rows == 6\n"
             "try:\n import pyarrow.flight\nexcept ImportError: print('ok')\n")
    path = ":".join(str(folder / LAYER_PREFIX) for folder in layer_folders.values())
    done = subprocess.run([python312, "-S", "-c", smoke], env={"PYTHONPATH": path}, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
