"""One file -> its chunks, or the reason it was skipped or failed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from services.ingest.book.chunker import Budget, Chunk, PageInfo, chunk_page, page_title
from services.ingest.book.discovery import SourceFile
from services.ingest.book.parser import PageError, decode, parse_page
from services.ingest.book.slugs import join_url, page_route

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_LINE_CHARS = 100_000


@dataclass(frozen=True)
class PageResult:
    file: SourceFile
    chunks: list[Chunk] = field(default_factory=list)
    skipped: str = ""  # reason, when left out on purpose
    failed: str = ""  # reason, when it could not be read


def _tags(value: object) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(t.get("label", "")) if isinstance(t, dict) else str(t) for t in value)
    return ()


def read_page(file: SourceFile, book: str, base_url: str, budget: Budget, include_drafts: bool) -> PageResult:
    try:
        size = file.path.stat().st_size
        if size > MAX_FILE_BYTES:
            return PageResult(file, failed=f"file is {size} bytes; the limit is {MAX_FILE_BYTES}")
        text = decode(Path(file.path).read_bytes())
        if any(len(line) > MAX_LINE_CHARS for line in text.split("\n")):
            return PageResult(file, failed=f"a line is longer than {MAX_LINE_CHARS} characters")
        page = parse_page(text)
    except PageError as exc:
        return PageResult(file, failed=str(exc))
    except OSError as exc:
        return PageResult(file, failed=f"cannot read: {exc.strerror or exc}")
    fm = page.frontmatter
    if fm.get("draft") is True and not include_drafts:
        return PageResult(file, skipped="draft")
    doc_id = fm.get("id") if isinstance(fm.get("id"), str) else None
    slug = fm.get("slug") if isinstance(fm.get("slug"), str) else None
    info = PageInfo(
        book=book, file_path=file.rel, module=file.module,
        title=page_title(page, PurePosixPath(file.rel).stem),
        tags=_tags(fm.get("tags")), page_url=join_url(base_url, page_route(file.rel, doc_id, slug)),
    )
    return PageResult(file, chunk_page(page, info, budget))
