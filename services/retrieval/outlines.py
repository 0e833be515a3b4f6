"""Books' outlines (their sidebars), one per version and locale, kept beside the index.

Ingest sends a book's outlines after it has written its chunks; the gateway (MCP, llms.txt) and
chat (questions about the book itself) read them. They are small (a line per page) and change
only on ingest, so each book's are one JSON file under retrieval's home, replaced atomically
(written to a temporary file, then renamed): a reader sees the old outlines or the new ones,
never a mix, whichever index backend holds the chunks. A book without a stored outline (one
ingested before outlines were kept) reads as not found, and readers fall back to file order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from records.edition import Edition
from records.outline import EditionOutline, OutlineEntry
from runtime.errors import Internal, InvalidArgument

FORMAT = 1
# Bounds on what one book's outlines may hold: far above a real sidebar, far below a problem.
MAX_EDITIONS = 500
MAX_ENTRIES = 20_000  # pages and categories of one edition
MAX_DEPTH = 16  # nested categories
MAX_TEXT_CHARS = 2000  # any one label, title, url, path or description


def check(editions: Sequence[EditionOutline]) -> None:
    """Raises InvalidArgument naming the first field out of bounds."""
    if len(editions) > MAX_EDITIONS:
        raise InvalidArgument.of("editions", f"must be at most {MAX_EDITIONS}")
    seen: set[tuple[str, str]] = set()
    for i, outline in enumerate(editions):
        key = (outline.edition.version, outline.edition.locale)
        if key in seen:
            raise InvalidArgument.of(f"editions[{i}]", "repeats a version and locale")
        seen.add(key)
        count = 0
        stack: list[tuple[str, OutlineEntry, int]] = [(f"editions[{i}].items[{j}]", e, 1)
                                                      for j, e in enumerate(outline.items)]
        while stack:
            name, entry, depth = stack.pop()
            count += 1
            if count > MAX_ENTRIES:
                raise InvalidArgument.of(f"editions[{i}].items", f"must hold at most {MAX_ENTRIES} entries")
            if depth > MAX_DEPTH:
                raise InvalidArgument.of(name, f"is nested deeper than {MAX_DEPTH} categories")
            if not entry.category and entry.items:
                raise InvalidArgument.of(f"{name}.items", "only a category has items")
            if entry.part and not entry.category:
                raise InvalidArgument.of(f"{name}.part", "only a category is a part")
            for attr in ("label", "title", "url", "file_path", "description"):
                if len(getattr(entry, attr)) > MAX_TEXT_CHARS:
                    raise InvalidArgument.of(f"{name}.{attr}", f"must be at most {MAX_TEXT_CHARS} characters")
            stack += [(f"{name}.items[{j}]", e, depth + 1) for j, e in enumerate(entry.items)]


# An outline as its file holds it: the one converter each way. Every key is always written, so
# a missing one is an error, never a default; but "part", which files written before it lack.
def entry_to_json(entry: OutlineEntry) -> dict[str, Any]:
    return {"category": entry.category, "label": entry.label, "title": entry.title, "url": entry.url,
            "file_path": entry.file_path, "description": entry.description,
            "items": [entry_to_json(e) for e in entry.items], "part": entry.part}


def entry_from_json(data: dict[str, Any]) -> OutlineEntry:
    return OutlineEntry(bool(data["category"]), str(data["label"]), str(data["title"]), str(data["url"]),
                        str(data["file_path"]), str(data["description"]),
                        tuple(entry_from_json(e) for e in data["items"]), bool(data.get("part", False)))


def outline_to_json(outline: EditionOutline) -> dict[str, Any]:
    e = outline.edition
    return {"version": e.version, "locale": e.locale, "other_version": e.other_version,
            "other_locale": e.other_locale, "items": [entry_to_json(i) for i in outline.items]}


def outline_from_json(data: dict[str, Any]) -> EditionOutline:
    edition = Edition(str(data["version"]), str(data["locale"]), bool(data["other_version"]),
                      bool(data["other_locale"]))
    return EditionOutline(edition, tuple(entry_from_json(i) for i in data["items"]))


class OutlineStore:
    """One JSON file per book under ``folder``, named by a digest of the book's name (any name
    is a safe file name)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _file(self, book: str) -> Path:
        return self.folder / f"{hashlib.sha256(book.encode()).hexdigest()[:40]}.json"

    def _write(self, book: str, editions: Sequence[EditionOutline]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"format": FORMAT, "book": book, "editions": [outline_to_json(e) for e in editions]})
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".outline-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(body)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self._file(book))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _read(self, book: str) -> list[EditionOutline]:
        try:
            data = json.loads(self._file(book).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        if data.get("format") != FORMAT or data.get("book") != book:
            return []  # another format, or (beyond belief) a digest shared with another book
        try:
            return [outline_from_json(e) for e in data["editions"]]
        except (KeyError, TypeError) as exc:
            raise Internal(f"the stored outline of book {book!r:.80} is damaged ({type(exc).__name__}: {exc}); "
                           "re-ingest the book") from exc

    async def put(self, book: str, editions: Sequence[EditionOutline]) -> int:
        check(editions)
        await asyncio.to_thread(self._write, book, list(editions))
        return len(editions)

    async def get(self, book: str, version: str = "", locale: str = "") -> EditionOutline | None:
        editions = await asyncio.to_thread(self._read, book)
        return next((e for e in editions if e.edition.matches(version, locale)), None)

    async def delete(self, book: str) -> None:
        await asyncio.to_thread(self._file(book).unlink, True)
