"""The environment variables a handler reads, found in its source: quoted names, and the shared
names it takes from lambdas/common/environment.py (imported there `as names`)."""
from __future__ import annotations

import re
from pathlib import Path

from lambdas.common import environment


def read_by(source: Path, literal: str) -> set[str]:
    """Names in `source`: string literals matching the regex `literal`, and every `names.X` used."""
    text = source.read_text()
    quoted = set(re.findall(rf'"({literal})"', text))
    return quoted | {getattr(environment, name) for name in re.findall(r"\bnames\.([A-Z_]+)\b", text)}
