"""A code block as the site shows it: Docusaurus drops the lines that hold only a "magic comment"
(`// highlight-next-line`, `# highlight-start`, ...) and highlights the lines they mark. Ingest
stores code without them (so they are neither embedded nor searched as words), and an answer
quoting a block drops them too.

The rules are Docusaurus's own (theme-common's codeBlockUtils, `parseLines`): only a block with a
language is read; a line range in the info string (```js {2-3}) means the comments are left as
they are; the comment styles depend on the language; a directive must stand alone on its line,
whitespace aside. The directives are Docusaurus's defaults unless the site's config sets
`themeConfig.prism.magicComments` (read by services/ingest/book/site/config.py); its
`prism.defaultLanguage` is not read. A stored chunk keeps what
Docusaurus reads of the fence's info string (services/ingest/book/parser.py): the language, a
title="..." and line ranges, so a quote sees a range too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

DIRECTIVES = ("highlight-next-line", "highlight-start", "highlight-end")  # theme-classic's default magicComments

# Comment styles, as (opening, closing) regular expressions.
_STYLES: dict[str, tuple[str, str]] = {
    "js": (r"//", ""),
    "jsBlock": (r"/\*", r"\*/"),
    "jsx": (r"\{\s*/\*", r"\*/\s*\}"),
    "bash": (r"#", ""),
    "html": (r"<!--", r"-->"),
    "lua": (r"--", ""),
    "wasm": (r";;", ""),
    "tex": (r"%", ""),
    "vb": (r"['‘’]", ""),
    "vbnet": (r"(?:_\s*)?['‘’]", ""),
    "rem": (r"[Rr][Ee][Mm]\b", ""),
    "f90": (r"!", ""),
    "ml": (r"\(\*", r"\*\)"),
    "cobol": (r"\*>", ""),
}
_POPULAR = ("js", "jsBlock", "jsx", "bash", "html")
_BY_LANGUAGE: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("js", "javascript", "ts", "typescript"), ("js", "jsBlock")),
    **dict.fromkeys(("jsx", "tsx"), ("js", "jsBlock", "jsx")),
    "html": ("js", "jsBlock", "html"),
    **dict.fromkeys(("python", "py", "bash"), ("bash",)),
    **dict.fromkeys(("markdown", "md"), ("html", "jsx", "bash")),
    **dict.fromkeys(("tex", "latex", "matlab"), ("tex",)),
    **dict.fromkeys(("lua", "haskell"), ("lua",)),
    "sql": ("lua", "jsBlock"),
    "wasm": ("wasm",),
    **dict.fromkeys(("vb", "vba", "visual-basic"), ("vb", "rem")),
    "vbnet": ("vbnet", "rem"),
    "batch": ("rem",),
    "basic": ("rem", "f90"),
    "fsharp": ("js", "ml"),
    **dict.fromkeys(("ocaml", "sml"), ("ml",)),
    "fortran": ("f90",),
    "cobol": ("cobol",),
}
_LINE_RANGE = re.compile(r"\{[\d,-]+\}")
_TITLE = re.compile(r"""\btitle=(["']).*?\1""")  # theme-common's parseCodeBlockTitle


@cache
def _directive_line(language: str, directives: tuple[str, ...]) -> re.Pattern[str]:
    # Docusaurus joins the names into its pattern unescaped (getCommentPattern). They are read as
    # text here: the same for every real name ("diff-add", "This will error"), and a site's config
    # cannot make ingest run a pattern of its choosing (one that backtracks for minutes).
    names = "|".join(re.escape(d) for d in directives)
    styles = (_STYLES[s] for s in _BY_LANGUAGE.get(language, _POPULAR))
    either = "|".join(f"(?:{start}\\s*(?:{names})\\s*{end})" for start, end in styles)
    return re.compile(f"^\\s*(?:{either})\\s*$")


def shown_lines(info: str, lines: Sequence[str], directives: tuple[str, ...] = DIRECTIVES) -> list[str]:
    """The lines of a code block the site shows, given its info string (what follows the opening
    fence: language, then metadata such as title="..." or {1,3}) and the site's magic comments."""
    language, _, meta = info.strip().partition(" ")
    language = language.lower()  # as Docusaurus normalises it
    if not language or _LINE_RANGE.search(meta):
        return list(lines)
    directive = _directive_line(language, directives)
    return [line for line in lines if not directive.match(line)]


def read_info(info: str) -> str:
    """What Docusaurus reads of an info string: the language, a title="..." and line ranges.
    The rest is for a site's own plugins (npm2yarn, a live editor's `live`, `name="…"`), which
    show it as no text: stored, it would only be embedded and searched as words."""
    language, _, meta = info.strip().partition(" ")
    title = _TITLE.search(meta)
    return " ".join([language, *([title.group(0)] if title else []), *_LINE_RANGE.findall(meta)])


def quoted_info(info: str) -> str:
    """The info string for a quote of the block: its line ranges dropped, since a quote drops
    lines and would move what they mark; the language and a title="..." stay."""
    return " ".join(_LINE_RANGE.sub("", info).split())
