"""The layers of the code, held by its imports: what runs in AWS never imports the local runtime, and the
local runtime's sub-packages never import its front door (README "Layout")."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AWS_CODE = ("lambdas", "glue_jobs", "iceberg_tables", "cdk_app")
FRONT_DOOR = {"lakehouse.cli", "lakehouse.demo"}


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports: import statements, and importlib.import_module("...") string literals."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def test_the_walk_sees_imports_of_every_kind(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import a.b\nfrom c import d\nimport importlib\nimportlib.import_module('e.f')\n")
    assert imported_modules(sample) == {"a.b", "c", "c.d", "importlib", "e.f"}


@pytest.mark.parametrize("path", python_files(*AWS_CODE), ids=lambda p: str(p.relative_to(ROOT)))
def test_code_that_runs_in_aws_never_imports_the_local_runtime(path: Path) -> None:
    local = {name for name in imported_modules(path) if name == "lakehouse" or name.startswith("lakehouse.")}
    assert not local, f"{path.relative_to(ROOT)} imports {sorted(local)}: hand the local part in from lakehouse/"


@pytest.mark.parametrize("path", [p for p in python_files("lakehouse") if p.parent != ROOT / "lakehouse"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_sub_packages_never_import_the_front_door(path: Path) -> None:
    assert not imported_modules(path) & FRONT_DOOR, f"{path.relative_to(ROOT)} imports the CLI or the demo"


# Lambda runs the functions on Python 3.12; this machine tests them on 3.11 (decision 0006). The standard
# library modules 3.12 removed (What's New in Python 3.12, "Removed") would import here and fail there.
REMOVED_IN_3_12 = {"distutils", "imp", "asynchat", "asyncore", "smtpd"}


@pytest.mark.parametrize("path", python_files("lambdas", "iceberg_tables"), ids=lambda p: str(p.relative_to(ROOT)))
def test_function_code_imports_nothing_python_3_12_removed(path: Path) -> None:
    removed = {name for name in imported_modules(path) if name.split(".")[0] in REMOVED_IN_3_12}
    assert not removed, f"{path.relative_to(ROOT)} imports {sorted(removed)}, which Lambda's Python 3.12 lacks"


def test_the_local_runtime_imports_no_handler_module_at_its_own_import() -> None:
    """A handler's Powertools Logger keeps the stdout it sees when the handler is imported; imported with the
    local runtime, a function's logs would go to the user's terminal instead of .lakehouse/logs/."""
    import subprocess
    import sys

    code = ("import sys, lakehouse.cli, lakehouse.demo, lakehouse.cloud.pipeline, lakehouse.cloud.provision; "
            "print(sorted(m for m in sys.modules if m.startswith('lambdas.') and m.endswith('.handler')))")
    imported = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"
