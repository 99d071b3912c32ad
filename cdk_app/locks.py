"""The hashed dependency locks (`make lock` writes them with uv from the hand-edited requirements*.in).

`make setup` makes each venv exactly its lock; this module reads a lock for the Lambda wheelhouse
(which takes its versions and checks its wheels' hashes here) and for the drift tests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

from cdk_app.config import PROJECT_ROOT, ConfigError

PIPELINE_LOCK = PROJECT_ROOT / "requirements-lock.txt"
SUPERSET_LOCK = PROJECT_ROOT / "dashboards" / "requirements-superset-lock.txt"

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)\s*(?:;(?P<marker>[^\\]+))?")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Locked:
    name: str  # canonical (PEP 503)
    version: str
    hashes: frozenset[str]  # sha256 of every file PyPI offers for this version
    marker: Marker | None

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        """Whether this entry is installed where `environment` (default: this interpreter) runs."""
        return self.marker is None or self.marker.evaluate(environment)


def read_lock(path: Path = PIPELINE_LOCK) -> dict[str, Locked]:
    """{canonical name: entry} of a uv/pip-tools lock with hashes; a pin without a hash is refused."""
    entries: dict[str, Locked] = {}
    current: dict | None = None

    def close() -> None:
        if current is None:
            return
        if not current["hashes"]:
            raise ConfigError(f"{path.name}: {current['name']}=={current['version']} has no --hash: run `make lock`")
        entries[current["name"]] = Locked(current["name"], current["version"], frozenset(current["hashes"]),
                                          current["marker"])

    for line in path.read_text().splitlines():
        pin = _PIN.match(line)
        if pin:
            close()
            marker = pin.group("marker")
            current = {"name": canonicalize_name(pin.group("name")), "version": pin.group("version"),
                       "hashes": [], "marker": Marker(marker.strip()) if marker else None}
        if current is not None:
            current["hashes"] += _HASH.findall(line)
    close()
    if not entries:
        raise ConfigError(f"{path} pins nothing: run `make lock`")
    return entries


def locked_version(package: str, path: Path = PIPELINE_LOCK) -> str:
    """The version `path` locks `package` at; a clear error when it does not lock it."""
    entry = read_lock(path).get(canonicalize_name(package))
    if entry is None:
        raise ConfigError(f"{path.name} locks no version of '{package}': add it to requirements.in, then `make lock`")
    return entry.version
