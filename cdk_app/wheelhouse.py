"""Wheels of the Lambda functions' bundled dependencies, kept under build/ for offline synth.

Synth installs bundled dependencies from this folder only (pip --no-index), so `cdk synth` never
reaches a package index. Fill it once with `python -m cdk_app.wheelhouse` (`make setup` does);
it downloads manylinux wheels for Lambda's Python 3.12 from PyPI.
The bundled packages' versions come from requirements.txt and their dependencies' from the
pipeline venv that runs this (as constraints), so the Lambdas run what the tests ran.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from cdk_app.config import PROJECT_ROOT, ConfigError

WHEELHOUSE = PROJECT_ROOT / "build" / "wheelhouse" / "lambda-py312"
REQUIREMENTS_TXT = PROJECT_ROOT / "requirements.txt"
# Lambda's runtime (python3.12 on x86_64), whatever machine synthesizes.
PIP_TARGET_ARGS: tuple[str, ...] = (
    # Lambda python3.12 runs on Amazon Linux 2023 (glibc 2.34): manylinux_2_28 wheels fit
    "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64", "--implementation", "cp",
    "--python-version", "3.12", "--only-binary=:all:",
)
# Everything any function bundles (the rest comes from the runtime and the public layers).
BUNDLED: tuple[str, ...] = ("pyiceberg", "pyiceberg-core", "isal", "msgspec")


def pinned(package: str) -> str:
    """`package==X.Y.Z` as pinned in requirements.txt (extras dropped)."""
    for line in REQUIREMENTS_TXT.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", line.strip())
        if match and match.group(1).lower() == package.lower():
            return f"{match.group(1)}=={match.group(3)}"
    raise ConfigError(f"requirements.txt pins no version of '{package}'")


def fill(wheelhouse: Path = WHEELHOUSE) -> Path:
    """Download the bundled packages' wheels (with their dependencies) unless already there."""
    stamp = wheelhouse / ".complete"
    wanted = "\n".join(pinned(p) for p in BUNDLED)
    if stamp.exists() and stamp.read_text() == wanted:
        return wheelhouse
    wheelhouse.mkdir(parents=True, exist_ok=True)
    installed = sorted({f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions() if d.metadata["Name"]})
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as constraints:
        constraints.write("\n".join(installed))
        constraints.flush()
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheelhouse),
             "--constraint", constraints.name, *PIP_TARGET_ARGS, *wanted.splitlines()],
            check=True,
        )
    stamp.write_text(wanted)
    return wheelhouse


def wheels(wheelhouse: Path = WHEELHOUSE) -> list[str]:
    """File names of the wheels there, sorted (part of a bundled package's content hash)."""
    return sorted(p.name for p in wheelhouse.glob("*.whl"))


if __name__ == "__main__":
    print(f"Lambda wheelhouse ready: {fill()}")
