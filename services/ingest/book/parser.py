"""Docusaurus Markdown/MDX -> a flat list of blocks, with a real CommonMark parser.

markdown-it-py does the Markdown; this module only walks its tokens. MDX specifics:
``import``/``export`` lines are dropped, JSX tags are removed while their text is kept,
``{/* */}`` and HTML comments are removed, admonitions (``:::note Title``) become text with
their title. Headings carry the text github-slugger sees and any explicit id
(``{#custom-id}``, ``{/* #custom-id */}``, ``<!-- #custom-id -->``), as Docusaurus reads them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any
from urllib.parse import quote

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.container import container_plugin
from mdit_py_plugins.footnote import footnote_plugin

from services.ingest.book import npm2yarn as npm2yarn_plugin
from services.ingest.book import twoslash
from services.ingest.book.emoji import emojify
from services.ingest.book.fences import with_code
from services.ingest.book.site_code import DIRECTIVES, read_info, shown_lines

ADMONITIONS = ("note", "tip", "info", "warning", "danger", "caution", "important", "success", "secondary")
# docusaurus-utils/src/markdownHeadingIdUtils.ts (parseMarkdownHeadingId, 'classic'): the id
# runs to the heading's last character, which must be the closing brace.
_EXPLICIT_ID = re.compile(r"\s*\{#((?:.(?!\{#|\}))*.)\}\Z")
# docusaurus-mdx-loader/src/remark/headings/index.ts (getCommentHeadingId): a heading's last
# node, an MDX comment expression or an HTML comment, whose first word is #id.
_MDX_COMMENT_LAST = re.compile(r"\{\s*/\*((?:(?!\*/).)*)\*/\s*\}\Z", re.DOTALL)
_HTML_COMMENT_WHOLE = re.compile(r"<!--(.*)-->\Z", re.DOTALL)
_MDX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
# A tag's attributes may quote ">" ("x => x") or hold a JSX expression (two braces deep:
# style={{…}}); neither ends the tag.
_TAG = re.compile(r"""</?[A-Za-z][\w.:-]*(?:\s(?:[^<>"'{}]|"[^"]*"|'[^']*'|\{(?:[^{}]|\{[^{}]*\})*\})*?)?/?>"""
                  r"|</?[A-Za-z][\w.:-]*(?:\s+[^<>]*?)?/?>")  # else as before: up to the first ">"
# MDX reads a line that opens on `import` or `export` and a space, and the lines after it up to a
# blank one, as JavaScript (micromark-extension-mdxjs-esm's syntax.js: the keyword, then code 32).
ESM_START = re.compile(r"^(?:import|export) ")

# Front matter is a few lines of metadata; these bounds stop YAML being used as a bomb
# (a 393-byte alias chain expands to millions of nodes) while leaving real pages untouched.
MAX_FRONTMATTER_BYTES = 64 * 1024
MAX_FRONTMATTER_NODES = 5_000  # scalars + collections, counting every alias as its full copy
MAX_FRONTMATTER_DEPTH = 32


class PageError(ValueError):
    """The file cannot be read as a page; the message says why."""


@dataclass(frozen=True)
class Block:
    """One leaf of the page: a heading, a paragraph-like text, or a code fence."""

    kind: str  # "heading", "text" or "code"
    text: str
    level: int = 0  # heading level
    anchor: str = ""  # explicit {#id}, if any
    slug_text: str = ""  # heading text as mdast-util-to-string gives it, for github-slugger
    # A code fence's info string: its language, then metadata Docusaurus reads (title="...", a
    # {1,3} line range that keeps magic comments shown). One line, without backticks, so that it
    # can follow a backtick fence again.
    info: str = ""
    # A tab's button or an admonition's label ("Expo:", "Note:"): it names what follows and
    # states nothing, so its colon introduces no list.
    label: bool = False
    # A heading inside the tabs of a <Tabs queryString>: the query that selects its tab
    # ("config=dynamic"), without which the site keeps the heading hidden in another tab.
    query: str = ""


@dataclass
class ParsedPage:
    frontmatter: dict[str, Any]
    blocks: list[Block] = field(default_factory=list)


def _markdown(legacy_titles: bool = True) -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True}).enable("table").enable("strikethrough")
    # GFM's in Docusaurus 3 (remark-gfm), MDX 1's own in Docusaurus 2; GFM has no inline "^[note]".
    md.use(footnote_plugin, inline=False)
    # MDX, which Docusaurus 3 reads .md and .mdx files as, has no indented code: an indented
    # line is text (a <TabItem> indented inside <Tabs>).
    md.disable("code")
    # Escapes and character references stay tokens of their own (text_special), as they are in
    # micromark: "\:" and "&#58;" show a colon that starts no directive (see _plain).
    md.disable("text_join")
    for name in ADMONITIONS:
        md.use(container_plugin, name, validate=_admonition_validator(name, legacy_titles))
    return md


# Docusaurus 2's theme shows these kinds under another one's label (its Admonition's legacy
# aliases); Docusaurus 3 has a "warning" of its own and labels the others by their own name.
_DOCUSAURUS_2_ALIASES = {"secondary": "note", "important": "info", "success": "tip", "warning": "danger"}


def admonition_label(kind: str, title: str = "", docusaurus_major: int = 3) -> str:
    """The line an admonition opens with in stored text: "Caution:" or "Tip: Its title"."""
    if docusaurus_major == 2:
        kind = _DOCUSAURUS_2_ALIASES.get(kind.lower(), kind)
    return f"{kind.capitalize()}: {title.strip()}" if title.strip() else f"{kind.capitalize()}:"


# A paragraph that is only an admonition's opening line: a label, not a statement (a title ends
# without a full stop; "Note: a statement." in prose is kept).
ADMONITION_LABEL = re.compile(rf"^(?:{'|'.join(a.capitalize() for a in ADMONITIONS)}):(?: [^\n]*[^.!?\n])?$")


