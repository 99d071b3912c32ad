"""A mkdocs hook: lists written for GitHub (CommonMark) render the same in Python-Markdown.

The pages are written, and read on GitHub, as CommonMark: a list may follow a paragraph line directly, and a
nested item is indented to its parent's text (2 spaces under `- `, 3 under `1. `). Python-Markdown needs a
blank line before a list and 4 spaces per level, or it runs the list into the paragraph and flattens the
nesting. This rewrites each page's Markdown, before it is rendered, into that form; the files are untouched.
"""
from __future__ import annotations

import re

_ITEM = re.compile(r"^( *)([-*+]|\d{1,9}[.)])( +)(?=\S)")
_FENCE = re.compile(r"^ *(`{3,}|~{3,})")


def normalize(markdown: str) -> str:
    out: list[str] = []
    stack: list[tuple[int, int, int]] = []  # open items: (marker indent, text column, depth)
    fence: str | None = None
    fence_shift = 0
    blank_before = True
    for line in markdown.split("\n"):
        if fence is not None:
            out.append(_shift(line, fence_shift))
            if line.strip().startswith(fence):
                fence = None
            continue
        if not line.strip():
            out.append(line)
            blank_before = True
            continue
        indent = len(line) - len(line.lstrip(" "))
        item = _ITEM.match(line)
        if item and not (not stack and not blank_before and not _interrupts(item.group(2))):
            starts_a_list = not stack
            while stack and (stack[-1][0] >= indent or stack[-1][1] > indent):
                stack.pop()
            if starts_a_list and not blank_before:
                out.append("")  # a list needs a blank line before it
            depth = len(stack)
            stack.append((indent, indent + len(item.group(2)) + len(item.group(3)), depth))
            line = " " * (4 * depth) + line[indent:]
            shift = 0
        else:
            owners = [entry for entry in stack if entry[1] <= indent]
            if owners:
                _, column, depth = owners[-1]
                shift = 4 * (depth + 1) - column
                line = _shift(line, shift)
            else:
                if blank_before or line.startswith("#"):
                    stack = []  # the list ended
                shift = 0
        opening = _FENCE.match(line)
        if opening:
            fence, fence_shift = opening.group(1), shift
        out.append(line)
        blank_before = False
    return "\n".join(out)


def _interrupts(marker: str) -> bool:
    """Whether this item starts a list right after a paragraph line: a bullet does, a number only if 1."""
    return not marker[0].isdigit() or marker[:-1] == "1"


def _shift(line: str, shift: int) -> str:
    if shift >= 0:
        return " " * shift + line if line.strip() else line
    indent = len(line) - len(line.lstrip(" "))
    return line[min(indent, -shift):]


def on_page_markdown(markdown: str, **kwargs) -> str:
    return normalize(markdown)
