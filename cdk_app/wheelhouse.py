"""Wheels of the Lambda functions' bundled dependencies and of our pyarrow and numpy layers, kept under
build/ for offline synth.

Synth installs bundled dependencies and the layers' packages from this folder only (pip --no-index),
so `cdk synth` never reaches a package index. Fill it once with `python -m cdk_app.wheelhouse` (`make setup` does);
it downloads manylinux wheels for Lambda's Python 3.12 from the package index.
Every version comes from the pipeline's lock (requirements-lock.txt), and every wheel's sha256 must
be one the lock records for that version, so the Lambdas run exactly what the tests ran.
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from cdk_app.config import PROJECT_ROOT, ConfigError
from cdk_app.locks import PIPELINE_LOCK, Locked, locked_version, read_lock

WHEELHOUSE = PROJECT_ROOT / "build" / "wheelhouse" / "lambda-py312"
# Lambda's runtime (python3.12 on x86_64), whatever machine synthesizes.
PIP_TARGET_ARGS: tuple[str, ...] = (
    # Lambda python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels fit
    "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", "--implementation", "cp",
    "--python-version", "3.12", "--only-binary=:all:",
)
# Everything any function bundles (the rest comes from the runtime and the layers).
BUNDLED: tuple[str, ...] = ("pyiceberg", "pyiceberg-core", "isal", "msgspec")
# Our own layers, one package each (cdk_app/layers.py): pyarrow for every function that reads or writes
# Parquet; numpy for those whose code imports it (the cleaner, the file loader), since pyarrow >= 16 needs
# it only to convert to and from numpy.
LAYER: tuple[str, ...] = ("pyarrow", "numpy")


def pinned(package: str) -> str:
    """`package==X.Y.Z` as the pipeline's lock has it."""
    return f"{package}=={locked_version(package)}"


def unlocked_wheels(wheelhouse: Path, lock: dict[str, Locked]) -> list[str]:
    """The wheels there whose name, version or sha256 the lock does not record, each with why."""
    problems = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(wheel.name)
        entry = lock.get(canonicalize_name(name))
        if entry is None:
            problems.append(f"{wheel.name}: {name} is not in the lock")
        elif str(version) != entry.version:
            problems.append(f"{wheel.name}: the lock has {name}=={entry.version}")
        elif hashlib.sha256(wheel.read_bytes()).hexdigest() not in entry.hashes:
            problems.append(f"{wheel.name}: its sha256 is not among the lock's hashes")
    return problems


def fill(wheelhouse: Path = WHEELHOUSE, lock_path: Path = PIPELINE_LOCK) -> Path:
    """Download the wheels of the bundled packages and of the layer's (with their dependencies, at the lock's
    versions) unless there."""
    stamp = wheelhouse / ".complete"
    # the stamp names the pins (packaging.py checks them) and the lock they were resolved from
    wanted = [pinned(p) for p in (*BUNDLED, *LAYER)]
    state = "\n".join([*wanted, f"lock sha256 {hashlib.sha256(lock_path.read_bytes()).hexdigest()}"])
    if stamp.exists() and stamp.read_text() == state:
        return wheelhouse
    lock = read_lock(lock_path)
    wheelhouse.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    for old in wheelhouse.glob("*.whl"):  # a wheel of an earlier lock must not be installable
        old.unlink()
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as constraints:
        constraints.write("\n".join(f"{e.name}=={e.version}" for e in lock.values()))
        constraints.flush()
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheelhouse),
             "--constraint", constraints.name, *PIP_TARGET_ARGS, *wanted],
            check=True,
        )
    problems = unlocked_wheels(wheelhouse, lock)
    if problems:
        raise ConfigError(f"Lambda wheelhouse {wheelhouse} holds what {lock_path.name} does not lock "
                          f"(add it to requirements.in, then `make lock`): " + "; ".join(problems))
    stamp.write_text(state)
    return wheelhouse


def wheels(wheelhouse: Path = WHEELHOUSE) -> list[str]:
    """File names of the wheels there, sorted (part of a bundled package's content hash)."""
    return sorted(p.name for p in wheelhouse.glob("*.whl"))


if __name__ == "__main__":
    print(f"Lambda wheelhouse ready: {fill()}")
