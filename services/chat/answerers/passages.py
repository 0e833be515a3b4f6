"""A section's Markdown read as blocks (paragraphs, lists, tables, code) and its sentences, for answers
that quote the book: a sentence keeps its place (block, position) so the sentence after it, or the
list or code its colon introduces, can be quoted with it."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import cached_property

from services.ingest.book.fences import closes, opening_fence
from services.ingest.book.site_code import quoted_info, shown_lines

_ITEM = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_NUMBER = re.compile(r"^\s*(\d+)[.)]\s")
_ITEM_START = re.compile(r"\n(?=\s*(?:[-*+]|\d+[.)])\s)")
# Where a sentence ends: its punctuation (not that of "vs.", "e.g.", "i.e." or "cf.", a name's
# initial as in "Kent C. Dodds", or "Mr."/"Ms."/"Dr."), space, and what can start the next one (a
# capital, a digit, code, a quote, a bracket, emphasis or a list dash); an ordered list's "2." at
# a line's start is the item's number, not a sentence. Answers are cited and their grounding
# checked by this one rule (services.chat.citations).
SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\bvs\.)(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\bcf\.)(?<!^\d\.)(?<!^\d\d\.)"
                          r"(?<!\b[A-Z]\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bDr\.)"
                          r"\s+(?=[A-Z0-9`\"'(\[*_-])", re.M)
# Lines that are structure, not prose: headings, admonition fences, MDX imports and exports,
# tables (read as rows, below), HTML/JSX and images.
_NOT_PROSE = ("#", ":::", "import ", "export ", "|", "<", "![")
# A table row as ingest stores it (services/ingest/book/parser.py): "| a | b |", a cell's own pipes
# escaped; the header row first, no delimiter row.
_TABLE_ROW = "|"
_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*#*$")
_CELL_BORDER = re.compile(r"(?<!\\)\|")
MIN_SENTENCE = 12  # characters; shorter pieces are labels, not statements
MAX_LIST_ITEMS = 8
MAX_CODE_LINES = 24
# A line that only closes brackets: what a code block split between two chunks starts with.
_CLOSING_LINE = re.compile(r"^\s*[)\]}]+[);,]*\s*$")
_CLOSING_START = re.compile(r"^\s*[)\]}]")


def cited(text: str, n: int) -> str:
    """Each sentence of the text with its citation [n] before its closing punctuation (a full
    stop is added when it has none)."""
    return " ".join(cite(sentence, n) for sentence in SENTENCE_END.split(text.strip()))


def cite(sentence: str, n: int) -> str:
    """One sentence with [n] before its closing mark ("concepts [3]!"): after the mark, "[3]"
    would start a sentence of its own and leave this one uncited."""
    end = sentence.rstrip()
    body = end.rstrip(".!?:")  # a run of marks ("method..") would leave one before the citation
    return f"{body} [{n}]{end[-1]}" if body != end else f"{end} [{n}]."


class Kind(Enum):
    PROSE = "prose"
    LIST = "list"
    CODE = "code"
    TABLE = "table"


@dataclass(frozen=True)
class Block:
    kind: Kind
    lines: tuple[str, ...]
    # The heading inside the section that this block stands under, if any: a long section's
    # sub-headings (an API page's "#### `maxWorkers`") name what its sentences are about.
    under: str = ""

    @cached_property
    def text(self) -> str:
        """The block's lines; a code block's as the site shows them, without fences or magic comments
        (read once: scoring, the emptiness check and quoting all ask for it). Ingest stores code
        without them already; an index stored before it did still has them."""
        if self.kind is not Kind.CODE:
            return "\n".join(self.lines)
        fence, info = self.opening
        body = list(self.lines[1:])
        if body and closes(body[-1], fence):
            body.pop()
        return "\n".join(shown_lines(info, body))

    @property
    def opening(self) -> tuple[str, str]:
        """A code block's fence and info string (language, then metadata such as title="...")."""
        fence = opening_fence(self.lines[0]) or "```"
        return fence, self.lines[0].strip()[len(fence):].strip()

    @property
    def shows_code(self) -> bool:
        """Whether a code block has lines to show: not only magic comments, nor only the closing
        tail of a statement the chunk before holds."""
        return any(line.strip() and not _CLOSING_LINE.match(line) for line in self.text.split("\n"))

    def pieces(self) -> list[str]:
        """Sentences of a paragraph, items of a list (one line each), rows of a table (each cell
        named by its column: "Default: `80`; CLI Override: `--print-width <int>`"); nothing for
        code."""
        if self.kind is Kind.CODE:
            return []
        if self.kind is Kind.TABLE:
            return table_rows(self.lines)
        if self.kind is Kind.LIST:
            return [" ".join(_ITEM.sub("", item).split()) for item in self._items()]
        return [" ".join(s.split()) for s in SENTENCE_END.split(" ".join(line.strip() for line in self.lines))]

    def _items(self) -> list[str]:
        return _ITEM_START.split("\n".join(self.lines))

    def quoted(self, n: int, focus: int = 0) -> str:
        """The block as an answer quotes it from source n: a list's first items or a table's first
        rows, each cited, or a code block's first lines (code is never cited inside). A code block
        whose line ``focus`` (what the question asks about) lies past those lines is quoted from
        the blank line before it, where a statement starts, or from that line itself."""
        if self.kind in (Kind.LIST, Kind.TABLE):
            pieces = self.pieces()[:MAX_LIST_ITEMS]
            # An ordered list's items keep their numbers ("2."); other items and table rows are "-".
            markers = [f"{number.group(1)}." if (number := _NUMBER.match(item)) else "-" for item in self._items()] \
                if self.kind is Kind.LIST else ["-"] * len(pieces)
            return "\n".join(f"{marker} {cited(item, n)}" for marker, item in zip(markers[:len(pieces)], pieces,
                                                                                   strict=True))
        fence, info = self.opening
        lines = self.text.split("\n")
        body = _shown_code(lines)
        if focus + 1 >= len(body) and len(body) < len(lines):  # the lines asked about are cut off
            body = _shown_code(lines[max((i for i in range(focus) if not lines[i].strip()), default=focus):])
        return "\n".join([fence + quoted_info(info), *textwrap.dedent("\n".join(body)).rstrip().split("\n"), fence])


