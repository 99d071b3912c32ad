"""The public layers' pins follow the lock; a region without a pinned layer is a clear error;
every function's imports are met by the runtime, its layers or its bundle."""
from __future__ import annotations

import ast
import sys
from collections.abc import Sequence
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cdk_app.config import PROJECT_ROOT, ConfigError, environments
from cdk_app.layers import POWERTOOLS_VERSION, pandas_layer_arn, powertools_layer_arn
from cdk_app.python_function import PythonFunction
from cdk_app.wheelhouse import pinned


def test_powertools_layer_is_the_tested_version() -> None:
    # bumping aws-lambda-powertools in requirements.in must revisit the layer version
    assert pinned("aws-lambda-powertools") == f"aws-lambda-powertools=={POWERTOOLS_VERSION}"


def test_every_configured_region_has_its_layers() -> None:
    for settings in environments().values():
        region = settings["region"]
        assert powertools_layer_arn(region).startswith(f"arn:aws:lambda:{region}:017000801446:layer:")
        assert pandas_layer_arn(region).startswith(f"arn:aws:lambda:{region}:336392948345:layer:AWSSDKPandas-Python312:")


def test_unpinned_region_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="ap-south-2"):
        pandas_layer_arn("ap-south-2")


def _imported_modules(sources: Sequence[str]) -> dict[str, str]:
    """{top-level module: a file importing it} of every absolute import in the package's sources."""
    found: dict[str, str] = {}
    for source in sources:
        path = PROJECT_ROOT / source
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            for node in ast.walk(ast.parse(file.read_text())):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                    [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
                for name in names:
                    found.setdefault(name.split(".")[0], str(file.relative_to(PROJECT_ROOT)))
    return found


def _bundled_modules(distributions: Sequence[str]) -> set[str]:
    """Modules of the bundled distributions and of everything they require (as installed here: the
    venv and the wheelhouse are both the lock)."""
    wanted, todo = set(), [canonicalize_name(d) for d in distributions]
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo += [canonicalize_name(r.name) for r in map(Requirement, metadata.requires(name) or [])
                     if r.marker is None or r.marker.evaluate({"extra": ""})]
    return {module for module, dists in metadata.packages_distributions().items()
            if any(canonicalize_name(d) in wanted for d in dists)}


def test_every_function_can_import_what_its_code_imports(synthesized) -> None:
    """A module neither in the runtime, a layer nor the bundle fails only in AWS, at import: caught here."""
    functions = [c for c in synthesized("dev").stage.node.find_all() if isinstance(c, PythonFunction)]
    assert len(functions) >= 5
    unresolved = {}
    for function in functions:
        available = function.provided_modules | _bundled_modules(function.bundled) | {"lambdas", "iceberg_tables"}
        missing = {module: where for module, where in _imported_modules(function.sources).items()
                   if module not in sys.stdlib_module_names and module != "__future__" and module not in available}
        if missing:
            unresolved[function.node.path] = missing
    assert unresolved == {}, f"bundle these (cdk_app) and pin them (requirements.in, then make lock): {unresolved}"