# An admonition's opening: ":::note", ":::note Its title" (Docusaurus's legacy form, which its
# preprocessor turns into the next one), ":::note[Its title]" and ":::note[Its title]{#id}"
# (remark-directive's label and attributes). admonitionTitleToDirectiveLabel in
# docusaurus-utils/src/markdownUtils.ts.
_ADMONITION = re.compile(r"(?P<kind>[A-Za-z]+)(?:\[(?P<label>[^\]\n]*)\])?(?:\{[^}\n]*\})?(?:\s+(?P<title>.*))?\Z")


def admonition_kind_and_title(params: str) -> tuple[str, str]:
    """(kind, title) of an admonition's opening line after its colons; ("", "") when it is none."""
    match = _ADMONITION.match(params.strip())
    if match is None:
        return "", ""
    return match.group("kind"), (match.group("label") or match.group("title") or "").strip()


def _admonition_validator(name: str, legacy_titles: bool = True) -> Any:
    """An opening of the admonition ``name``; without ``legacy_titles`` (a site's
    markdown.mdx1Compat.admonitions off) ":::note Its title" is none: remark-directive takes no
    text after the name, so the page shows the line as written."""
    def validate(params: str, *args: Any) -> bool:
        match = _ADMONITION.match(params.strip())
        return match is not None and match["kind"] == name and (legacy_titles or not match["title"])

    return validate


_MD = _markdown()


@cache
def _tokenizer(mdx: bool, legacy_titles: bool, docusaurus_major: int = 3) -> MarkdownIt:
    """The block parser of a page. A site's `markdown.format: 'md'` (or 'detect', for .md files)
    reads pages as CommonMark: HTML blocks, indented code and literal braces, no imports. MDX 1
    (Docusaurus 2) keeps CommonMark's indented code too; MDX 2 and later dropped it."""
    if mdx and docusaurus_major >= 3:
        return _MD if legacy_titles else _markdown(legacy_titles)
    return _markdown(legacy_titles).enable("code")


class _FrontMatterLoader(yaml.SafeLoader):
    """SafeLoader that bounds nesting while composing (the composer recurses) and
    refuses cyclic aliases; expansion is bounded afterwards by :func:`_expanded_size`."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_FRONTMATTER_DEPTH:
                raise PageError(f"frontmatter is nested deeper than {MAX_FRONTMATTER_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _expanded_size(node: yaml.Node, memo: dict[int, int], open_: set[int]) -> int:
    """Node count with every alias expanded, as readers of the data will see it; aliases share
    one node object, so each is measured once and the walk stays linear in the source."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in open_:
        raise PageError("frontmatter has a YAML alias that refers to itself")
    open_.add(key)
    size = 1
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    for child in children:
        size += _expanded_size(child, memo, open_)
        if size > MAX_FRONTMATTER_NODES:
            raise PageError(f"frontmatter expands to more than {MAX_FRONTMATTER_NODES} YAML nodes "
                            "(YAML aliases repeat their anchor's content)")
    open_.discard(key)
    memo[key] = size
    return size


def load_frontmatter(raw: str) -> dict[str, Any]:
    """YAML front matter as a mapping, within the limits above; PageError says what is wrong."""
    size = len(raw.encode("utf-8"))
    if size > MAX_FRONTMATTER_BYTES:
        raise PageError(f"frontmatter is {size} bytes; the limit is {MAX_FRONTMATTER_BYTES}")
    if not raw.strip():
        return {}
    loader = _FrontMatterLoader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}
        _expanded_size(node, {}, set())
        data = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise PageError(f"broken YAML frontmatter: {str(exc).splitlines()[0]}") from None
    finally:
        loader.dispose()
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PageError("frontmatter must be a YAML mapping")
    return data


def split_frontmatter(text: str) -> tuple[dict[str, Any], str]:
    """YAML frontmatter between leading ``---`` lines, and the body after it."""
    if not text.startswith("---"):
        return {}, text
    lines = text.split("\n")
    if lines[0].strip() != "---":
        return {}, text
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            data = load_frontmatter("\n".join(lines[1:i]))
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


# What an escape or a character reference writes is text, never MDX syntax: "\\{name\\}" shows
# "{name}" (Docusaurus's own docs write `$\\{siteConfig.title}`), "\\<Foo bar={x} />" shows the tag.
# Such characters stand in private-use code points while tags and expressions are taken out.
_AS_WRITTEN = str.maketrans({"{": "\ue000", "}": "\ue001", "<": "\ue002", ">": "\ue003"})
_SHOWN = str.maketrans({"\ue000": "{", "\ue001": "}", "\ue002": "<", "\ue003": ">"})
_STAND_INS = re.compile("[\ue000-\ue003]")


def _inline_text(token: Token, mdx: bool = True, emoji: int | None = None) -> str:
    """Plain text of an inline token: emphasis markers and tags gone, code kept in backticks;
    with ``emoji`` (the Docusaurus major), shortcodes in its text shown as remark-emoji shows them."""
    children = token.children or []
    # A page that itself holds the stand-ins (none seen) keeps the old reading rather than lose them.
    literal = mdx and not any(_STAND_INS.search(c.content) for c in children)
    parts: list[str] = []
    run: list[str] = []  # text across line breaks: a JSX tag may span lines (<ThemedImage\n  sources={{…}} />)

    def flush() -> None:
        text = "".join(run)
        if emoji is not None:
            text = emojify(text, emoji, _emoji_stops(emoji, mdx))
        parts.append(_expressions(_without_expression_tags(text)) if mdx else text)
        run.clear()

    for child in children:
        if child.type == "text_special" and literal:
            run.append(child.content.translate(_AS_WRITTEN))
            continue
        if child.type in {"text", "text_special"}:
            run.append(child.content)
            continue
        if child.type in {"softbreak", "hardbreak"}:
            run.append("\n")
            continue
        flush()
        if child.type == "code_inline":
            parts.append(f"`{child.content}`")
        elif child.type == "image":
            parts.append(child.content or str(child.attrs.get("alt", "")))
        elif child.type == "html_inline" and _BREAKING_TAG.match(child.content):
            parts.append(" ")  # "ID of the pipeline<br />`language`" shows on two lines, not as one word
        elif child.type == "html_inline":
            parts.append(_image_alt(child.content))
    flush()
    return _clean("".join(parts)).translate(_SHOWN) if literal else _clean("".join(parts))


