"""Markdown partials: another file's text, read where the page shows it.

An MDX page can import a Markdown file as a component and show it on a line of its own::

    import Note from './_note.md';

    <Note />

The built page holds the partial's text at that place (Docusaurus's "Importing Markdown"; the
leading underscore only keeps the file from being a page of its own). A partial is compiled on its
own, so its headings take ids from their own slugger, never the page's: docusaurus-mdx-loader runs
its headings plugin once per file. Such ids are set here as explicit ones, which the page's slugger
does not count either.

Only what can be read safely is shown: a relative path to a .md or .mdx file inside the docs
folder, at most MAX_DEPTH partials deep, no file inside itself, and at most MAX_SHOWN_BYTES shown
per page. What is not shown is reported, and the page is read without it as before.

The same marks stand for the files a page shows as code (services.ingest.book.raw_code).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

from services.ingest.book.fences import with_code
from services.ingest.book.parser import (
    DEFAULT_MARKDOWN,
    Block,
    PageError,
    ParsedPage,
    SiteMarkdown,
    decode,
    esm_blocks,
    parse_page,
    split_frontmatter,
    unwrap_mdx_code_blocks,
)
from services.ingest.book.raw_code import shown_code
from services.ingest.book.site.literal import SourceError, default_imports
from services.ingest.book.slugs import Slugger
from services.ingest.book.tab_labels import imported_labels

MAX_DEPTH = 5
MAX_SHOWN_BYTES = 5 * 1024 * 1024  # the same bound as a page file's size
_SHOWN = re.compile(r"^([ \t]*)<([A-Za-z_$][\w$]*)\s*/>\s*$")
# Stands for a partial in the text the parser reads; a paragraph of its own, replaced by the
# partial's blocks afterwards.
_MARK = "lectern-partial-0c5e2a"
_MARKED = re.compile(rf"(?:[ >]|-|\d+\.)*{_MARK}(\d+)")


@dataclass
class Reading:
    """What one page's partials gave: the files read and the notes on those that could not be
    shown."""

    root: Path
    markdown: SiteMarkdown = DEFAULT_MARKDOWN
    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    shown_bytes: int = 0


def parse_with_partials(text: str, path: Path, root: Path,
                        markdown: SiteMarkdown = DEFAULT_MARKDOWN) -> tuple[ParsedPage, list[str]]:
    """The page parsed with the partials it shows in place, and a note for each it shows that
    could not be read. ``root`` is the docs folder: no partial is read from outside it. A page
    read as CommonMark (the site's ``markdown.format``) imports nothing."""
    page, reading = _read(text, path, root, markdown)
    return page, reading.notes


def partial_files(page: Path, root: Path, markdown: SiteMarkdown = DEFAULT_MARKDOWN) -> list[Path]:
    """The partials a page shows and those they show, and the site modules its tab labels come
    from, read as ingest reads them: what `lectern push` must send beside the page. A page that
    cannot be read is left to ingest to report."""
    try:
        if page.stat().st_size > MAX_SHOWN_BYTES:
            return []
        return _read(decode(page.read_bytes()), page, root, markdown)[1].files
    except (OSError, PageError):
        return []


def _read(text: str, path: Path, root: Path, markdown: SiteMarkdown) -> tuple[ParsedPage, Reading]:
    reading = Reading(root.resolve(), markdown)
    if not markdown.reads_as_mdx(path.name):
        return parse_page(text, mdx=False, site=markdown), reading
    marked, shown, labels = _marked(text, path, reading)
    page = parse_page(marked, site=markdown, tab_labels=labels)
    page.blocks = _spliced(page.blocks, shown, reading, (path.resolve(),))
    return page, reading


def _marked(text: str, path: Path, reading: Reading) -> tuple[str, list[Path | Block | None], dict[str, str]]:
    """The text with each line that shows an imported partial, and each element that shows a
    file as code (raw_code), replaced by a mark; what they show in the order they are marked (a
    partial's path, a code block, or None for one that cannot be read: shown as nothing); and the
    tab labels its imported modules give (tab_labels)."""
    lines = unwrap_mdx_code_blocks(text).split("\n")  # as Docusaurus reads it: such blocks are MDX
    imports: dict[str, str] = {}
    for esm in esm_blocks(lines):  # imports first: MDX allows them anywhere outside code
        try:
            imports.update(default_imports("\n".join(lines[n] for n in esm).encode()))
        except SourceError:  # MDX would refuse the page; what can be read of it is shown
            continue
    labels, modules = imported_labels(text, imports, path, reading.markdown.site_dir)
    reading.files += [m for m in modules if m not in reading.files]
    shown: list[Path | Block | None] = []
    in_code = [code for _, code in with_code(lines)]
    for n, line in enumerate(lines):
        match = None if in_code[n] else _SHOWN.match(line)
        spec = imports.get(match[2], "") if match and not _code_on_mdx1(match[1], reading) else ""
        if match and spec.endswith((".md", ".mdx")):
            shown.append(_resolve(spec, path, reading))
            lines[n] = f"\n{match[1]}{_MARK}{len(shown) - 1}\n"  # indented: in a list item or a tab
    site = Path(reading.markdown.site_dir) if reading.markdown.site_dir else None
    for code in shown_code(lines, in_code, imports, path, site or reading.root, site,
                           MAX_SHOWN_BYTES - reading.shown_bytes, reading.markdown.magic_comments):
        if _code_on_mdx1(code.indent, reading):
            continue
        if code.note:
            reading.notes.append(code.note)
        code_block = code.block
        if code.file is not None:
            if reading.shown_bytes + code.size > MAX_SHOWN_BYTES:
                reading.notes.append(f"partials past {MAX_SHOWN_BYTES} bytes on one page; {code.file.name} not shown")
                code_block = None
            else:
                reading.shown_bytes += code.size
                if code.file not in reading.files:
                    reading.files.append(code.file)
        shown.append(code_block)
        lines[code.first_line:code.end_line] = [f"\n{code.indent}{_MARK}{len(shown) - 1}\n",
                                                *[""] * (code.end_line - code.first_line - 1)]
    # Unmarked, the text goes to the parser as it came (it unwraps mdx-code-blocks itself).
    return ("\n".join(lines) if shown else text), shown, labels


def _code_on_mdx1(indent: str, reading: Reading) -> bool:
    """Whether a line so indented is code, as MDX 1 (Docusaurus 2) reads four columns: it then
    shows the tag as written, not what it names."""
    return reading.markdown.docusaurus_major <= 2 and len(indent.expandtabs(4)) >= 4


def _resolve(spec: str, page: Path, reading: Reading) -> Path | None:
    if not spec.startswith(("./", "../")):
        reading.notes.append(f"partial {spec!r} is not a relative path; not shown")
        return None
    target = (page.parent / spec).resolve()
    try:
        target.relative_to(reading.root)
    except ValueError:
        reading.notes.append(f"partial {spec!r} is outside the docs folder; not shown")
        return None
    if not target.is_file():
        reading.notes.append(f"partial {spec!r} does not exist; not shown")
        return None
    return target


def _spliced(blocks: list[Block], shown: list[Path | Block | None], reading: Reading,
             chain: tuple[Path, ...]) -> list[Block]:
    out: list[Block] = []
    for block in blocks:
        number = _mark_number(block)
        if number is None or number >= len(shown):
            out.append(block)
            continue
        target = shown[number]
        if isinstance(target, Block):  # a file's text shown as code (raw_code)
            out.append(target)
        elif target is not None:
            out += _partial_blocks(target, reading, chain)
    return out


def _mark_number(block: Block) -> int | None:
    # A code element may stand in a list item, whose paragraphs the parser leads with its marker.
    found = _MARKED.fullmatch(block.text) if block.kind == "text" else None
    return int(found[1]) if found else None


def _partial_blocks(path: Path, reading: Reading, chain: tuple[Path, ...]) -> list[Block]:
    """A partial's blocks, its own partials shown in them, its headings with their own ids."""
    name = path.name
    if path in chain:
        reading.notes.append(f"partial {name} shows itself; shown once")
        return []
    if len(chain) > MAX_DEPTH:
        reading.notes.append(f"partial {name} is more than {MAX_DEPTH} partials deep; not shown")
        return []
    try:
        raw = path.read_bytes()
        if reading.shown_bytes + len(raw) > MAX_SHOWN_BYTES:
            reading.notes.append(f"partials past {MAX_SHOWN_BYTES} bytes on one page; {name} not shown")
            return []
        reading.shown_bytes += len(raw)
        if path not in reading.files:
            reading.files.append(path)
        body = split_frontmatter(decode(raw))[1]
        if reading.markdown.reads_as_mdx(path.name):
            marked, shown, labels = _marked(body, path, reading)
            blocks = parse_page(marked, site=reading.markdown, tab_labels=labels).blocks
        else:  # a CommonMark partial shows its text and imports nothing
            shown, blocks = [], parse_page(body, mdx=False, site=reading.markdown).blocks
    except PageError as exc:
        reading.notes.append(f"partial {name} cannot be read: {exc}; not shown")
        return []
    except OSError as exc:
        reading.notes.append(f"partial {name} cannot be read: {exc.strerror or exc}; not shown")
        return []
    slugger = Slugger()  # the partial's own, as its own compilation has
    own = [dataclasses.replace(b, anchor=b.anchor or slugger.slug(b.slug_text)) if b.kind == "heading" else b
           for b in blocks]
    return _spliced(own, shown, reading, (*chain, path))

