"""Code a page loads from a file and shows in the theme's code block.

Sites show a file's text as code without copying it into the page::

    import CodeBlock from '@theme/CodeBlock';
    import modelInit from '!!raw-loader!./_snippets/model-init.txt';

    <CodeBlock className="language-typescript" title="model.ts">
    {modelInit}
    </CodeBlock>

webpack's raw-loader makes the import the file's text, and the theme's CodeBlock shows a string
child as a code block (theme-common's createCodeBlockMetadata, Docusaurus 2 and 3): the language
is the ``language`` prop, else the ``language-*`` class; the title is the ``metastring``'s
``title=``, else the ``title`` prop; the text loses one final line break, and the site's magic
comments. Sequelize's TypeScript guide shows its three longest examples this way.

Only a file inside the site (or inside the docs folder when no site root is read), named by
``@site/…`` or a path relative to the page, is read (services.ingest.book.site.imports), within
the page's budget of shown bytes. The element must stand on lines of its own; anything else
(an expression that calls ``require``, other props, a loader chain) is left as it was.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from services.ingest.book.parser import Block, PageError, decode
from services.ingest.book.site.imports import imported_file
from services.ingest.book.site_code import DIRECTIVES, read_info, shown_lines

CODE_BLOCK_MODULE = "@theme/CodeBlock"
MAX_ELEMENT_LINES = 8  # an element's opening tag, child and closing tag, however they are spread
# webpack's inline loader request: an optional prefix that turns configured loaders off, then
# raw-loader alone (options after "?"), then the file.
_RAW_REQUEST = re.compile(r"^(?:!!|-!|!)?raw-loader(?:\?[^!]*)?!(?P<file>[^!]+)$")
# Props are strings ("…" or '…', which may hold ">") or expressions in braces without nested ones.
_PROPS = r"""(?:\s+[\w$:.-]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|\{[^{}]*\}))?)*"""
_ELEMENT = re.compile(
    rf"^(?P<indent>[ \t]*)<(?P<tag>[A-Za-z_$][\w$]*)(?P<props>{_PROPS})\s*>\s*"
    r"\{\s*(?P<name>[A-Za-z_$][\w$]*)\s*\}\s*</(?P=tag)\s*>[ \t]*$")
# A string prop, written as a JSX string or a string literal in braces (language={'js'}).
_STRING_PROP = re.compile(
    r"""(?<![\w$:.-])(?P<prop>language|className|title|metastring)\s*=\s*"""
    r"""(?:(?P<q>["'])(?P<text>.*?)(?P=q)|\{\s*(?P<bq>["'])(?P<braced>[^"'\\]*)(?P=bq)\s*\})""", re.S)


@dataclass(frozen=True)
class ShownCode:
    """One element that shows a loaded file: its lines in the page, and the code block it shows
    (None when the file cannot be read; then ``note`` says why)."""

    first_line: int
    end_line: int  # exclusive
    indent: str
    block: Block | None
    file: Path | None
    note: str = ""
    size: int = 0  # the bytes read, which count towards the page's shown bytes


def raw_file_spec(spec: str) -> str | None:
    """The file an import's module names when raw-loader alone loads it, else None."""
    found = _RAW_REQUEST.match(spec)
    return found["file"] if found else None


def shown_code(lines: Sequence[str], in_code: Sequence[bool], imports: Mapping[str, str], page: Path,
               within: Path, site: Path | None, max_bytes: int,
               magic_comments: tuple[str, ...] = DIRECTIVES) -> Iterator[ShownCode]:
    """Each code block element of ``lines`` (outside code, ``in_code``) whose child is a file
    the page imports through raw-loader. ``imports`` maps names to modules; files are read as
    services.ingest.book.site.imports allows, each at most ``max_bytes``."""
    tags = {name for name, module in imports.items() if module == CODE_BLOCK_MODULE}
    files = {name: file for name, module in imports.items() if (file := raw_file_spec(module)) is not None}
    if not tags or not files:
        return
    n = 0
    while n < len(lines):
        opening = lines[n].lstrip()
        if in_code[n] or not any(opening.startswith(f"<{tag}") for tag in tags):
            n += 1
            continue
        for end in range(n + 1, min(n + MAX_ELEMENT_LINES, len(lines)) + 1):
            if any(in_code[n:end]):
                break
            element = _ELEMENT.match("\n".join(lines[n:end]))
            if element and element["tag"] in tags and element["name"] in files:
                yield _loaded(element, files[element["name"]], n, end, page, within, site, max_bytes,
                              magic_comments)
                n = end - 1
                break
        n += 1


def _loaded(element: re.Match[str], spec: str, first: int, end: int, page: Path, within: Path,
            site: Path | None, max_bytes: int, magic_comments: tuple[str, ...]) -> ShownCode:
    file = imported_file(spec, page, within, site, max_bytes)
    if file is None:
        return ShownCode(first, end, element["indent"], None, None,
                         f"code file {spec!r} is not a readable file inside the site; not shown")
    try:
        raw = file.read_bytes()
        text = decode(raw)
    except (OSError, PageError) as exc:
        return ShownCode(first, end, element["indent"], None, None, f"code file {spec!r} cannot be read: {exc}")
    props = {m["prop"]: html.unescape(m["text"] if m["q"] else m["braced"])  # JSX strings decode entities
             for m in _STRING_PROP.finditer(element["props"])}
    language = (props.get("language") or next(
        (c[len("language-"):] for c in props.get("className", "").split() if c.startswith("language-")), "")
    ).lower() or "text"  # theme-common's getLanguage: lower case, "text" without one
    info = read_info(" ".join([language, props.get("metastring", "")]))
    title = props.get("title", "")
    if title and " title=" not in f" {info}" and not ('"' in title and "'" in title):
        quote = "'" if '"' in title else '"'
        info = f"{info} title={quote}{title}{quote}"
    lines = text.removesuffix("\n").split("\n")  # decode has made every line break "\n"
    code = "\n".join(shown_lines(info, lines, magic_comments))
    block = Block("code", code, info=info.strip()) if code.strip() else None
    return ShownCode(first, end, element["indent"], block, file, size=len(raw))