_LINK_OR_IMAGE_TAG = re.compile(r"</?(?:a|img)\b[^>]*>|<br\s*/?>", re.IGNORECASE)


def _only_images(token: Token) -> bool:
    """Whether an inline run is two or more images and nothing else, linked or not, on one line
    or several: a README's row of badges. Their alt texts are read aloud by a screen reader but
    shown by no page, and a page's first prose (the outline's description of an introduction)
    would otherwise open with "npm version Build Status npm downloads"."""
    images = 0
    for child in token.children or []:
        if child.type == "image" or (child.type == "html_inline" and _IMG_ALT.match(child.content)):
            images += 1
        elif not (child.type in {"link_open", "link_close", "softbreak", "hardbreak"}
                  or (child.type == "text" and not child.content.strip())
                  or (child.type == "html_inline" and _LINK_OR_IMAGE_TAG.fullmatch(child.content.strip()))):
            return False
    return images >= 2


# Tags that break a line where they stand (the rest go, and the text between them stays).
_BREAKING_TAG = re.compile(r"</?(?:br|p|div|li|ul|ol|hr|tr|td|th|table|h[1-6]|blockquote|pre)\b", re.IGNORECASE)


# MDX expressions in text (never in code): a string literal shows its text ({'The version placed
# in the '}); a variable shows a value only the build knows ({MyComponentSource}, code a loader
# read), so it shows nothing here rather than its name.
_STRING_EXPRESSION = re.compile(r"""\{\s*(?P<q>['"])(?P<text>(?:(?!(?P=q))[^\\\n])*)(?P=q)\s*\}""")
# An empty one ("vol.Schema({})" in prose) shows nothing too.
_VARIABLE_EXPRESSION = re.compile(r"\{\s*(?:[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*\s*)?\}")


# A JSX tag whose attributes hold an expression (<img style={{ width: '100%' }} />) or whose name
# has a namespace (<f:image />) is not HTML to markdown-it, so it reaches the text; MDX renders the
# element, never its source.
_TAG_START = re.compile(r"</?[A-Za-z][\w.:-]*")
MAX_TAG_CHARS = 4096  # a tag longer than this is left as text
TAG_SCAN_PER_CHAR = 8  # characters scanned for tags per character of text: linear, whatever it holds


def _without_expression_tags(text: str) -> str:
    out: list[str] = []
    done = 0
    budget = TAG_SCAN_PER_CHAR * len(text)
    for tag in _TAG_START.finditer(text):
        start = tag.start()
        if start < done:
            continue
        if budget <= 0:  # "<a {" a thousand times over: the rest stays text
            break
        end = _tag_end(text, start, min(MAX_TAG_CHARS, budget))
        budget -= (end or min(len(text), start + MAX_TAG_CHARS)) - start
        # markdown-it takes neither an expression attribute nor a namespaced name (<f:image />)
        # for HTML; MDX reads both as JSX.
        if end is not None and ("{" in text[start:end] or ":" in tag.group(0)):
            out += [text[done:start], " "]
            done = end
    return "".join(out) + text[done:] if out else text


def _tag_end(text: str, start: int, limit: int) -> int | None:
    """Where the tag opening at ``start`` ends, reading quoted strings and braced expressions
    whole (``onClick={() => go()}``); None when it is not a tag within ``limit`` characters."""
    depth, quote = 0, ""
    for i in range(start + 1, min(len(text), start + limit)):
        c = text[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'`":
            quote = c
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0 and c == "<":
            return None
        elif depth == 0 and c == ">":
            return i + 1
    return None


# An MDX expression in text, which remark-emoji does not reach; with a text directive on Docusaurus 3.
_EXPRESSION = re.compile(r"\{(?:[^{}]|\{[^{}]*\})*\}")


def _emoji_stops(docusaurus_major: int, mdx: bool) -> re.Pattern[str] | None:
    if docusaurus_major <= 2:
        return _EXPRESSION
    return _DIRECTIVE_OR_EXPRESSION if mdx else _TEXT_DIRECTIVE


def _expressions(text: str) -> str:
    shown = _VARIABLE_EXPRESSION.sub("", _STRING_EXPRESSION.sub(lambda m: m["text"], text))
    return _FRAGMENT.sub("", shown)


_FRAGMENT = re.compile(r"</?>")  # a JSX fragment shows its children only


_IMG_ALT = re.compile(r"""<img\b[^>]*?\salt=(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)


def _image_alt(tag: str) -> str:
    """An <img> tag's alt text, as a Markdown image's is kept; any other tag shows nothing."""
    found = _IMG_ALT.match(tag)
    return (found[1] if found[1] is not None else found[2] or "") if found else ""


def _clean(text: str) -> str:
    """Spaces as the page shows them: runs of one, none at a line's ends (a tag that stood there
    leaves none either)."""
    text = _MDX_COMMENT.sub("", text)
    return re.sub(r" ?\n ?", "\n", re.sub(r"[ \t]+", " ", text)).strip()


_PRE_OPEN = re.compile(r"<pre\b", re.IGNORECASE)
_PRE_CLOSE = re.compile(r"</pre\s*>", re.IGNORECASE)
_JSX_PIECE = re.compile(f"{_TAG.pattern}|{_EXPRESSION.pattern}")
_JSX_BREAK = re.compile(r"<br\b", re.IGNORECASE)
_JSX_COMMENT = re.compile(r"\{\s*/\*.*\*/\s*\}", re.DOTALL)


def _jsx_pre(content: str) -> str | None:
    """The text MDX 1 (Docusaurus 2) shows for a block that is one <pre> element, or None when
    the block is not one. The block is JSX, so its text follows JSX's whitespace rule (Babel's
    cleanJSXElementLiteralChild): each run of text between tags and expressions loses the
    whitespace at its lines' inner ends and its blank lines, and its lines are joined by a space;
    a string expression ({" "}) shows its text, a comment nothing, <br /> a line break.
    Excalidraw's type signatures show on one line, as built."""
    start = len(content) - len(content.lstrip())
    opening = _TAG.match(content, start)
    if opening is None or not _PRE_OPEN.match(opening[0]) or opening[0].endswith("/>"):
        return None
    closing = _PRE_CLOSE.search(content, opening.end())
    if closing is None or content[closing.end():].strip():
        return None  # not one <pre> element alone (two of them, or text after it)
    inner = content[opening.end():closing.start()]
    out: list[str] = []
    at = 0
    for piece in _JSX_PIECE.finditer(inner):
        out.append(_jsx_text(inner[at:piece.start()]))
        if _JSX_BREAK.match(piece[0]):
            out.append("\n")
        elif piece[0].startswith("{") and not _JSX_COMMENT.fullmatch(piece[0]):
            out.append(_expressions(piece[0]))
        at = piece.end()
    out.append(_jsx_text(inner[at:]))
    return "".join(out).strip()


