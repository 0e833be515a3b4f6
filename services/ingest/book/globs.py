"""Glob patterns as the Docusaurus docs plugin reads them (``include``/``exclude``).

Docusaurus globs each content folder with globby 11 -> fast-glob 3 -> micromatch 4/picomatch 2
(``readVersionDocs``: ``Globby(include, {cwd: contentPath, ignore: exclude})``). This follows
those libraries for what real configs use:

- fast-glob expands braces first (``{a,b}``, nested, ranges ``{1..3}``/``{a..c}``), then each
  pattern becomes a regex;
- ``**`` as a whole segment is any number of segments (``a/**`` also matches ``a``); elsewhere
  it is ``*``; ``*`` is any run of characters but ``/``; ``?`` one such character;
- ``[abc]``, ``[a-z]``, ``[!a]``/``[^a]`` (never ``/``; fast-glob sets ``posix``), POSIX
  ``[[:alpha:]]`` (picomatch drops the character after such a class, a bug not copied); ``\\x`` is ``x``;
- extglobs ``@(a|b)``, ``?(a)``, ``+(a)``, ``*(a)``; ``!(a)`` is refused (GlobError);
- a segment's leading ``.`` is matched only by a literal dot unless ``dot`` (fast-glob matches
  ``include`` with dot off and ``ignore`` with dot on);
- globby: an ``include`` entry ``!p`` excludes ``p`` from the entries before it, and an entry
  naming a folder means everything under it.

The standard library's ``fnmatch``/``glob`` lack zero-segment ``**``, braces and the dot rule,
and no PyPI package states picomatch's quirks (``a/**`` matching ``a`` but ``_*/**`` not ``_a``,
guards only after ``*``/``?``), hence this small translator, checked against micromatch itself
in tests/test_globs.py when node_modules is installed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# @docusaurus/plugin-content-docs options.js and @docusaurus/utils GlobExcludeDefault.
DEFAULT_INCLUDE = ("**/*.{md,mdx}",)
DEFAULT_EXCLUDE = ("**/_*.{js,jsx,ts,tsx,md,mdx}", "**/_*/**", "**/*.test.{js,jsx,ts,tsx}", "**/__tests__/**")

_POSIX = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "ascii": "\\x00-\\x7F", "blank": " \\t",
    "cntrl": "\\x00-\\x1F\\x7F", "digit": "0-9", "graph": "\\x21-\\x7E", "lower": "a-z",
    "print": "\\x20-\\x7E ", "punct": "\\-!\"#$%&'()\\*+,./:;<=>?@\\[\\\\\\]^_`{|}~",
    "space": " \\t\\r\\n\\v\\f", "upper": "A-Z", "word": "A-Za-z0-9_", "xdigit": "A-Fa-f0-9",
}
_RANGE = re.compile(r"^(-?\w+)\.\.(-?\w+)(?:\.\.(-?\d+))?$")
_MAX_EXPANSIONS = 10_000  # brace ranges like {1..99999} would otherwise explode


class GlobError(ValueError):
    """A pattern this translator cannot reproduce faithfully."""


def expand_braces(pattern: str) -> list[str]:
    """Brace expansion as micromatch.braces(expand: true): first top-level group, recursively."""
    out: list[str] = []
    for p in _expand(pattern):
        if p not in out:
            out.append(p)
        if len(out) > _MAX_EXPANSIONS:
            raise GlobError(f"{pattern!r} expands to more than {_MAX_EXPANSIONS} patterns")
    return out


def _expand(pattern: str) -> list[str]:
    i, depth, start = 0, 0, -1
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                body = pattern[start + 1:i]
                choices = _alternatives(body)
                if choices is not None:
                    head, tail = pattern[:start], pattern[i + 1:]
                    return [head + c2 + t for c2 in choices for t in _expand(tail)]
                # not a brace set ({a} or {}): literal, keep looking after it
                return [pattern[:i + 1] + t for t in _expand(pattern[i + 1:])]
        i += 1
    return [pattern]


def _alternatives(body: str) -> list[str] | None:
    parts, depth, last, i = [], 0, 0, 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(body[last:i])
            last = i + 1
        i += 1
    if parts:
        parts.append(body[last:])
        return [e for p in parts for e in _expand(p)]
    ranged = _RANGE.match(body)
    return _range(*ranged.groups()) if ranged else None


def _range(a: str, b: str, step_text: str | None) -> list[str] | None:
    step = abs(int(step_text)) if step_text else 1
    step = step or 1
    if re.fullmatch(r"-?\d+", a) and re.fullmatch(r"-?\d+", b):
        lo, hi = int(a), int(b)
        if abs(hi - lo) // step > _MAX_EXPANSIONS:
            raise GlobError(f"the range {{{a}..{b}}} is too long")
        width = max(len(a), len(b)) if (a.lstrip("-").startswith("0") and len(a.lstrip("-")) > 1) or \
            (b.lstrip("-").startswith("0") and len(b.lstrip("-")) > 1) else 0
        values = range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)
        return [str(v).zfill(width) if v >= 0 else "-" + str(-v).zfill(width - 1) for v in values]
    if len(a) == 1 and len(b) == 1:
        lo, hi = ord(a), ord(b)
        values = range(lo, hi + 1, step) if lo <= hi else range(lo, hi - 1, -step)
        return [chr(v) for v in values]
    return None


def _segment_re(seg: str, dot: bool) -> str:
    body = _translate(seg, 0, len(seg), inside_ext=False)
    # picomatch guards a leading dot only where the segment starts with * or ? (not with an
    # extglob or a class): then it is matched by a literal dot only; with dot on, never "."/"..".
    if seg[:1] not in ("*", "?") or seg[1:2] == "(":
        return body
    guard = r"(?!\.{1,2}(?:/|$))" if dot else r"(?!\.)"
    return guard + body


def _translate(s: str, i: int, end: int, inside_ext: bool) -> str:
    out: list[str] = []
    while i < end:
        c = s[i]
        nxt = s[i + 1] if i + 1 < end else ""
        if c == "\\" and nxt:
            out.append(re.escape(nxt))
            i += 2
        elif c in "@?+*!" and nxt == "(":
            close = _closing_paren(s, i + 1, end)
            if close < 0:
                out.append(re.escape(c) if c not in "*?" else ("[^/]*?" if c == "*" else "[^/]"))
                i += 1
                continue
            if c == "!":
                raise GlobError("negated extglobs !(...) are not supported")
            inner = _translate(s, i + 2, close, inside_ext=True)
            out.append("(?:" + inner + ")" + {"@": "", "?": "?", "+": "+", "*": "*"}[c])
            i = close + 1
        elif c == "*":
            while i < end and s[i] == "*":
                i += 1
            out.append("[^/]*?")
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            cls, i2 = _bracket(s, i, end)
            out.append(cls)
            i = i2
        elif c == "|" and inside_ext:
            out.append("|")
            i += 1
        else:
            out.append(re.escape(c))
            i += 1
    return "".join(out)


def _closing_paren(s: str, i: int, end: int) -> int:
    depth = 0
    while i < end:
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == "(":
            depth += 1
        elif s[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _bracket(s: str, i: int, end: int) -> tuple[str, int]:
    """``[...]`` at ``i`` -> (regex class, index after it); an unclosed ``[`` is literal."""
    j = i + 1
    negated = j < end and s[j] in "!^"
    if negated:
        j += 1
    items: list[str] = []
    first = True
    while j < end:
        c = s[j]
        if c == "]" and not first:
            inner = "".join(items)
            return ("[^/" + inner + "]" if negated else "[" + inner + "]"), j + 1
        first = False
        if c == "[" and s.startswith("[:", j):
            close = s.find(":]", j + 2, end)
            name = s[j + 2:close] if close > 0 else ""
            if name in _POSIX:
                items.append(_POSIX[name])
                j = close + 2
                continue
        if c == "\\" and j + 1 < end:
            items.append(re.escape(s[j + 1]))
            j += 2
            continue
        if c == "-" and items and j + 1 < end and s[j + 1] != "]":
            items.append("-")
        else:
            items.append("\\" + c if c in "\\]^-[" else c)
        j += 1
    return re.escape("["), i + 1


def glob_re(pattern: str, dot: bool = False) -> str:
    """One brace-free pattern as a regex source matching a whole "/"-separated path."""
    if pattern.startswith("./"):
        pattern = pattern[2:]
    segs: list[str] = []
    for seg in pattern.split("/"):
        if seg == "**" and segs and segs[-1] == "**":
            continue
        segs.append(seg)
    any_seg = r"(?!\.{1,2}(?:/|$))[^/]+" if dot else r"(?!\.)[^/]+"
    out = ""
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg == "**":
            if last and i == 0:
                out += f"(?:{any_seg}(?:/{any_seg})*)?"
            elif last and _ends_with_star(segs[i - 1]):  # picomatch: "_*/**" needs something under "_*"
                out += f"{any_seg}(?:/{any_seg})*"
            elif last:  # "a/**" also matches "a"
                out = out[:-1] + f"(?:/{any_seg})*"
            else:
                out += f"(?:{any_seg}/)*"
        else:
            out += (_segment_re(seg, dot) if seg else "") + ("" if last else "/")
    return out


def _ends_with_star(seg: str) -> bool:
    return seg.endswith("*") and not seg.endswith("\\*") and seg != "**"


def compile_glob(pattern: str, dot: bool = False) -> re.Pattern[str]:
    """A pattern (braces included) as one compiled regex matching whole paths."""
    return re.compile("^(?:" + "|".join(glob_re(p, dot) for p in expand_braces(pattern)) + ")$")


def is_match(path: str, pattern: str, dot: bool = False) -> bool:
    return compile_glob(pattern, dot).match(path) is not None


@dataclass(frozen=True)
class _Task:
    include: re.Pattern[str]
    exclude: tuple[re.Pattern[str], ...]


class PageGlobs:
    """Which files of one content folder Docusaurus reads as docs, given include/exclude."""

    def __init__(self, root: Path, include: Sequence[str] | None = None,
                 exclude: Sequence[str] | None = None) -> None:
        self.root = root
        self._root_posix = root.as_posix().rstrip("/")
        include = DEFAULT_INCLUDE if include is None else tuple(include)
        exclude = DEFAULT_EXCLUDE if exclude is None else tuple(exclude)
        # fast-glob's ignore: dot on; a pattern starting with "/" is matched against the absolute path.
        self._absolute = tuple(compile_glob(p, dot=True) for p in exclude if p.startswith("/"))
        base = tuple(compile_glob(p, dot=True) for p in exclude if not p.startswith("/"))
        tasks: list[_Task] = []
        for index, pattern in enumerate(include):
            if pattern.startswith("!"):
                continue
            # globby: "!p" entries after a pattern add to its ignore list.
            later = tuple(compile_glob(p[1:], dot=True) for p in include[index + 1:] if p.startswith("!"))
            if _is_dir(root, pattern):  # globby's expandDirectories (dir-glob): a folder means all under it
                pattern = pattern.rstrip("/") + "/**"
            tasks.append(_Task(compile_glob(pattern), base + later))
        self._tasks = tuple(tasks)
        # Walking into dot-folders is needed only when a pattern names one explicitly.
        self.walk_dot_dirs = any(p.startswith(".") or "/." in p for p in include)

    def matches(self, rel: str) -> bool:
        if any(r.match(f"{self._root_posix}/{rel}") for r in self._absolute):
            return False
        return any(t.include.match(rel) and not any(r.match(rel) for r in t.exclude) for t in self._tasks)


def _is_dir(root: Path, pattern: str) -> bool:
    if any(c in pattern for c in "*?[]{}()!") or not pattern.strip("/"):
        return False
    try:
        return (root / pattern.lstrip("/")).is_dir()
    except OSError:
        return False
