"""Pages -> chunks at H2/H3 boundaries, within every token limit.

A chunk is one section (the intro before the first H2, an H2 before its first H3, or an
H3 with its H4+ content) or, when a section is too long, a run of whole blocks from it.
Long paragraphs split at sentences, long code fences at lines with the fence re-opened, long
tables at rows with the header row repeated. A sub-heading (H4 and deeper) never ends a chunk: it
opens the next one, with its opening lines (an option's "Type:" line) when they fit there. A
chunk links to its section's anchor, or to the anchor of the sub-heading it starts under
(piece_anchors), so a citation of an API page's option lands on that option.
Both limits hold for the text that is embedded: tiktoken cl100k_base (``max_tokens``) and
the embedder's own tokenizer (``model_max_tokens``), so nothing is truncated silently.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from records.chunk import Chunk, heading_prefix
from records.edition import SOLE_EDITION, Edition
from services.ingest.book.fences import with_code
from services.ingest.book.parser import Block, PageError, ParsedPage
from services.ingest.book.slugs import Slugger

CHUNK_NAMESPACE = uuid.UUID("6f1c1e0a-7f5e-4a53-9b7c-2d0e3c1b5a40")
MIN_TOKENS = 40
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=\S)")

Counter = Callable[[str], int]


@dataclass(frozen=True)
class PageInfo:
    book: str
    file_path: str
    module: str
    title: str
    tags: tuple[str, ...]
    page_url: str  # route under the base URL, no anchor
    edition: Edition = SOLE_EDITION
    edit_url: str = ""


@dataclass
class Budget:
    """Token limits for the embedded text of one chunk."""

    count: Counter  # tiktoken cl100k_base
    max_tokens: int = 512
    model_count: Counter | None = None  # the embedder's own tokenizer, special tokens included
    model_max_tokens: int = 0
    _cache: dict[str, tuple[int, int]] = field(default_factory=dict, repr=False)

    def cost(self, text: str) -> tuple[int, int]:
        """(cl100k tokens, model tokens) of text, cached: packing asks about each part often."""
        hit = self._cache.get(text)
        if hit is None:
            hit = (self.count(text), self.model_count(text) if self.model_count else 0)
            if len(self._cache) > 50_000:
                self._cache.clear()
            self._cache[text] = hit
        return hit

    def within(self, tokens: int, model_tokens: int) -> bool:
        return tokens <= self.max_tokens and (self.model_count is None or model_tokens <= self.model_max_tokens)

    def fits(self, text: str) -> bool:
        return self.within(*self.cost(text))


@dataclass
class Section:
    heading_path: tuple[str, ...]
    depth: int
    anchor: str
    blocks: list[str] = field(default_factory=list)
    # Headings deeper than H3 inside the section, as rendered, with their anchors: a piece of a
    # long section links to the one it starts under (an API page's "#### `maxWorkers`").
    sub_anchors: list[tuple[str, str]] = field(default_factory=list)
    ends_on_label: bool = False  # its last block is a tab's or an admonition's label
    # The query that shows a heading hidden in a tab (Block.query), by the heading's anchor.
    queries: dict[str, str] = field(default_factory=dict)


def _leading_backticks(line: str) -> str:
    """The fence a rendered code block's line opens or closes with (render writes backticks)."""
    return line[:len(line) - len(line.lstrip("`"))]


def code_fence(code: str) -> str:
    """Backticks enough that no line of the code closes its fence (a ````md example holding ```
    lines keeps them as code), three at least."""
    inner = (len(_leading_backticks(line.strip())) for line in code.split("\n"))
    return "`" * max(3, max(inner, default=0) + 1)


def render(block: Block) -> str:
    if block.kind == "code":
        fence = code_fence(block.text)
        return f"{fence}{block.info}\n{block.text}\n{fence}"
    if block.kind == "heading":
        return f"{'#' * block.level} {block.text}"
    return block.text


def content_title(page: ParsedPage) -> Block | None:
    """The page's very first heading when it is an H1: Docusaurus's contentTitle, shown as the
    page's title (mdx-loader's contentTitle plugin). A later H1 is a heading of the text."""
    first = next((b for b in page.blocks if b.kind == "heading"), None)
    return first if first is not None and first.level == 1 else None


def page_title(page: ParsedPage, fallback: str) -> str:
    title = page.frontmatter.get("title")
    if isinstance(title, str) and title.strip():
        return title.strip()
    if (first := content_title(page)) is not None:
        return first.text
    label = page.frontmatter.get("sidebar_label")
    return label.strip() if isinstance(label, str) and label.strip() else fallback