def _jsx_text(text: str) -> str:
    """A run of JSX text as shown: whitespace as above, character references decoded."""
    lines = re.split(r"\r\n|\n|\r", text.replace("\t", " "))
    kept = []
    for n, line in enumerate(lines):
        line = line.lstrip(" ") if n > 0 else line
        line = line.rstrip(" ") if n < len(lines) - 1 else line
        if line:
            kept.append(line)
    return html.unescape(" ".join(kept))


def _html_text(content: str, mdx: bool = True, emoji: int | None = None) -> str:
    content = _HTML_COMMENT.sub("", content)
    content = _MDX_COMMENT.sub("", content)
    content = _TAG.sub(lambda tag: f" {_image_alt(tag[0])} ", content)
    if mdx:  # MDX reads the text inside JSX as Markdown: "[JSDoc](https://…)" shows "JSDoc"
        lines = [_inline_text(_MD.parseInline(line)[0], emoji=emoji) if line.strip() else ""
                 for line in content.split("\n")]
    else:  # raw HTML: the browser decodes its character references ("=&gt;" shows "=>")
        lines = [html.unescape(re.sub(r"[ \t]+", " ", line).strip()) for line in content.split("\n")]
    return "\n".join(line for line in lines if line)


def heading_text(raw: str) -> tuple[str, str]:
    """Heading text without a trailing ``{#id}``, and that id (or "")."""
    match = _EXPLICIT_ID.search(raw)
    if match and match.group(1).strip():
        return raw[: match.start()].rstrip(), match.group(1).strip()
    return raw, ""


def _comment_id(comment: str) -> str:
    """``getCommentContentHeadingId``: the comment's first word, when it is ``#something``."""
    first = comment.strip().split(" ")[0]
    return first[1:] if first.startswith("#") else ""


def _slug_source(token: Token, docusaurus_major: int = 3) -> tuple[str, str]:
    """(text github-slugger is given, explicit id or "") for a heading's inline token.

    Docusaurus gives the slugger ``toString`` of the heading's nodes except HTML ones
    (``getHeadingText`` in docusaurus-mdx-loader/src/remark/headings/index.ts): text as
    written (spaces kept), inline code without backticks, link text, image alt. Ids come
    first from a trailing comment, then from a trailing ``{#id}``.
    """
    children = list(token.children or [])
    last = children[-1] if children else None
    if last is not None and last.type == "html_inline":
        match = _HTML_COMMENT_WHOLE.match(last.content)
        if match and _comment_id(match.group(1)):
            return _plain(children[:-1], docusaurus_major).rstrip(), _comment_id(match.group(1))
    text = _plain(children, docusaurus_major)
    match = _MDX_COMMENT_LAST.search(text)
    if match and _comment_id(match.group(1)):
        return text[: match.start()].rstrip(), _comment_id(match.group(1))
    match = _EXPLICIT_ID.search(text)
    if match and match.group(1).strip():
        return text[: match.start()], match.group(1).strip()
    return text, ""


# Docusaurus 2 parses with remark-parse 8, which makes `[a][b]` a link reference whether or not
# `b` is defined, and toString keeps only its text: "io([url][, options])" is slugged "io(url)".
# CommonMark (Docusaurus 3) leaves an undefined one as text. Checked on socket.io's site (2.4.3).
_FULL_REFERENCE = re.compile(r"\[([^\[\]]*)\]\[[^\[\]]*\]")


# Docusaurus 3 parses remark-directive's text directives (micromark-extension-directive): a ":"
# not after another ":", a name (a letter, then letters, digits, "-" or "_", not ending on either
# of the last two) not followed by ":", an optional [label] and {attributes}. Its ids are made
# before unknown directives are turned back into text, and toString keeps only a directive's
# label: "lexical:extension" is built as #lexical (Lexical's API pages), "node:test runner" as
# #node-runner. The text the page shows is unchanged.
_TEXT_DIRECTIVE = re.compile(r"(?<!:):[A-Za-z](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?![A-Za-z0-9_:-])"
                             r"(?:\[(?P<label>[^\[\]\n]*)\])?(?:\{[^{}\n]*\})?")
_DIRECTIVE_OR_EXPRESSION = re.compile(f"{_TEXT_DIRECTIVE.pattern}|{_EXPRESSION.pattern}")


