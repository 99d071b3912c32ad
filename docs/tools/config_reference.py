"""The configuration reference (docs/reference/config.md): every key of an environment in cdk.json, with its
type, what it must be, what it does and each environment's value, generated from cdk_app/config.py (the only
reader of cdk.json), lambdas/data_quality/thresholds.py and cdk.json itself, so the page cannot drift.

    python docs/tools/config_reference.py          # rewrite docs/reference/config.md
    python docs/tools/config_reference.py --check  # exit 1 if it is stale

tests/unit/test_docs_site.py fails when the committed page differs from what this writes.
"""
from __future__ import annotations

import ast
import json
import sys
from dataclasses import fields
from pathlib import Path

from cdk_app import config
from lambdas.data_quality.thresholds import Thresholds

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tools, run as a script or loaded by path
from generated_page import write_or_check  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "reference" / "config.md"
SOURCE = Path(config.__file__)
HEADER = """# Configuration reference (`cdk.json`)

Generated from `cdk_app/config.py`, `lambdas/data_quality/thresholds.py` and `cdk.json` by
`python docs/tools/config_reference.py` (a test holds this page to them). Each environment (`local`, `dev`,
`prod`) is one object under the context key `lakehouse:environments` in `cdk.json`, and sets every key below:
there are no hidden defaults. A value outside its range is refused by name when the app synthesizes, and
`account` and `fx_api_base_url` can also come from `LAKEHOUSE_<ENV>_ACCOUNT` and
`LAKEHOUSE_<ENV>_FX_API_BASE_URL` ([Deploy](../deploy.md)).
"""


def _comments(cls_name: str) -> dict[str, str]:
    """The comment beside (or the comment lines above) each field of `cls_name` in cdk_app/config.py."""
    lines = SOURCE.read_text().splitlines()
    tree = ast.parse(SOURCE.read_text())
    [cls] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls_name]
    found: dict[str, str] = {}
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line = lines[node.lineno - 1]
            said = line.split("  # ", 1)[1] if "  # " in line else ""
            above, n = [], node.lineno - 2
            while n >= 0 and lines[n].strip().startswith("#"):
                above.insert(0, lines[n].strip().lstrip("# "))
                n -= 1
            found[node.target.id] = " ".join(filter(None, [" ".join(above), said]))
    return found


def _value(value: object) -> str:
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def render() -> str:
    envs = config.environments()
    names = sorted(envs)
    comments = _comments("EnvConfig")
    parts = [HEADER, "\n## Settings\n", f"| key | type | must be | what | {' | '.join(names)} |",
             f"| --- | --- | --- | --- | {' | '.join('---' for _ in names)} |"]
    for f in fields(config.EnvConfig):
        if f.name == "name" or f.name not in config._CHECKS:
            continue
        typ, rule = config._CHECKS[f.name]
        parts.append(f"| `{f.name}` | {config.TYPE_WORDS[typ]} | {_cell(rule.says)} | {_cell(comments.get(f.name, ''))} | "
                     + " | ".join(_value(envs[e][f.name]) for e in names) + " |")
    parts += ["", "Lists:", "",
              "- `alert_emails`: e-mail addresses subscribed to both alert topics ([Subscribe to alerts]"
              "(../howto/subscribe-to-alerts.md)); " + "; ".join(f"{e}: {_value(envs[e]['alert_emails'])}" for e in names) + ".",
              "- `replay_principals`: IAM role or user ARNs that may assume the replay role (decision 0225); "
              + "; ".join(f"{e}: {_value(envs[e]['replay_principals'])}" for e in names) + "."]
    parts += ["", "## `quality`: the data-quality limits", "",
              f"| key | must be | {' | '.join(names)} |", f"| --- | --- | {' | '.join('---' for _ in names)} |"]
    for f in fields(Thresholds):
        parts.append(f"| `{f.name}` | {_cell(f.metadata['kind'].expected)} | "
                     + " | ".join(_value(envs[e]["quality"][f.name]) for e in names) + " |")
    parts += ["", "## `dashboards`: the Superset service ([Dashboards](../dashboards.md))", "",
              f"| key | must be | {' | '.join(names)} |", f"| --- | --- | {' | '.join('---' for _ in names)} |"]
    for key, (typ, rule) in config._DASHBOARDS_CHECKS.items():
        says = rule.says or config.TYPE_WORDS.get(typ, "")
        parts.append(f"| `{key}` | {_cell(says)} | " + " | ".join(_value(envs[e]["dashboards"].get(key)) for e in names)
                     + " |")
    parts.append("| `oidc` | null, or `{metadata_url, client_id, groups_claim}` of your own OIDC provider | "
                 + " | ".join(_value(envs[e]["dashboards"].get("oidc")) for e in names) + " |")
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(PAGE, render(), argv, "docs/tools/config_reference.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