def _shown_code(lines: Sequence[str]) -> list[str]:
    """The code lines a quote shows: from a statement's start, at most MAX_CODE_LINES, ending at a
    blank line where one is near rather than mid-statement."""
    body = list(lines)
    while body and (not body[0].strip() or _CLOSING_LINE.match(body[0])):
        body.pop(0)  # the tail of a statement the chunk before holds
    if body and _CLOSING_START.match(body[0]):  # a longer tail ("}, [deps]);"): from the next blank line
        blank = next((i for i, line in enumerate(body) if not line.strip()), len(body))
        if any(line.strip() for line in body[blank:]):
            body = body[blank:]
            while not body[0].strip():
                body.pop(0)
    if len(body) > MAX_CODE_LINES:
        blank = max((i for i, line in enumerate(body[:MAX_CODE_LINES]) if not line.strip()), default=0)
        body = body[:blank if blank >= MAX_CODE_LINES // 2 else MAX_CODE_LINES]
    return body


def table_rows(lines: Sequence[str]) -> list[str]:
    """A table's rows after its header, each as its cells named by their columns; a cell that is
    empty, or a column without a name, is left unnamed."""
    rows = [[" ".join(c.replace("\\|", "|").split()) for c in _CELL_BORDER.split(line.strip())[1:-1]]
            for line in lines]
    if len(rows) < 2:
        named = [_joined([("", c) for c in row]) for row in rows]
    else:
        header, body = rows[0], rows[1:]
        named = [_joined(list(zip(header, row, strict=False))) for row in body]
    return [row for row in named if row]  # a row of empty cells says nothing


def _joined(cells: Sequence[tuple[str, str]]) -> str:
    """(column, cell) pairs as "column: cell; …", empty cells left out, the full stop that ends a
    sentence in a cell before the next dropped ("Not available on Android 15+; Default:
    #000000", not "15+.; Default")."""
    kept = [(name, cell) for name, cell in cells if cell]
    shown = [(name, cell[:-1] if i < len(kept) - 1 and _ends_sentence(cell) else cell)
             for i, (name, cell) in enumerate(kept)]
    return "; ".join(f"{name}: {cell}" if name else cell for name, cell in shown)


# A full stop after a word, in a cell of two words or more; not a pattern (".", "\\.", "*."),
# a version ("1.0.") or an abbreviation ("etc.", "e.g.").
_SENTENCE_STOP = re.compile(r"\S\s.*[\w)+%`'\"]\.$")
_ABBREVIATION = re.compile(r"(?:\b(?:etc|vs|cf|approx)|\b[a-z]\.[a-z])\.$", re.IGNORECASE)


def _ends_sentence(cell: str) -> bool:
    return bool(_SENTENCE_STOP.search(cell)) and not _ABBREVIATION.search(cell)


def segments(text: str) -> list[tuple[bool, str]]:
    """The text cut into prose and fenced code, in order, each with its line ends (joined, they
    give the text back): citations and sentences live only in the prose."""
    out: list[tuple[bool, str]] = []
    fence: str | None = None
    for line in text.splitlines(keepends=True):
        in_code = fence is not None
        if fence is None:
            fence = opening_fence(line)
            in_code = fence is not None
        elif closes(line, fence):
            fence = None
        if out and out[-1][0] == in_code:
            out[-1] = (in_code, out[-1][1] + line)
        else:
            out.append((in_code, line))
    return out


def _list_goes_on(lines: list[str], after: int) -> bool:
    """After a blank line, a list continues when the next text is an item or indented."""
    rest = next((line for line in lines[after:] if line.strip()), "")
    return bool(_ITEM.match(rest)) or rest.startswith(("  ", "\t"))


def blocks(markdown: str) -> list[Block]:
    """Paragraphs, lists, tables and fenced code, in order; headings, admonition fences, MDX and HTML
    lines end a block and are dropped. A fence never closed runs to the end, as Docusaurus reads it."""
    lines = markdown.split("\n")
    out: list[Block] = []
    current: list[str] = []
    kind: Kind | None = None
    under = ""

    def close() -> None:
        nonlocal current, kind
        if kind is not None and current:
            out.append(Block(kind, tuple(current), under))
        current, kind = [], None

    i = 0
    while i < len(lines):
        line, text = lines[i], lines[i].strip()
        if (fence := opening_fence(line)) is not None:
            close()
            end = next((j for j in range(i + 1, len(lines)) if closes(lines[j], fence)), len(lines) - 1)
            out.append(Block(Kind.CODE, tuple(lines[i:end + 1]), under))
            i = end + 1
            continue
        if not text:
            if not (kind is Kind.LIST and _list_goes_on(lines, i + 1)):
                close()
        elif text.startswith(_TABLE_ROW):
            if kind is not Kind.TABLE:
                close()
                kind = Kind.TABLE
            current.append(line)
        elif text.startswith(_NOT_PROSE):
            close()
            if (heading := _HEADING.match(text)) is not None:
                under = heading.group(1).strip()
        else:
            here = Kind.LIST if _ITEM.match(line) or (kind is Kind.LIST and line.startswith((" ", "\t"))) \
                else Kind.PROSE
            if here is not kind:
                close()
                kind = here
            current.append(line)
        i += 1
    close()
    return out


@dataclass(frozen=True)
class Sentence:
    """A sentence (or list item) of a block, where it stands."""

    block: int
    position: int
    text: str


def sentences(markdown_blocks: list[Block]) -> list[Sentence]:
    """The statements of a section, in reading order."""
    return [Sentence(b, p, text)
            for b, block in enumerate(markdown_blocks)
            for p, text in enumerate(block.pieces())
            if len(text) >= MIN_SENTENCE and not text.startswith(_NOT_PROSE)]