def _undirected(text: str, before: str) -> str:
    """``text`` with its text directives reduced to their labels. ``before`` is the text just
    before it in the source: a colon there keeps a directive from starting."""
    source = before[-1:] + text
    parts, last = [], len(source) - len(text)
    for match in _TEXT_DIRECTIVE.finditer(source, last):  # the lookbehind still sees `before`
        parts += [source[last:match.start()], match["label"] or ""]
        last = match.end()
    parts.append(source[last:])
    return "".join(parts)


def _plain(children: list[Token], docusaurus_major: int = 3) -> str:
    parts: list[str] = []
    run: list[str] = []  # Docusaurus 2: text with its escapes and references, read as one
    before = ""  # the source character before the child, when it is the text's own
    for child in children:
        if docusaurus_major == 2 and child.type in {"text", "text_special"}:
            run.append(child.content)
            continue
        if run:
            parts.append(_d2_text("".join(run)))
            run.clear()
        if child.type == "text":
            parts.append(_undirected(child.content, before))
        elif child.type in {"text_special", "code_inline"}:  # an escape, a reference or code: no directive
            parts.append(child.content)
        elif child.type == "softbreak":
            parts.append("\n")
        elif child.type == "image":
            parts.append(child.content or str(child.attrs.get("alt", "")))
        # micromark looks at the source: after an escape, a reference or code it sees "\:", ";"
        # or "`", never a colon that stops a directive (directive-text.js's `previous`).
        before = child.content if child.type == "text" else ""
    if run:
        parts.append(_d2_text("".join(run)))
    return "".join(parts)


def _d2_text(run: str) -> str:
    """Docusaurus 2's text as its heading ids see it: references as their text, shortcodes as
    emoji (remark-emoji runs before the ids there), never those in code or an image's alt."""
    return emojify(_FULL_REFERENCE.sub(r"\1", run), 2, _EXPRESSION)


# Docusaurus shows an ```mdx-code-block fence's content as MDX, not as code: its preprocessor
# unwraps 3- and 4-backtick ones before compiling (unwrapMdxCodeBlocks in
# docusaurus-utils/src/markdownUtils.ts), with these patterns.
_MDX_CODE_BLOCKS = tuple(re.compile(
    rf"(?P<begin>^|\r?\n)(?P<indent_start>\x20*){fence}(?P<spaces>\x20*)mdx-code-block\r?\n(?P<children>.*?)"
    rf"\r?\n(?P<indent_end>\x20*){fence}(?P<end>\r?\n|\Z)", re.DOTALL) for fence in ("```", "````"))


def unwrap_mdx_code_blocks(text: str) -> str:
    for pattern in _MDX_CODE_BLOCKS:
        text = pattern.sub(lambda m: m["begin"] + m["children"] + m["end"], text)
    return text


# A line that is one JSX or HTML tag. MDX reads the lines after it as Markdown (a flow element's
# children: a <TabItem>'s code fence); CommonMark would take them into an HTML block up to the
# next blank line, so such a line is set apart by blank lines before parsing.
_TAG_LINE = re.compile(r"^[ \t]*</?[A-Za-z][\w.:-]*(?:\s+[^<>]*?)?/?>[ \t]*$")


def _tag_lines_apart(body: str) -> str:
    out: list[str] = []
    for line, code in with_code(body.split("\n")):
        if not code and _TAG_LINE.match(line):
            # Four spaces would make it an indented code block, which MDX does not have.
            out += ["", line if len(line) - len(line.lstrip()) < 4 else line.lstrip(), ""]
        else:
            out.append(line)
    return "\n".join(out)


# Tabs whose choice the URL can carry (theme-common's tabsUtils, getQueryStringKey): the key is
# the queryString prop's text, or the groupId when the prop is only true. A heading inside such
# tabs is hidden unless its tab is chosen, and a URL chooses it with ?<key>=<value>; the browser
# still cannot scroll to it before the tab shows, but the reader lands on the tab that holds it.
_TABS_TAG = re.compile(r"<(?P<close>/?)(?P<name>Tabs|TabItem)\b(?P<attrs>[^<>]*?)/?>")
_QUERY_STRING = re.compile(r"""\bqueryString(?:=(?:(["'])(?P<key>[^"'<>]+)\1|\{\s*(?P<flag>true|false)\s*\}))?""")


@cache
def _string_attribute(name: str) -> re.Pattern[str]:
    return re.compile(rf"""\b{name}=(["'])(?P<text>[^"'<>]+)\1""")


def _attribute(attrs: str, name: str) -> str:
    """A tag's string attribute (``value="npm"``), "" when it has none."""
    found = _string_attribute(name).search(attrs)
    return found["text"] if found else ""


def _tab_label(html: str, labels: dict[str, str]) -> str:
    """The button of the first <TabItem> that ``html`` opens, as Docusaurus shows it: its
    ``label``, else the label its <Tabs values={[…]}> gives its value, else its value ("" when
    it opens none)."""
    for tag in _TABS_TAG.finditer(html):
        if tag["name"] == "TabItem" and not tag["close"]:
            value = _attribute(tag["attrs"], "value")
            return _attribute(tag["attrs"], "label") or labels.get(value, value)
    return ""


# <Tabs values={[{value: 'angular', label: 'Angular'}, …]}>: the labels a Tabs gives its items'
# values (theme-common's useTabValues takes the prop before the items' own props).
_VALUES_PROP = re.compile(r"\bvalues=\{\s*\[")
_VALUES_END = re.compile(r"\]\s*\}")  # Prettier writes a long prop's "]" and "}" on lines of their own
_VALUES_SPAN = 4096  # characters a values prop may span
_VALUE_OBJECT = re.compile(r"\{([^{}]*)\}")
# A label may hold the other quotes ('outputType: "scam"', as Stencil's Angular page has it).
_OBJECT_STRING = re.compile(r"""\b(value|label)\s*:\s*(["'`])((?:(?!\2)[^\n])*)\2""")


