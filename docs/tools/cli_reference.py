"""The CLI reference (docs/reference/cli.md), generated from the `lakehouse` typer app itself: each command's
help, options (type, default, help) and example, so the page cannot say what the code does not.

    python docs/tools/cli_reference.py          # rewrite docs/reference/cli.md
    python docs/tools/cli_reference.py --check  # exit 1 if it is stale

tests/unit/test_docs_site.py fails when the committed page differs from what this writes.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer.main

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling tools, run as a script or loaded by path
from generated_page import write_or_check  # noqa: E402

PAGE = Path(__file__).resolve().parents[1] / "reference" / "cli.md"
HEADER = """# The `lakehouse` command line

Generated from the CLI itself by `python docs/tools/cli_reference.py` (a test holds this page to it). `lakehouse
COMMAND --help` shows the same. The local lake lives in `$LAKEHOUSE_HOME` (default: `.lakehouse/` in the project).
Commands marked *Local only* work on this machine's lake or its running `lakehouse up`; the others also take
`--env dev|prod` and then work against the deployed environment with your AWS credentials.
"""


Command = Any  # click's Command, as typer builds it (typer may carry its own click)


def _commands(command: Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], Command]]:
    subcommands = getattr(command, "commands", None)  # a group
    if subcommands is not None:
        return [found for name, sub in subcommands.items() for found in _commands(sub, (*path, name))]
    return [(path, command)]


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _option_row(param: Any, ctx: Any) -> str:
    if param.param_type_name == "argument":
        name = f"`{param.name.upper()}` (argument)"
    else:
        name = ", ".join(f"`{flag}`" for flag in [*param.opts, *param.secondary_opts])
    kind = "flag" if getattr(param, "is_flag", False) else param.display_type(ctx).strip("<>")
    default = "" if param.default is None or getattr(param, "is_flag", False) and not param.default else \
        f"`{param.default}`"
    return f"| {name} | {kind} | {default} | {_cell(getattr(param, 'help', None) or '')} |"


def render() -> str:
    from lakehouse.cli import app

    parts = [HEADER]
    root = typer.main.get_command(app)
    ctx = root.make_context("lakehouse", [], resilient_parsing=True)
    for path, command in _commands(root, ()):
        parts.append(f"\n## `lakehouse {' '.join(path)}`\n\n{_cell(command.help or '')}\n")
        params = [p for p in command.params if p.name != "help"]
        if params:
            parts.append("\n| option | type | default | what |\n| --- | --- | --- | --- |")
            parts += [_option_row(p, ctx) for p in params]
        if command.epilog:
            parts.append(f"\n{_cell(command.epilog).replace('Example: ', 'Example: `', 1)}`")
    return "\n".join(parts) + "\n"


def main(argv: list[str]) -> int:
    return write_or_check(PAGE, render(), argv, "docs/tools/cli_reference.py")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
