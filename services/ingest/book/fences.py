"""Fenced code blocks as CommonMark reads them, for every reader of Markdown text (the parser's
pre-passes, the partials it shows, the answerer's passages and citations).

A fence opens with three or more backticks or tildes (backticks then take none in the info string)
and closes with a line of at least as many of the same: a ````md block can hold ``` lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")


def opening_fence(line: str) -> str | None:
    """The run of backticks or tildes that opens a fenced code block on this line, if it does."""
    found = _FENCE.match(line)
    if found is None or (found.group(1)[0] == "`" and "`" in found.group(2)):
        return None
    return found.group(1)


def closes(line: str, fence: str) -> bool:
    """Whether the line closes the fence: only its character, at least as many times."""
    text = line.strip()
    return len(text) >= len(fence) and text == fence[0] * len(text)


def fence_after(line: str, fence: str) -> str:
    """The fence still open after this line, given the one open before it ("" outside code)."""
    if not fence:
        return opening_fence(line) or ""
    return "" if closes(line, fence) else fence


def with_code(lines: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """Each line, and whether it belongs to a fenced code block (its fence lines included): what
    a pass over Markdown text skips, since no line of code is a heading, a tag or an import."""
    fence = ""
    for line in lines:
        was_code = bool(fence)
        fence = fence_after(line, fence)
        yield line, was_code or bool(fence)