def sections(page: ParsedPage, title: str) -> list[Section]:
    """The page's sections, each under the headings the page shows above it. The first is the
    page's H1 when it opens the page (Docusaurus then shows it, not the front matter's title,
    which names the page in the sidebar and the browser: Redux's "createStore(reducer,
    preloadedState?, enhancer?)" under the title "createStore"), else ``title``."""
    slugger = Slugger()
    shown_title = content_title(page)
    if shown_title is not None and shown_title.text.strip():
        title = shown_title.text.strip()
    current = Section((title,), 1, "")
    result = [current]
    h2 = ""
    for block in page.blocks:
        if block.kind == "heading":
            # An explicit id is used as written and, as in Docusaurus, never enters the slugger.
            anchor = block.anchor or slugger.slug(block.slug_text)
            if block.level == 1:
                if block is not shown_title:  # a heading of the text, which no URL points at
                    current.blocks.append(render(block))
                continue
            queries = {anchor: block.query} if block.query else {}
            if block.level == 2:
                h2 = block.text
                current = Section((title, h2), 2, anchor, queries=queries)
                result.append(current)
                continue
            if block.level == 3:
                current = Section((title, h2, block.text) if h2 else (title, block.text), 3, anchor, queries=queries)
                result.append(current)
                continue
            current.queries.update(queries)
            current.sub_anchors.append((render(block), anchor))
            current.blocks.append(current.sub_anchors[-1][0])
            current.ends_on_label = False
            continue
        current.blocks.append(render(block))
        current.ends_on_label = block.label
    _list_what_colons_introduce(result)
    _carry_empty_headings(result)
    return [s for s in result if s.blocks]


def _carry_empty_headings(found: list[Section]) -> None:
    """Headings with no text before the next section that has some (an API page's "### socket.once(…)"
    and "### socket.off(…)" over one description; Lexical's "## Nodes", "### ListNode" and "### ListItemNode"
    just above "## Commands") open that section, as the page shows them just above it: dropped
    with their empty sections, nothing would hold them. One in the section's own heading path is
    held there already. The section still links to its own heading, the one its text stands under."""
    waiting: list[Section] = []
    for section in found[1:]:
        if not section.blocks:
            waiting.append(section)
            continue
        section.blocks[:0] = [f"{'#' * s.depth} {s.heading_path[-1]}" for s in waiting
                              if section.heading_path[:len(s.heading_path)] != s.heading_path]
        waiting = []


# A colon before at most this many sub-sections is read as introducing them; more is an index.
MAX_INTRODUCED_SECTIONS = 12


def _list_what_colons_introduce(found: list[Section]) -> None:
    """A section whose text ends on a colon just before its sub-sections ("Redux can be described
    in three fundamental principles:" and an H3 per principle) gets their headings as a list, as
    the page shows them next. Each sub-section is its own chunk, so without the list the colon's
    chunk promises what no chunk beside it holds, and "what are the three principles" has no
    passage that names them."""
    for n, section in enumerate(found[:-1]):
        last = section.blocks[-1] if section.blocks else ""
        level = found[n + 1].depth
        if (not last.rstrip().endswith(":") or last.startswith(("```", "#", "|")) or section.ends_on_label
                or level <= section.depth):
            continue
        following = []
        for later in found[n + 1:]:
            if later.depth < level:
                break
            if later.depth == level:
                following.append(later.heading_path[-1])
        if 2 <= len(following) <= MAX_INTRODUCED_SECTIONS:
            section.blocks.append("\n".join(f"- {heading}" for heading in following))


def piece_anchors(section: Section, pieces: Sequence[str]) -> list[str]:
    """The anchor each piece of a section links to: that of the last sub-heading before the
    piece's first line (the one its text stands under), or the section's own; a piece starting
    with a sub-heading links to it. Lines inside code fences are skipped: a ```md example's
    "#### x" line is no heading."""
    anchors: list[str] = []
    before, found = section.anchor, 0  # the anchor in effect where the next piece starts
    for piece in pieces:
        start = before
        # Inside code (render's fences) a line is never a heading.
        for n, (line, code) in enumerate(with_code(piece.split("\n"))):
            if code:
                continue
            if found < len(section.sub_anchors) and line == section.sub_anchors[found][0]:
                before = section.sub_anchors[found][1]
                found += 1
                if n == 0:
                    start = before
        anchors.append(start)
    return anchors


def _room(budget: Budget, prefix: str) -> bool:
    """Whether text can follow the prefix in a piece: MIN_TOKENS of it at least."""
    used_t, used_m = budget.cost(prefix)
    return budget.within(used_t + MIN_TOKENS, used_m + MIN_TOKENS)


