"""Code blocks as remark-shiki-twoslash shows them.

TypeScript libraries' sites (tRPC's) write their examples as ```` ```ts twoslash ```` blocks that the
TypeScript compiler checks at build time. What the reader sees is less than the source:

- everything above a ``// ---cut---`` line (imports and setup the example needs to compile), and
  everything below a ``// ---cut-after---`` line;
- the compiler's flags, one a line: ``// @target: esnext``, ``// @errors: 2322``, ``// @noErrors``
  (a ``// @filename: server.ts`` line stays: it tells the files apart);
- the type queries and highlights (``//    ^?``), shown as pop-ups, not as code;
- a ```` ```twoslash include name ```` block, which only defines code for the blocks after it to
  include (``// @include: name`` stands for its lines).

Checked against remark-shiki-twoslash 3 itself, run on blocks of each kind.

Stored as the source has them, tRPC's 305 cut setups would repeat the same router in hundreds of
chunks, none of it shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

PLUGIN = "remark-shiki-twoslash"
META = "twoslash"
_CUT = re.compile(r"^\s*//\s*---cut(?:-before)?---\s*$")
_CUT_AFTER = re.compile(r"^\s*//\s*---cut-after---\s*$")
_DIRECTIVE = re.compile(r"^\s*//\s*@(?!filename\b)\w+(?:\s*:.*)?\s*$")
_INCLUDE = re.compile(r"^\s*//\s*@include:\s*(\S+)\s*$")
_QUERY = re.compile(r"^\s*//\s*\^[?|^]")


def applies(language_meta: Sequence[str]) -> bool:
    """Whether a fence (its language, then the rest of its info string) is twoslash's."""
    return bool(language_meta) and (language_meta[0] == META or META in " ".join(language_meta[1:]).split())


def shown(language_meta: Sequence[str], lines: Sequence[str], includes: dict[str, list[str]]) -> list[str]:
    """The lines of a twoslash block the reader sees; none of an include block, which is kept in
    ``includes`` (the page's, in its order) under its name."""
    if language_meta and language_meta[0] == META:  # ```twoslash include name
        words = " ".join(language_meta[1:]).split()
        if len(words) >= 2 and words[0] == "include":
            includes[words[1]] = list(lines)
        return []
    lines = [line for source in lines for line in _included(source, includes)]
    cuts = [n for n, line in enumerate(lines) if _CUT.match(line)]
    start = cuts[-1] + 1 if cuts else 0
    end = next((n for n, line in enumerate(lines) if n >= start and _CUT_AFTER.match(line)), len(lines))
    return [line for line in lines[start:end] if not (_DIRECTIVE.match(line) or _QUERY.match(line))]


def _included(line: str, includes: dict[str, list[str]]) -> list[str]:
    """A line, or the lines of the include it names (none for a name not defined above)."""
    found = _INCLUDE.match(line)
    return includes.get(found[1], []) if found else [line]
