"""StoredChunk <-> JSON payload, shared by the backends that keep payloads as documents."""

from __future__ import annotations

from typing import Any

from services.retrieval.index.base import StoredChunk


def to_payload(chunk: StoredChunk) -> dict[str, Any]:
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
        "version": chunk.version,
        "locale": chunk.locale,
        "other_version": int(chunk.other_version),  # see base.INTEGER_FIELDS
        "other_locale": int(chunk.other_locale),
        "edit_url": chunk.edit_url,
    }


def from_payload(payload: dict[str, Any]) -> StoredChunk:
    return StoredChunk(
        chunk_id=str(payload["chunk_id"]),
        book=str(payload.get("book", "")),
        file_path=str(payload.get("file_path", "")),
        module=str(payload.get("module", "")),
        heading_path=tuple(payload.get("heading_path") or ()),
        section_depth=int(payload.get("section_depth", 0)),
        content=str(payload.get("content", "")),
        token_count=int(payload.get("token_count", 0)),
        content_hash=str(payload.get("content_hash", "")),
        title=str(payload.get("title", "")),
        tags=tuple(payload.get("tags") or ()),
        position=int(payload.get("position", 0)),
        url=str(payload.get("url", "")),
        # Chunks stored before versions and locales were read have none of these.
        version=str(payload.get("version", "")),
        locale=str(payload.get("locale", "")),
        other_version=bool(payload.get("other_version", 0)),
        other_locale=bool(payload.get("other_locale", 0)),
        edit_url=str(payload.get("edit_url", "")),
    )