def _values_labels(text: str) -> dict[str, str]:
    """value -> label over the page's <Tabs values={[…]}> props; each span is read once, so a page
    of unclosed props costs linear time."""
    labels: dict[str, str] = {}
    at = 0
    while (prop := _VALUES_PROP.search(text, at)) is not None:
        close = _VALUES_END.search(text, prop.end(), prop.start() + _VALUES_SPAN)
        if close is None:
            at = prop.start() + _VALUES_SPAN
            continue
        for item in _VALUE_OBJECT.finditer(text, prop.end(), close.start()):
            props = {m[1]: m[3] for m in _OBJECT_STRING.finditer(item[1])}
            if props.get("value") and props.get("label"):
                labels.setdefault(props["value"], props["label"])
        at = close.end()
    return labels


# MDX's <head> goes into the document's head (mdx-loader's head plugin makes it @docusaurus/Head):
# its <title> and <meta> are no text of the page.
_HEAD_OPEN = re.compile(r"^\s*<head\b[^>]*>")
_HEAD_CLOSE = re.compile(r"</head\s*>")


def esm_blocks(lines: Sequence[str]) -> list[range]:
    """The page's ESM, as MDX reads it (micromark-extension-mdxjs-esm): a line opening on
    `import` or `export` where a block may start, outside code, and the lines after it up to the
    next blank one. A block may start anywhere but inside a paragraph, whose lines run on ("Then\n
    export the data." is text); after a comment or a tag line it may (Redux's
    `<!-- prettier-ignore -->` right over an import)."""
    blocks: list[range] = []
    start: int | None = None
    may_start = True
    for n, (line, code) in enumerate(with_code(list(lines))):
        if start is not None and (code or not line.strip()):
            blocks.append(range(start, n))
            start = None
        if start is None and not code and may_start and ESM_START.match(line):
            start = n
        may_start = code or not line.strip() or line.lstrip().startswith(_NOT_PARAGRAPH)
    if start is not None:
        blocks.append(range(start, len(lines)))
    return blocks


_NOT_PARAGRAPH = ("<", "{", "#", ":::", "```", "~~~")  # a line that opens no paragraph to run on


def _without_esm(text: str) -> str:
    """The text with its ESM blanked, line for line: an `export const` component spanning lines
    (`return <div>` on one of them) is JavaScript, not a paragraph and an HTML block."""
    lines = text.split("\n")
    for block in esm_blocks(lines):
        for n in block:
            lines[n] = ""
    return "\n".join(lines)


def _without_head(text: str) -> str:
    """The text with each <head>…</head> blanked, line for line (the tab-query pass maps lines)."""
    out: list[str] = []
    inside = False
    for line, code in with_code(text.split("\n")):
        if not inside and (code or not _HEAD_OPEN.match(line)):
            out.append(line)
            continue
        inside = True
        close = _HEAD_CLOSE.search(line)
        if close is None:
            out.append("")
            continue
        inside = False
        out.append(line[close.end():])
    return text if inside else "\n".join(out)  # unclosed: MDX would refuse the page; nothing is blanked


