"""Chunk <-> the JSON payload every backend stores beside a chunk's vectors: the one converter
each way."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from records.chunk import Chunk
from records.edition import Edition
from runtime.errors import Internal

# Keys a payload stored before versions, locales and edit links were read lacks, and what they
# then mean: the book's only version and locale, no edit link. Every other key is always written.
LEGACY_DEFAULTS: Mapping[str, object] = {"version": "", "locale": "", "other_version": 0, "other_locale": 0,
                                         "edit_url": ""}


def to_payload(chunk: Chunk) -> dict[str, Any]:
    e = chunk.edition
    return {
        "chunk_id": chunk.chunk_id,
        "book": chunk.book,
        "file_path": chunk.file_path,
        "module": chunk.module,
        "heading_path": list(chunk.heading_path),
        "section_depth": chunk.section_depth,
        "content": chunk.content,
        "token_count": chunk.token_count,
        "content_hash": chunk.content_hash,
        "title": chunk.title,
        "tags": list(chunk.tags),
        "position": chunk.position,
        "url": chunk.url,
        "version": e.version,
        "locale": e.locale,
        "other_version": int(e.other_version),  # see base.INTEGER_FIELDS
        "other_locale": int(e.other_locale),
        "edit_url": chunk.edit_url,
    }


def from_payload(payload: Mapping[str, Any]) -> Chunk:
    """The stored chunk; raises Internal naming the key when a payload lacks one that every
    writer stores (not a chunk Lectern wrote, or a damaged one): a missing field is never guessed."""

    def get(key: str) -> Any:
        if key in payload:
            return payload[key]
        if key in LEGACY_DEFAULTS:
            return LEGACY_DEFAULTS[key]
        raise Internal(f"stored chunk {payload.get('chunk_id', '?')!s:.64} has no {key!r} in its payload; "
                       "re-index its book")

    def text(key: str) -> str:
        return str(get(key))

    def number(key: str) -> int:
        return int(get(key))

    def texts(key: str) -> tuple[str, ...]:
        return tuple(str(t) for t in get(key))

    return Chunk(
        chunk_id=text("chunk_id"), book=text("book"), file_path=text("file_path"), module=text("module"),
        heading_path=texts("heading_path"), section_depth=number("section_depth"), content=text("content"),
        token_count=number("token_count"), content_hash=text("content_hash"), title=text("title"),
        tags=texts("tags"), position=number("position"), url=text("url"),
        edition=Edition(text("version"), text("locale"), bool(get("other_version")), bool(get("other_locale"))),
        edit_url=text("edit_url"),
    )
