"""Exact incremental sync of a book into the index.

Reads every page, compares chunk ids and content hashes with what the index holds, embeds
only new and changed chunks, writes them, then deletes what is gone. Writing before
deleting means a crash part-way leaves extra chunks at worst, never missing ones, and the
next run converges. A file that fails to parse keeps its old chunks: nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from embedding.base import Embedder, EmbedderSpec
from embedding.tokens import count_tokens
from runtime.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied
from services.ingest.book.chunker import Budget, Chunk
from services.ingest.book.discovery import discover
from services.ingest.book.pages import PageResult, read_page
from services.ingest.index_client import IndexedDigest

EMBED_BATCH = 64


class Index(Protocol):
    async def digests(self, book: str) -> tuple[list[IndexedDigest], EmbedderSpec | None]: ...
    async def upsert(self, book: str, embedder: EmbedderSpec, chunks: Sequence[Chunk],
                     vectors: Sequence[Sequence[float]]) -> None: ...
    async def delete(self, book: str, chunk_ids: Sequence[str]) -> None: ...
    async def delete_book(self, book: str) -> None: ...


@dataclass(frozen=True)
class IngestJob:
    source_dir: Path
    book: str = "default"
    base_url: str = "/docs/"
    dry_run: bool = False
    reindex: bool = False
    include_drafts: bool = False


@dataclass(frozen=True)
class FileEvent:
    file_path: str
    status: str  # "ingested", "skipped" or "failed"
    reason: str
    chunks: int
    files_done: int
    files_total: int


@dataclass
class Summary:
    files_seen: int = 0
    files_skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks_new: int = 0
    chunks_changed: int = 0
    chunks_deleted: int = 0
    chunks_unchanged: int = 0
    tokens_embedded: int = 0
    seconds: float = 0.0
    embed_seconds: float = 0.0
    dry_run: bool = False


def resolve_source(source_dir: str, roots: Sequence[Path]) -> Path:
    """The docs folder, if it lies under an allowed root; callers never read elsewhere."""
    if not source_dir.strip():
        raise InvalidArgument.of("source_dir", "must not be empty")
    path = Path(source_dir).expanduser().resolve()
    allowed = [r.resolve() for r in roots]
    if not any(path == r or r in path.parents for r in allowed):
        raise PermissionDenied(f"{source_dir} is outside LECTERN_INGEST_ROOTS")
    if not path.is_dir():
        raise InvalidArgument.of("source_dir", "is not a folder")
    return path


class Ingestor:
    """Runs ingest jobs; one at a time per book."""

    def __init__(self, index: Index, embedder: Embedder, max_tokens: int = 512) -> None:
        self.index = index
        self.embedder = embedder
        self.budget = Budget(count_tokens, max_tokens, embedder.count_tokens, embedder.spec.max_input_tokens)
        self._running: set[str] = set()

    async def run(self, job: IngestJob) -> AsyncIterator[FileEvent | Summary]:
        if job.book in self._running:
            raise Aborted(f"an ingest of book {job.book!r} is already running; try again when it ends")
        self._running.add(job.book)
        try:
            async for event in self._run(job):
                yield event
        finally:
            self._running.discard(job.book)

    async def _run(self, job: IngestJob) -> AsyncIterator[FileEvent | Summary]:
        started = time.perf_counter()
        summary = Summary(dry_run=job.dry_run)
        files = await asyncio.to_thread(discover, job.source_dir)
        summary.files_seen = len(files)
        chunks: list[Chunk] = []
        failed_files: set[str] = set()
        for done, file in enumerate(files, start=1):
            result: PageResult = await asyncio.to_thread(
                read_page, file, job.book, job.base_url, self.budget, job.include_drafts
            )
            if result.failed:
                summary.failed.append((file.rel, result.failed))
                failed_files.add(file.rel)
                status, reason = "failed", result.failed
            elif result.skipped:
                summary.files_skipped += 1
                status, reason = "skipped", result.skipped
            else:
                status, reason = "ingested", ""
            chunks += result.chunks
            yield FileEvent(file.rel, status, reason, len(result.chunks), done, len(files))

        existing, built_by = await self.index.digests(job.book)
        spec = self.embedder.spec
        if built_by is not None and built_by.name != spec.name and not job.reindex:
            raise FailedPrecondition(
                f"book {job.book!r} was indexed with {built_by.name} ({built_by.dimension} dims) but this "
                f"ingest embeds with {spec.name} ({spec.dimension} dims); run again with --reindex"
            )
        if job.reindex:
            existing = []
        held = {d.chunk_id: d for d in existing}
        wanted = {c.chunk_id: c for c in chunks}
        todo = [c for c in wanted.values() if c.chunk_id not in held or held[c.chunk_id].content_hash != c.content_hash]
        summary.chunks_new = sum(1 for c in todo if c.chunk_id not in held)
        summary.chunks_changed = len(todo) - summary.chunks_new
        summary.chunks_unchanged = len(wanted) - len(todo)
        stale = [d.chunk_id for d in existing if d.chunk_id not in wanted and d.file_path not in failed_files]
        summary.chunks_deleted = len(stale)

        if not job.dry_run:
            if job.reindex:
                await self.index.delete_book(job.book)
            for start in range(0, len(todo), EMBED_BATCH):
                batch = todo[start:start + EMBED_BATCH]
                t0 = time.perf_counter()
                vectors = await self.embedder.embed_documents([c.embed_text for c in batch])
                summary.embed_seconds += time.perf_counter() - t0
                summary.tokens_embedded += sum(c.token_count for c in batch)
                await self.index.upsert(job.book, spec, batch, vectors)
            for start in range(0, len(stale), 1000):
                await self.index.delete(job.book, stale[start:start + 1000])
        summary.seconds = time.perf_counter() - started
        yield summary