def _tab_queries(text: str) -> list[str]:
    """For each line, the query that shows it: one key=value per enclosing <Tabs> whose choice a
    URL carries, outermost first ("" outside such tabs)."""
    frames: list[list[str]] = []  # per open <Tabs>: [key, value of the open TabItem]
    queries: list[str] = []
    for line, code in with_code(text.split("\n")):
        if not code:
            for tag in _TABS_TAG.finditer(line):
                if tag["name"] == "Tabs" and tag["close"]:
                    frames = frames[:-1]
                elif tag["name"] == "Tabs":
                    frames.append([_query_key(tag["attrs"]), ""])
                elif frames:
                    frames[-1][1] = "" if tag["close"] else _attribute(tag["attrs"], "value")
        queries.append("&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in frames if k and v))
    return queries


def _query_key(attrs: str) -> str:
    prop = _QUERY_STRING.search(attrs)
    if prop is None or prop["flag"] == "false":
        return ""
    if prop["key"]:
        return prop["key"]
    return _attribute(attrs, "groupId")


def _opens_details_without_summary(html: str, following: Token | None) -> bool:
    """Whether an HTML block opens a <details> that gives no <summary>, in itself or as the
    next block."""
    if not re.match(r"\s*<details\b", html) or "<summary" in html:
        return False
    return following is None or not (following.type == "html_block"
                                     and following.content.lstrip().startswith("<summary"))


MARKDOWN_FORMATS = ("mdx", "md", "detect")  # a site's markdown.format; Docusaurus's default is "mdx"


@dataclass(frozen=True)
class SiteMarkdown:
    """How a site compiles and shows its pages: its ``markdown.format``, the remark plugins of its
    docs that ingest follows, its code blocks' magic comments, and which Docusaurus builds it."""

    format: str = "mdx"
    npm2yarn: tuple[str, ...] | None = None  # the npm2yarn plugin's converters; None: not used
    magic_comments: tuple[str, ...] = DIRECTIVES  # code lines holding only one of these are not shown
    docusaurus_major: int = 3  # the Docusaurus that builds the site (2 parses with remark-parse 8)
    legacy_admonition_titles: bool = True  # markdown.mdx1Compat.admonitions: ":::note Its title" is titled
    site_dir: str = ""  # the site root, where `@site/` imports point ("" when only a docs folder is read)
    mermaid: bool = False  # markdown.mermaid: ```mermaid blocks are diagrams, not code
    twoslash: bool = False  # remark-shiki-twoslash among the docs' remark plugins (services.ingest.book.twoslash)
    plain_code_language: str = ""  # what a block without a language is shown as ("text" from Docusaurus 3.8)
    npm_to_yarn: npm2yarn_plugin.Release = npm2yarn_plugin.LATEST  # whose conversions npm2yarn's tabs show

    def reads_as_mdx(self, file_name: str) -> bool:
        """Whether Docusaurus compiles the file as MDX: always under "mdx", never under "md", and
        under "detect" only a .mdx file (a .md one is CommonMark)."""
        return self.format == "mdx" or (self.format == "detect" and file_name.lower().endswith(".mdx"))


DEFAULT_MARKDOWN = SiteMarkdown()  # Docusaurus's defaults: every page MDX, no remark plugin followed
_QUOTE = "> "  # a blockquote's marker; every other marker in a block's prefixes is a list item's


def parse_page(text: str, mdx: bool = True, site: SiteMarkdown = DEFAULT_MARKDOWN,
               tab_labels: Mapping[str, str] | None = None) -> ParsedPage:
    """The page as the site shows it; ``mdx`` False reads it as CommonMark (a site's
    ``markdown.format``), where tags open HTML blocks, indentation makes code and braces are text.
    ``site`` gives the plugins and magic comments that change what the site shows; ``tab_labels``
    the labels of tab values that the page's imported modules give (services.ingest.book.tab_labels)."""
    frontmatter, body = split_frontmatter(text)
    page = ParsedPage(frontmatter)
    body = unwrap_mdx_code_blocks(body)  # Docusaurus's preprocessor does it for both formats
    source = _tag_lines_apart(_without_esm(_without_head(body))) if mdx else body
    tokens = _tokenizer(mdx, site.legacy_admonition_titles, site.docusaurus_major).parse(source)
    queries = _tab_queries(source) if mdx else []
    labels = _values_labels(source) if mdx else {}
    for value, label in (tab_labels or {}).items():
        labels.setdefault(value, label)
    prefixes: list[str] = []  # list and quote markers of the blocks we are inside
    item_first: list[bool] = []
    numbers: list[int | None] = []  # each open list's next item number (None: a bullet list)
    items: list[tuple[int, int] | None] = []  # each open list item's source lines (None: a footnote)
    twoslash_includes: dict[str, list[str]] = {}  # the page's ```twoslash include blocks so far
    source_lines: list[str] = []  # split once, when an MDX 1 list item's code needs them
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        t = tok.type
        if t == "heading_open":
            title = heading_text(_inline_text(tokens[i + 1], mdx, site.docusaurus_major))[0]
            slug_text, anchor = _slug_source(tokens[i + 1], site.docusaurus_major)
            line = tok.map[0] if tok.map else 0
            page.blocks.append(Block("heading", title, level=int(tok.tag[1]), anchor=anchor,
                                     slug_text=slug_text, query=queries[line] if line < len(queries) else ""))
            i += 3
            continue
        if t == "inline" and _only_images(tok):
            pass  # a row of badges shows pictures: "npm version Build Status" is no text of the page
        elif t == "inline":
            content = _inline_text(tok, mdx, site.docusaurus_major)
            if content:
                # Outer list markers become indentation; only the innermost item shows its
                # marker ("- ", or "3. " as the built <ol> numbers it), and only on its first paragraph.
                outer = "".join(p if p == _QUOTE else " " * len(p) for p in prefixes[:-1])
                lead = outer + (prefixes[-1] if prefixes else "")
                if item_first and item_first[-1]:
                    item_first[-1] = False
                elif prefixes and prefixes[-1] != _QUOTE:
                    lead = outer + " " * len(prefixes[-1])
                page.blocks.append(Block("text", lead + content.replace("\n", "\n" + " " * len(lead))))
        elif t == "code_block" and mdx and items and None not in items and tok.map:
            # MDX 1 (remark-parse 8) measures a list item's indentation its own way.
            source_lines = source_lines or source.split("\n")
            code = _remark8_item_code(source_lines, items, (tok.map[0], tok.map[1]),
                                      tok.content.rstrip("\n"))
            if code is None:
                page.blocks.append(Block("text", _clean(tok.content)))
            elif code.strip():
                page.blocks.append(Block("code", code))
        elif t in {"fence", "code_block"}:
            # An unclosed fence runs to the end of the page, as CommonMark and MDX (micromark)
            # have it and Docusaurus builds it: refusing the page would drop a page that is served.
            raw_info = (tok.info or "").replace("`", "")
            body = tok.content.rstrip("\n")
            language_meta = raw_info.strip().split(None, 1)  # as mdast splits the info string
            # As the site shows it: without the lines that hold only a magic comment ("//
            # highlight-next-line"), which would otherwise be embedded and searched as words.
            if site.mermaid and language_meta[:1] == ["mermaid"]:
                pass  # a diagram the browser draws (mdx-loader's remark/mermaid): no text, no code
            elif site.npm2yarn is not None and language_meta[1:] == [npm2yarn_plugin.META]:
                # Tabs whose code keeps the language only.
                language = language_meta[0]
                for label, code in npm2yarn_plugin.tabs(body, site.npm2yarn, site.npm_to_yarn):
                    code = "\n".join(shown_lines(language, code.split("\n"), site.magic_comments))
                    page.blocks += [Block("text", f"{label}:", label=True), Block("code", code, info=language)]
            else:
                lines = body.split("\n")
                if site.twoslash and twoslash.applies(language_meta):
                    lines = twoslash.shown(language_meta, lines, twoslash_includes)
                info = read_info(raw_info)
                shown = "\n".join(shown_lines(info or site.plain_code_language, lines, site.magic_comments))
                if shown.strip():  # an empty block shows no line (and no title) on the built page
                    page.blocks.append(Block("code", shown, info=info))
        elif t == "html_block" and mdx and site.docusaurus_major <= 2 and (pre := _jsx_pre(tok.content)) is not None:
            if pre:
                page.blocks.append(Block("code", pre))
        elif t == "html_block":
            # On MDX 2+ a JSX block's text is Markdown that remark-emoji reaches; raw HTML (MDX 1,
            # CommonMark pages) is not text to it.
            jsx_text = mdx and site.docusaurus_major >= 3
            content = _html_text(tok.content, mdx, site.docusaurus_major if jsx_text else None)
            tab = _tab_label(tok.content, labels)
            if tab and not content:  # the tab's button names what it holds ("Yarn:" before yarn's command)
                page.blocks.append(Block("text", f"{tab}:", label=True))
            elif content:
                page.blocks.append(Block("text", content))
            if mdx and _opens_details_without_summary(tok.content, tokens[i + 1] if i + 1 < len(tokens) else None):
                # theme-common's Details: `<summary>{summary ?? 'Details'}</summary>`
                page.blocks.append(Block("text", "Details:", label=True))
        elif t == "bullet_list_open":
            numbers.append(None)
        elif t == "ordered_list_open":
            # An <ol> counts from its first item's number, whatever the later items say.
            numbers.append(int(tok.attrGet("start") or 1))
        elif t in {"bullet_list_close", "ordered_list_close", "footnote_block_close"}:
            numbers.pop()
        elif t == "footnote_block_open":
            # Where the definitions show: the end of the page, as a list numbered in the order the
            # page first cites them, under the heading Docusaurus 3's remark-rehype adds (<h2
            # id="footnote-label">Footnotes</h2>, outside the table of contents and the slugger);
            # Docusaurus 2's MDX 1 adds none. The citations are superscripts, left out of the text.
            if site.docusaurus_major >= 3:
                page.blocks.append(Block("heading", "Footnotes", level=2, anchor="footnote-label"))
            numbers.append(1)
        elif t in {"list_item_open", "footnote_open"}:
            items.append((tok.map[0], tok.map[1]) if tok.map and t == "list_item_open" else None)
            number = numbers[-1] if numbers else None
            prefixes.append("- " if number is None else f"{number}. ")
            if number is not None:
                numbers[-1] = number + 1
            item_first.append(True)
        elif t in {"list_item_close", "footnote_close"}:
            items.pop()
            prefixes.pop()
            item_first.pop()
        elif t == "blockquote_open":
            prefixes.append(_QUOTE)
            item_first.append(False)
        elif t == "blockquote_close":
            prefixes.pop()
            item_first.pop()
        elif t == "table_open":
            rows, i = _table(tokens, i, mdx, site.docusaurus_major)
            page.blocks.append(Block("text", "\n".join(rows)))
            continue
        elif t.startswith("container_") and t.endswith("_open"):
            kind, title = admonition_kind_and_title(tok.info)
            if title:  # Markdown, as Docusaurus renders it: "Read *this* first" shows no stars
                title = _inline_text(_MD.parseInline(title)[0], mdx)
            page.blocks.append(Block("text", admonition_label(kind, title, site.docusaurus_major), label=True))
        i += 1
    page.blocks = [_as_shown(b, site.docusaurus_major) for b in page.blocks]
    return page


# remark-parse 8's list item marker (tokenize/list.js, EXPRESSION_BULLET).
_REMARK8_BULLET = re.compile(r"^([ \t]*)([*+-]|\d+[.)])( {1,4}(?! )| |\t|$|(?=\n))")


def _remark8_item_code(source: Sequence[str], items: Sequence[tuple[int, int] | None], code: tuple[int, int],
                       commonmark: str) -> str | None:
    """What MDX 1 shows of indented lines in list items (``items``, outermost first, as source line
    ranges) that CommonMark makes code (``code``): the code, or None for a paragraph.

    remark-parse 8 reads an item after taking off its indentation (tokenize/list.js and
    util/remove-indentation.js): the least indentation of the item's lines, at most the marker's
    width, where a one-digit "1." is counted one wider when that makes the width even ("1. " takes
    off four columns, "- " two); a line without indentation (a lazy one) means none is taken off.
    Nested items are measured after their parents'. Only then are four more columns code (checked
    on a Docusaurus 2.2 build: "1. Step:" then "       yarn install" is a paragraph, but not
    after "   Then run:"). Tabs and items in quotes keep CommonMark's reading, ``commonmark``."""
    first, end = items[0] or code
    if any("\t" in line[:len(line) - len(line.lstrip())] or line.lstrip().startswith(">")
           for line in source[first:end]):
        return commonmark
    view = {n: source[n] for n in range(first, end)}
    for item in items:
        start, stop = item or code
        found = _REMARK8_BULLET.match(view[start])
        if found is None:
            return commonmark
        lead, marker, space = found.groups()
        width = len(lead) + len(marker) + len(space)
        if marker.endswith(".") and marker[:-1].isdigit() and int(marker[:-1]) < 10 and width % 2 == 1:
            width += 1
        indents = [_indent(view[n]) for n in range(start + 1, stop) if view[n].strip()]
        strip = 0 if 0 in indents else min([width, *indents])
        for n in range(start + 1, stop):
            view[n] = view[n][min(strip, _indent(view[n])):]
    lines = [view[n] for n in range(*code)]
    indent = min((_indent(line) for line in lines if line.strip()), default=0)
    if indent < 4:
        return None
    return "\n".join(line[4:] for line in lines).rstrip("\n")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _as_shown(block: Block, docusaurus_major: int) -> Block:
    """MDX 1 (Docusaurus 2) shows a code block's tabs as spaces to the next multiple of four
    columns (``detab`` in @mdx-js/mdx 1's mdx-ast-to-mdx-hast.js); 3 keeps them."""
    if block.kind == "code" and docusaurus_major <= 2:
        return replace(block, text=block.text.expandtabs(4))
    return block


def _table(tokens: list[Token], start: int, mdx: bool, emoji: int) -> tuple[list[str], int]:
    """Rows of a table as ``| a | b |`` lines; returns the index after table_close."""
    rows: list[str] = []
    cells: list[str] = []
    i = start + 1
    while tokens[i].type != "table_close":
        tok = tokens[i]
        if tok.type == "tr_open":
            cells = []
        elif tok.type == "inline":
            cells.append(_inline_text(tok, mdx, emoji).replace("|", "\\|"))
        elif tok.type == "tr_close":
            rows.append("| " + " | ".join(cells) + " |")
        i += 1
    return rows, i + 1
