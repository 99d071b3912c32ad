"""The venvs hold exactly their hashed locks, and the locks hold exactly the hand-edited pins.

A fresh install once took a newer botocore than the one tested (issue 10): these tests catch such
drift on any machine, not only on a fresh one.
"""
from __future__ import annotations

import json
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from cdk_app.config import PROJECT_ROOT, ConfigError
from cdk_app.locks import PIPELINE_LOCK, SUPERSET_LOCK, read_lock
from cdk_app.wheelhouse import WHEELHOUSE, unlocked_wheels

SUPERSET_PYTHON = PROJECT_ROOT / ".venv-superset" / "bin" / "python"
# `python -m venv` seeds these from the interpreter's own ensurepip (not from an index, so they do not
# drift with a fresh machine); the project itself is installed editable on top of its lock.
SEEDED = {"pip", "setuptools"}
PROJECT = "serverless-lakehouse"


def _drift(installed: dict[str, str], lock_path: Path, own: set[str]) -> dict[str, tuple[str | None, str | None]]:
    """{name: (locked, installed)} wherever the venv and the lock disagree."""
    wanted = {name: e.version for name, e in read_lock(lock_path).items() if e.applies()}
    extra = {name: (None, version) for name, version in installed.items() if name not in wanted and name not in own}
    wrong = {name: (version, installed.get(name)) for name, version in wanted.items() if installed.get(name) != version}
    return extra | wrong


def _installed(python: str | None = None) -> dict[str, str]:
    code = ("import json; from importlib import metadata; "
            "print(json.dumps({d.metadata['Name']: d.version for d in metadata.distributions()}))")
    found = json.loads(subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, check=True).stdout) \
        if python else {d.metadata["Name"]: d.version for d in metadata.distributions()}
    return {canonicalize_name(name): version for name, version in found.items()}


def test_pipeline_venv_is_exactly_its_lock() -> None:
    drift = _drift(_installed(), PIPELINE_LOCK, SEEDED | {PROJECT})
    assert drift == {}, f"{{name: (locked, installed)}}: {drift}; run `make setup` (or `make lock` after editing requirements.in)"


def test_superset_venv_is_exactly_its_lock() -> None:
    assert SUPERSET_PYTHON.exists(), "the Superset venv is missing: run `make setup`"
    drift = _drift(_installed(str(SUPERSET_PYTHON)), SUPERSET_LOCK, SEEDED)
    assert drift == {}, f"{{name: (locked, installed)}}: {drift}; run `make setup`"


@pytest.mark.parametrize(("source", "lock_path"), [
    (PROJECT_ROOT / "requirements.in", PIPELINE_LOCK),
    (PROJECT_ROOT / "dashboards" / "requirements-superset.in", SUPERSET_LOCK),
])
def test_lock_holds_every_hand_edited_pin(source: Path, lock_path: Path) -> None:
    """Editing a requirements*.in without `make lock` is caught here, not on a fresh machine."""
    lock = read_lock(lock_path)
    pins = [Requirement(line.split("#")[0]) for line in source.read_text().splitlines() if line.split("#")[0].strip()]
    assert pins, source
    unlocked = {}
    for pin in pins:
        (spec,) = pin.specifier  # every top-level package is pinned exactly
        entry = lock.get(canonicalize_name(pin.name))
        if spec.operator != "==" or entry is None or entry.version != spec.version:
            unlocked[pin.name] = (str(pin.specifier), entry.version if entry else None)
    assert unlocked == {}, f"{{package: (wanted, locked)}} {unlocked}: run `make lock`"


def test_botocore_and_moto_are_pinned_together() -> None:
    """botocore is a hand-edited pin beside moto (decision 0003), never left to the resolver."""
    pins = {Requirement(line.split("#")[0]).name for line in (PROJECT_ROOT / "requirements.in").read_text().splitlines()
            if line.split("#")[0].strip()}
    assert {"boto3", "botocore", "moto"} <= pins


def test_a_pin_without_hash_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text("six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\nidna==3.21\n")
    with pytest.raises(ConfigError, match=r"idna==3\.21 has no --hash"):
        read_lock(lock)


def test_markers_decide_whether_an_entry_applies(tmp_path: Path) -> None:
    lock = tmp_path / "lock.txt"
    lock.write_text('async-timeout==5.0.1 ; python_full_version < "3.11.3" \\\n    --hash=sha256:' + "b" * 64 + "\n")
    entry = read_lock(lock)["async-timeout"]
    assert entry.version == "5.0.1" and entry.hashes == {"b" * 64}
    assert entry.applies({"python_full_version": "3.11.2"}) and not entry.applies({"python_full_version": "3.11.7"})


def test_wheelhouse_refuses_what_the_lock_does_not_hold(tmp_path: Path) -> None:
    wheel = tmp_path / "six-1.17.0-py2.py3-none-any.whl"
    wheel.write_bytes(b"not the wheel PyPI serves")
    other = tmp_path / "idna-3.1-py3-none-any.whl"
    other.write_bytes(b"x")
    unknown = tmp_path / "leftpad-1.0-py3-none-any.whl"
    unknown.write_bytes(b"y")
    lock = {"six": read_lock(PIPELINE_LOCK)["six"], "idna": read_lock(PIPELINE_LOCK)["idna"]}
    assert unlocked_wheels(tmp_path, lock) == [
        "idna-3.1-py3-none-any.whl: the lock has idna==" + lock["idna"].version,
        "leftpad-1.0-py3-none-any.whl: leftpad is not in the lock",
        "six-1.17.0-py2.py3-none-any.whl: its sha256 is not among the lock's hashes",
    ]


def test_the_lambda_wheelhouse_is_the_lock() -> None:
    assert (WHEELHOUSE / ".complete").exists(), "no Lambda wheelhouse: run `make setup`"
    assert sorted(WHEELHOUSE.glob("*.whl")), WHEELHOUSE
    assert unlocked_wheels(WHEELHOUSE, read_lock(PIPELINE_LOCK)) == []