def _split_text(text: str, budget: Budget, prefix: str) -> list[str]:
    """A paragraph too long for one chunk: by sentences, then by words."""
    if len(text) <= 1 or not budget.within(*(c + 1 for c in budget.cost(prefix))):
        # Only the headings (a page's own text) can be this long: the page is refused, not the book.
        raise PageError(f"a section's headings are longer than a chunk ({budget.max_tokens} tokens)")
    pieces = [p for p in _SENTENCE_END.split(text) if p]
    if len(pieces) == 1:
        pieces = text.split(" ")
        if len(pieces) == 1:  # one giant word: cut by characters
            step = max(1, len(text) // 2)
            pieces = [text[i:i + step] for i in range(0, len(text), step)]
    return _pack(pieces, budget, prefix, " ")


def _split_code(block: str, budget: Budget, prefix: str) -> list[str]:
    """A code fence too long for one chunk: by lines, each piece a complete fence."""
    first, _, rest = block.partition("\n")
    fence = _leading_backticks(first)
    lines = rest.rsplit(f"\n{fence}", 1)[0].split("\n")
    if not _room(budget, f"{prefix}{first}\n{fence}\n"):  # a title as long as a chunk: the language only
        first = fence + first[len(fence):].split(" ", 1)[0]
    # The fence's opening and closing lines are charged to every piece up front.
    wrapper = f"{prefix}{first}\n{fence}\n"
    return [f"{first}\n{piece}\n{fence}" for piece in _pack(lines, budget, wrapper, "\n")]


_HEADING_PART = re.compile(r"#{1,6} ")  # a rendered heading block (render)


def _split_table(block: str, budget: Budget, prefix: str) -> list[str]:
    """A table too long for one chunk: by rows, each piece under the header row again, so that
    every piece is a table whose cells keep their column names."""
    header, _, rest = block.partition("\n")
    if not rest or not _room(budget, f"{prefix}{header}\n"):  # a header as long as a chunk: as text
        return _split_text(block, budget, prefix)
    return [f"{header}\n{piece}" for piece in _pack(rest.split("\n"), budget, f"{prefix}{header}\n", "\n")]


def _pack(parts: Sequence[str], budget: Budget, prefix: str, joiner: str) -> list[str]:
    """Greedy packing of parts into pieces that fit; oversized parts are split first.

    Costs are summed per part (plus a token per joiner) rather than re-counted for every
    candidate; each finished piece is then checked whole, and halved in the rare case
    that tokenisation across a joint made it longer than the sum.
    """
    base_t, base_m = budget.cost(prefix)
    pieces: list[str] = []
    current: list[str] = []
    used_t, used_m = base_t, base_m

    def flush() -> None:
        nonlocal current, used_t, used_m
        if current:
            pieces.extend(_verified(current, budget, prefix, joiner))
        current, used_t, used_m = [], base_t, base_m

    def trailing_headings() -> list[str]:
        """Sub-headings that would end the piece: they open the next one, with what they head."""
        carried: list[str] = []
        while current and _HEADING_PART.match(current[-1]):
            carried.insert(0, current.pop())
        return carried

    def last_heading_on() -> list[str]:
        """The piece's last sub-heading and what follows it: a break just after a sub-heading's
        first lines (Metro's "#### `blockList`" and its "Type:" line) left the option's description
        to a piece that never names it. Sub-headings stacked right before it go with it; taken only
        when at least MIN_TOKENS stay behind."""
        at = next((i for i in range(len(current) - 1, 0, -1) if _HEADING_PART.match(current[i])), None)
        if at is None or at == len(current) - 1:
            return []
        while at > 1 and _HEADING_PART.match(current[at - 1]):
            at -= 1
        if budget.cost(joiner.join(current[:at]))[0] < MIN_TOKENS:
            return []
        carried = current[at:]
        del current[at:]
        return carried

    for part in parts:
        part_t, part_m = budget.cost(part)
        if not budget.within(base_t + part_t, base_m + part_m):
            carried = last_heading_on() or trailing_headings()
            head = joiner.join(carried)
            if head and not _room(budget, prefix + head + joiner):
                current += carried  # no room to carry them: they stay where they were
                head = ""
            flush()
            split = _split_code if part.startswith("```") else _split_table if part.startswith("|") else _split_text
            split_pieces = split(part, budget, prefix + head + joiner if head else prefix)
            pieces.extend([head + joiner + split_pieces[0], *split_pieces[1:]] if head else split_pieces)
            continue
        if current and not budget.within(used_t + part_t + 1, used_m + part_m):
            carried, costs = [], []
            for carry in (last_heading_on, trailing_headings):
                carried = carry()
                costs = [budget.cost(c) for c in carried]
                if carried and budget.within(base_t + sum(t + 1 for t, _ in costs) + part_t,
                                             base_m + sum(m for _, m in costs) + part_m):
                    break
                current += carried  # none, or together they do not fit: they stay where they were
                carried, costs = [], []
            flush()
            current = carried
            used_t = base_t + sum(t for t, _ in costs) + max(0, len(costs) - 1)
            used_m = base_m + sum(m for _, m in costs)
        current.append(part)
        used_t += part_t + (1 if len(current) > 1 else 0)
        used_m += part_m
    flush()
    return pieces


def _verified(parts: list[str], budget: Budget, prefix: str, joiner: str) -> list[str]:
    text = joiner.join(parts)
    if budget.fits(prefix + text) or len(parts) == 1:
        return [text] if budget.fits(prefix + text) else _split_text(text, budget, prefix)
    half = len(parts) // 2
    return _verified(parts[:half], budget, prefix, joiner) + _verified(parts[half:], budget, prefix, joiner)


def _merge_tiny(pieces: list[str], budget: Budget, prefix: str) -> list[str]:
    """A small leftover piece joins its neighbour when together they still fit."""
    base_t, base_m = budget.cost(prefix)
    merged: list[str] = []
    for piece in pieces:
        if merged:
            (prev_t, prev_m), (t, m) = budget.cost(merged[-1]), budget.cost(piece)
            tiny = min(prev_t, t) < MIN_TOKENS
            if tiny and budget.within(base_t + prev_t + t + 1, base_m + prev_m + m) \
                    and budget.fits(prefix + merged[-1] + "\n\n" + piece):
                merged[-1] = merged[-1] + "\n\n" + piece
                continue
        merged.append(piece)
    return merged


def chunk_id(book: str, file_path: str, heading_path: Sequence[str], ordinal: int,
             edition: Edition | None = None, repeat: int = 0) -> str:
    """The same file in two versions or locales gives two chunks, and so does a heading path
    repeated within a page (``repeat``: how many sections with it came before); a book without
    versions or locales, and a section whose heading path is unique, keep the ids they had."""
    parts = [book, file_path, " > ".join(heading_path), str(ordinal)]
    if repeat:
        parts.append(f"repeat {repeat}")
    if edition is not None and (edition.version or edition.locale):
        parts += [edition.version, edition.locale]
    return str(uuid.uuid5(CHUNK_NAMESPACE, "\x1f".join(parts)))


def content_hash(embed_text: str, info: PageInfo, url: str, depth: int) -> str:
    """Covers every stored field, so a change of any is written; the material of a page
    without version, locale or edit link is what it was before they existed (no re-embedding)."""
    material: list[object] = [embed_text, info.file_path, info.module, info.title, list(info.tags), url, depth]
    e = info.edition
    if e != SOLE_EDITION or info.edit_url:
        material += [e.version, e.locale, e.other_version, e.other_locale, info.edit_url]
    return hashlib.sha256(json.dumps(material).encode()).hexdigest()


def chunk_page(page: ParsedPage, info: PageInfo, budget: Budget) -> list[Chunk]:
    chunks: list[Chunk] = []
    seen: dict[tuple[str, ...], int] = {}
    for section in sections(page, info.title):
        repeat = seen.get(section.heading_path, 0)
        seen[section.heading_path] = repeat + 1
        prefix = heading_prefix(section.heading_path)
        pieces = _merge_tiny(_pack(section.blocks, budget, prefix, "\n\n"), budget, prefix)
        for ordinal, (piece, anchor) in enumerate(zip(pieces, piece_anchors(section, pieces), strict=True)):
            query = section.queries.get(anchor, "")
            url = f"{info.page_url}{'?' + query if query else ''}{'#' + anchor if anchor else ''}"
            embed_text = prefix + piece
            chunks.append(Chunk(
                chunk_id=chunk_id(info.book, info.file_path, section.heading_path, ordinal, info.edition, repeat),
                book=info.book, file_path=info.file_path, module=info.module,
                heading_path=section.heading_path, section_depth=section.depth, content=piece,
                token_count=budget.count(embed_text),
                content_hash=content_hash(embed_text, info, url, section.depth),
                title=info.title, tags=info.tags, position=len(chunks), url=url, edition=info.edition,
                edit_url=info.edit_url,
            ))
    return chunks
