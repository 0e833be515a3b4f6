"""Docusaurus Markdown/MDX -> a flat list of blocks, with a real CommonMark parser.

markdown-it-py does the Markdown; this module only walks its tokens. MDX specifics:
``import``/``export`` lines are dropped, JSX tags are removed while their text is kept,
``{/* */}`` and HTML comments are removed, admonitions (``:::note Title``) become text with
their title, ``## Title {#custom-id}`` sets the anchor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.container import container_plugin

ADMONITIONS = ("note", "tip", "info", "warning", "danger", "caution", "important", "success", "secondary")
_EXPLICIT_ID = re.compile(r"\s*\{#([^}\s]+)\}\s*$")
_MDX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][\w.:-]*(?:\s+[^<>]*?)?/?>")
_MDX_ESM = re.compile(r"^(import|export)\s")


class PageError(ValueError):
    """The file cannot be read as a page; the message says why."""


@dataclass(frozen=True)
class Block:
    """One leaf of the page: a heading, a paragraph-like text, or a code fence."""

    kind: str  # "heading", "text" or "code"
    text: str
    level: int = 0  # heading level
    anchor: str = ""  # explicit {#id}, if any
    lang: str = ""  # code fence language


@dataclass
class ParsedPage:
    frontmatter: dict[str, Any]
    blocks: list[Block] = field(default_factory=list)


def _markdown() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
    for name in ADMONITIONS:
        md.use(container_plugin, name, validate=_admonition_validator(name))
    return md


def _admonition_validator(name: str) -> Any:
    def validate(params: str, *args: Any) -> bool:
        return params.strip().split(" ", 1)[0] == name

    return validate


_MD = _markdown()


def split_frontmatter(text: str) -> tuple[dict[str, Any], str]:
    """YAML frontmatter between leading ``---`` lines, and the body after it."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            raw = "\n".join(lines[1:i])
            try:
                data = yaml.safe_load(raw) if raw.strip() else {}
            except yaml.YAMLError as exc:
                raise PageError(f"broken YAML frontmatter: {str(exc).splitlines()[0]}") from None
            if data is None:
                data = {}
            if not isinstance(data, dict):
                raise PageError("frontmatter must be a YAML mapping")
            # Keep line numbers of the body meaningful by leaving blank lines in place.
            return data, "\n" * i + "\n".join(lines[i + 1:])
    raise PageError("frontmatter opened with --- but never closed")


def decode(raw: bytes) -> str:
    if b"\x00" in raw[:8192]:
        raise PageError("binary content")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PageError(f"invalid UTF-8 at byte {exc.start}") from None
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _inline_text(token: Token) -> str:
    """Plain text of an inline token: emphasis markers and tags gone, code kept in backticks."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type == "text":
            parts.append(child.content)
        elif child.type == "code_inline":
            parts.append(f"`{child.content}`")
        elif child.type in {"softbreak", "hardbreak"}:
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content or str(child.attrs.get("alt", "")))
        elif child.type == "html_inline":
            continue  # JSX/HTML tags go; the text between them stays
    return _clean("".join(parts))


def _clean(text: str) -> str:
    text = _MDX_COMMENT.sub("", text)
    return re.sub(r"[ \t]+", " ", text).strip()


def _html_text(content: str) -> str:
    content = _HTML_COMMENT.sub("", content)
    content = _MDX_COMMENT.sub("", content)
    content = _TAG.sub(" ", content)
    lines = [re.sub(r"[ \t]+", " ", line).strip() for line in content.split("\n")]
    return "\n".join(line for line in lines if line)


def heading_text(raw: str) -> tuple[str, str]:
    """Heading text without a trailing ``{#id}``, and that id (or "")."""
    match = _EXPLICIT_ID.search(raw)
    if match:
        return raw[: match.start()].rstrip(), match.group(1)
    return raw, ""


def parse_page(text: str) -> ParsedPage:
    frontmatter, body = split_frontmatter(text)
    page = ParsedPage(frontmatter)
    tokens = _MD.parse(body)
    lines = body.split("\n")
    prefixes: list[str] = []  # list and quote markers of the blocks we are inside
    item_first: list[bool] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        t = tok.type
        if t == "heading_open":
            raw = _inline_text(tokens[i + 1])
            title, anchor = heading_text(raw)
            page.blocks.append(Block("heading", title, level=int(tok.tag[1]), anchor=anchor))
            i += 3
            continue
        if t == "inline":
            content = _inline_text(tok)
            if tok.level == 1 and not prefixes and _MDX_ESM.match(tok.content):
                content = ""  # MDX import/export statement, not prose
            if content:
                # Outer list markers become indentation; only the innermost item shows "- ",
                # and only on its first paragraph.
                outer = "".join("  " if p == "- " else p for p in prefixes[:-1])
                lead = outer + (prefixes[-1] if prefixes else "")
                if item_first and item_first[-1]:
                    item_first[-1] = False
                elif prefixes and prefixes[-1] == "- ":
                    lead = outer + "  "
                page.blocks.append(Block("text", lead + content.replace("\n", "\n" + " " * len(lead))))
        elif t in {"fence", "code_block"}:
            if t == "fence":
                _require_closed(tok, lines)
            lang = (tok.info or "").strip().split(" ", 1)[0]
            page.blocks.append(Block("code", tok.content.rstrip("\n"), lang=lang))
        elif t == "html_block":
            content = _html_text(tok.content)
            if content:
                page.blocks.append(Block("text", content))
        elif t in {"bullet_list_open", "ordered_list_open"}:
            pass
        elif t == "list_item_open":
            prefixes.append("- ")
            item_first.append(True)
        elif t == "list_item_close":
            prefixes.pop()
            item_first.pop()
        elif t == "blockquote_open":
            prefixes.append("> ")
            item_first.append(False)
        elif t == "blockquote_close":
            prefixes.pop()
            item_first.pop()
        elif t == "table_open":
            rows, i = _table(tokens, i)
            page.blocks.append(Block("text", "\n".join(rows)))
            continue
        elif t.startswith("container_") and t.endswith("_open"):
            kind, _, title = tok.info.strip().partition(" ")
            label = kind.capitalize()
            page.blocks.append(Block("text", f"{label}: {title.strip()}" if title.strip() else f"{label}:"))
        i += 1
    return page


def _require_closed(tok: Token, lines: list[str]) -> None:
    """markdown-it lets an unclosed fence swallow the rest of the page; we refuse the page."""
    start, end = tok.map or (0, 0)
    last = lines[end - 1].strip() if 0 < end <= len(lines) else ""
    fence = tok.markup
    if end - start < 2 or not (last.startswith(fence) and set(last) <= set(fence[0])):
        raise PageError(f"code fence opened at line {start + 1} is never closed")


def _table(tokens: list[Token], start: int) -> tuple[list[str], int]:
    """Rows of a table as ``| a | b |`` lines; returns the index after table_close."""
    rows: list[str] = []
    cells: list[str] = []
    i = start + 1
    while tokens[i].type != "table_close":
        tok = tokens[i]
        if tok.type == "tr_open":
            cells = []
        elif tok.type == "inline":
            cells.append(_inline_text(tok).replace("|", "\\|"))
        elif tok.type == "tr_close":
            rows.append("| " + " | ".join(cells) + " |")
        i += 1
    return rows, i + 1
